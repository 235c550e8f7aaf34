"""The order book inside the engine: a placement is matched, its Trades applied and journaled
(durably, before the answer) like any submission; after a restart the engine rebuilds the same
books and state from the log alone (on LevelDB)."""

from __future__ import annotations

import pytest
import trio

from optinode.exchange.orders import CancelOrder, Placement, Status, TimeInForce
from optinode.services.journal import Journal
from optinode.services.engine import Rejected
from optinode.spec.commitment import compute_state_root
from optinode.spec.errors import ErrorCode
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import Trade
from optinode.store.db import open_store
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK

from tests.services.conftest import FakeL1, make_engine
from tests.services.test_engine import Harness, funded


def order(world, name, *, buy, lots=1, ticks=0):
    return world.order(name, is_buy=buy, size=lots * ETH_STEP, limit_price=ETH_PRICE + ticks * ETH_TICK)


@pytest.mark.trio
async def test_orders_match_in_the_engine_are_logged_and_the_book_survives_a_restart(tmp_path, world) -> None:
    store = open_store(tmp_path / "db", identity="test")
    async with trio.open_nursery() as inner:
        h = await Harness(store, inner).start()
        await funded(h, world, FakeL1(store, world))
        rest = await h.submitter.submit_book(Placement(order(world, "alice", buy=True, lots=3)))
        assert rest.result.status is Status.RESTING and rest.seq is not None
        # acknowledged only once durable: the entry is in the log, with no record (nothing traded)
        assert Journal(store).entries(rest.seq).__next__().records == ()
        take = await h.submitter.submit_book(Placement(order(world, "bob", buy=False, lots=1)))
        assert take.result.status is Status.FILLED and len(take.result.fills) == 1
        [entry] = list(Journal(store).entries(take.seq))
        [trade] = [decode_transaction(r) for r in entry.records]
        assert isinstance(trade, Trade) and trade.size == ETH_STEP
        # a refused order changes nothing and is not logged
        before = h.engine.next_seq
        refused = await h.submitter.submit_book(Placement(order(world, "bob", buy=False, lots=1, ticks=-5), TimeInForce.POST_ONLY))
        assert refused.result.status is Status.REJECTED and refused.seq is None and h.engine.next_seq == before
        second = await h.submitter.submit_book(Placement(order(world, "bob", buy=True, lots=1, ticks=-3)))
        cancelled = await h.submitter.submit_book(CancelOrder(world.ids["bob"], second.result.order_hash))
        assert cancelled.seq is not None
        await h.cut()  # a checkpoint in the middle: the book is not in it, the log rebuilds it
        await h.submitter.submit_book(Placement(order(world, "bob", buy=False, lots=1)))
        snapshot, root = h.engine.matcher.snapshot(), compute_state_root(h.engine.state)
        depth = h.engine.matcher.depth(0, 5)
        inner.cancel_scope.cancel()
    store.close()
    store = open_store(tmp_path / "db", identity="test")
    again = make_engine(store)
    assert again.matcher.snapshot() == snapshot and compute_state_root(again.state) == root
    assert again.matcher.depth(0, 5) == depth == {"bids": [(ETH_PRICE, ETH_STEP, 1)], "asks": []}
    assert again.pending.records == 1  # the one Trade after the cut; resting/cancel entries add no record
    store.close()


