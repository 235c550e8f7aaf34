"""An L1 reorg that removes the discard the sequencer already rolled back for (docs/sequencer.md,
"Rebuilding batches", "A discard that a reorg removes"). The verifier won against batch 2, the
Rollup discarded it, the sequencer rebuilt batch 2 (epoch 1) and appended it; then a reorg takes
the discard and that append out of the chain. The bad batch 2 is live again and its game is back at
its last step, so the winning challenger's step comes back (its sender re-broadcasts it) and the
Rollup discards batch 2 again, at another L1 position. Two orders, both real (``anvil_reorg``, the
node that must wait paused with SIGSTOP meanwhile):

- ``verifier first``: the re-broadcast step lands first, then the sequencer's re-broadcast
  epoch-1 append lands on the re-discarded tip. The sequencer must see that L1 re-discarded a batch
  it already replaced and not rebuild again (a second rebuild's batches name the same parent as
  the epoch-1 batch that just landed: WrongParent forever, nothing posted after it);
- ``sequencer first``: the epoch-1 append is re-broadcast while the bad batch is live, so it reverts
  (WrongParent); after the re-discard the sequencer must post batch 2 again (a new sender item,
  hence a new epoch).

Either way, without operator action: later commands reach L1, the verifier follows, every batch
finalizes, each queue entry and withdrawal is consumed once."""

from __future__ import annotations

import os
import signal

import pytest

from optinode.spec.record_codec import decode_transaction
from optinode.testing.world import USD

from tests.l1.verifier.conftest import processes  # noqa: F401 - the fixture

from .lost_game import carol, check_l1, queue_entries_after, start


@pytest.mark.parametrize("first", ["verifier", "sequencer"])
def test_a_reorg_that_removes_the_discard_after_the_rollback_is_followed(chain, users, anvil, tmp_path, processes, first) -> None:
    lost = start(chain, anvil, users, tmp_path, processes)
    seq, verifier = lost.seq, lost.verifier
    lost.wait(lambda: chain.batch_count() >= 3, "bad batch 2 on L1")
    bad_root = chain.l1_batches()[1].state_root
    queue_entries_after(lost, carol(anvil))
    lost.wait(lambda: lost.discards(), "the verifier to win and the Rollup to discard batch 2")
    lost.wait(lambda: chain.batch_count() >= 3 and chain.l1_batches()[1].state_root != bad_root
              and chain.l1_batches()[-1].forced_done == 1, "the rebuilt batches on L1")
    discard_block = lost.discards()[0]["blockNumber"]
    rebuilt_root = chain.l1_batches()[1].state_root
    on_top = lost.world.withdraw("alice", 5 * USD)  # a batch on top of the rebuilt one, which the reorg takes out too
    assert seq.submit(on_top)["codes"] == ["OK"]
    lost.wait(lambda: on_top in [decode_transaction(r) for b in chain.l1_batches()[2:] for r in b.records], "a batch after the rebuilt one")

    paused = seq if first == "verifier" else verifier
    os.kill(paused.process.pid, signal.SIGSTOP)
    try:
        depth = chain.w3.eth.block_number - discard_block + 1
        head_time = chain.w3.eth.get_block("latest")["timestamp"]
        chain.rpc("anvil_reorg", [depth, []])  # the discard and everything after it leave the chain
        assert not lost.discards() and chain.l1_batches()[1].state_root == bad_root  # the bad batch is live again
        # anvil's new blocks restart at the ancestor's time; a real chain's keep their slot times, so the
        # next block is not earlier than the removed head (the rebuilt batch, cut once the discard was
        # queue_confirmations deep, declares a time the new chain must have reached: TimestampInFuture)
        chain.rpc("evm_setNextBlockTimestamp", [head_time + 1])
        if first == "verifier":
            lost.wait(lambda: lost.discards(), "the challenger's step re-broadcast and batch 2 discarded again")
        else:
            reverted = lost.wait(lambda: _reverted_appends(chain), "the sequencer's epoch-1 append re-broadcast (it reverts)")
            assert reverted and not lost.discards()  # (the rebuilt batch 2 and the one on top of it: WrongParent)
    finally:
        os.kill(paused.process.pid, signal.SIGCONT)
    lost.wait(lambda: lost.discards(), "batch 2 discarded again")
    assert lost.discards()[0]["blockNumber"] > discard_block  # another L1 position than the first discard's

    # the sequencer follows by itself: batch 2 live again (rebuilt), and a new command gets posted after it
    lost.wait(lambda: chain.batch_count() >= 3 and chain.l1_batches()[1].state_root != bad_root, "a rebuilt batch 2 live on L1")
    later = lost.world.withdraw("alice", 4 * USD)
    assert seq.submit(later)["codes"] == ["OK"]
    lost.wait(lambda: later in [decode_transaction(r) for b in chain.l1_batches() for r in b.records], "the later withdrawal on L1")
    lost.wait(lambda: (s := verifier.status()) and s["synced_batch"] == chain.batch_count() - 1, "the verifier to follow")
    chain.travel(chain.deployment.params.challenge_window + 1)
    lost.wait(lambda: chain.finalized_count() == chain.batch_count(), "every batch to finalize")
    lost.withdrawals += [on_top, later]
    check_l1(lost, extra_withdrawn=(5 + 4) * USD)
    if first == "verifier":
        assert chain.l1_batches()[1].state_root == rebuilt_root  # the epoch-1 batch that landed is the one kept
    bad_id = lost.game_events("GameOpened")[0]["args"]["batchId"] if "batchId" in lost.game_events("GameOpened")[0]["args"] else None
    assert {a["fields"]["batch"] for a in verifier.alerts("invalid_batch")} == {2}  # the bad batch only, never a rebuilt one
    assert bad_id is None or {a["fields"]["batch_id"] for a in verifier.alerts("invalid_batch")} == {bad_id}
    assert seq.process.poll() is None and "operator must look" not in seq.log_tail(10**8)


def _reverted_appends(chain) -> list[bytes]:
    proposer = chain.deployment.params.proposers[0]
    rollup = chain.deployment.contracts.rollup
    found = []
    for number in range(chain.w3.eth.block_number, chain.deployment.deployment_block, -1):
        for tx in chain.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == proposer and tx["to"] == rollup and chain.w3.eth.get_transaction_receipt(tx["hash"])["status"] == 0:
                found.append(bytes(tx["hash"]))
    return found
