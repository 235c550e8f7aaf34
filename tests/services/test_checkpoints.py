"""The incremental checkpoints' store format (services/journal.py): rows, undo records, pruning."""

from __future__ import annotations

from optinode.exchange.matching import Matcher
from optinode.exchange.orders import Placement
from optinode.services.journal import BatchRecord, Checkpoint, CheckpointDelta, Journal, encode_globals_row
from optinode.spec.commitment import compute_state_root
from optinode.store import keys
from optinode.store.memory import open_memory
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK, World


def _record(index: int) -> BatchRecord:
    return BatchRecord(index=index, first_seq=index, end_seq=index + 1, record_count=0, data_bytes=0, accounts_root=b"", slots_root=b"",
                       globals_hash=b"", deposits_done=0, forced_done=0, state_root=b"")


def test_undo_records_of_final_batches_are_pruned_and_their_checkpoints_are_no_longer_read_back() -> None:
    w = World()
    for name in ("alice", "bob"):
        w.deposit(name, 10**9)
    m = Matcher(w.state)
    store = open_memory()
    journal = Journal(store)
    journal.write_genesis(w.state, m.export())
    roots = {}
    for index in range(1, 5):
        m.apply(Placement(w.order("alice", is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE - index * ETH_TICK)), w.ctx)
        m.apply(Placement(w.order("bob", is_buy=False, size=ETH_STEP, limit_price=ETH_PRICE - index * ETH_TICK)), w.ctx)  # fills it
        state = w.state
        delta = CheckpointDelta(state, set(state.dirty_accounts), set(state.dirty_slots), m.take_changes())
        state.dirty_accounts.clear()
        state.dirty_slots.clear()
        if index == 4:
            journal.set_final(2)
        journal.cut(_record(index), Checkpoint(batch_index=index, next_seq=index + 1, l1_time=0, globals=encode_globals_row(state),
                                                book_seq=m.seq), delta)
        roots[index] = (compute_state_root(state), m.snapshot())
    undone = [keys.parse_checkpoint_undo(k) for k, _ in store.iterate(prefix=keys.prefix_of(keys.Prefix.CHECKPOINT_UNDO))]
    assert undone == [3, 4]  # 1 and 2 are final: nothing rolls back past batch 2
    assert journal.restore_point(1) is None and journal.state_at(0) is None
    for index in (2, 3, 4):
        _, state, book = journal.restore_point(index)
        assert (compute_state_root(state), Matcher.restore(state, book).snapshot()) == roots[index]
