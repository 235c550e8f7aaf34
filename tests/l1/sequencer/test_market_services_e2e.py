"""End to end on anvil with the market services on: `optinode sequencer` runs the devnet oracle feed,
funding and the liquidator. Alice opens a leveraged long; the sequencer restarts with the services
enabled and a scripted crash of the ETH walk; the liquidator liquidates her, funding ticks from the
premium of bob's quotes (placed over the public API) are applied, batches are posted, and a verifier-style replay of L1 alone (optinode.replay) reproduces
every posted root."""

from __future__ import annotations

from web3 import Web3

from optinode.replay import Replay
from optinode.spec.commitment import Commitment
from optinode.spec.errors import ErrorCode
from optinode.spec.genesis import create_genesis_state
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import FundingTick, L1Context, Liquidate, OraclePrice
from optinode.testing.world import ETH, ETH_UNIT, USD, price_of, test_key

from tests.api.client import Client

SERVICES = """
[market_services]
enabled = true

[market_services.oracle]
interval = 0.5
seed = 11
volatility_ppm = 0                   # a flat walk until the crash: the test knows every price
spread_ppm = 200
signers = [{ seed = "optinode-devnet-oracle-0" }, { seed = "optinode-devnet-oracle-1" }, { seed = "optinode-devnet-oracle-2" }]

[[market_services.oracle.crash]]
market = 0
after_updates = 3
drop_ppm = 100_000                   # ETH falls 10%: 3000 -> 2700

[market_services.funding]
interval = 3.0
sample_interval = 1.0

[market_services.liquidator]
key = { seed = "optinode-devnet-liquidator" }
interval = 0.5
"""


def with_services(config_text: str) -> str:
    """The devnet config with its [market_services] tables replaced by the scenario's."""
    head = config_text.split("# ---- market services")[0]
    return head + SERVICES


def test_a_crash_liquidates_the_underwater_account_funding_ticks_and_l1_replays_every_root(chain, tmp_path, users, world, anvil) -> None:
    alice, bob = users["alice"], users["bob"]
    liquidator = Web3.to_checksum_address(test_key("liquidator").address)
    confirmations = chain.config.node.batch.queue_confirmations
    # --- without the services: deposits (the liquidator's account funded by bob) and alice's 9.4x long
    node = chain.start_sequencer(tmp_path / "seq", api=True)
    chain.deposit(alice, 320 * USD)
    chain.deposit(bob, 5_000 * USD)
    chain.deposit(bob, 10_000 * USD, owner=liquidator)
    chain.mine(confirmations)
    node.wait_for(lambda: node.status()["deposits_done"] == 3, "the deposits to be consumed")
    world.ids.update(alice=0, bob=1)
    expiry = chain.genesis.time + 86_400
    assert node.submit(world.trade("bob", "alice", ETH_UNIT, expiry=expiry))["codes"] == ["OK"]  # at 3000
    # bob quotes ETH over the public API, 3030 / 3090: the book's mid is 2% above the oracle
    d = chain.deployment
    quoter = Client(node.api_url, anvil.private_keys[3], chain_id=d.chain_id, verifying_contract=d.contracts.rollup)
    for nonce, is_buy, usd in ((1, True, "3030"), (2, False, "3090")):
        placed = quoter.send_order(1, market=ETH, is_buy=is_buy, size=ETH_UNIT // 10, price=price_of(ETH, usd), nonce=nonce, expiry=expiry)
        assert placed["status"] == "resting"
    assert node.stop() == 0

    # --- restart with the market services on (the same log and state; the walk starts afresh)
    chain.config_path.write_text(with_services(chain.config_path.read_text()))
    node = chain.start_sequencer(tmp_path / "seq")
    try:
        def liquidated_on_l1():
            return any(isinstance(t, Liquidate) for b in chain.l1_batches() for t in map(decode_transaction, b.records))

        node.wait_for(liquidated_on_l1, "alice's liquidation in a posted batch", timeout=120, mine_every=1.0)
        node.wait_for(lambda: sum(isinstance(t, FundingTick) for b in chain.l1_batches() for t in map(decode_transaction, b.records)) >= 2,
                      "two funding ticks on L1", timeout=60, mine_every=1.0)
        batches = chain.l1_batches()
    finally:
        assert node.stop() == 0, node.log_tail()

    # --- a verifier's replay from L1 alone: the genesis, the queues, each batch's records and time
    deposits, forced = chain.queues()
    state = create_genesis_state(chain.genesis)
    applied = []
    for batch in batches:
        replay = Replay(state, batch.records, L1Context(batch.timestamp, deposits=deposits, forced=forced))
        assert replay.roots[-1] == batch.state_root, f"batch {batch.index}: the replay disagrees with the posted root"
        state = replay.final_state
        applied += [decode_transaction(r) for r in batch.records]
    assert Commitment.from_state(state).update(state) == batches[-1].state_root

    # every record the sequencer posted executed (the services emit only valid transactions)
    _, receipts, _ = chain.replay(batches)
    assert all(r.code == ErrorCode.OK for per_batch in receipts for _, r in per_batch)
    # the crash: ETH's oracle price fell 10%, each update signed by all three oracles
    eth_updates = [t for t in applied if isinstance(t, OraclePrice) and t.market == ETH]
    assert len(eth_updates) >= 3 and all([s.oracle_index for s in t.samples] == [0, 1, 2] for t in eth_updates)
    assert abs(state.markets[ETH].price - price_of(ETH, "2700")) <= price_of(ETH, "2700") // 1000
    # alice was liquidated by the liquidator account; her position is gone and she is not in debt
    liquidation = next(t for t in applied if isinstance(t, Liquidate))
    assert liquidation.liquidated_id == 0 and liquidation.liquidator.account_id == 2 and liquidation.size == ETH_UNIT
    assert not state.accounts[0].positions and state.accounts[0].collateral >= 0
    assert state.accounts[2].positions[ETH].size == ETH_UNIT and state.accounts[2].owner == test_key("liquidator").address
    assert state.insurance > 0  # the penalty
    # funding ticks were applied: the book above the oracle makes ETH longs pay (the index rises, at the
    # market's max rate: 2% per 8 h is above it); BTC has no book, so its ticks change nothing
    ticks = [t for t in applied if isinstance(t, FundingTick)]
    assert len(ticks) >= 2 and state.funding_time == ticks[-1].timestamp
    assert state.markets[ETH].funding_index > 0 and all(t.indices[1] == 0 for t in ticks)
