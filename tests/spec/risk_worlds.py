"""Hypothesis strategy: random risk worlds — many markets, extreme prices, the risk paths.

`risk_worlds()` draws a `Recording` (optinode.testing.world): a genesis with 1-16 markets whose
prices range from 1 to ~2^62 price units per base unit, steps from 1 to 10^6 and margins from tiny to
100%; 3-5 accounts funded with up to 2^64-1 each (one owner holds two accounts); then 15-40 steps
that aim at the risk engine: trades near the oracle (a discount or premium the margin rules may
refuse), crashes, pumps and gaps, funding ticks at the rate bound, liquidations across the band of
accounts below maintenance (bankrupt ones need the insurance fund), deleverages of bankrupt accounts
against opposite holders (directly and as forced requests through the L1 queue), withdrawals and
deposits (which meet the socialized loss), sizes from one step to whole positions. Every transaction is kept, applied
or not, so property tests and the differential test against the Solidity prover replay them.
"""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import strategies as st

from optinode.spec.constants import FRACTION_ONE, FUNDING_RATE_ONE, MAX_PRICE
from optinode.spec.genesis import GenesisMarket
from optinode.spec.margin import compute_settled_funding, get_value_and_risk
from optinode.spec.constants import FORCED_DELEVERAGE
from optinode.spec.types import Deleverage, Deposit, ForcedWithdraw, FundingTick, Liquidate, Trade
from optinode.testing.world import Recording, World, make_genesis

NAMES = ("ann", "ben", "cat", "dan", "eve")
MAX_DEPOSIT = 2**64 - 1