@pytest.mark.trio
async def test_a_price_tick_past_an_orders_expiry_takes_it_off_the_book_and_replays(tmp_path, world) -> None:
    from optinode.exchange.orders import ExpireOrders

    store = open_store(tmp_path / "db", identity="test")
    async with trio.open_nursery() as inner:
        h = await Harness(store, inner).start()
        l1 = FakeL1(store, world)
        await funded(h, world, l1)
        expiry = h.engine.l1_time + 30  # (an order must also be unexpired at the L1 time it is applied at)
        short = world.order("alice", is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE - ETH_TICK, expiry=expiry)
        long = order(world, "alice", buy=True, lots=2, ticks=-2)
        for o in (short, long):
            assert (await h.submitter.submit_book(Placement(o))).result.status is Status.RESTING
        await h.send(l1.head(8))  # L1 time moves on, so prices can be stamped past the expiry
        await h.submitter.submit(world.prices(0, [(0, ETH_PRICE, expiry - 1), (1, ETH_PRICE, expiry - 1)]))
        assert len(h.engine.matcher.depth(0, 5)["bids"]) == 2  # not yet expired
        await h.submitter.submit(world.prices(0, [(0, ETH_PRICE, expiry + 1), (1, ETH_PRICE, expiry + 1)]))
        assert h.engine.matcher.depth(0, 5)["bids"] == [(ETH_PRICE - 2 * ETH_TICK, 2 * ETH_STEP, 1)]
        assert type(list(Journal(store).entries())[-1].command) is ExpireOrders
        snapshot = h.engine.matcher.snapshot()
        inner.cancel_scope.cancel()
    store.close()
    store = open_store(tmp_path / "db", identity="test")
    assert make_engine(store).matcher.snapshot() == snapshot
    store.close()


def _assert_checkpoints_read_back(journal, at_cut: dict) -> None:
    """Every checkpoint reads back (`Journal.restore_point`) to the books and root taken at its cut."""
    from optinode.exchange.matching import Matcher

    for index, (books, state_root) in at_cut.items():
        _, state, book = journal.restore_point(index)
        assert Matcher.restore(state, book).snapshot() == books and compute_state_root(state) == state_root, index


async def _funded_engine(store, nursery, world) -> Harness:
    h = await Harness(store, nursery).start()
    await funded(h, world, FakeL1(store, world))
    return h


def _full_replay(store, genesis):
    """The books and state the whole log gives from genesis, through the matcher (the old restart)."""
    from optinode.exchange.matching import Matcher
    from optinode.services.engine import BOOK_COMMANDS
    from optinode.services.journal import replay_entry
    from optinode.spec.types import L1Context

    matcher = Matcher(genesis)
    for entry in Journal(store).entries(0):
        if entry.dropped:
            continue
        if isinstance(entry.command, BOOK_COMMANDS):
            matcher.apply(entry.command, L1Context(entry.l1_timestamp))
        else:
            replay_entry(genesis, entry)
    return matcher.snapshot(), compute_state_root(genesis)


@pytest.mark.trio
async def test_a_restart_replays_only_the_log_after_the_last_checkpoint_and_equals_a_full_replay(tmp_path, world) -> None:
    """Issue 9 open item 2, issue 10 (the cut's cost): each cut writes only the rows that changed
    (accounts, slots, resting orders, seen hashes, floors) with the undo record of what they were, so
    a restart reads the last checkpoint's rows and replays only the pending tail; every earlier
    checkpoint reads back (rolled back through the later undo records) to exactly the state and
    books of its cut."""
    from optinode.spec.genesis import create_genesis_state
    from optinode.testing.world import GENESIS

    store = open_store(tmp_path / "db", identity="test")
    at_cut: dict[int, tuple] = {}
    async with trio.open_nursery() as inner:
        h = await _funded_engine(store, inner, world)
        for n in range(6):  # batches each leaving orders resting (and partly filled) across the cut
            await h.submitter.submit_book(Placement(order(world, "alice", buy=True, lots=3, ticks=-(n % 3))))
            await h.submitter.submit_book(Placement(order(world, "bob", buy=False, lots=1, ticks=-5)))
            h.engine.commitment.update(h.engine.state)  # a root asked for between cuts (optinode_status): it clears the dirty marks
            placed = await h.submitter.submit_book(Placement(order(world, "bob", buy=False, lots=2, ticks=9)))
            if n % 2:
                await h.submitter.submit_book(CancelOrder(world.ids["bob"], placed.result.order_hash))
            batch = await h.cut()
            at_cut[batch.index] = (h.engine.matcher.snapshot(), compute_state_root(h.engine.state))
        cut_at = h.engine.next_seq
        tail = await h.submitter.submit_book(Placement(order(world, "bob", buy=False, lots=1, ticks=-5)))
        later = await h.submitter.submit_book(Placement(order(world, "alice", buy=False, lots=1, ticks=20)))
        await h.submitter.submit_book(CancelOrder(world.ids["alice"], later.result.order_hash))
        snapshot, root, depth = h.engine.matcher.snapshot(), compute_state_root(h.engine.state), h.engine.matcher.depth(0, 5)
        inner.cancel_scope.cancel()
    store.close()
    store = open_store(tmp_path / "db", identity="test")
    journal = Journal(store)
    _assert_checkpoints_read_back(journal, at_cut)
    again = make_engine(store)
    assert again.replayed_seqs == range(cut_at, cut_at + 3) and tail.seq == cut_at  # the pending tail only
    assert again.matcher.snapshot() == snapshot and compute_state_root(again.state) == root
    assert _full_replay(store, create_genesis_state(GENESIS)) == (snapshot, root)
    assert again.matcher.depth(0, 5) == depth and len(depth["bids"]) == 2 and depth["asks"][0][2] == 3
    store.close()


