"""Issue 9: the batch's L1 context is what the chain records at append. An order that expires
between the moment the sequencer applies it and the moment its batch lands on L1 must still replay
(from L1 alone, as every verifier and the one-step proof do) to the root the sequencer posted: the
sequencer executes the whole batch at one L1 time, declares it in ``appendBatch``, and the Rollup
records the declared time (bounded by ``maxTimestampDrift``) as the batch's timestamp."""

from __future__ import annotations

from optinode.spec.errors import ErrorCode
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import Trade
from optinode.testing.world import ETH_UNIT, USD


def test_order_expiring_before_the_append_replays_to_the_posted_root(chain, node, users, world) -> None:
    alice, bob = users["alice"], users["bob"]
    chain.deposit(alice, 1_000 * USD)
    chain.deposit(bob, 5_000 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)
    node.wait_for(lambda: node.status()["deposits_done"] == 2, "the deposits to be consumed")
    node.wait_for(lambda: chain.l1_batches() and chain.l1_batches()[-1].deposits_done == 2, "the deposits' batch on L1", mine_every=1.0)
    world.ids.update(alice=0, bob=1)

    # The orders expire at the exact L1 time the sequencer applies them at: valid then, expired a
    # second later. The chain then moves 20 s on before the batch can be appended.
    latest = chain.w3.eth.get_block("latest")["timestamp"]
    node.wait_for(lambda: node.status()["l1_head_time"] == latest, "the node to see the latest block")
    applied_at = node.status()["l1_head_time"]  # a batch opened now runs at this time
    trade = world.trade("bob", "alice", ETH_UNIT // 10, expiry=applied_at)
    assert node.submit(trade)["codes"] == ["OK"]
    chain.travel(20)

    node.wait_for(lambda: any(trade in _txs(b) for b in chain.l1_batches()), "the trade's batch on L1", mine_every=1.0)
    batches = chain.l1_batches()
    batch = next(b for b in batches if trade in _txs(b))
    appended_at = chain.w3.eth.get_block(chain.w3.eth.get_transaction(batch.tx_hash)["blockNumber"])["timestamp"]
    assert appended_at > trade.maker.expiry  # the order had expired when its batch landed
    # A verifier's replay from L1 alone reaches every posted root, and the trade executed in it.
    roots, receipts, _ = chain.replay(batches)
    codes = [r.code for applied in receipts for tx, r in applied if tx == trade]
    assert codes == [ErrorCode.OK]
    assert roots == [b.state_root for b in batches]
    assert batch.timestamp <= trade.maker.expiry  # the batch's recorded L1 time is the one it ran at


def _txs(batch) -> list[Trade]:
    return [decode_transaction(r) for r in batch.records]
