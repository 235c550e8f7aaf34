"""The verifier's replay against the in-memory store: verdicts, checkpoints that name the append
they follow (a discard or a reorg never lets a new batch build on a stale state), restart, and the
devnet fault switches refused elsewhere."""

from __future__ import annotations

import pytest

from optinode.l1 import events
from optinode.services.faults import FaultRefused, Faults
from optinode.services.replayer import DESCENDS, INVALID, VALID, Replayer, live_batches
from optinode.services.verifier import settled_final
from optinode.spec.batch_framing import frame_records
from optinode.spec.record_codec import encode_transaction
from optinode.spec.types import Deposit, DepositEntry
from optinode.store import keys
from optinode.store.memory import open_memory
from optinode.replay import Replay
from optinode.testing.world import World

OWNER = bytes.fromhex("c0" * 20)
TS = 1_700_000_100


def _appended(index: int, root: bytes, tag: int, records: list[bytes]) -> events.BatchAppended:
    return events.BatchAppended(block_number=10 + tag, block_hash=bytes([tag]) * 32, log_index=0, tx_hash=bytes([tag, index]) * 16,
                                address=bytes(20), index=index, id=tag, proposer=bytes(20), state_root=root, tx_root=bytes(32),
                                tx_count=len(records), deposit_queue_length=2, forced_queue_length=0, l1_timestamp=TS, appended_at=TS)


def _deposited(index: int, amount: int) -> events.Deposited:
    return events.Deposited(block_number=1, block_hash=bytes(32), log_index=index, tx_hash=bytes(32), address=bytes(20), index=index,
                            from_=OWNER, owner=OWNER, amount=amount, acc=bytes(32))


@pytest.fixture
def setup():
    genesis = World().state
    store = open_memory()
    replayer = Replayer(store, genesis)
    for i, amount in enumerate((1_000, 2_000)):
        replayer.note_queue_event(_deposited(i, amount))
    b1 = [encode_transaction(Deposit(genesis.next_account_id))]
    ctx = replayer.context(TS)
    honest1 = Replay(genesis, b1, ctx)
    b2 = [encode_transaction(Deposit(genesis.next_account_id))]  # the owner's account takes the second deposit
    honest2 = Replay(honest1.final_state, b2, ctx)
    return genesis, store, replayer, (b1, honest1), (b2, honest2)


def test_valid_invalid_and_descendants(setup) -> None:
    _, _, replayer, (b1, h1), (b2, h2) = setup
    assert replayer.verify(_appended(1, h1.roots[-1], 1, b1), frame_records(b1), TS).verdict == VALID
    assert replayer.verify(_appended(2, h2.roots[-1], 2, b2), frame_records(b2), TS).verdict == VALID
    assert replayer.replay_of(2).roots == h2.roots
    # a batch whose root is wrong, at index 2 after a discard of the old 2, and a batch on top of it
    replayer.discard_from(2)
    bad = replayer.verify(_appended(2, bytes(32), 3, b2), frame_records(b2), TS)
    assert bad.verdict == INVALID and bad.computed_root == h2.roots[-1]
    assert replayer.verify(_appended(3, bytes(32), 4, b2), frame_records(b2), TS).verdict == DESCENDS


def test_a_new_batch_at_a_reused_index_never_builds_on_the_stale_checkpoint(setup) -> None:
    genesis, store, replayer, (b1, h1), (b2, h2) = setup
    replayer.verify(_appended(1, bytes(32), 1, b1), frame_records(b1), TS)  # invalid batch 1, then discarded
    replayer.discard_from(1)
    assert replayer.synced() == 0 and replayer.checkpoint(1) is None
    again = replayer.verify(_appended(1, h1.roots[-1], 5, b1), frame_records(b1), TS)
    assert again.verdict == VALID and again.parent_tx == bytes(32)
    # a restart reads the checkpoint of the live batch 1 and continues from it
    restarted = Replayer(store, genesis)
    for i, amount in enumerate((1_000, 2_000)):
        restarted.note_queue_event(_deposited(i, amount))
    assert restarted.verify(_appended(2, h2.roots[-1], 6, b2), frame_records(b2), TS).verdict == VALID


def test_garbage_batch_data_is_a_verdict_not_a_crash(setup) -> None:
    genesis, _, replayer, _, _ = setup
    verdict = replayer.verify(_appended(1, bytes(32), 1, []), b"\xff\x01garbage", TS)
    assert verdict.verdict == INVALID and verdict.tx_count >= 1


def test_live_batches_follow_discards() -> None:
    a1, a2 = _appended(1, bytes(32), 1, []), _appended(2, bytes(32), 2, [])
    discard = events.BatchesDiscarded(block_number=20, block_hash=bytes(32), log_index=0, tx_hash=bytes(32), address=bytes(20),
                                      from_index=2, to_index=3, challenger=bytes(20))
    a2b = _appended(2, bytes(32), 3, [])
    assert live_batches([a1, a2, discard, a2b]) == {1: a1, 2: a2b}


def test_fault_switches_are_devnet_only_and_checked() -> None:
    assert Faults().with_fault("corrupt:2:5", chain_id=31337).tamper_after(2) == 5
    assert Faults().with_fault("challenge:1:0", chain_id=31337).challenge == (1, 0)
    with pytest.raises(FaultRefused, match="devnets only"):
        Faults().with_fault("corrupt:1:0", chain_id=1)
    for bad in ("nope:1:1", "corrupt:1", "corrupt:0:1", "corrupt:x:y"):
        with pytest.raises(FaultRefused):
            Faults().with_fault(bad, chain_id=31337)


def test_pruning_keeps_what_the_next_batch_replays_from(setup) -> None:
    genesis, store, replayer, (b1, h1), (b2, h2) = setup
    replayer.verify(_appended(1, h1.roots[-1], 1, b1), frame_records(b1), TS)
    replayer.verify(_appended(2, h2.roots[-1], 2, b2), frame_records(b2), TS)
    assert replayer.prune(1) == 1  # batch 1's decoded form; checkpoint 1 stays (batch 2 replays from it)
    assert store.get(keys.verifier_decoded(1)) is None and replayer.checkpoint(1) is not None
    assert replayer.replay_of(2).roots == h2.roots
    assert replayer.prune(2) == 2 and replayer.prune(2) == 0  # decoded 2 and checkpoint 1; idempotent
    assert replayer.checkpoint(1) is None and replayer.checkpoint(2) is not None and replayer.checkpoint(0) is not None
    with pytest.raises(LookupError):
        replayer.replay_of(2)  # no game can target a final batch
    # a restarted verifier replays the next batch from the checkpoint that stayed
    restarted = Replayer(store, genesis)
    garbage = [b"\xff\x01garbage"]  # one malformed record: it changes nothing
    assert restarted.verify(_appended(3, h2.roots[-1], 7, garbage), frame_records(garbage), TS).verdict == VALID
    assert [b.index for b in restarted.batches()] == [1, 2, 3]  # verdicts stay: reconcile compares them with L1


def test_settled_final_is_the_last_batch_finalized_beyond_the_reorg_window() -> None:
    final_at = {1: 100, 2: 150, 3: 190}
    assert settled_final(final_at, head=200, reorg_window=64) == 1
    assert settled_final(final_at, head=214, reorg_window=64) == 2
    assert settled_final(final_at, head=160, reorg_window=64) == 0
