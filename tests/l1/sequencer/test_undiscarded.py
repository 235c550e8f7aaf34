"""An L1 reorg removes the discard of our batches and nobody makes the resolving move again
(docs/sequencer.md, "A discard that a reorg removes"). The sequencer (`--fault corrupt:2:0`) loses
the game on batch 2 and the Rollup discards batches 2..; the winning verifier then stops, and a
reorg shallower than ``queue_confirmations`` takes the discard out of the chain. On the canonical
chain batch 2 is live again, its game back before the challenger's step, and nobody steps: the
challenger's clock runs out. The node must converge on L1 by itself: keep (or get back) batch 2 as
L1 holds it, defend it (claim the challenger's timeout), finalize it and everything after it, and
go on posting new commands on top — never a batch naming a parent L1 does not hold, no
``l1_diverged``, every acknowledged withdrawal on L1 once.

Before the fix the engine rolled back at the first head after the discard: after the reorg L1 held
the batch 2 its journal had replaced; its rebuilt appends were refused `WrongParent` for ever and
nothing acknowledged afterwards reached L1 (seen failing)."""

from __future__ import annotations

import time

from optinode.spec.record_codec import decode_transaction
from optinode.testing.world import USD

from tests.l1.verifier.conftest import processes  # noqa: F401 - the fixture

from .lost_game import WITHDRAWALS, start


def test_a_discard_a_shallow_reorg_removes_is_followed_without_the_operator(chain, users, anvil, tmp_path, processes) -> None:
    lost = start(chain, anvil, users, tmp_path, processes)
    seq, verifier = lost.seq, lost.verifier
    lost.wait(lambda: chain.batch_count() >= 3, "bad batch 2 on L1")
    bad = chain.l1_batches()[1]
    lost.wait(lambda: lost.discards(), "the verifier to win and the Rollup to discard batch 2")
    discard_block = lost.discards()[0]["blockNumber"]
    processes.remove(verifier)
    verifier.stop()  # the winner goes away: nobody makes the resolving move again
    time.sleep(3)  # (the sequencer sees the discard at its next head; before the fix it rolled back then)
    depth = chain.w3.eth.block_number - discard_block + 1
    assert depth < chain.config.node.batch.queue_confirmations, "the reorg must be shallower than the queue depth"
    chain.rpc("anvil_reorg", [depth, []])  # the discard leaves the chain
    assert not lost.discards() and chain.l1_batches()[1].state_root == bad.state_root  # the bad batch 2 is live again

    # the challenger's clock runs out: the sequencer claims the timeout; batch 2 then finalizes
    chain.travel(chain.deployment.params.clock + 1)
    lost.wait(lambda: lost.game_events("GameResolved"), "the sequencer to win the game on the challenger's time")
    later = lost.world.withdraw("alice", 4 * USD)
    answer = seq.submit(later)
    assert answer["codes"] == ["OK"]
    lost.wait(lambda: later in [decode_transaction(r) for b in chain.l1_batches() for r in b.records], "a later withdrawal on L1")
    chain.travel(chain.deployment.params.challenge_window + 1)
    lost.wait(lambda: chain.finalized_count() == chain.batch_count(), "every batch to finalize")

    batches = chain.l1_batches()
    assert batches[1].state_root == bad.state_root  # L1's batch 2, the one the node kept and defended
    txs = [decode_transaction(r) for b in batches for r in b.records]
    assert all(txs.count(w) == 1 for w in [*lost.withdrawals, later]), txs
    lost.wait(lambda: seq.call("optinode_adminCommand", answer["seq"])["status"] == "final", "the node to see its batches final")
    assert seq.status()["last_final"] == chain.batch_count() - 1
    log = seq.log_tail(10**8)
    assert "alert=l1_diverged" not in log and "alert=batches_rebuilt" not in log and "WrongParent" not in log
    assert seq.process.poll() is None
    # from L1 alone, alice withdrew exactly the acknowledged amounts (batch 2's root is the corrupt one,
    # so the replay is compared on the withdrawals, not on that root)
    _, _, state = chain.replay(batches)
    assert state.accounts[0].withdrawn == (sum(WITHDRAWALS) + 4) * USD