@pytest.mark.trio
async def test_a_signed_cancel_all_is_logged_with_the_spec_cancel_all_and_replays(tmp_path, world) -> None:
    """The book's CancelAll with its owner's signature is applied to the spec state and logged with the
    spec CancelAll record (which the batch then carries to L1); a restart replays it to the same state.
    Without a signature (an old log entry) it stays off-chain; a signed floor that does not rise is refused."""
    from optinode.exchange.cancel import SignedCancelAll, compute_cancel_digest
    from optinode.exchange.orders import CancelAll as BookCancelAll
    from optinode.spec.types import CancelAll

    def signed_floor(floor: int) -> BookCancelAll:
        message = SignedCancelAll(world.ids["alice"], floor, b"")
        signature = world.key("alice").sign_digest(compute_cancel_digest(world.domain, message))
        return BookCancelAll(world.ids["alice"], floor, signature)

    store = open_store(tmp_path / "db", identity="test")
    async with trio.open_nursery() as inner:
        h = await Harness(store, inner).start()
        await funded(h, world, FakeL1(store, world))
        alice = world.ids["alice"]
        for ticks in (1, 2):
            await h.submitter.submit_book(Placement(order(world, "alice", buy=True, ticks=-ticks)))
        floor = h.engine.state.accounts[alice].nonce_base + 10
        answer = await h.submitter.submit_book(signed_floor(floor))
        assert len(answer.result) == 2 and h.engine.matcher.open_orders(alice) == []
        [entry] = list(Journal(store).entries(answer.seq))
        [record] = entry.records
        assert decode_transaction(record) == CancelAll(alice, floor, signed_floor(floor).signature)
        assert h.engine.state.accounts[alice].nonce_base == floor
        logged = Journal(store).next_seq()
        with pytest.raises(Rejected) as refused:  # does not rise: refused, nothing logged (docs/matching.md)
            await h.submitter.submit_book(signed_floor(floor))
        assert refused.value.code == ErrorCode.NONCE_TOO_LOW and Journal(store).next_seq() == logged
        unsigned = await h.submitter.submit_book(BookCancelAll(alice, floor + 5))
        assert list(Journal(store).entries(unsigned.seq))[0].records == ()
        assert h.engine.state.accounts[alice].nonce_base == floor
        root, pending = compute_state_root(h.engine.state), h.engine.pending.records
        inner.cancel_scope.cancel()
    store.close()
    store = open_store(tmp_path / "db", identity="test")
    again = make_engine(store)
    assert compute_state_root(again.state) == root and again.pending.records == pending
    assert again.state.accounts[world.ids["alice"]].nonce_base == floor
    store.close()


