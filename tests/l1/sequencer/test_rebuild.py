"""Issue 9 open item 1: a batch cut but not posted before it became older than the Rollup's
``maxTimestampDrift`` (the node down, or L1 unreachable, for longer than the drift) is rebuilt at a
fresh L1 time from its parent's checkpoint and the log, and posted; what expired meanwhile drops out,
and the client learns it from the command's status. Real processes on anvil; outcomes read from L1."""

from __future__ import annotations

import signal

from optinode.spec.errors import ErrorCode
from optinode.spec.record_codec import decode_transaction
from optinode.testing.seqnode import Sequencer
from optinode.testing.world import ETH_UNIT, USD


def _funded_and_synced(chain, node, users, world) -> tuple[int, int]:
    """Deposits for alice and bob in batch 1 on L1, the node at the latest block: (its time, the drift)."""
    chain.deposit(users["alice"], 1_000 * USD)
    chain.deposit(users["bob"], 5_000 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)
    node.wait_for(lambda: chain.l1_batches() and chain.l1_batches()[-1].deposits_done == 2, "the deposits' batch on L1", mine_every=1.0)
    world.ids.update(alice=0, bob=1)
    latest = chain.w3.eth.get_block("latest")["timestamp"]
    node.wait_for(lambda: node.status()["l1_head_time"] == latest, "the node to see the latest block")
    return latest, chain.deployment.params.max_timestamp_drift


def test_a_batch_older_than_the_drift_is_rebuilt_at_a_fresh_time_and_posted(chain, users, world, tmp_path) -> None:
    # SIGKILL the 2nd time a batch is about to be handed to the L1 sender: batch 2 is cut, never sent
    node = chain.start_sequencer(tmp_path / "seq", crash_at="proposer.before_submit:2")
    applied_at, drift = _funded_and_synced(chain, node, users, world)  # a batch opened now runs at this time
    trade = world.trade("bob", "alice", ETH_UNIT // 10, expiry=applied_at + drift // 3)  # valid now, not after the outage
    withdraw = world.withdraw("alice", 10 * USD)  # valid for days
    acked = [node.submit(trade), node.submit(withdraw)]
    assert [a["codes"] for a in acked] == [["OK"], ["OK"]]
    node.process.wait(60)
    assert node.process.returncode == -signal.SIGKILL and "crashing at proposer.before_submit" in node.log_tail()
    node.stop()
    assert chain.batch_count() == 2  # batch 2 exists only in the node's store

    chain.travel(drift + 60)  # the outage outlasts the drift: batch 2 can no longer be appended as cut
    # the restarted node rebuilds batch 2 and is SIGKILLed again just before handing the rebuilt batch to
    # the sender (its first two are the start-up hand-over of batch 1, a no-op, and of the stale batch 2, refused)
    rebuilding = Sequencer(chain, tmp_path / "seq", crash_at="proposer.before_submit:3")
    rebuilding.wait_for(lambda: rebuilding.process.poll() is not None, "the crash after the rebuild", mine_every=1.0)
    assert "alert=batches_rebuilt from_index=2" in rebuilding.log_tail(200_000) and rebuilding.stop() == -signal.SIGKILL
    assert chain.batch_count() == 2
    again = chain.start_sequencer(tmp_path / "seq")  # the rebuild is durable: this run only posts it
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
        assert again.log_tail(10**8).count("alert=batches_rebuilt") == 1  # (the runs share one log) rebuilt once, by the previous run
        appends = chain.append_transactions()
        assert len(appends) == len(set(appends)) == 2  # batch 1, and the rebuilt batch 2: nothing posted twice
    finally:
        assert again.stop() == 0, again.log_tail()


def test_an_append_that_lands_only_after_the_drift_reverts_and_its_batch_is_rebuilt(chain, node, users, world, anvil, tmp_path) -> None:
    """L1 stalls (no block for longer than the drift) while batch 2's append waits in the mempool; the
    next block mines it with a timestamp past the drift, so it reverts (TimestampTooOld); the
    sequencer rebuilds the batch at the new time and posts it under a new sender item; a verifier
    following L1 agrees with every posted root."""
    from tests.l1.verifier.conftest import CHALLENGER_KEYS, VerifierProc

    verifier = VerifierProc(chain, tmp_path / "ver", anvil.private_keys[CHALLENGER_KEYS[0]])
    try:
        _stall_and_rebuild(chain, node, users, world)
        node.wait_for(lambda: (s := verifier.status()) and s["synced_batch"] == 2, "the verifier to replay the rebuilt batch",
                      mine_every=1.0)
        assert verifier.status()["invalid_batches"] == [] and not verifier.alerts("invalid_batch") and not verifier.alerts("game_opening")
    finally:
        verifier.stop()


def _stall_and_rebuild(chain, node, users, world) -> None:
    latest, drift = _funded_and_synced(chain, node, users, world)
    trade = world.trade("bob", "alice", ETH_UNIT // 10, expiry=latest + drift // 3)
    withdraw = world.withdraw("alice", 10 * USD)
    chain.rpc("evm_setAutomine", [False])  # L1 stops producing blocks
    try:
        acked = [node.submit(trade), node.submit(withdraw)]
        node.wait_for(lambda: "batch 2: sending with nonce" in node.log_tail(200_000), "batch 2's append in the mempool")
        assert chain.batch_count() == 2
        chain.rpc("evm_increaseTime", [drift + 60])
    finally:
        chain.rpc("evm_setAutomine", [True])
    chain.mine(1)  # the first block after the stall: the waiting append reverts in it
    node.wait_for(lambda: chain.batch_count() >= 3, "the rebuilt batch on L1", timeout=90, mine_every=1.0)
    batches = chain.l1_batches()
    posted = [decode_transaction(r) for r in batches[1].records]
    assert withdraw in posted and trade not in posted and batches[1].timestamp >= latest + drift + 60
    roots, _, _ = chain.replay(batches)
    assert roots == [b.state_root for b in batches]
    assert node.call("optinode_adminCommand", acked[0]["seq"])["reason"] == ErrorCode.EXPIRED.name
    reverted = [r for r in (chain.w3.eth.get_transaction_receipt(h) for h in _append_attempts(chain, node)) if r["status"] == 0]
    assert len(reverted) == 1  # the stale append, mined and refused; the rebuilt one is a new transaction
    assert "its append reverted" in node.log_tail(200_000)


def _append_attempts(chain, node):
    """Every transaction our proposer key sent to the Rollup (mined ones), newest blocks first."""
    proposer = chain.deployment.params.proposers[0]
    rollup = chain.deployment.contracts.rollup
    hashes = []
    for number in range(chain.w3.eth.block_number, chain.deployment.deployment_block, -1):
        for tx in chain.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == proposer and tx["to"] == rollup:
                hashes.append(tx["hash"])
    return hashes
