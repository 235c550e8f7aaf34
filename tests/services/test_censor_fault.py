"""The devnet fault ``censor:0xADDRESS`` (optinode/services/faults.py), which the devnet's censorship
scenario runs: the engine leaves the censored owner's submissions unanswered and never consumes its
forced requests, so the forced queue stalls behind them while everyone else is served. On LevelDB,
with L1 events built by hand (tests/l1/devnet runs it against anvil)."""

from __future__ import annotations

import pytest
import trio

from optinode.exchange.orders import Placement
from optinode.services.engine import Engine
from optinode.services.faults import FaultRefused, Faults
from optinode.spec.genesis import create_genesis_state
from optinode.store.db import open_store
from optinode.testing.world import GENESIS, USD

from tests.services.conftest import CONFIRMATIONS, FakeL1, make_engine
from tests.services.test_engine import Harness, funded


@pytest.fixture
def db(tmp_path):
    store = open_store(tmp_path / "db", identity="test")
    yield store
    store.close()


def censoring(h: Harness, world, name: str) -> Harness:
    faults = Faults().with_fault(f"censor:0x{world.address(name).hex()}", chain_id=31337)
    base = make_engine(h.engine.store)
    h.engine = Engine(h.engine.store, create_genesis_state(GENESIS), policy=base.policy, confirmations=CONFIRMATIONS,
                      deadlines=base.deadlines, faults=faults)
    h._args = (h.engine, *h._args[1:])
    return h


@pytest.mark.trio
async def test_a_censored_owner_gets_no_answer_and_its_forced_request_stalls_the_queue(db, world, nursery) -> None:
    h = await censoring(Harness(db, nursery), world, "alice").start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)  # deposits are not censored: alice has account 0, bob account 1
    state = h.engine.state
    assert state.deposits_done == 2 and state.accounts[0].collateral == 1_000 * USD

    # alice's signed withdrawal and order: no answer at all (a censoring sequencer just ignores them)
    with trio.move_on_after(0.5) as waited:
        await h.submitter.submit(world.withdraw("alice", 10 * USD))
    assert waited.cancelled_caught and state.accounts[0].withdrawn == 0
    with trio.move_on_after(0.5) as waited:
        await h.submitter.submit_book(Placement(world.order("alice", size=10**6, limit_price=3 * 10**8)))
    assert waited.cancelled_caught and h.engine.next_seq == 2  # nothing logged after the two deposits
    ack = await h.submitter.submit(world.withdraw("bob", 10 * USD))  # bob is served
    assert ack.codes == (0,) and state.accounts[1].withdrawn == 10 * USD

    # alice forces a withdrawal on L1: never consumed; bob's later request waits behind it (the queue is in order)
    await h.send(l1.forced("alice", 0, 100 * USD), l1.forced("bob", 1, USD))
    await h.send(l1.head(CONFIRMATIONS + 5))
    assert state.forced_done == 0 and state.accounts[0].collateral == 1_000 * USD
    await h.send(l1.deposit("carol", 7 * USD), l1.head(CONFIRMATIONS + 1))  # the deposit queue goes on
    assert state.deposits_done == 3 and state.forced_done == 0


@pytest.mark.trio
async def test_without_the_fault_the_same_requests_are_served(db, world, nursery) -> None:
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)
    assert (await h.submitter.submit(world.withdraw("alice", 10 * USD))).codes == (0,)
    await h.send(l1.forced("alice", 0, 100 * USD), l1.forced("bob", 1, USD), l1.head(CONFIRMATIONS + 1))
    assert h.engine.state.forced_done == 2 and h.engine.state.accounts[0].withdrawn == 110 * USD


def test_the_censor_switch_is_devnet_only_and_names_an_address() -> None:
    address = "0x" + "ab" * 20
    assert Faults().with_fault(f"censor:{address}", chain_id=31337).censor == frozenset({bytes.fromhex("ab" * 20)})
    both = Faults().with_fault(f"censor:{address},censor:0x{'cd' * 20}", chain_id=1337)
    assert len(both.censor) == 2
    with pytest.raises(FaultRefused, match="devnets only"):
        Faults().with_fault(f"censor:{address}", chain_id=1)
    for bad in ("censor:", "censor:0x1234", "censor:" + "ab" * 20, "censor:0x" + "zz" * 20):
        with pytest.raises(FaultRefused, match="20-byte"):
            Faults().with_fault(bad, chain_id=31337)