@pytest.mark.trio
async def test_a_restart_after_cuts_whose_checkpoints_were_not_written_recuts_them(tmp_path, world, monkeypatch) -> None:
    """The checkpoint lane writes behind the cuts (services/checkpointer.py): a crash can leave batch
    records whose checkpoints never landed. The restart replays the log from the last checkpoint
    written, re-cuts at the recorded boundaries (each root checked against its record), writes the
    missing checkpoints, and ends with the same books and state; every checkpoint then reads back."""
    from optinode.services.checkpointer import CheckpointLane

    store = open_store(tmp_path / "db", identity="test")
    written = CheckpointLane.write
    lost: list[int] = []

    def write(lane, record, header, delta):  # the batches after the second: as if the process died before they landed
        if record.index > 2:
            lost.append(record.index)
            return
        written(lane, record, header, delta)

    monkeypatch.setattr(CheckpointLane, "write", write)
    at_cut: dict[int, tuple] = {}
    roots: dict[int, bytes] = {}
    async with trio.open_nursery() as inner:
        h = await _funded_engine(store, inner, world)
        for n in range(5):
            await h.submitter.submit_book(Placement(order(world, "alice", buy=True, lots=3, ticks=-(n % 3))))
            await h.submitter.submit_book(Placement(order(world, "bob", buy=False, lots=1, ticks=-5)))
            batch = await h.cut()
            at_cut[batch.index] = (h.engine.matcher.snapshot(), compute_state_root(h.engine.state))
            roots[batch.index] = batch.state_root  # (computed behind the engine, in slices)
            assert batch.state_root == at_cut[batch.index][1]
        await h.submitter.submit_book(Placement(order(world, "bob", buy=False, lots=1, ticks=-4)))
        snapshot, root = h.engine.matcher.snapshot(), compute_state_root(h.engine.state)
        last = h.engine.batch_index - 1
        inner.cancel_scope.cancel()
    store.close()
    monkeypatch.setattr(CheckpointLane, "write", written)
    assert lost and last in lost
    store = open_store(tmp_path / "db", identity="test")
    journal = Journal(store)
    assert journal.last_checkpoint().batch_index == 2 and journal.last_batch().index == last
    assert journal.batch(last) is None and journal.last_batch().state_root == b""  # only its boundary: the rest never landed
    again = make_engine(store)
    assert {i: journal.batch(i).state_root for i in roots} == roots  # the boundaries completed with the same roots
    assert again.batch_index == last + 1 and again.replayed_seqs.start == journal.checkpoint(2).next_seq
    assert again.matcher.snapshot() == snapshot and compute_state_root(again.state) == root
    assert journal.last_checkpoint().batch_index == last  # the missing checkpoints written
    _assert_checkpoints_read_back(journal, at_cut)
    store.close()


@pytest.mark.trio
async def test_a_cancelled_or_filled_order_is_refused_again_after_a_restart_from_a_checkpoint(tmp_path, world) -> None:
    """Replay protection survives a restart: the seen hashes are checkpoint rows (and the log after)."""
    store = open_store(tmp_path / "db", identity="test")
    async with trio.open_nursery() as inner:
        h = await _funded_engine(store, inner, world)
        resting = order(world, "bob", buy=False, lots=1, ticks=9)
        maker, taker = order(world, "alice", buy=True, lots=1, ticks=-1), order(world, "bob", buy=False, lots=1, ticks=-1)
        late = order(world, "bob", buy=False, lots=1, ticks=12)
        placed = await h.submitter.submit_book(Placement(resting))
        await h.submitter.submit_book(CancelOrder(world.ids["bob"], placed.result.order_hash))
        await h.submitter.submit_book(Placement(maker))
        assert (await h.submitter.submit_book(Placement(taker))).result.status is Status.FILLED
        await h.cut()
        placed = await h.submitter.submit_book(Placement(late))  # after the checkpoint: in the log only
        assert placed.result.status is Status.RESTING, placed.result
        await h.submitter.submit_book(CancelOrder(world.ids["bob"], placed.result.order_hash))
        inner.cancel_scope.cancel()
    store.close()
    store = open_store(tmp_path / "db", identity="test")
    async with trio.open_nursery() as inner:
        h = Harness(store, inner)
        await h.start()
        for o in (resting, maker, taker, late):
            again = await h.submitter.submit_book(Placement(o))
            assert again.result.status is Status.REJECTED and again.result.reason == "DUPLICATE_ORDER" and again.seq is None
        inner.cancel_scope.cancel()
    store.close()
