"""Rebuilding batches from a checkpoint (docs/sequencer.md, "Rebuilding batches"): the engine restores
the parent batch's checkpoint (state and books), re-applies the later log at a fresh L1 time, drops
what no longer executes (recorded in the log, so the client can learn it) and writes the rebuilt
batches in one synced write batch. On LevelDB; the anvil tests in tests/l1 drive it through L1."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio

from optinode.exchange.orders import Placement, Status
from optinode.l1 import events
from optinode.replay import Replay
from optinode.services.batcher import CutRequest
from optinode.services.engine import RebuildRequest, Rebuilt
from optinode.services.journal import Journal
from optinode.spec.commitment import compute_state_root
from optinode.spec.errors import ErrorCode
from optinode.spec.types import FundingTick, L1Context
from optinode.store.db import open_store
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_UNIT, USD

from tests.services.conftest import CONFIRMATIONS, FakeL1, make_engine
from tests.services.test_engine import Harness, funded


@asynccontextmanager
async def funded_engine(tmp_path, world, **policy):
    """A running engine on LevelDB with alice and bob funded: (store, harness, fake L1). The store
    stays open after the engine stops (the test may restart on it) and is closed at the end."""
    store = open_store(tmp_path / "db", identity="test")
    try:
        async with trio.open_nursery() as inner:
            h = await Harness(store, inner, **policy).start()
            l1 = FakeL1(store, world)
            await funded(h, world, l1)
            yield store, h, l1
            inner.cancel_scope.cancel()
    finally:
        store.close()


async def _received(h: Harness) -> list:
    out = []
    while True:
        try:
            out.append(h.batches.receive_nowait())
        except trio.WouldBlock:
            return out


def _verifier_roots(store, record, deposits):
    """What a verifier replays from L1 alone: the parent root's state, the batch's records, its declared time."""
    journal = Journal(store)
    before = journal.state_at(record.index - 1)
    return Replay(before, journal.batch_records(record), L1Context(record.l1_timestamp, deposits=deposits)).roots


@pytest.mark.trio
async def test_a_stale_batch_is_rebuilt_at_a_fresh_time_dropping_what_expired(tmp_path, world) -> None:
    async with funded_engine(tmp_path, world) as (store, h, l1):
        deposits = dict(world.deposit_queue)
        expiry = h.engine.head_time + 30
        short = world.order("alice", is_buy=True, size=2 * ETH_STEP, limit_price=ETH_PRICE, expiry=expiry)
        maker = await h.submitter.submit_book(Placement(short))
        taker = await h.submitter.submit_book(Placement(world.order("bob", is_buy=False, size=ETH_STEP, limit_price=ETH_PRICE)))
        assert taker.result.status is Status.FILLED  # against alice's short-lived order
        withdraw = await h.submitter.submit(world.withdraw("alice", 10 * USD))
        trade = await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10, expiry=expiry))
        first = await h.cut()
        assert first.index == 1 and first.record_count == 2 + 1 + 1 + 1
        await h.send(l1.head(10))  # 120 s later: both of alice's short-lived signatures have expired
        assert h.engine.head_time > expiry
        await h.send(RebuildRequest(1, 0))
        rebuilt, record = await _received(h)
        assert isinstance(rebuilt, Rebuilt) and rebuilt.from_index == 1 and rebuilt.epoch == 1
        assert rebuilt.dropped == (maker.seq, trade.seq)  # the order and the trade that expired meanwhile
        assert record.index == 1 and record.epoch == 1 and record.l1_timestamp == h.engine.head_time
        # deposits re-consumed once each, the withdrawal once, bob's order now rests (its maker is gone)
        entries = {e.seq: e for e in Journal(store).entries()}
        assert entries[maker.seq].dropped == ErrorCode.EXPIRED.name and entries[trade.seq].dropped == ErrorCode.EXPIRED.name
        assert entries[withdraw.seq].dropped == "" and entries[taker.seq].records == ()
        assert record.record_count == 2 + 1 and h.engine.state.deposits_done == 2
        assert h.engine.state.accounts[0].withdrawn == 10 * USD
        assert h.engine.matcher.get(taker.result.order_hash).remaining == ETH_STEP
        assert h.engine.revisions[short_hash(h, short)].status == "dropped"
        assert h.engine.revisions[taker.result.order_hash].status == Status.RESTING.value
        # the rebuilt batch replays, from its records at its declared time, to its root
        assert _verifier_roots(store, record, deposits)[-1] == record.state_root == compute_state_root(h.engine.state)
        state_root, snapshot = record.state_root, h.engine.matcher.snapshot()
        # a stale request for the replaced epoch does nothing
        await h.send(RebuildRequest(1, 0))
        assert await _received(h) == []
    store = open_store(tmp_path / "db", identity="test")
    again = make_engine(store)  # durable: a restart gives the rebuilt batch, state and books
    assert again.batch_index == 2 and Journal(store).batch(1).state_root == state_root and again.mark.epoch == 1
    assert compute_state_root(again.state) == state_root and again.matcher.snapshot() == snapshot
    store.close()


def short_hash(h, order):
    return h.engine.matcher.order_hash(order)


@pytest.mark.trio
async def test_a_discard_on_l1_rolls_back_to_the_last_valid_checkpoint_once(tmp_path, world) -> None:
    async with funded_engine(tmp_path, world) as (store, h, l1):
        one = await h.cut()
        await h.submitter.submit(world.withdraw("alice", 10 * USD))
        two = await h.cut()
        await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
        three = await h.cut()
        pending = await h.submitter.submit(world.withdraw("bob", 5 * USD))
        before = compute_state_root(h.engine.state)
        discard = events.BatchesDiscarded(from_index=2, to_index=4, challenger=b"\x01" * 20, block_number=l1.number, block_hash=b"\x00" * 32,
                                          log_index=7, tx_hash=b"\x00" * 32, address=b"\x00" * 20)
        await h.send(discard, l1.head(CONFIRMATIONS))  # (rolled back for once as deep as a queue entry must be)
        rebuilt, *records = await _received(h)
        assert rebuilt.from_index == 2 and rebuilt.dropped == () and [r.index for r in records] == [2]
        # the three later commands (withdraw, trade, pending withdraw) are in the one rebuilt batch
        assert records[0].first_seq == two.first_seq and records[0].end_seq == pending.seq + 1 and records[0].record_count == 3
        assert Journal(store).batch(1) == one and Journal(store).batch(3) is None
        assert compute_state_root(h.engine.state) == before  # the same commands, valid at the later time too
        assert h.engine.state.accounts[0].withdrawn == 10 * USD and h.engine.state.accounts[1].withdrawn == 5 * USD  # once each
        await h.send(discard, l1.head(1))  # the same event again (a restart re-reads it): handled once
        assert await _received(h) == []
        assert three.index == 3


@pytest.mark.trio
async def test_a_rebuild_cuts_by_the_size_limits_and_each_batch_replays_to_its_root(tmp_path, world) -> None:
    async with funded_engine(tmp_path, world, max_records=2) as (store, h, l1):  # 2 deposits: batch 1, cut at the limit
        deposits = dict(world.deposit_queue)
        for amount in (1, 2, 3):
            await h.submitter.submit(world.withdraw("alice", amount * USD))
        await h.send(CutRequest("test"))
        cut = await _received(h)
        assert [r.index for r in cut] == [1, 2, 3]
        await h.send(l1.head(3), RebuildRequest(1, 0))
        rebuilt, *records = await _received(h)
        assert rebuilt.from_index == 1 and [r.index for r in records] == [1, 2, 3]
        assert [(r.first_seq, r.end_seq, r.record_count) for r in records] == [(0, 2, 2), (2, 4, 2), (4, 5, 1)]
        assert all(r.epoch == 1 and r.l1_timestamp == h.engine.head_time for r in records)
        for record in records:  # each from its parent's (rebuilt) checkpoint, as a verifier replays it
            assert _verifier_roots(store, record, deposits)[-1] == record.state_root
        assert h.engine.batch_index == 4 and h.engine.next_seq == 5


@pytest.mark.trio
async def test_a_forced_request_a_rebuild_finds_stale_goes_back_to_the_queue(tmp_path, world) -> None:
    # Found in review: a rebuild at a fresh L1 time re-consumes the forced requests of its range; one
    # that reads a price gone stale meanwhile (a long L1 outage) raised RuntimeError in the rebuild.
    async with funded_engine(tmp_path, world) as (store, h, l1):
        await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
        assert (await h.cut()).index == 1  # alice's position is older than the rebuilt range
        await h.send(l1.forced("alice", 0, USD), l1.head(CONFIRMATIONS + 1))
        state = h.engine.state
        assert state.forced_done == 1
        assert (await h.cut()).index == 2
        l1.time = state.markets[0].price_time + state.config.price_validity + 60  # the prices went stale
        await h.send(l1.head(1))
        await h.send(RebuildRequest(2, 0))
        rebuilt, *_ = await _received(h)
        assert isinstance(rebuilt, Rebuilt) and rebuilt.from_index == 2
        forced = [e for e in Journal(store).entries() if type(e.command).__name__ == "ForcedCommand"]
        assert [e.dropped for e in forced] == ["WAITING_FOR_PRICE"] and state.forced_done == 0
        assert state.accounts[0].withdrawn == 0  # the rebuilt state paid nothing out
        # fresh prices and funding: the request is consumed live, once
        now = l1.time
        for market in (0, 1):
            price = state.markets[market].price
            await h.submitter.submit(world.prices(market, [(0, price, now), (1, price, now)]))
        await h.submitter.submit(FundingTick(now, tuple(m.funding_index for m in state.markets)))
        await h.send(l1.head(1))
        assert state.forced_done == 1 and state.accounts[0].withdrawn == USD
        # when it was requested is not in the log: the batch that consumes it again is due at once
        assert h.engine.policy.due(h.engine.pending, trio.current_time(), l1.time) == "queue deadline"
