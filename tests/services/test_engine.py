"""The engine: L1 queue consumption, submissions, durable acknowledgements, cuts, restart from
checkpoint + log (on LevelDB, so durability is the real thing)."""

from __future__ import annotations

import pytest
import trio

from optinode.services import engine as engine_mod
from optinode.services.batcher import CutRequest
from optinode.services.engine import Rejected, Submitter
from optinode.services.journal import Journal
from optinode.spec.commitment import compute_state_root
from optinode.spec.errors import ErrorCode
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import Deposit, ForcedWithdraw, FundingTick, Trade
from optinode.store.db import open_store
from optinode.testing.world import BTC, ETH, ETH_UNIT, USD

from tests.services.conftest import CONFIRMATIONS, FakeL1, make_engine


class Harness:
    def __init__(self, store, nursery, **policy) -> None:
        self.engine = make_engine(store, **policy)
        self.inbox, inbox_receive = trio.open_memory_channel(64)
        batches_send, self.batches = trio.open_memory_channel(64)
        self.submitter = Submitter(self.inbox)
        self.nursery = nursery
        self._args = (self.engine, inbox_receive, batches_send)

    async def start(self) -> "Harness":
        await self.nursery.start(engine_mod.run, *self._args)
        return self

    async def send(self, *messages) -> None:
        for message in messages:
            await self.inbox.send(message)
        await self.settle()

    async def settle(self) -> None:
        while True:
            await trio.testing.wait_all_tasks_blocked()
            if not self.engine.busy and self.inbox.statistics().current_buffer_used == 0:
                return
            await trio.sleep(0.005)

    async def cut(self):
        await self.send(CutRequest("test"))
        return await self.batches.receive()


def names(world, *who):
    return [world.address(n) for n in who]


@pytest.fixture
def db(tmp_path):
    store = open_store(tmp_path / "db", identity="test")
    yield store
    store.close()


async def funded(h: Harness, world, l1: FakeL1, amounts=(("alice", 1_000 * USD), ("bob", 5_000 * USD))):
    for name, amount in amounts:
        await h.send(l1.deposit(name, amount))
        world.queue_deposit(name, amount)
        world.ids.setdefault(name, len(world.ids))
    await h.send(l1.head(CONFIRMATIONS + 1))


@pytest.mark.trio
async def test_deposits_wait_for_confirmations_and_credit_the_right_account(db, world, nursery) -> None:
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await h.send(l1.deposit("alice", 100 * USD), l1.deposit("bob", 70 * USD), l1.deposit("alice", 5 * USD))
    await h.send(l1.head(1))
    assert h.engine.state.deposits_done == 0  # in the head block, not yet deep enough
    await h.send(l1.head(CONFIRMATIONS))
    state = h.engine.state
    assert state.deposits_done == 3 and state.next_account_id == 2
    assert state.accounts[0].owner == world.address("alice") and state.accounts[0].collateral == 105 * USD
    assert state.accounts[1].owner == world.address("bob") and state.accounts[1].collateral == 70 * USD
    logged = list(Journal(db).entries())
    assert [decode_transaction(e.records[0]) for e in logged] == [Deposit(0), Deposit(1), Deposit(0)]


