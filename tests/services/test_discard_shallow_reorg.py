"""A discard that a reorg removes before the engine rolled back for it (docs/sequencer.md, "A discard
that a reorg removes"). The engine rolls back for a `BatchesDiscarded` only once it is
``confirmations`` deep, as deep as a queue entry must be before the log consumes it; a reorg before
that leaves nothing to undo: the journal still holds the batches L1 holds again, the proposer stops
waiting and posts on, and its view of L1's appends comes back from the follower's store. On LevelDB,
the events stored as the follower stores them; the anvil test is tests/l1/sequencer/test_undiscarded.py."""

from __future__ import annotations

import pytest

from optinode.l1.follower import Reorg
from optinode.services import proposer
from optinode.services.engine import Rebuilt
from optinode.services.journal import Journal
from optinode.store import keys
from optinode.testing.world import USD

from tests.services.conftest import CONFIRMATIONS
from tests.services.test_discard_again import _appended, _discard
from tests.services.test_rebuild import _received, funded_engine


async def _discarded_at_the_head(store, h, l1, world):
    """Batch 1 (deposits) and 2 (a withdrawal) appended, then L1's discard of batch 2 in the head block:
    the engine does not roll back yet. Returns batch 2, both appends and the discard."""
    one = await h.cut()
    await h.submitter.submit(world.withdraw("alice", 10 * USD))
    two = await h.cut()
    first, second = _appended(store, l1.number - 1, one), _appended(store, l1.number, two)
    discard = _discard(store, l1.number + 1, 2)
    await h.send(discard, l1.head(1))  # the discard's block is the head: not deep yet
    assert await _received(h) == [] and h.engine.mark.epoch == 0
    return two, first, second, discard


@pytest.mark.trio
async def test_a_discard_removed_before_it_is_deep_is_never_rolled_back_for(tmp_path, world) -> None:
    async with funded_engine(tmp_path, world) as (store, h, l1):
        two, first, second, discard = await _discarded_at_the_head(store, h, l1, world)

        journal = Journal(store)
        deps = proposer.ProposerDeps(sender=None, rpc=None, journal=journal, rollup=b"\x00" * 20, bond=0, challenge_window=30,
                                     genesis_root=b"\x00" * 32)
        t = proposer._Tracker(next_submit=3, last_final=0, appended={1: first, 2: second})
        await proposer._handle(deps, t, discard)
        assert t.halted and 2 not in t.appended  # nothing more is posted while L1 says batch 2 is gone

        # the reorg: the discard's block leaves the chain (the follower deletes its events first)
        store.delete(keys.l1_event(discard.block_number, discard.log_index))
        reorg = Reorg(discard.block_number - 1, (discard,))
        await h.send(reorg, l1.head(CONFIRMATIONS + 3))
        assert await _received(h) == []  # never rolled back for
        assert h.engine.mark.epoch == 0 and journal.batch(2) == two and h.engine.state.accounts[0].withdrawn == 10 * USD
        await proposer._handle(deps, t, reorg)
        assert not t.halted and t.appended[2] == second  # posting goes on; batch 2 finalizes from L1's append


@pytest.mark.trio
async def test_a_discard_that_stays_is_rolled_back_for_once_deep(tmp_path, world) -> None:
    async with funded_engine(tmp_path, world) as (store, h, l1):
        await _discarded_at_the_head(store, h, l1, world)
        await h.send(l1.head(CONFIRMATIONS - 1))
        assert await _received(h) == []  # one block short
        await h.send(l1.head(1))
        rebuilt, record = await _received(h)
        assert isinstance(rebuilt, Rebuilt) and rebuilt.reason == "discarded on L1" and record.index == 2 and h.engine.mark.epoch == 1
