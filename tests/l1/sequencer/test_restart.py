"""A sequencer restarted after its batch is on L1 (and read by its follower) still finalizes it, and
restarts from checkpoint + log with the same state (asserted from L1)."""

from __future__ import annotations

import time

from optinode.testing.world import USD


def test_a_batch_appended_before_a_restart_is_finalized_after_it(chain, tmp_path, users) -> None:
    node = chain.start_sequencer(tmp_path / "seq")
    chain.deposit(users["alice"], 100 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)
    node.wait_for(lambda: chain.batch_count() == 2, "batch 1 on L1", mine_every=0.5)
    chain.mine(2)
    node.wait_for(lambda: node.status()["next_batch"] == 2 and node.status()["pending_entries"] == 0, "the node to settle")
    time.sleep(2 * chain.config.node.poll_interval + 0.5)  # its follower has read the append's block
    assert node.stop() == 0
    node = chain.start_sequencer(tmp_path / "seq")
    try:
        chain.travel(chain.deployment.params.challenge_window + 1)
        node.wait_for(lambda: chain.finalized_count() == 2, "batch 1 finalized by the restarted node", timeout=30, mine_every=0.5)
        assert node.status()["deposits_done"] == 1 and node.status()["next_batch"] == 2
    finally:
        assert node.stop() == 0