@pytest.mark.trio
async def test_submissions_are_acknowledged_after_the_log_and_rejections_change_nothing(db, world, nursery) -> None:
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)
    trade = world.trade("bob", "alice", ETH_UNIT // 10)
    ack = await h.submitter.submit(trade)
    entry = next(Journal(db).entries(ack.seq))  # on disk before the answer
    assert entry.seq == ack.seq and decode_transaction(entry.records[0]) == trade
    root = compute_state_root(h.engine.state)
    with pytest.raises(Rejected) as rejected:
        await h.submitter.submit(trade)  # the same orders again: their nonces are used
    assert rejected.value.code == ErrorCode.NONCE_USED
    with pytest.raises(Rejected):
        await h.submitter.submit(Deposit(0))  # queue transactions come from L1 only
    assert compute_state_root(h.engine.state) == root
    assert Journal(db).next_seq() == ack.seq + 1


@pytest.mark.trio
async def test_group_commit_one_write_for_everything_waiting(db, world, nursery) -> None:
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)
    writes = []
    journal = h.engine.journal
    original = journal.append
    journal.append = lambda entries, views=(): (writes.append(len(entries)), original(entries, views))[1]
    trades = [world.trade("bob", "alice", ETH_UNIT // 100) for _ in range(20)]
    acks = []
    async with trio.open_nursery() as clients:
        for t in trades:
            clients.start_soon(lambda t=t: _submit(h, t, acks))
    assert len(acks) == 20 and sum(writes) == 20 and len(writes) < 20


async def _submit(h, tx, acks):
    acks.append(await h.submitter.submit(tx))


@pytest.mark.trio
async def test_forced_requests_executed_or_recorded_with_their_reason(db, world, nursery) -> None:
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)
    await h.send(l1.forced("alice", 0, 100 * USD), l1.forced("alice", 0, 10**6 * USD), l1.forced("bob", 0, USD))
    await h.send(l1.head(CONFIRMATIONS + 1))
    state = h.engine.state
    assert state.forced_done == 3
    assert state.accounts[0].withdrawn == 100 * USD and state.accounts[0].collateral == 900 * USD
    codes = [e.codes[0] for e in Journal(db).entries() if decode_transaction(e.records[0]) == ForcedWithdraw()]
    assert codes == [ErrorCode.OK, ErrorCode.INSUFFICIENT_MARGIN, ErrorCode.OWNER_MISMATCH]


@pytest.mark.trio
async def test_a_forced_deleverage_request_from_l1_runs_the_waterfall(db, world, nursery) -> None:
    """Bridge.requestForcedDeleverage's entry (anyone may ask) goes through the follower's event into the
    engine like any forced request: the engine consumes it and the spec deleverages the bankrupt account."""
    from optinode.spec.constants import FORCED_DELEVERAGE
    from optinode.testing.world import ETH, price_of

    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1, (("alice", 300 * USD), ("bob", 5_000 * USD)))
    await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT))  # alice long 1 ETH at 3000
    await h.send(l1.head())
    await h.submitter.submit(world.prices(ETH, [(i, price_of(ETH, "2600"), l1.time) for i in range(2)]))  # alice at -100
    word = FORCED_DELEVERAGE | 1 << 72 | ETH << 64 | ETH_UNIT
    await h.send(l1.forced("carol", 0, word))  # carol owns neither account
    await h.send(l1.head(CONFIRMATIONS + 1))
    state = h.engine.state
    assert state.forced_done == 1
    assert not state.accounts[0].positions and state.accounts[0].collateral == 0
    assert not state.accounts[1].positions
    codes = [e.codes[0] for e in Journal(db).entries() if decode_transaction(e.records[0]) == ForcedWithdraw()]
    assert codes == [ErrorCode.OK]


@pytest.mark.trio
async def test_a_forced_cancel_all_request_from_l1_is_logged_and_applied(db, world, nursery) -> None:
    """The cancel-all word (FORCED_CANCEL_ALL | floor, above 2^255) is journaled as its 32 bytes: the
    journal's msgpack integers stop at 64 bits (before: the engine failed to log the entry)."""
    from optinode.spec.constants import FORCED_CANCEL_ALL

    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)
    await h.send(l1.forced("alice", 0, FORCED_CANCEL_ALL | 500))
    await h.send(l1.head(CONFIRMATIONS + 1))
    assert h.engine.state.forced_done == 1 and h.engine.state.accounts[0].nonce_base == 500
    (command,) = [e.command for e in Journal(db).entries() if decode_transaction(e.records[0]) == ForcedWithdraw()]
    assert command.amount == FORCED_CANCEL_ALL | 500


@pytest.mark.trio
async def test_cut_computes_the_root_and_restart_replays_checkpoint_plus_log(tmp_path, world, nursery) -> None:
    store = open_store(tmp_path / "db", identity="test")
    async with trio.open_nursery() as inner:
        h = await Harness(store, inner).start()
        l1 = FakeL1(store, world)
        await funded(h, world, l1)
        await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
        batch = await h.cut()
        assert batch.index == 1 and batch.first_seq == 0 and batch.end_seq == 3 and batch.record_count == 3
        assert batch.state_root == compute_state_root(h.engine.state)
        assert Journal(store).checkpoint(1).next_seq == 3
        assert compute_state_root(Journal(store).state_at(1)) == batch.state_root
        await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
        await h.submitter.submit(world.withdraw("alice", 10 * USD))
        root = compute_state_root(h.engine.state)
        inner.cancel_scope.cancel()
    store.close()  # a restart: the state comes back from checkpoint 1 and two log entries
    store = open_store(tmp_path / "db", identity="test")
    again = make_engine_from(store)
    assert compute_state_root(again.state) == root and again.pending.entries == 2 and again.batch_index == 2
    assert again.owners == {world.address("alice"): 0, world.address("bob"): 1}
    store.close()


def make_engine_from(store):
    from tests.services.conftest import make_engine

    return make_engine(store)


@pytest.mark.trio
async def test_a_size_limit_cuts_before_the_record_that_would_cross_it(db, world, nursery) -> None:
    h = await Harness(db, nursery, max_records=4).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)  # 2 records
    for _ in range(3):
        await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 100))
    batch = await h.batches.receive()
    assert batch.record_count == 4 and h.engine.pending.records == 1
    assert isinstance(decode_transaction(Journal(db).batch_records(batch)[-1]), Trade)


