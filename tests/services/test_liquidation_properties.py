"""Properties of the liquidation engine over random worlds (hypothesis):

- every transaction the liquidator plans is valid: applied to the real state it executes (OK) —
  the spec agrees with the what-if check, whatever the prices, gaps, funding and insurance;
- the risk index never misses an account: after any sequence of price moves and funding ticks,
  every account below maintenance is among the ones it returns as due;
- once the liquidator has run to quiescence, no account is left below maintenance while a valid
  liquidation or deleverage for it exists (it stops only when nothing valid is left).
"""

from __future__ import annotations

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from optinode.exchange.liquidation import LiquidatorAccount, plan
from optinode.exchange.risk_index import RiskIndex
from optinode.spec.constants import FRACTION_ONE, FUNDING_RATE_ONE, PRICE_ONE
from optinode.spec.errors import ErrorCode
from optinode.spec.margin import compute_settled_funding, is_liquidatable
from optinode.spec.types import FundingTick
from optinode.testing.world import BTC, ETH, USD, World, test_key

PROPERTY = settings(max_examples=max(40, settings.default.max_examples), deadline=None)
TRADERS = ("t0", "t1", "t2", "t3")

trade_st = st.tuples(
    st.sampled_from(TRADERS), st.sampled_from(TRADERS), st.sampled_from((ETH, BTC)),
    st.integers(5, 100),  # % of the leverage the poorer side's collateral allows
    st.integers(-30, 30),  # limit price offset from the oracle, in 0.1%
)
move_st = st.one_of(
    st.tuples(st.just("price"), st.sampled_from((ETH, BTC)), st.integers(-60, 40)),  # relative move, 0.1%
    st.tuples(st.just("price"), st.sampled_from((ETH, BTC)), st.integers(-400, 250)),  # crashes and gaps
    st.tuples(st.just("funding"), st.integers(-10**5, 10**5), st.integers(1, 86_400)),  # rate per second (1e12), elapsed
)


def liquidatable(state, account_id: int) -> bool:
    collateral, positions, _ = compute_settled_funding(state, state.accounts[account_id])
    return bool(positions) and is_liquidatable(state, collateral, positions)


def run_liquidator(w: World, index: RiskIndex, liquidator: LiquidatorAccount | None) -> list:
    """The service's rounds, synchronously, until one does nothing (a deleverage's last resort may
    push a counterparty below maintenance: the next round liquidates it)."""
    applied = []
    while True:
        done = run_round(w, index, liquidator)
        if not done:
            return applied
        applied += done


def run_round(w: World, index: RiskIndex, liquidator: LiquidatorAccount | None, limit: int = 200) -> list:
    """One round: every planned transaction must apply."""
    applied = []
    for account_id in index.due():
        for _ in range(limit):
            tx = plan(w.state, account_id, w.ctx, liquidator, index.holders)
            if tx is None:
                break
            receipt = w.apply(tx)
            assert receipt.code == ErrorCode.OK and receipt.applied, f"planned {tx!r} is invalid: {ErrorCode(receipt.code).name}"
            applied.append(tx)
            index.mark(w.state.dirty_accounts)
            w.state.dirty_accounts.clear()
            index.refresh()
    return applied


@PROPERTY
@given(
    deposits=st.lists(st.integers(50, 5_000), min_size=len(TRADERS), max_size=len(TRADERS)),
    trades=st.lists(trade_st, min_size=1, max_size=12),
    moves=st.lists(move_st, min_size=1, max_size=10),
    liquidator_funds=st.sampled_from((0, 200, 100_000)),
)
# Found by the thorough profile: t1's BTC long goes bankrupt, its last-resort deleverage against t0's
# ETH short leaves t0 below maintenance; only a second round liquidates t0 (the service now looks
# again at once after a round that acted).
@example(deposits=[50, 366, 267, 50], trades=[("t0", "t1", ETH, 20, 0), ("t2", "t1", BTC, 37, 0)], moves=[("price", BTC, -374)],
         liquidator_funds=200)
