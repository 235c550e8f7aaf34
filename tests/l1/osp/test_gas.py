"""Gas of executeOneStep: per transaction type over the shared vectors, and constructed worst cases.

The numbers are eth_estimateGas of a transaction calling the prover directly: 21,000 + calldata (the
witness dominates: ~32 sibling words per leaf) + execution. Under EIP-7623 (Prague, anvil's default)
the calldata floor can be what is charged (the witness is mostly non-zero bytes). The table printed
here is the one in docs/one-step-prover.md.
"""

from __future__ import annotations

import msgspec

from optinode.l1.osp import encode_call, estimate_one_step_gas
from optinode.spec.record_codec import encode_transaction
from optinode.spec.genesis import Genesis, GenesisMarket
from optinode.spec.constants import FORCED_DELEVERAGE
from optinode.spec.margin import compute_settled_funding, get_total_value
from optinode.spec.types import Deleverage, ForcedWithdraw, FundingTick, Liquidate, OraclePrice, Trade
from optinode.spec.witness import build_witness, execute_witness
from optinode.testing.world import ETH_STEP as STEP, ETH_TICK as TICK, GENESIS_TIME, World, make_genesis

from .conftest import Vector

LIMIT = 400_000  # hard bound asserted for every transaction type (the dispute game budgets for it)
TARGET = 250_000  # the design target for the costliest vector (a trade with two new signed orders)


def _calldata_gas(data: bytes) -> tuple[int, int]:
    """(standard intrinsic gas, EIP-7623 floor) of a transaction with this calldata."""
    zeros = data.count(0)
    nonzeros = len(data) - zeros
    return 21_000 + 4 * zeros + 16 * nonzeros, 21_000 + 10 * (zeros + 4 * nonzeros)


