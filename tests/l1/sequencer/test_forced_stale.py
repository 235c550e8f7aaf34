"""A forced deleverage and a forced cancel-all sent through the Bridge while the oracle lags (the
genesis price older than ``price_validity``), against a real `optinode sequencer` on anvil: the
deleverage waits at the head of the forced queue (alert ``forced_request_waiting``), the cancel-all
waits behind it, the node keeps consuming deposits and posting batches — across a restart — and
both are consumed once fresh prices and funding arrive; if they never do, the forced deadline
passes and anyone freezes the rollup. Outcomes are read from L1 (docs/sequencer.md, "Queues")."""

from __future__ import annotations

from eth_account import Account

from optinode.l1.contracts import transact
from optinode.spec.constants import FORCED_CANCEL_ALL
from optinode.spec.errors import ErrorCode
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import ForcedWithdraw, FundingTick
from optinode.testing.world import ETH, ETH_UNIT, USD

SIZE = ETH_UNIT // 10


def _positions_then_stale(chain, node, users, world) -> None:
    """alice long, bob short 0.1 ETH, posted; then the L1 clock runs past the genesis price's validity."""
    _positions(chain, node, users, world)
    chain.travel(chain.genesis.price_validity + 60)


def _positions(chain, node, users, world) -> None:
    """alice long, bob short 0.1 ETH, in batches 1 (deposits) and 2 (the trade) on L1."""
    chain.deposit(users["alice"], 1_000 * USD)
    chain.deposit(users["bob"], 5_000 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)
    node.wait_for(lambda: chain.l1_batches() and chain.l1_batches()[-1].deposits_done == 2, "the deposits on L1", mine_every=1.0)
    world.ids.update(alice=0, bob=1)
    assert node.submit(world.trade("bob", "alice", SIZE))["codes"] == ["OK"]
    node.wait_for(lambda: len(chain.l1_batches()) >= 2 and node.status()["pending_entries"] == 0, "the trade on L1", mine_every=1.0)


def _request_deleverage_and_cancel_all(chain, users, carol: str) -> None:
    # carol owns neither account: anyone may ask for a deleverage; alice then asks for a cancel-all
    transact(chain.w3, chain.bridge.functions.requestForcedDeleverage(0, 1, ETH, SIZE), carol)
    transact(chain.w3, chain.bridge.functions.requestForcedCancelAll(0, 500), users["alice"])
    chain.mine(chain.config.node.batch.queue_confirmations)


def _fresh_prices(chain, node, world) -> None:
    """The oracles and the funding catch up: every market's last price re-signed now, a funding tick now."""
    now = chain.w3.eth.get_block("latest")["timestamp"]
    node.wait_for(lambda: node.status()["l1_head_time"] == now, "the node to see the latest block")
    state = chain.replay(chain.l1_batches())[2]
    for market in range(len(state.markets)):
        price = state.markets[market].price
        assert node.submit(world.prices(market, [(i, price, now) for i in range(3)]))["codes"] == ["OK"]
    assert node.submit(FundingTick(now, tuple(m.funding_index for m in state.markets)))["codes"] == ["OK"]


def _carol(anvil) -> str:
    return Account.from_key(anvil.private_keys[4]).address


def test_a_stale_forced_deleverage_waits_without_stopping_the_node_and_is_consumed_once_prices_are_fresh(chain, users, world, anvil,
                                                                                                      tmp_path) -> None:
    node = chain.start_sequencer(tmp_path / "seq")
    try:
        _positions_then_stale(chain, node, users, world)
        carol = _carol(anvil)
        _request_deleverage_and_cancel_all(chain, users, carol)
        node.wait_for(lambda: "alert=forced_request_waiting" in node.log_tail(200_000), "the waiting alert", mine_every=1.0)
        chain.deposit(carol, 7 * USD)  # the node goes on: the deposit behind the requests is consumed and posted
        chain.mine(chain.config.node.batch.queue_confirmations)
        node.wait_for(lambda: chain.l1_batches()[-1].deposits_done == 3, "carol's deposit on L1", mine_every=1.0)
        assert chain.l1_batches()[-1].forced_done == 0 and node.status()["forced_done"] == 0
        assert node.stop() == 0
        node = chain.start_sequencer(tmp_path / "seq")  # a restart neither crashes on them nor consumes them
        node.wait_for(lambda: node.log_tail(200_000).count("alert=forced_request_waiting") >= 2, "the waiting alert after the restart",
                      mine_every=1.0)
        assert node.status()["forced_done"] == 0
        _fresh_prices(chain, node, world)
        node.wait_for(lambda: chain.l1_batches()[-1].forced_done == 2, "both requests consumed on L1", mine_every=1.0)
        batches = chain.l1_batches()
        roots, receipts, state = chain.replay(batches)
        assert roots == [b.state_root for b in batches]
        forced = [r.code for applied in receipts for tx, r in applied if tx == ForcedWithdraw()]
        # once each: the deleverage recorded with the spec's reason (alice is not bankrupt), the cancel-all applied
        assert len(forced) == 2 and forced[0] != ErrorCode.OK and forced[1] == ErrorCode.OK
        assert state.accounts[0].nonce_base == 500
        assert sum(decode_transaction(r) == ForcedWithdraw() for b in batches for r in b.records) == 2
    finally:
        assert node.stop() == 0, node.log_tail()


