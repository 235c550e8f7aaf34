"""The WrongParent race with a full node (docs/sequencer.md, "Attacks considered"): the sequencer's
pipelined append of batch 3, signed and broadcast while its batch 2 is being lost in a game, is
mined only after the Rollup discarded batch 2. It names batch 2's (discarded) root as its parent,
so it reverts ``WrongParent`` and costs only its gas; the sequencer, without any operator action,
posts the rebuilt batch with the next nonce, and the verifier that won follows it.

How the race is made on anvil: the verifier is paused (SIGSTOP) after its challenge; with automine
off the sequencer signs and broadcasts batch 3's append; the test takes its signed bytes out of the
mempool (``anvil_dropTransaction``: what a slow or partitioned L1 node does to a transaction), lets
the verifier win, and broadcasts the same bytes again once the discard is mined. The sequencer's
sender never re-signs (its replacement delay is set past the test), exactly as if L1 had been slow.
"""

from __future__ import annotations

import os
import re
import signal

from optinode.l1.contracts import error_args, error_name
from optinode.l1.rpc import hexbytes
from optinode.spec.record_codec import decode_transaction
from optinode.testing.seqnode import DEVNET, DevChain
from optinode.testing.world import USD

from tests.l1.verifier.conftest import processes  # noqa: F401 - the fixture

from .lost_game import WITHDRAWALS, start


def test_a_stale_append_mined_after_the_discard_reverts_wrong_parent_and_the_node_recovers(users, anvil, snapshot, tmp_path,
                                                                                        processes) -> None:
    config = DEVNET.read_text().replace("resubmit_after = 6.0 ", "resubmit_after = 900.0", 1)
    assert "resubmit_after = 900.0" in config
    chain = DevChain.deploy(anvil.url, tmp_path / "chain", config_text=config)
    lost = start(chain, anvil, users, tmp_path, processes)
    seq, verifier = lost.seq, lost.verifier
    proposer = chain.deployment.params.proposers[0]
    lost.wait(lambda: lost.game_events("GameOpened"), "the verifier's challenge of batch 2")
    os.kill(verifier.process.pid, signal.SIGSTOP)  # the challenger waits; its clock stands still while no block is mined
    try:
        lost.wait(lambda: lost.game_events("Bisected"), "the sequencer's defence (its roots at the split points)")
        assert not lost.discards(), "the game ended before the race could be set up"
        bad_root = chain.l1_batches()[1].state_root
        chain.rpc("evm_setAutomine", [False])
        try:
            extra = lost.world.withdraw("alice", 4 * USD)
            assert seq.submit(extra)["codes"] == ["OK"]
            sent = seq.wait_for(lambda: re.search(r"batch 3: sending with nonce (\d+)", seq.log_tail(400_000)), "batch 3's append broadcast")
            nonce = int(sent.group(1))
            pending = chain.rpc("txpool_content")["pending"][proposer.lower()]
            tx_hash = pending[str(nonce)]["hash"]
            raw = chain.rpc("eth_getRawTransactionByHash", [tx_hash])
            chain.rpc("anvil_dropTransaction", [tx_hash])
            assert proposer.lower() not in chain.rpc("txpool_content")["pending"]
        finally:
            chain.rpc("evm_setAutomine", [True])
    finally:
        os.kill(verifier.process.pid, signal.SIGCONT)
    lost.wait(lambda: lost.discards(), "the verifier to win and the Rollup to discard batch 2")
    # the sequencer rebuilds batch 2 and broadcasts it with the next nonce: it waits behind the stale append
    lost.wait(lambda: re.search(rf"batch 2: sending with nonce {nonce + 1}\b", seq.log_tail(400_000)), "the rebuilt batch 2's append")
    assert chain.batch_count() == 2
    stale = chain.rpc("eth_sendRawTransaction", [raw])  # ... and now L1 mines the stale one
    receipt = chain.w3.eth.wait_for_transaction_receipt(stale)
    assert receipt["status"] == 0, "the stale append landed on the new tip"
    tx = chain.w3.eth.get_transaction(stale)
    assert tx["nonce"] == nonce and tx["value"] == chain.deployment.params.proposer_bond
    why = chain.w3.provider.make_request("eth_call", [{"from": proposer, "to": tx["to"], "data": hexbytes(bytes(tx["input"])),
                                                       "value": hex(tx["value"])}, hex(receipt["blockNumber"] - 1)])
    data = bytes.fromhex(why["error"]["data"][2:])
    assert error_name(data) == "WrongParent" and error_args(data) == (bad_root, chain.rollup.functions.getBatch(1).call()[0])

    # the node goes on by itself: the rebuilt batch 2 (all four withdrawals) lands, the verifier follows, it finalizes
    lost.wait(lambda: chain.batch_count() >= 3 and chain.l1_batches()[1].state_root != bad_root, "the rebuilt batch 2 on L1")
    invalid_alerts = len(verifier.alerts("invalid_batch"))
    lost.wait(lambda: (s := verifier.status()) and s["synced_batch"] == chain.batch_count() - 1, "the verifier to follow the rebuilt batch")
    chain.travel(chain.deployment.params.challenge_window + 1)
    lost.wait(lambda: chain.finalized_count() == chain.batch_count(), "the rebuilt batch to finalize")
    batches = chain.l1_batches()
    roots, _, state = chain.replay(batches)
    assert roots == [b.state_root for b in batches]
    txs = [decode_transaction(r) for b in batches for r in b.records]
    assert all(txs.count(w) == 1 for w in [*lost.withdrawals, extra]) and state.accounts[0].withdrawn == (sum(WITHDRAWALS) + 4) * USD
    # the stale append cost its gas and nothing else: the proposer's balance over its block moved by the
    # gas of its transactions there and the value of those that succeeded (the rebuilt batch's bond)
    block = receipt["blockNumber"]
    spent = chain.w3.eth.get_balance(proposer, block - 1) - chain.w3.eth.get_balance(proposer, block)
    mine = [chain.w3.eth.get_transaction_receipt(t["hash"]) for t in chain.w3.eth.get_block(block, full_transactions=True)["transactions"]
            if t["from"] == proposer]
    assert spent == sum(r["gasUsed"] * r["effectiveGasPrice"] + (chain.w3.eth.get_transaction(r["transactionHash"])["value"] if r["status"]
                                                                 else 0) for r in mine)
    assert len(verifier.alerts("invalid_batch")) == invalid_alerts
    assert len(lost.game_events("GameOpened")) == 1
    log = seq.log_tail(10**8)
    assert "operator must look" not in log and log.count("alert=batches_rebuilt") == 1
    assert " ERROR " not in log, "an expected, harmless revert must not page the operator"
    assert "batch 3: reverted on L1 after a rebuild replaced its batch" in log
    assert seq.process.poll() is None
