"""A crash at the worst moment after a lost game (docs/sequencer.md, "Rebuilding batches"): the
Rollup has discarded batches 2.. and the sequencer is SIGKILLed (a) with the rollback computed but
its journal rewrite not written (``engine.rebuilding``), (b) with the rewrite durable but the
rebuilt batches not handed to the proposer (``engine.rebuilt``). The restarted node rebuilds
exactly once, re-posts, and the verifier that won follows the new batches without another alert or
game; they finalize; every queue entry and withdrawal is consumed once (read from L1). The SIGKILL
inside the rewrite's write batch is tests/services/test_rebuild_crash.py (LevelDB, no L1)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.l1.verifier.conftest import processes  # noqa: F401 - the fixture

from .lost_game import carol, check_l1, queue_entries_after, start


@pytest.mark.parametrize("point", ["engine.rebuilding", "engine.rebuilt"])
def test_a_sigkill_between_the_discard_and_the_re_post_rebuilds_once_and_the_verifier_follows(chain, users, anvil, tmp_path, processes,
                                                                                           point) -> None:
    lost = start(chain, anvil, users, tmp_path, processes, crash_at=f"{point}:1")
    seq, verifier = lost.seq, lost.verifier
    lost.wait(lambda: chain.batch_count() >= 3, "bad batch 2 on L1")
    bad_root = chain.l1_batches()[1].state_root
    queue_entries_after(lost, carol(anvil))
    processes.remove(seq)  # (it is about to die: the waits below must not treat that as a failure)
    deadline = time.monotonic() + 180
    while seq.process.poll() is None and time.monotonic() < deadline:
        chain.mine(1)
        verifier.alive()
        time.sleep(0.5)
    tail = seq.log_tail()
    assert seq.stop() == -signal.SIGKILL and f"crashing at {point}" in tail, tail
    assert lost.discards() and lost.discards()[0]["args"]["fromIndex"] == 2
    invalid_alerts = len(verifier.alerts("invalid_batch"))

    again = chain.start_sequencer(tmp_path / "seq")  # the same data directory and log file
    processes.append(again)
    lost.wait(lambda: chain.batch_count() >= 3 and chain.l1_batches()[1].state_root != bad_root
              and chain.l1_batches()[-1].deposits_done == 3 and chain.l1_batches()[-1].forced_done == 1, "the re-posted batches")
    lost.wait(lambda: (s := verifier.status()) and s["synced_batch"] == chain.batch_count() - 1, "the verifier to follow the re-post")
    chain.travel(chain.deployment.params.challenge_window + 1)
    lost.wait(lambda: chain.finalized_count() == chain.batch_count(), "the re-posted batches to finalize")
    check_l1(lost)
    log = again.log_tail(10**8)  # (both runs)
    assert log.count("alert=batches_rebuilt") == 1, "rebuilt more than once, or never"
    assert log.count("alert=batches_discarded") == (2 if point == "engine.rebuilding" else 1)  # (the rollback redone once)
    assert len(verifier.alerts("invalid_batch")) == invalid_alerts  # the re-posted batches are right
    assert len(lost.game_events("GameOpened")) == len(lost.game_events("GameResolved")) == 1
    appends = chain.append_transactions()
    assert len(appends) == len(set(appends))