def test_gas_per_type(w3, osp, vectors: list[Vector]) -> None:
    worst: dict[str, tuple[int, str, int]] = {}
    for v in vectors:
        gas = estimate_one_step_gas(w3, osp, *v.item)
        if gas > worst.get(v.tx_type, (0, "", 0))[0]:
            worst[v.tx_type] = (gas, v.name, len(encode_call(*v.item)))
    print("\n| type | max gas (vectors) | vector | calldata bytes | intrinsic | EIP-7623 floor |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for tx_type, (gas, name, size) in sorted(worst.items(), key=lambda kv: -kv[1][0]):
        v = next(v for v in vectors if v.name == name)
        intrinsic, floor = _calldata_gas(encode_call(*v.item))
        print(f"| {tx_type} | {gas:,} | {name} | {size:,} | {intrinsic:,} | {floor:,} |")
    assert set(worst) == {
        "Deposit", "Trade", "Withdraw", "ForcedWithdraw", "OraclePrice", "FundingTick", "Liquidate", "Deleverage",
        "CancelAll", "CollectFees", "Malformed",
    }
    assert max(g for g, _, _ in worst.values()) < LIMIT
    assert worst["Trade"][0] < TARGET, f"the costliest trade vector takes {worst['Trade'][0]:,} gas"


# --- constructed worst cases -------------------------------------------------------------------------


def _estimate(w3, osp, w: World, tx) -> int:
    pre_root = w.root()
    witness = build_witness(w.state, w.commitment, tx, w.ctx)
    _, receipt = execute_witness(pre_root, witness, tx, w.ctx)
    assert receipt.ok, receipt
    return estimate_one_step_gas(w3, osp, pre_root, encode_transaction(tx), w.ctx, witness)


def _sixteen_markets() -> Genesis:
    base = make_genesis(oracle_count=3, quorum=2)
    market = base.markets[0]
    markets = tuple(msgspec.structs.replace(market, name=f"M{i}-USD") for i in range(16))
    return msgspec.structs.replace(base, markets=markets)


def test_gas_worst_cases(w3, osp) -> None:
    """Upper bounds outside the vectors: 32 oracle samples; parties holding positions in all 16 markets
    that settle funding in every one of them."""
    # OraclePrice signed by 32 oracles
    w = World(make_genesis(oracle_count=32, quorum=17))
    price = w.state.markets[0].price
    oracle32 = OraclePrice(0, tuple(w.sample(i, 0, price + i * TICK, GENESIS_TIME + 10) for i in range(32)))
    oracle_gas = _estimate(w3, osp, w, oracle32)

    # Trade and Liquidate between accounts with 16 positions each, after a funding tick; dan, long a
    # little in every market with hardly more than the initial margin, is the risk engine's worst case.
    w = World(_sixteen_markets())
    w.deposit("ann", 10**12)
    w.deposit("ben", 10**12)
    w.deposit("cat", 10**12)
    dan = w.deposit("dan", 490 * 10**6)  # initial margin of 16 x 300 USD at 10%: 480 USD
    for market in range(16):
        p = w.state.markets[market].price
        for buyer in ("ann", "cat", "dan"):
            w.must(Trade(w.order(buyer, market=market, is_buy=True, size=100 * STEP, limit_price=p), w.order("ben", market=market, is_buy=False, size=100 * STEP, limit_price=p), 100 * STEP))
    w.root()
    w.must(FundingTick(GENESIS_TIME + 100, tuple(1_000 for _ in range(16))))
    w.root()
    p = w.state.markets[5].price
    trade = Trade(w.order("ann", market=5, is_buy=True, size=30 * STEP, limit_price=p), w.order("ben", market=5, is_buy=False, size=10 * STEP, limit_price=p), 10 * STEP)
    trade_gas = _estimate(w3, osp, w, trade)

    def crash(world: World, percent: int) -> int:
        for market in range(16):
            world.set_price(market, world.state.markets[market].price * (100 - percent) // 100 // TICK * TICK, GENESIS_TIME + 200)
        world.root()
        return world.state.markets[5].price

    # dan 10% down (below maintenance, solvent) sells at the oracle: healthier, so both valuations run
    below = w.fork()
    p = crash(below, 10)
    healthier = below.trade("dan", "cat", 50 * STEP, market=5, limit_price=p)
    healthier_gas = _estimate(w3, osp, below, healthier)
    # dan 20% down (bankrupt): a liquidation that the insurance fund covers, and a deleverage against ben
    p = crash(w, 20)
    w.state.insurance = 10**12
    w.root()
    covered = Liquidate(w.order("cat", market=5, is_buy=True, size=50 * STEP, limit_price=p), dan, 50 * STEP)
    covered_gas = _estimate(w3, osp, w, covered)
    # ben bankrupt too (crafted) and the fund empty: the deleverage's last resort values ben again for
    # his floor and socializes the rest; the same as a forced request from the L1 queue
    poor = w.fork()
    poor.state.insurance = 0
    ben = poor.account("ben")
    collateral, positions, _ = compute_settled_funding(poor.state, ben)
    ben.collateral -= get_total_value(poor.state, collateral, positions) + 10**6  # value -1 USD
    poor.touch(poor.ids["ben"])
    poor.root()
    forced = poor.fork()
    socialized = Deleverage(dan, poor.ids["ben"], 5, 50 * STEP)
    socialized_gas = _estimate(w3, osp, poor, socialized)
    forced.queue_forced("ann", FORCED_DELEVERAGE | forced.ids["ben"] << 72 | 5 << 64 | 50 * STEP, account_id=dan)
    forced_gas = _estimate(w3, osp, forced, ForcedWithdraw())
    for world, tx in ((poor, socialized), (forced, ForcedWithdraw())):  # (_estimate applies nothing)
        world.must(tx)
        assert world.state.socialized_loss > 0
    deleverage_gas = _estimate(w3, osp, w, Deleverage(dan, w.ids["ben"], 5, 50 * STEP))
    print(
        f"\nworst cases: OraclePrice with 32 samples {oracle_gas:,} gas; "
        f"Trade between two accounts with 16 positions each, all settling funding, two new orders, a new slot {trade_gas:,} gas; "
        f"with 16 positions each: a healthier (below maintenance) trade {healthier_gas:,}, "
        f"a liquidation covered by the insurance fund {covered_gas:,}, a deleverage {deleverage_gas:,} gas, "
        f"a deleverage against a bankrupt holder that socializes a loss {socialized_gas:,}, "
        f"the same as a forced deleverage request {forced_gas:,} gas"
    )
    assert oracle_gas < 600_000 and trade_gas < 700_000
    assert max(healthier_gas, covered_gas, deleverage_gas, socialized_gas, forced_gas) < 700_000
