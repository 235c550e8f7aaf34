"""`Matcher.seen`: a cancelled (or filled) order's signature can never be placed again, and the set
that remembers them is bounded per account (docs/matching.md, "Replay protection")."""

from __future__ import annotations

from optinode.exchange.matching import Matcher
from optinode.exchange.orders import CancelAll, CancelOrder, Placement, Status
from optinode.services.journal import BatchRecord, Checkpoint, CheckpointDelta, Journal, encode_globals_row
from optinode.store.memory import open_memory

from .conftest import Desk


def _checkpointed(desk: Desk, matcher: Matcher) -> Matcher:
    """The matcher as a restart reads it back: written as the rows of one incremental checkpoint."""
    journal = Journal(open_memory())
    journal.write_genesis(desk.w.state, Matcher(desk.w.state).export())
    state = desk.w.state
    delta = CheckpointDelta(state, set(state.accounts), set(state.slots), matcher.take_changes())
    record = BatchRecord(index=1, first_seq=0, end_seq=0, record_count=0, data_bytes=0, accounts_root=b"", slots_root=b"", globals_hash=b"",
                         deposits_done=0, forced_done=0, state_root=b"")
    journal.cut(record, Checkpoint(batch_index=1, next_seq=0, l1_time=0, globals=encode_globals_row(state), book_seq=matcher.seq), delta)
    _, restored_state, book = journal.restore_point(1)
    desk.w.state = restored_state
    return Matcher.restore(restored_state, book, max_remembered=matcher.max_remembered)


def test_seen_is_bounded_per_account_and_a_forgotten_signature_is_refused_by_the_raised_floor() -> None:
    desk = Desk()
    m = desk.m = Matcher(desk.w.state, max_remembered=4)
    bob = desk.w.ids["bob"]
    orders = [desk.order("bob", buy=False, lots=1, ticks=5 + n) for n in range(7)]  # nonces 0..6
    for order in orders:
        placed = m.apply(Placement(order), desk.w.ctx)
        assert placed.status is Status.RESTING
        m.apply(CancelOrder(bob, placed.order_hash))
    assert len(m.seen) == len(m.seen_by_account[bob]) == 4 and m.nonce_floor[bob] == 3  # the 3 oldest forgotten
    for matcher in (m, _checkpointed(desk, m)):
        assert [matcher.apply(Placement(o), desk.w.ctx).reason for o in orders] == ["NONCE_CANCELLED"] * 3 + ["DUPLICATE_ORDER"] * 4
        assert len(matcher.seen) == 4
    fresh = desk.order("bob", buy=False, lots=1, ticks=20)  # nonce 7: above the floor, new
    assert m.apply(Placement(fresh), desk.w.ctx).status is Status.RESTING


def test_a_filled_order_and_a_cancelled_one_stay_refused_after_a_checkpoint_and_a_cancel_all_forgets_what_its_floor_covers() -> None:
    desk = Desk()
    m = desk.m
    ask = desk.order("bob", buy=False, lots=1)
    bid = desk.order("alice", buy=True, lots=1)
    cancelled = desk.order("bob", buy=False, lots=1, ticks=30)
    assert m.apply(Placement(ask), desk.w.ctx).status is Status.RESTING
    assert m.apply(Placement(bid), desk.w.ctx).status is Status.FILLED
    gone = m.apply(Placement(cancelled), desk.w.ctx)
    m.apply(CancelOrder(desk.w.ids["bob"], gone.order_hash))
    restored = _checkpointed(desk, m)
    for o in (ask, bid, cancelled):
        again = restored.apply(Placement(o), desk.w.ctx)
        assert again.status is Status.REJECTED and again.reason == "DUPLICATE_ORDER" and not again.fills
    restored.apply(CancelAll(desk.w.ids["bob"], nonce_below=2))
    assert restored.seen_by_account.get(desk.w.ids["bob"]) is None  # both of bob's entries are below the floor now
    assert restored.apply(Placement(cancelled), desk.w.ctx).reason == "NONCE_CANCELLED"