@pytest.mark.trio
async def test_a_checkpoint_holds_256_bit_nonce_windows(db, world, nursery) -> None:
    """Found by bench/crash_proposer.py: an account's nonce bitmap passes 2**64 once a nonce above 63
    is used, and msgpack cannot carry it; the checkpoint must."""
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)
    await h.submitter.submit(world.withdraw("alice", USD, nonce=200))
    assert h.engine.state.accounts[0].nonce_bits >= 2**64
    batch = await h.cut()
    assert compute_state_root(Journal(db).state_at(batch.index)) == batch.state_root


@pytest.mark.trio
async def test_a_batch_runs_at_one_l1_time_that_its_record_declares_and_a_restart_keeps(tmp_path, world, nursery) -> None:
    """Issue 9: every entry of a batch is applied at the batch's L1 time (fixed by its first entry,
    the newest head seen then), whatever heads arrive meanwhile; the cut record declares it
    (what appendBatch sends) and a restart replays the pending batch at the same time."""
    store = open_store(tmp_path / "db", identity="test")
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await funded(h, world, l1)
    opened_at = h.engine.batch_time
    assert opened_at is not None and opened_at == h.engine.head_time  # the newest head seen when it opened
    await h.send(l1.head(5))  # the L1 clock moves on while the batch is open
    assert h.engine.head_time > opened_at
    expiry = h.engine.head_time - 1  # expired at the current L1 time, valid at the batch's
    await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10, expiry=expiry))
    record = await h.cut()
    entries = list(Journal(store).entries(record.first_seq, record.end_seq))
    assert record.l1_timestamp == opened_at and {e.l1_timestamp for e in entries} == {opened_at}
    # the next batch opens at the L1 time of its own first entry
    ack = await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
    assert h.engine.batch_time == h.engine.head_time > opened_at
    pending_time = h.engine.batch_time
    h.nursery.cancel_scope.cancel()
    await trio.testing.wait_all_tasks_blocked()
    restarted = make_engine(store)
    assert restarted.batch_time == pending_time and restarted.next_seq == ack.seq + 1
    store.close()


@pytest.mark.trio
async def test_a_submitter_that_went_away_does_not_stop_the_engine(db, world, nursery) -> None:
    # Found in the market-services tests: a rejected submission whose submitter had already given up
    # (reply channel closed) raised BrokenResourceError out of the engine's run loop.
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)
    trade = world.trade("bob", "alice", ETH_UNIT // 10)
    await h.submitter.submit(trade)
    for tx in (trade, Deposit(0), world.trade("bob", "alice", ETH_UNIT // 10)):  # rejected, rejected, accepted
        send, receive = trio.open_memory_channel(1)
        await receive.aclose()  # the submitter is gone before the engine answers
        await h.send(engine_mod.Submission(tx, send))
    ack = await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))  # the engine still serves
    assert ack.seq == Journal(db).next_seq() - 1


@pytest.mark.trio
async def test_a_forced_request_that_must_wait_for_a_fresh_price_stays_queued_and_the_engine_runs_on(db, world, nursery) -> None:
    # Found in review: a forced withdrawal of an account with a position while its market's price (or
    # funding) is stale is not consumed by the spec (it waits for a fresh price), and the engine raised
    # RuntimeError out of its run loop: anyone could stop the sequencer (and, after a restart, again)
    # with one L1 request while the oracle lags.
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await funded(h, world, l1)
    await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
    await h.cut()
    state = h.engine.state
    l1.time = state.markets[ETH].price_time + state.config.price_validity + 60  # the genesis price is now stale
    await h.send(l1.forced("alice", 0, USD), l1.head(CONFIRMATIONS + 1))
    assert state.forced_done == 0  # not consumed: it waits
    assert not any(type(e.command).__name__ == "ForcedCommand" for e in Journal(db).entries())
    with pytest.raises(Rejected) as stale:  # the engine still serves (and the spec refuses stale trades)
        await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
    assert stale.value.code in (ErrorCode.STALE_PRICE, ErrorCode.STALE_FUNDING)
    # fresh prices and funding: the next head consumes the request
    now = l1.time + 1  # (the open batch's L1 time is the head's, l1.time)
    for market in (ETH, BTC):
        price = state.markets[market].price
        await h.submitter.submit(world.prices(market, [(0, price, now - 1), (1, price, now - 1)]))
    await h.submitter.submit(FundingTick(now - 1, tuple(m.funding_index for m in state.markets)))
    await h.send(l1.head(1))
    assert state.forced_done == 1 and state.accounts[0].withdrawn == USD
