"""The follower against a simulated chain, in addition to the anvil tests in tests/l1/node: random
mining and reorgs (up to the window), polls in between. A consumer that applies the outputs (events
appended, a Reorg removing exactly what it names) always holds the canonical chain's events up to the
follower's position, and so does the store."""

from __future__ import annotations

import random

import eth_abi
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from optinode.l1 import events
from optinode.l1.follower import Follower, FollowerCritical, Head, Reorg
from optinode.l1.rpc import Block, Log
from optinode.spec.crypto import keccak
from optinode.store.memory import open_memory

BRIDGE = b"\xb0" * 20
DEPOSITED = keccak(b"Deposited(uint256,address,address,uint256,bytes32)")


class FakeChain:
    """Blocks with random deposits; ``reorg`` replaces the last blocks by new ones (new hashes)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.blocks: list[Block] = [Block(0, keccak(b"genesis"), b"\0" * 32, 1_000, 1)]
        self.logs: dict[bytes, list[Log]] = {self.blocks[0].hash: []}
        self.salt = 0

    def mine(self, count: int) -> None:
        for _ in range(count):
            parent = self.blocks[-1]
            self.salt += 1
            block = Block(parent.number + 1, keccak(parent.hash + self.salt.to_bytes(8, "big")), parent.hash, parent.timestamp + 12, 1)
            self.blocks.append(block)
            logs = []
            for i in range(self.rng.choice([0, 0, 1, 2])):
                amount = self.rng.randrange(1, 10**9)
                logs.append(
                    Log(
                        address=BRIDGE,
                        topics=(DEPOSITED, (self.salt * 10 + i).to_bytes(32, "big"), bytes(12) + b"\x01" * 20, bytes(12) + b"\x02" * 20),
                        data=eth_abi.encode(["uint256", "bytes32"], [amount, b"\0" * 32]),
                        block_number=block.number,
                        block_hash=block.hash,
                        tx_hash=keccak(block.hash + bytes([i])),
                        log_index=i,
                        removed=False,
                    )
                )
            self.logs[block.hash] = logs

    def reorg(self, depth: int, new_blocks: int) -> None:
        depth = min(depth, len(self.blocks) - 1)
        del self.blocks[len(self.blocks) - depth :]
        self.mine(new_blocks)

    def canonical_events(self, up_to: int) -> list[tuple[int, int, int]]:
        return [(log.block_number, log.log_index, int.from_bytes(log.data[:32], "big"))
                for block in self.blocks[: up_to + 1] for log in self.logs[block.hash]]


class FakeRpc:
    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain

    async def block_number(self) -> int:
        return self.chain.blocks[-1].number

    async def get_block(self, number):  # type: ignore[no-untyped-def]
        blocks = self.chain.blocks
        return blocks[number] if 0 <= number < len(blocks) else None

    async def get_blocks(self, numbers):  # type: ignore[no-untyped-def]
        return [await self.get_block(n) for n in numbers]

    async def get_logs(self, addresses, from_block, to_block):  # type: ignore[no-untyped-def]
        return [log for block in self.chain.blocks[from_block : to_block + 1] for log in self.chain.logs[block.hash]]


def as_tuple(event: events.L1Event) -> tuple[int, int, int]:
    return (event.block_number, event.log_index, event.amount)


WINDOW = 8

step = st.one_of(
    st.tuples(st.just("mine"), st.integers(1, 6)),
    st.tuples(st.just("reorg"), st.integers(1, WINDOW - 1)),
    st.tuples(st.just("poll"), st.integers(1, 3)),
)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), steps=st.lists(step, max_size=25), max_range=st.integers(1, 5))
def test_consumer_view_equals_the_canonical_chain(seed: int, steps, max_range: int) -> None:
    chain = FakeChain(random.Random(seed))
    chain.mine(3)
    store = open_memory()
    follower = Follower(FakeRpc(chain), store, {BRIDGE: "Bridge"}, start_block=1, window=WINDOW, max_range=max_range)  # type: ignore[arg-type]
    view: list[tuple[int, int, int]] = []

    async def poll(times: int) -> None:
        for _ in range(times):
            outputs, _ = await follower.poll()
            for output in outputs:
                if isinstance(output, Reorg):
                    cut = [e for e in view if e[0] > output.common_ancestor]
                    assert [as_tuple(e) for e in output.removed] == list(reversed(cut))  # exactly what it had produced
                    del view[len(view) - len(cut) :]
                elif isinstance(output, Head):
                    # the fake chain never moves during a poll, so a Head is canonical when emitted
                    assert chain.blocks[output.number].hash == output.hash
                else:
                    view.append(as_tuple(output))

    async def run() -> None:
        for kind, n in steps:
            if kind == "mine":
                chain.mine(n)
            elif kind == "reorg":
                # only reorgs the follower can survive: the common ancestor stays inside its window
                position = follower.position
                if position is None or position.number - (len(chain.blocks) - 1 - n) < WINDOW - 1:
                    chain.reorg(n, n + chain.rng.randrange(0, 3))
            else:
                await poll(n)
        await poll(100)  # catch up

    try:
        trio.run(run)
    except FollowerCritical:  # pragma: no cover - the guard above keeps reorgs inside the window
        raise AssertionError("a reorg inside the window was treated as critical")
    position = follower.position
    assert position is not None and position.hash == chain.blocks[position.number].hash
    assert position.number == chain.blocks[-1].number
    expected = [e for e in chain.canonical_events(position.number) if e[0] >= 1]
    assert view == expected
    assert [as_tuple(e) for e in follower.stored_events()] == expected
