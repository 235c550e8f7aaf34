"""Engine-level fixtures: an engine on an in-memory (or LevelDB) store with the test driver's genesis,
fed with L1 events built by hand (the anvil tests in tests/l1/sequencer feed real ones)."""

from __future__ import annotations

import itertools

import pytest

from optinode.config import BatchSection
from optinode.l1 import events
from optinode.l1.follower import BLOCK, Head
from optinode.l1.rpc import Block
from optinode.services.batcher import BatchPolicy
from optinode.services.engine import Deadlines, Engine
from optinode.spec.genesis import create_genesis_state
from optinode.store import keys
from optinode.testing.world import GENESIS, World

CONFIRMATIONS = 2


class FakeL1:
    """Blocks and queue events as the follower would emit them (the block headers go in the store,
    where the engine reads the confirmed block's time)."""

    def __init__(self, store, world: World) -> None:
        self.store = store
        self.world = world
        self.number = 100
        self.time = world.l1_timestamp
        self.deposit_index = itertools.count()
        self.forced_index = itertools.count()
        self.log_index = itertools.count()

    def head(self, blocks: int = 1) -> Head:
        for _ in range(blocks):
            self.number += 1
            self.time += 12
            block = Block(self.number, self.number.to_bytes(32, "big"), (self.number - 1).to_bytes(32, "big"), self.time, 0)
            self.store.put(keys.l1_block(self.number), BLOCK.encode(block), sync=False)
        return Head(self.number, self.number.to_bytes(32, "big"), self.time)

    def _where(self) -> dict:
        return dict(block_number=self.number + 1, block_hash=b"\x00" * 32, log_index=next(self.log_index), tx_hash=b"\x00" * 32, address=b"\x00" * 20)

    def deposit(self, name: str, amount: int):
        owner = self.world.address(name)
        return events.Deposited(index=next(self.deposit_index), from_=owner, owner=owner, amount=amount, acc=b"\x00" * 32, **self._where())

    def forced(self, name: str, account_id: int, amount: int):
        return events.ForcedWithdrawalRequested(index=next(self.forced_index), requester=self.world.address(name), account_id=account_id,
                                               amount=amount, acc=b"\x00" * 32, **self._where())


def make_policy(**overrides) -> BatchPolicy:
    return BatchPolicy.from_config(BatchSection(**{"max_age": 1000.0, **overrides}), challenge_window=30, clock=60)


def make_engine(store, **policy) -> Engine:
    return Engine(store, create_genesis_state(GENESIS), policy=make_policy(**policy), confirmations=CONFIRMATIONS,
                  deadlines=Deadlines(deposit=300, forced=300))


@pytest.fixture
def world() -> World:
    return World()
