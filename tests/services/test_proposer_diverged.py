"""L1 finalizes a batch the sequencer no longer holds (docs/sequencer.md, "A discard that a reorg
removes": a reorg undid the discard it rolled back for and nobody made the resolving move again).
The proposer must not mark its own, different batch final — claims and escapes built on it would
prove a root L1 never finalized — and must say so once, loudly, and stop posting; a finalization
of its own batch is marked as always. On LevelDB, the proposer's handler fed the events."""

from __future__ import annotations

import logging

import pytest

from optinode.l1 import events
from optinode.services import proposer
from optinode.services.journal import Journal

from tests.services.test_rebuild import funded_engine

WHERE = dict(block_hash=b"\x00" * 32, tx_hash=b"\x00" * 32, address=b"\x00" * 20, log_index=0)


def _finalized(index: int, root: bytes, block: int):
    return events.TYPES["BatchFinalized"](index=index, id=index, state_root=root, block_number=block, **WHERE)


@pytest.mark.trio
async def test_a_finalized_batch_that_is_not_ours_is_not_marked_final_and_alerts(tmp_path, world, caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.proposer")
    async with funded_engine(tmp_path, world) as (store, h, l1):
        one = await h.cut()
        two = await h.cut() if h.engine.pending.entries else None
        assert two is None  # (one batch: the deposits)
        journal = Journal(store)
        deps = proposer.ProposerDeps(sender=None, rpc=None, journal=journal, rollup=b"\x00" * 20, bond=0, challenge_window=30,
                                     genesis_root=b"\x00" * 32)
        t = proposer._Tracker(next_submit=2, last_final=0)
        await proposer._handle(deps, t, _finalized(1, b"\x0b" * 32, 50))  # L1's batch 1 is another one
        assert journal.last_final() == 0 and t.last_final == 0 and t.halted
        diverged = [r for r in caplog.records if getattr(r, "event", None) == "l1_diverged"]
        assert len(diverged) == 1 and diverged[0].levelno == logging.ERROR and diverged[0].fields["batch"] == 1
        t.halted = False
        await proposer._handle(deps, t, _finalized(1, one.state_root, 51))  # ours: final as always
        assert journal.last_final() == 1 and t.last_final == 1
