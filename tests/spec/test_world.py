"""The test driver itself (optinode/testing/world.py): its conventions hold, and its docstring's
examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from optinode.config import load_genesis
from optinode.spec.commitment import compute_state_root
from optinode.spec.errors import ErrorCode
from optinode.spec.transition import state_transition
from optinode.spec.types import ForcedWithdraw, Trade
from optinode.testing import vectors
from optinode.testing import world as world_module
from optinode.testing.world import (
    BTC, BTC_PRICE, ETH, ETH_PRICE, ETH_UNIT, GENESIS, USD, World, oracle_key, price_of, size_of, test_key,
)

ROOT = Path(__file__).resolve().parents[2]


def test_docstring_examples_run() -> None:
    """Every indented example block of the module docstring executes (the vector one in a registry of its own)."""
    blocks = re.findall(r"\n\n((?:    .*\n)+)", world_module.__doc__ or "")
    assert len(blocks) == 2
    rule_test, vector_case = (re.sub(r"^    ", "", b, flags=re.M) for b in blocks)
    namespace = dict(vars(world_module))
    exec(rule_test, {**namespace, "Trade": Trade})

    registered: dict = {}
    exec(vector_case, {**namespace, "case": lambda name: lambda fn: registered.setdefault(name, fn),
                       "base_world": vectors.base_world})
    vector = registered["withdraw/insufficient_margin"]()
    assert vector["expected"]["code_name"] == "INSUFFICIENT_MARGIN" and vector["expected"]["applied"] is False


def test_keys_are_the_devnet_keys() -> None:
    devnet = load_genesis(ROOT / "configs" / "devnet.toml")
    assert GENESIS.oracles == tuple(oracle_key(i).address for i in range(3)) == devnet.oracles
    # the genesis's ETH market is the devnet's (findings written against it run unchanged)
    ours, theirs = GENESIS.markets[ETH], devnet.markets[0]
    assert (ours.name, ours.step_size, ours.tick_size, ours.price, ours.initial_margin, ours.maintenance_margin) == (
        theirs.name, theirs.step_size, theirs.tick_size, theirs.price, theirs.initial_margin, theirs.maintenance_margin
    )
    assert World().address("alice") == test_key("alice").address


def test_nonces_count_from_zero_per_name_and_are_shared_by_orders_and_withdrawals() -> None:
    w = World()
    assert [w.order("alice").nonce, w.withdraw("alice", 1).nonce, w.order("alice").nonce] == [0, 1, 2]
    assert w.order("bob").nonce == 0
    assert w.order("alice", nonce=77).nonce == 77 and w.order("alice").nonce == 3  # an explicit nonce takes no slot


def test_a_second_account_of_the_same_owner() -> None:
    w = World()
    first = w.deposit("alice", 10 * USD)
    second = w.deposit("alice-2", 10 * USD, owner="alice")
    assert (first, second) == (0, 1)
    assert w.state.accounts[1].owner == w.state.accounts[0].owner == w.address("alice")


def test_units() -> None:
    assert price_of(ETH, 3000) == ETH_PRICE and price_of(BTC, "60000") == BTC_PRICE
    assert size_of(ETH, "1.5") == 3 * ETH_UNIT // 2
    with pytest.raises(ValueError):
        price_of(ETH, "3000.000001")  # not a whole number of price units per 1e-9 ETH


def test_root_is_incremental_and_checked_against_the_root_from_scratch(funded_world) -> None:
    w = funded_world
    w.root()
    w.state.accounts[1].collateral += 1  # a hand edit without touch: the incremental root misses it
    with pytest.raises(AssertionError, match="from scratch"):
        w.root()
    w.touch(1)
    assert w.root() == compute_state_root(w.state)


def test_fork_is_independent(funded_world) -> None:
    w = funded_world
    other = w.fork()
    other.must(other.trade("alice", "bob", 10**6))
    assert w.size("bob") == 0 and other.size("bob") == 10**6
    assert w.order("carol").nonce == other.order("carol").nonce == 0
    assert w.root() != other.root()


def test_recording_replays_to_the_same_state(funded_world) -> None:
    w = funded_world
    w.must(w.trade("alice", "bob", 10**6))
    assert w.apply(w.withdraw("carol", 0)).code == ErrorCode.INVALID_AMOUNT
    recording = w.recording()
    state = recording.genesis_state()
    receipts = [state_transition(state, tx, recording.ctx) for tx in recording.txs]
    assert receipts == w.receipts and compute_state_root(state) == w.root()
    genesis, ctx, txs = recording.decode_json(recording.to_json())
    assert (genesis, ctx, txs) == (recording.genesis, recording.ctx, list(recording.txs))


def test_a_vector_case_must_state_its_outcome() -> None:
    """`World.vector` refuses a case whose stated outcome is not what happens (code, or applied)."""
    w = vectors.base_world()
    with pytest.raises(AssertionError, match="expected OK"):
        w.fork().vector(w.withdraw("carol", 0), expect=ErrorCode.OK)
    w.queue_forced("carol", 10**18)  # more than carol has: consumed but refused
    with pytest.raises(AssertionError, match="applied=False"):
        w.fork().vector(ForcedWithdraw(), expect=ErrorCode.INSUFFICIENT_MARGIN)
    vector = w.fork().vector(ForcedWithdraw(), expect=ErrorCode.INSUFFICIENT_MARGIN, applied=True)
    assert vector["expected"]["applied"] is True
