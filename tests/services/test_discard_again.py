"""A discard of a batch the engine already replaced is not rolled back again (docs/sequencer.md, "A
discard that a reorg removes"): L1 discarded batch 2, the engine rebuilt it (epoch 1); a reorg took
the discard out and L1 discarded the old batch 2 again, at another position. What a discard removed
is read from the follower's stored events (the root of L1's batch 2 just before it): not the batch
the journal holds, so the engine answers the proposer "resume" and keeps its batches. A discard of
the rebuilt batch itself is rolled back for, as always. On LevelDB, the events stored as the
follower stores them; the anvil test is tests/l1/sequencer/test_discard_reorg.py."""

from __future__ import annotations

import pytest

from optinode.l1 import events
from optinode.l1.events import EVENT_CODEC
from optinode.services.engine import Rebuilt
from optinode.services.journal import Journal
from optinode.store import keys
from optinode.testing.world import USD

from tests.services.test_rebuild import _received, funded_engine

WHERE = dict(block_hash=b"\x00" * 32, tx_hash=b"\x00" * 32, address=b"\x00" * 20)


def _stored(store, event) -> events.L1Event:
    store.put(keys.l1_event(event.block_number, event.log_index), EVENT_CODEC.encode(event), sync=False)
    return event


def _appended(store, block: int, record):
    return _stored(store, events.TYPES["BatchAppended"](index=record.index, id=block, proposer=b"\x01" * 20, state_root=record.state_root,
                                                        tx_root=b"\x00" * 32, tx_count=1, deposit_queue_length=0, forced_queue_length=0,
                                                        l1_timestamp=record.l1_timestamp,
                                                        appended_at=0, block_number=block, log_index=0, **WHERE))


def _discard(store, block: int, from_index: int):
    return _stored(store, events.BatchesDiscarded(from_index=from_index, to_index=from_index + 1, challenger=b"\x02" * 20, block_number=block,
                                                  log_index=1, **WHERE))


@pytest.mark.trio
async def test_a_discard_that_comes_back_after_a_reorg_is_not_rolled_back_again(tmp_path, world) -> None:
    async with funded_engine(tmp_path, world) as (store, h, l1):
        one = await h.cut()
        await h.submitter.submit(world.withdraw("alice", 10 * USD))
        two = await h.cut()
        _appended(store, 10, one)
        _appended(store, 11, two)
        await h.send(l1.head(1))  # (the game took L1 blocks: the rebuild runs at a later time than batch 2's)
        first = _discard(store, 12, 2)
        await h.send(first, l1.head(1))
        rebuilt, record = await _received(h)
        assert isinstance(rebuilt, Rebuilt) and record.epoch == 1 and h.engine.mark.epoch == 1
        # (an honest batch discarded on time: the rebuild has its root, not its time)
        assert record.state_root == two.state_root and record.l1_timestamp > two.l1_timestamp
        _appended(store, 13, record)  # the rebuilt batch lands
        # a reorg: the discard and the rebuilt batch's append leave the chain (the follower deletes their events)
        store.delete(keys.l1_event(12, 1))
        store.delete(keys.l1_event(13, 0))
        again = _discard(store, 14, 2)  # the challenger's move comes back: the old batch 2 discarded again
        await h.send(again, l1.head(1))
        [resume] = await _received(h)
        assert resume == Rebuilt(2, 1, "discarded batch already replaced", ())  # the proposer resumes, nothing rebuilt
        assert h.engine.mark.epoch == 1 and Journal(store).batch(2) == record
        assert h.engine.state.accounts[0].withdrawn == 10 * USD
        # the rebuilt batch lands again, and is itself discarded later: that one is rolled back for
        _appended(store, 15, record)
        await h.send(_discard(store, 16, 2), l1.head(1))
        rebuilt_again, *_ = await _received(h)
        assert rebuilt_again.epoch == 2 and rebuilt_again.reason == "discarded on L1" and h.engine.mark.epoch == 2
