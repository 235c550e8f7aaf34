"""End to end, real processes on anvil: `optinode l1 deploy`, `optinode sequencer`, two users who
deposit on L1, trade on L2 (signed Trades through the devnet admin method), withdraw, see their batch
finalize and claim on L1; forced withdrawals, one executed and one the account cannot afford. Every
outcome is read from L1 (events, calldata, contract state) and replayed with the spec from L1 alone."""

from __future__ import annotations

import pytest

from optinode.spec.errors import ErrorCode
from optinode.spec.types import Deposit, ForcedWithdraw, Trade, Withdraw
from optinode.testing.seqnode import AdminError
from optinode.testing.world import ETH_UNIT, USD


def test_deposit_trade_withdraw_finalize_claim_and_forced_withdrawals(chain, node, users, world) -> None:
    alice, bob = users["alice"], users["bob"]
    confirmations = chain.config.node.batch.queue_confirmations
    # --- two users deposit on L1 through the Bridge; the sequencer consumes them once deep enough
    chain.deposit(alice, 1_000 * USD)
    chain.deposit(bob, 5_000 * USD)
    chain.mine(confirmations)
    node.wait_for(lambda: node.status()["deposits_done"] == 2, "the deposits to be consumed")
    world.ids.update(alice=0, bob=1)

    # --- they trade on L2: signed Trades through the admin method; a replayed one is refused
    expiry = chain.genesis.time + 86_400  # the deployed genesis is at the L1 time of the deploy
    trade = world.trade("bob", "alice", ETH_UNIT // 10, expiry=expiry)  # bob sells 0.1 ETH to alice at 3000
    assert node.submit(trade)["codes"] == ["OK"]
    assert node.submit(world.trade("alice", "bob", ETH_UNIT // 20, expiry=expiry))["codes"] == ["OK"]
    with pytest.raises(AdminError) as refused:
        node.submit(trade)
    assert refused.value.error["data"] == "NONCE_USED"
    withdraw = world.withdraw("alice", 100 * USD, expiry=expiry)
    assert node.submit(withdraw)["codes"] == ["OK"]

    # --- a batch is posted: L1 holds its records and its root, and a spec replay of L1 gives that root
    node.wait_for(lambda: any(Withdraw in {type(t) for t in _txs(b)} for b in chain.l1_batches()), "the withdrawal's batch on L1", mine_every=1.0)
    batches = chain.l1_batches()
    roots, receipts, _ = chain.replay(batches)
    assert roots == [b.state_root for b in batches]
    posted = [tx for applied in receipts for tx, _ in applied]
    assert posted.count(trade) == 1 and withdraw in posted and posted[:2] == [Deposit(0), Deposit(1)]
    assert all(r.code == ErrorCode.OK for applied in receipts for _, r in applied)
    withdraw_batch = next(b.index for b in batches if any(isinstance(t, Withdraw) for t in _txs(b)))

    # --- forced withdrawals requested on L1: alice's affordable one, bob's far beyond his funds
    chain.request_forced(alice, 0, 50 * USD)
    chain.request_forced(bob, 1, 10**9 * USD)
    chain.mine(confirmations)
    node.wait_for(lambda: chain.l1_batches()[-1].forced_done == 2, "the forced requests' batch on L1", mine_every=1.0)
    batches = chain.l1_batches()
    roots, receipts, state = chain.replay(batches)
    assert roots == [b.state_root for b in batches]
    forced = [(tx, r) for applied in receipts for tx, r in applied if isinstance(tx, ForcedWithdraw)]
    assert [(r.code, r.applied) for _, r in forced] == [(ErrorCode.OK, True), (ErrorCode.INSUFFICIENT_MARGIN, True)]
    forced_batch = next(b.index for b in batches if b.forced_done == 2)
    assert chain.l1_batches()[forced_batch - 2 if forced_batch > 1 else 0].forced_done == 0 or forced_batch == 1
    # bob's rejected request changed nothing: in the final root his withdrawn total is still 0
    assert state.accounts[1].withdrawn == 0 and state.accounts[0].withdrawn == 150 * USD

    # --- time passes on anvil; the sequencer finalizes every batch whose window is over
    last = chain.batch_count() - 1
    chain.travel(chain.deployment.params.challenge_window + 1)
    node.wait_for(lambda: chain.finalized_count() > last, "finalization of every batch", mine_every=0.5)

    # --- alice claims on L1 against the last final batch: her balance rises by exactly 150 USD
    node.wait_for(lambda: node.status()["last_final"] >= last, "the node to see finality")
    claim = node.claim(0)
    assert claim["batch_index"] >= max(withdraw_batch, forced_batch) and claim["withdrawn"] == 150 * USD
    before = chain.token.functions.balanceOf(alice).call()
    chain.claim(alice, claim)
    assert chain.token.functions.balanceOf(alice).call() - before == 150 * USD
    # and nothing is paid twice
    with pytest.raises(Exception, match="NothingToPay"):
        chain.claim(alice, claim)
    assert len(chain.append_transactions()) == chain.batch_count() - 1  # no batch appended twice


def _txs(batch):
    from optinode.spec.record_codec import decode_transaction

    return [decode_transaction(r) for r in batch.records]