def test_the_liquidator_only_emits_valid_transactions_and_the_index_misses_no_one(deposits, trades, moves, liquidator_funds) -> None:
    w = World()
    for name, usd in zip(TRADERS, deposits):
        w.deposit(name, usd * USD)
    liquidator = None
    if liquidator_funds:
        w.deposit("liquidator", liquidator_funds * USD)
        liquidator = LiquidatorAccount(w.ids["liquidator"], test_key("liquidator"))
    for maker, taker, market, leverage, offset in trades:
        if maker == taker:
            continue
        config = w.state.config.markets[market]
        tick, step = config.tick_size, config.step_size
        price = max(tick, w.state.markets[market].price * (1000 + offset) // 1000 // tick * tick)
        collateral = min(w.state.accounts[w.ids[n]].collateral for n in (maker, taker))
        size = max(0, collateral) * FRACTION_ONE // config.initial_margin * PRICE_ONE // price * leverage // 100 // step * step
        if size:
            w.apply(w.trade(maker, taker, size, market=market, limit_price=price))  # refused trades change nothing
    w.state.dirty_accounts.clear()
    index = RiskIndex(w.state)  # the liquidator's own account too: its take-overs can sink it (services/liquidator.py)
    emitted = run_liquidator(w, index, liquidator)
    for move in moves:
        if move[0] == "price":
            _, market, permille = move
            tick = w.state.config.markets[market].tick_size
            price = max(tick, w.state.markets[market].price * (1000 + permille) // 1000 // tick * tick)
            w.set_price(market, price)
        else:
            _, rate, elapsed = move
            state = w.state
            timestamp = max(state.time, state.funding_time) + elapsed
            if timestamp > w.l1_timestamp:
                continue
            indices = []
            for market, config in zip(state.markets, state.config.markets):
                bounded = max(-config.max_funding_rate, min(config.max_funding_rate, rate))
                change = abs(bounded) * market.price * (timestamp - state.funding_time) // FUNDING_RATE_ONE
                indices.append(market.funding_index + (change if bounded >= 0 else -change))
            w.must(FundingTick(timestamp, tuple(indices)))
        index.mark(w.state.dirty_accounts)
        w.state.dirty_accounts.clear()
        # the index misses no one: every account below maintenance is due now
        below = {i for i in w.state.accounts if i not in index.exclude and liquidatable(w.state, i)}
        index.refresh()
        keys_due = {i for i, key in index.keys.items() if key <= index.distance()}
        assert below <= keys_due | index.stale, f"missed {below - keys_due}"
        emitted += run_liquidator(w, index, liquidator)
    for kind in sorted({type(tx).__name__ for tx in emitted}):
        event(f"emitted {kind}")
    # quiescence: nothing the liquidator could still do is left
    for account_id in w.state.accounts:
        if account_id not in index.exclude:
            assert plan(w.state, account_id, w.ctx, liquidator, index.holders) is None


def test_a_deleverage_that_socializes_a_loss_is_planned_only_when_no_holder_can_pay() -> None:
    """The planner names the holders in ADL order (value/risk first), but skips one that cannot pay
    its share (the spec would socialize the rest, docs/risk.md §4.3-4.4) when another can."""
    from optinode.exchange.liquidation import plan_deleverage, rank_counterparties
    from optinode.spec.margin import get_value_and_risk
    from optinode.spec.types import Deleverage
    from optinode.testing.world import BTC_UNIT, ETH_UNIT

    w = World()
    w.deposit("alice", 300 * USD)
    w.deposit("poor", 300 * USD)
    w.deposit("rich", 10_000 * USD)
    w.deposit("lender", 1_000_000 * USD)
    price = w.state.markets[ETH].price  # 3000 USD per ETH
    half = ETH_UNIT // 2
    for seller in ("poor", "rich"):
        w.must(w.trade(seller, "alice", half, limit_price=price))
    w.must(w.trade("lender", "rich", BTC_UNIT, market=BTC, limit_price=w.state.markets[BTC].price))
    w.set_price(ETH, price * 2 // 3)  # alice at -700 USD: each half closes 350 USD of it

    def set_value(name: str, usd: int) -> None:  # crafted: the value as if lost elsewhere
        account = w.account(name)
        collateral, positions, _ = compute_settled_funding(w.state, account)
        account.collateral += usd * USD - get_value_and_risk(w.state, collateral, positions)[0]
        w.touch(w.ids[name])

    set_value("poor", 40)  # ratio 40 / 50: ranked first, cannot pay 350
    set_value("rich", 400)  # ratio 400 / ~3,050 (its BTC long): ranked second, can pay
    poor, rich = w.ids["poor"], w.ids["rich"]
    holders = [{poor: -half, rich: -half}] + [{} for _ in w.state.markets[1:]]
    assert rank_counterparties(w.state, holders[ETH], half, w.ids["alice"]) == [poor, rich]
    assert plan_deleverage(w.state, w.ids["alice"], w.ctx, holders) == Deleverage(w.ids["alice"], rich, ETH, half)
    # Without the rich holder, the poor one is named and the rest is socialized.
    tx = plan_deleverage(w.state, w.ids["alice"], w.ctx, [{poor: -half}] + holders[1:])
    assert tx is not None and tx.deleverager_id == poor
    w.must(tx)
    assert w.state.socialized_loss == 310 * USD
