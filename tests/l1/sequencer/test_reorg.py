"""A reorg of up to 5 blocks that removes a posted batch and a deposit, under a running sequencer
(real processes on anvil): the follower unwinds, the sender re-posts the same transaction, the
deposit is consumed once when it comes back; nothing is lost or duplicated (asserted from L1)."""

from __future__ import annotations

import pytest

from optinode.spec.types import Deposit, Withdraw
from optinode.spec.record_codec import decode_transaction
from optinode.testing.world import USD


@pytest.mark.parametrize("depth", [5])
def test_reorg_removing_a_posted_batch_and_a_deposit(depth, chain, node, users, world) -> None:
    alice, bob = users["alice"], users["bob"]
    confirmations = chain.config.node.batch.queue_confirmations
    assert confirmations > depth  # consumed entries are out of the reorg's reach (docs/sequencer.md)
    chain.deposit(alice, 1_000 * USD)
    chain.mine(confirmations)
    node.wait_for(lambda: node.status()["deposits_done"] == 1, "alice's deposit to be consumed")
    world.ids.update(alice=0)
    ack = node.submit(world.withdraw("alice", 10 * USD, expiry=chain.genesis.time + 86_400))
    assert ack["codes"] == ["OK"]
    node.wait_for(lambda: chain.batch_count() >= 2 and node.status()["pending_entries"] == 0, "batch 1 on L1", timeout=60)
    before = chain.l1_batches()
    posted_tx = before[-1].tx_hash
    nonce = lambda h: chain.w3.eth.get_transaction(h)["nonce"]  # noqa: E731
    before_nonces = [nonce(b.tx_hash) for b in before]
    batch_block = chain.w3.eth.get_transaction_receipt(posted_tx)["blockNumber"]

    chain.deposit(bob, 700 * USD)  # three blocks: mint, approve, deposit
    tip = chain.w3.eth.block_number
    assert batch_block > tip - depth, "the reorg must reach the batch's block"
    chain.rpc("anvil_reorg", [depth, []])
    assert chain.bridge.functions.depositCount().call() == 1  # bob's deposit is gone from the chain
    # the sender sees its receipt vanish and re-broadcasts the same signed transaction
    node.wait_for(lambda: chain.batch_count() == 1 + len(before), "batch 1 re-posted", mine_every=0.5)
    again = chain.l1_batches()
    # the same batch (records, root) with the same nonce: the original transaction, or a fee-bumped
    # replacement of it if the machine was slow, never a second append
    assert [(b.records, b.state_root) for b in again] == [(b.records, b.state_root) for b in before]
    assert [nonce(b.tx_hash) for b in again] == before_nonces

    chain.deposit(bob, 700 * USD)  # bob deposits again (his first attempt was dropped with the blocks)
    chain.mine(confirmations)
    node.wait_for(lambda: chain.l1_batches()[-1].deposits_done == 2, "bob's deposit in a batch on L1", mine_every=0.5)
    batches = chain.l1_batches()
    roots, receipts, state = chain.replay(batches)
    assert roots == [b.state_root for b in batches]
    txs = [decode_transaction(r) for b in batches for r in b.records]
    assert txs.count(Deposit(0)) == 1 and txs.count(Deposit(1)) == 1  # each deposit credited once
    assert sum(isinstance(t, Withdraw) for t in txs) == 1  # the acknowledged withdrawal, once
    assert state.accounts[0].collateral == 990 * USD and state.accounts[1].collateral == 700 * USD
    assert len(chain.append_transactions()) == len(batches)  # no batch appended twice on the canonical chain
