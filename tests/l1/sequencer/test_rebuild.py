"""Issue 9 open item 1: a batch cut but not posted before it became older than the Rollup's
``maxTimestampDrift`` (the node down, or L1 unreachable, for longer than the drift) is rebuilt at a
fresh L1 time from its parent's checkpoint and the log, and posted; what expired meanwhile drops out,
and the client learns it from the command's status. Real processes on anvil; outcomes read from L1."""

from __future__ import annotations

import signal

from optinode.spec.errors import ErrorCode
from optinode.spec.record_codec import decode_transaction
from optinode.testing.world import ETH_UNIT, USD


def test_a_batch_older_than_the_drift_is_rebuilt_at_a_fresh_time_and_posted(chain, users, world, tmp_path) -> None:
    alice, bob = users["alice"], users["bob"]
    # SIGKILL the 2nd time a batch is about to be handed to the L1 sender: batch 2 is cut, never sent
    node = chain.start_sequencer(tmp_path / "seq", crash_at="proposer.before_submit:2")
    chain.deposit(alice, 1_000 * USD)
    chain.deposit(bob, 5_000 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)
    node.wait_for(lambda: chain.l1_batches() and chain.l1_batches()[-1].deposits_done == 2, "the deposits' batch on L1", mine_every=1.0)
    world.ids.update(alice=0, bob=1)
    latest = chain.w3.eth.get_block("latest")["timestamp"]
    node.wait_for(lambda: node.status()["l1_head_time"] == latest, "the node to see the latest block")
    applied_at = node.status()["l1_head_time"]
    drift = chain.deployment.params.max_timestamp_drift
    trade = world.trade("bob", "alice", ETH_UNIT // 10, expiry=applied_at + drift // 3)  # valid now, not after the outage
    withdraw = world.withdraw("alice", 10 * USD)  # valid for days
    acked = [node.submit(trade), node.submit(withdraw)]
    assert [a["codes"] for a in acked] == [["OK"], ["OK"]]
    node.process.wait(60)
    assert node.process.returncode == -signal.SIGKILL and "crashing at proposer.before_submit" in node.log_tail()
    node.stop()
    assert chain.batch_count() == 2  # batch 2 exists only in the node's store

    chain.travel(drift + 60)  # the outage outlasts the drift: batch 2 can no longer be appended as cut
    again = chain.start_sequencer(tmp_path / "seq")
    try:
        again.wait_for(lambda: chain.batch_count() >= 3, "the rebuilt batch on L1", timeout=90, mine_every=1.0)
        batches = chain.l1_batches()
        posted = [decode_transaction(r) for r in batches[1].records]
        assert withdraw in posted and trade not in posted  # the expired trade dropped out, the withdrawal did not
        assert batches[1].timestamp >= applied_at + drift + 60  # executed at a fresh L1 time
        roots, receipts, state = chain.replay(batches)  # a verifier's replay from L1 alone
        assert roots == [b.state_root for b in batches] and all(r.code == ErrorCode.OK for applied in receipts for _, r in applied)
        assert state.accounts[0].withdrawn == 10 * USD
        # nothing acknowledged is silently lost: the client reads what became of each command
        dropped, kept = (again.call("optinode_adminCommand", a["seq"]) for a in acked)
        assert dropped["status"] == "dropped" and dropped["reason"] == ErrorCode.EXPIRED.name
        assert kept["status"] in ("batched", "final") and kept["batch"] == 2
        assert "alert=batches_rebuilt from_index=2" in again.log_tail(200_000)
        appends = chain.append_transactions()
        assert len(appends) == len(set(appends)) == 2  # batch 1, and the rebuilt batch 2: nothing posted twice
    finally:
        assert again.stop() == 0, again.log_tail()