@st.composite
def markets(draw: Callable[[st.SearchStrategy[Any]], Any]) -> tuple[GenesisMarket, ...]:
    out = []
    for i in range(draw(st.integers(1, 16))):
        price = draw(st.one_of(st.integers(1, 1_000), st.integers(10**6, 10**12), st.integers(10**15, 2**62)))
        maintenance = draw(st.sampled_from((1, 1_000, 25_000, 50_000, 200_000, 500_000)))
        initial = min(FRACTION_ONE, maintenance * draw(st.sampled_from((1, 2, 3))))
        out.append(
            GenesisMarket(
                name=f"M{i}",
                step_size=draw(st.sampled_from((1, 10, 1_000, 10**6))),
                tick_size=1,
                initial_margin=initial,
                maintenance_margin=maintenance,
                liquidation_fee=draw(st.sampled_from((0, maintenance // 5, maintenance))),
                max_funding_rate=draw(st.sampled_from((0, 10**5, 10**9))),
                max_position=draw(st.sampled_from((10**9, 10**15, 2**62))),
                price=price,
            )
        )
    return tuple(out)


class RiskWorld:
    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw
        self.w = World(make_genesis(markets=draw(markets())))
        self.notes: list[str] = []
        for name in NAMES[: draw(st.integers(3, len(NAMES)))]:
            self.w.deposit(name, draw(st.one_of(st.integers(1, 10**9), st.integers(10**9, MAX_DEPOSIT))))
            self.notes.append("deposit")
        self.w.deposit("ann2", draw(st.integers(1, MAX_DEPOSIT)), owner="ann")  # one owner, two accounts
        self.notes.append("deposit")

    # --- reading the state ---

    @property
    def state(self):
        return self.w.state

    def n_markets(self) -> int:
        return len(self.state.markets)

    def names(self) -> list[str]:
        return list(self.w.ids)

    def health(self, name: str) -> tuple[int, int]:
        collateral, positions, _ = compute_settled_funding(self.state, self.w.account(name))
        return get_value_and_risk(self.state, collateral, positions)

    def held(self, name: str, market: int) -> int:
        return self.w.size(name, market)

    def pick(self, options: list[Any]) -> Any:
        return options[self.draw(st.integers(0, len(options) - 1))]

    def size_up_to(self, market: int, limit: int) -> int:
        """A multiple of the step in [1 step, limit] (one step when limit is smaller), skewed to both ends."""
        step = self.state.config.markets[market].step_size
        steps = max(1, limit // step)
        k = self.draw(st.one_of(st.just(steps), st.integers(1, steps), st.just(1)))
        return k * step

    def price_near(self, oracle: int, permille: int) -> int:
        return max(1, min(MAX_PRICE, oracle + oracle * permille // 1000))

    def add(self, tx, note: str) -> None:
        self.w.apply(tx)
        self.notes.append(note)

    # --- steps ---

    def trade(self) -> None:
        market = self.draw(st.integers(0, self.n_markets() - 1))
        seller, buyer = self.draw(st.permutations(self.names()))[:2]
        oracle = self.state.markets[market].price
        price = self.price_near(oracle, self.draw(st.sampled_from((-200, -10, -1, 0, 0, 0, 0, 1, 10, 200))))
        config = self.state.config.markets[market]
        # up to about the seller's and buyer's budget at the initial margin, or their whole position
        values = (self.health(seller)[0], self.health(buyer)[0])
        budget = max(min(values) if self.draw(st.booleans()) else max(values), 1)  # min: both can open it
        limit = budget * FRACTION_ONE * 10**8 // max(1, price * config.initial_margin)
        held = abs(self.held(seller, market)) or abs(self.held(buyer, market))
        size = self.size_up_to(market, min(config.max_position, self.pick([limit, held or limit, limit * 2])))
        self.add(self.w.trade(seller, buyer, size, market=market, limit_price=price), "trade")

    def move_price(self) -> None:
        market = self.draw(st.integers(0, self.n_markets() - 1))
        oracle = self.state.markets[market].price
        if self.draw(st.booleans()):  # a move sized by the market's margins: to below maintenance, or past it
            initial = self.state.config.markets[market].initial_margin
            permille = initial * self.draw(st.sampled_from((700, 950, 1_050, 1_500))) // 1_000_000
            permille = max(1, permille) * self.pick([-1, 1])
        else:
            permille = self.draw(st.sampled_from((-900, -500, -300, -100, -60, -20, 20, 60, 100, 300, 1_000, 3_000)))
        self.w.set_price(market, self.price_near(oracle, permille))
        self.notes.append("oracle")
        if self.draw(st.booleans()):  # liquidators act at once, while an account is still solvent
            self.liquidate()

    def funding(self) -> None:
        state = self.state
        timestamp = max(state.funding_time + 1, state.time) + self.draw(st.integers(0, 5_000))
        if timestamp > self.w.l1_timestamp:
            return
        elapsed = timestamp - state.funding_time
        indices = []
        for market, config in zip(state.markets, state.config.markets):
            bound = config.max_funding_rate * market.price * elapsed // FUNDING_RATE_ONE
            indices.append(market.funding_index + self.pick([bound, -bound, 0]))
        self.add(FundingTick(timestamp, tuple(indices)), "funding")

    def liquidate(self) -> None:
        targets = [n for n in self.names() if (h := self.health(n))[0] < h[1]]
        solvent = [n for n in targets if self.health(n)[0] >= 0]
        if solvent and self.draw(st.booleans()):
            targets = solvent
        if not targets:
            return
        victim = self.pick(targets)
        markets = sorted(self.w.account(victim).positions)
        if not markets:
            return
        market = self.pick(markets)
        held = self.held(victim, market)
        others = [n for n in self.names() if n != victim]
        liquidator = max(others, key=lambda n: self.health(n)[0]) if self.draw(st.booleans()) else self.pick(others)
        value, risk = self.health(victim)
        mm = self.state.config.markets[market].maintenance_margin
        # a discount up to the band, scaled by the victim's value/risk ratio (what healthier allows)
        ratio_permille = max(0, min(value, risk)) * 1000 // max(risk, 1)
        u = self.draw(st.sampled_from((0, 500, 1000, 1100))) * ratio_permille // 1000
        discount = mm * u // 1_000_000  # permille of the oracle
        oracle = self.state.markets[market].price
        price = self.price_near(oracle, -discount if held > 0 else discount)
        size = self.size_up_to(market, abs(held))
        order = self.w.order(liquidator, market=market, is_buy=held > 0, size=size, limit_price=price)
        self.add(Liquidate(order, self.w.ids[victim], size), "liquidate")

    def deleverage(self) -> None:
        bankrupt = [n for n in self.names() if self.health(n)[0] < 0 and self.w.account(n).positions]
        if not bankrupt:
            return
        victim = self.pick(bankrupt)
        market = self.pick(sorted(self.w.account(victim).positions))
        held = self.held(victim, market)
        others = [n for n in self.names() if n != victim and self.held(n, market) * held < 0]
        if not others:
            return
        other = self.pick(others)
        size = self.size_up_to(market, min(abs(held), abs(self.held(other, market))))
        self.add(Deleverage(self.w.ids[victim], self.w.ids[other], market, size), "deleverage")

    def forced_deleverage(self) -> None:
        """A censored user's forced deleverage request (Bridge.requestForcedDeleverage), consumed by a
        ForcedWithdraw: sometimes of a solvent account or a malformed word (rejected, still consumed)."""
        bankrupt = [n for n in self.names() if self.health(n)[0] < 0 and self.w.account(n).positions]
        victim = self.pick(bankrupt or self.names())
        positions = sorted(self.w.account(victim).positions)
        market = self.pick(positions) if positions else 0
        held = self.held(victim, market)
        others = [n for n in self.names() if n != victim and self.held(n, market) * held < 0] or [n for n in self.names() if n != victim]
        other = self.pick(others)
        size = self.size_up_to(market, max(1, min(abs(held), abs(self.held(other, market)))))
        word = FORCED_DELEVERAGE | self.w.ids[other] << 72 | market << 64 | size
        if self.draw(st.integers(0, 9)) == 0:
            word |= 1 << 150  # a bit between the fields and the flag: rejected INVALID_AMOUNT
        self.w.queue_forced(victim, word, requester=self.pick(self.names()))
        self.add(ForcedWithdraw(), "forced deleverage")

    def withdraw(self) -> None:
        """A withdrawal (signed or forced) of part or all of what an account could take out: after a
        socialized loss it is paid less the haircut."""
        name = self.pick(self.names())
        value, _ = self.health(name)
        amount = max(1, value * self.draw(st.sampled_from((1, 500, 1000))) // 1000)
        amount = min(amount, MAX_DEPOSIT)
        if self.draw(st.booleans()):
            self.w.queue_forced(name, amount)
            self.add(ForcedWithdraw(), "forced withdraw")
        else:
            self.add(self.w.withdraw(name, amount), "withdraw")

    def deposit(self) -> None:
        """A deposit after the fact (credited at the unit's token value once a loss is socialized)."""
        name = self.pick(self.names())
        self.w.queue_deposit(name, self.draw(st.integers(1, 10**12)))
        self.add(Deposit(self.w.ids[name]), "deposit")

    def ledger(self) -> None:
        """Money in and out, and the forced path of the waterfall (one step's weight, so that the risk
        steps keep theirs)."""
        getattr(self, self.draw(st.sampled_from(("forced_deleverage", "withdraw", "deposit"))))()

    def step(self) -> None:
        kind = self.draw(st.sampled_from((
            "trade", "trade", "trade", "move_price", "move_price", "funding", "liquidate", "liquidate",
            "deleverage", "deleverage", "ledger",
        )))
        getattr(self, kind)()


@st.composite
def risk_worlds(draw: Callable[[st.SearchStrategy[Any]], Any], min_steps: int = 15, max_steps: int = 40) -> Recording:
    world = RiskWorld(draw)
    for _ in range(draw(st.integers(min_steps, max_steps))):
        world.step()
    return world.w.recording(world.notes)