def test_a_forced_deleverage_that_stays_stale_past_its_deadline_lets_anyone_freeze_the_rollup(chain, node, users, world, anvil) -> None:
    _positions_then_stale(chain, node, users, world)
    carol = _carol(anvil)
    _request_deleverage_and_cancel_all(chain, users, carol)
    node.wait_for(lambda: "alert=forced_request_waiting" in node.log_tail(200_000), "the waiting alert", mine_every=1.0)
    chain.travel(chain.deployment.params.forced_deadline + 1)  # the oracle never catches up
    chain.mine(2)
    transact(chain.w3, chain.bridge.functions.freeze(), carol)
    assert chain.bridge.functions.frozen().call()
    node.wait_for(lambda: node.status()["l1_head_time"] == chain.w3.eth.get_block("latest")["timestamp"], "the node to follow the frozen chain",
                  mine_every=1.0)
    assert node.status()["forced_done"] == 0  # never consumed on a stale price, and the node is still up


def test_a_consumed_deleverage_that_a_rebuild_finds_stale_waits_again_and_is_consumed_once(chain, users, world, anvil, tmp_path) -> None:
    """The node consumes a forced deleverage in batch 3 and is SIGKILLed before posting it; it stays
    down past the drift and the price validity, so the restarted node rebuilds batch 3 at a fresh
    L1 time where the deleverage reads a stale price: it goes back to the head of the queue (the
    rebuilt batches do not consume it), waits, and is consumed once prices are fresh."""
    import signal

    from optinode.testing.seqnode import Sequencer

    node = chain.start_sequencer(tmp_path / "seq", crash_at="proposer.before_submit:3")  # batches 1, 2 posted; 3 cut, never sent
    _positions(chain, node, users, world)
    transact(chain.w3, chain.bridge.functions.requestForcedDeleverage(0, 1, ETH, SIZE), _carol(anvil))  # fresh prices: consumed
    chain.mine(chain.config.node.batch.queue_confirmations)
    node.process.wait(60)
    tail = node.log_tail()
    assert node.stop() == -signal.SIGKILL and "crashing at proposer.before_submit" in tail, tail
    assert chain.batch_count() == 3 and chain.l1_batches()[-1].forced_done == 0  # batch 3 (the deleverage) only in the store

    chain.travel(chain.genesis.price_validity + 60)  # past the drift and the price validity
    node = Sequencer(chain, tmp_path / "seq")
    try:
        node.wait_ready()
        node.wait_for(lambda: "alert=batches_rebuilt from_index=3" in node.log_tail(400_000), "the rebuild of batch 3", mine_every=1.0)
        node.wait_for(lambda: node.log_tail(400_000).count("alert=forced_request_waiting") >= 1, "the deleverage waiting again", mine_every=1.0)
        assert node.status()["forced_done"] == 0 and chain.l1_batches()[-1].forced_done == 0
        _fresh_prices(chain, node, world)
        node.wait_for(lambda: chain.l1_batches()[-1].forced_done == 1, "the deleverage consumed on L1", mine_every=1.0)
        batches = chain.l1_batches()
        roots, _, _ = chain.replay(batches)
        assert roots == [b.state_root for b in batches]
        assert sum(decode_transaction(r) == ForcedWithdraw() for b in batches for r in b.records) == 1  # once
    finally:
        assert node.stop() == 0, node.log_tail()
