"""Edge-seeking random walks for the differential test (complements tests/spec/strategies.py).

A walk drives `optinode.testing.world.World` (two markets, three oracles, quorum two) through
transactions chosen to sit on the boundaries where integer rounding and rule order matter: fills that
flip a position or close it exactly, fills sized around the margin limit, fee rates up to 100%,
continuations of resting orders, oracle shocks that push accounts under maintenance or below zero,
funding ticks at exactly the rate bound (and one unit past it), withdrawals of exactly the free margin
(and one unit more), liquidations at the edges of the price band, deleverages of partial sizes that do
not divide evenly. Each step is recorded as the one-step call the prover gets and the spec's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hypothesis import strategies as st

from optinode.spec.record_codec import decode_transaction, encode_transaction
from optinode.spec.constants import FRACTION_ONE, FUNDING_RATE_ONE, PRICE_ONE
from optinode.spec.errors import WitnessError
from optinode.spec.margin import compute_settled_funding, get_total_risk, get_total_value, is_liquidatable
from optinode.spec.types import (
    Deleverage,
    Deposit,
    ForcedWithdraw,
    FundingTick,
    Liquidate,
    OraclePrice,
    SlotRef,
    Trade,
    Transaction,
)
from optinode.spec.witness import build_witness, execute_witness
from optinode.testing.world import GENESIS_TIME, World

NAMES = ("ann", "ben", "cat", "whale")  # the whale is the usual counterparty and liquidator
USD = 10**6


@dataclass
class Step:
    kind: str
    pre_root: bytes
    record: bytes
    ctx: Any
    witness: Any
    expected: tuple[bytes, int, bool] | str  # (post_root, code, applied) or "witness-error"

    @property
    def item(self) -> tuple:
        return self.pre_root, self.record, self.ctx, self.witness


class Walk:
    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw
        self.w = World()
        self.time = GENESIS_TIME
        self.steps: list[Step] = []
        for name in NAMES:
            amount = 50_000_000 if name == "whale" else self.draw(st.sampled_from([300, 2_000, 20_000, 200_000]))
            self.w.deposit(name, amount * USD)
        self.w.root()

    # --- helpers ---

    def pick(self, options):
        return options[self.draw(st.integers(0, len(options) - 1))]

    @property
    def state(self):
        return self.w.state

    def held(self, name: str, market: int) -> int:
        position = self.state.accounts[self.w.ids[name]].positions.get(market)
        return position.size if position else 0

    def settled(self, name: str):
        collateral, positions, _ = compute_settled_funding(self.state, self.state.accounts[self.w.ids[name]])
        return collateral, positions

    def free_margin(self, name: str) -> int:
        collateral, positions = self.settled(name)
        return get_total_value(self.state, collateral, positions) - get_total_risk(self.state, positions, initial=True)

    def tick(self, market: int) -> int:
        return self.state.config.markets[market].tick_size

    def step_size(self, market: int) -> int:
        return self.state.config.markets[market].step_size

    def near_price(self, market: int, spread_permille: int = 30) -> int:
        oracle = self.state.markets[market].price
        price = oracle + oracle * self.draw(st.integers(-spread_permille, spread_permille)) // 1000
        return max(self.tick(market), price // self.tick(market) * self.tick(market))

    # --- recording ---

    def record(self, tx: Transaction) -> None:
        pre_root = self.w.root()
        record = encode_transaction(tx)
        decoded = decode_transaction(record)
        ctx = self.w.ctx
        witness = build_witness(self.state, self.w.commitment, decoded, ctx)
        try:
            post_root, receipt = execute_witness(pre_root, witness, decoded, ctx)
            expected: tuple | str = (post_root, int(receipt.code), receipt.applied)
        except WitnessError:
            expected = "witness-error"
        self.steps.append(Step(type(decoded).__name__, pre_root, record, ctx, witness, expected))
        self.w.apply(tx)

    # --- transactions ---

    def trade(self) -> Transaction:
        a, b = self.draw(st.permutations(NAMES))[:2]
        if self.draw(st.integers(0, 9)) < 7:  # mostly against the whale, so the counterparty's margin holds
            a = self.pick([n for n in NAMES if n != "whale"])
            b = "whale"
        market = self.draw(st.integers(0, 1))
        step = self.step_size(market)
        held = self.held(a, market)
        maker_buys = self.draw(st.booleans())
        price = self.near_price(market)
        oracle = self.state.markets[market].price
        fee = self.pick([0, 0, 100, 999, 25_000, FRACTION_ONE])
        how = self.pick(["close", "flip", "mirror", "edge", "edge", "edge", "random", "huge"])
        if how == "close" and held:
            size, maker_buys = abs(held), held < 0
        elif how == "flip" and held:
            maker_buys = held < 0
            size = abs(held) + step * self.draw(st.integers(1, max(1, abs(held) // step * 2)))
        elif how == "mirror" and held:
            # flip to (about) the same size on the other side: exposure "increases" although |size| does not
            maker_buys = held < 0
            size = 2 * abs(held) - step * self.draw(st.integers(0, 3))
        elif how == "edge":
            # about the largest fill the maker's margin allows: free margin over the initial margin, the
            # distance from the oracle price and the fee per base unit (closing first frees |held|)
            initial = self.state.config.markets[market].initial_margin
            unit = oracle * initial + abs(price - oracle) * FRACTION_ONE + price * fee + 1
            capacity = max(0, self.free_margin(a)) * PRICE_ONE * FRACTION_ONE // unit
            closing = abs(held) if (held < 0) == maker_buys and held else 0
            size = max(step, (capacity + 2 * closing) // step * step + step * self.draw(st.integers(-2, 2)))
        elif how == "huge":
            size = step * self.draw(st.integers(10**6, 10**9))
        else:
            size = step * self.draw(st.integers(1, 50_000))
        size = max(step, size // step * step)
        rest = self.pick([0, 0, step, size])  # a partial maker leaves a slot
        maker_order = self.w.order(a, market=market, is_buy=maker_buys, size=size + rest, limit_price=price, fee_rate=fee)
        slack = self.tick(market) * self.draw(st.integers(-1, 3))
        taker_price = price + slack if not maker_buys else max(self.tick(market), price - slack)
        taker = self.w.order(b, market=market, is_buy=not maker_buys, size=size + self.pick([0, step]), limit_price=taker_price, fee_rate=self.pick([0, 500, FRACTION_ONE]))
        maker: Any = maker_order
        live = [
            (i, s) for i, s in self.state.slots.items() if s.remaining > 0 and s.account_id != self.w.ids[b] and s.market == market
        ]
        if live and self.draw(st.integers(0, 2)) == 0:
            slot_id, slot = self.pick(sorted(live))
            maker = SlotRef(slot_id)
            size = min(size, slot.remaining) // step * step or step
            taker = self.w.order(
                b, market=market, is_buy=not slot.is_buy, size=size, limit_price=slot.limit_price, fee_rate=self.pick([0, 500])
            )
        return Trade(maker, taker, size)

    def oracle(self) -> Transaction:
        market = self.draw(st.integers(0, 1))
        oracle = self.state.markets[market].price
        permille = self.pick([-250, -120, -70, -40, -10, 10, 40, 70, 120, 250])
        price = max(1, oracle + oracle * permille // 1000 + self.draw(st.integers(-3, 3)))
        if self.draw(st.booleans()):  # round prices put the liquidation band exactly on a tick
            price = max(10**6, price // 10**6 * 10**6)
        self.time += self.draw(st.integers(1, 300))
        oracles = self.pick([(0, 1), (0, 2), (1, 2), (0, 1, 2)])
        jitter = self.pick([0, 5])
        samples = tuple(
            self.w.sample(i, market, max(1, price + self.draw(st.integers(-jitter, jitter))), self.time + self.draw(st.integers(0, 2)))
            for i in oracles
        )
        return OraclePrice(market, samples)

    def funding(self) -> Transaction:
        self.time += self.draw(st.integers(1, 600))
        timestamp = max(self.time, self.state.time, self.state.funding_time + 1)
        self.time = timestamp
        elapsed = timestamp - self.state.funding_time
        indices = []
        for market, config in enumerate(self.state.config.markets):
            bound = config.max_funding_rate * self.state.markets[market].price * elapsed // FUNDING_RATE_ONE
            delta = self.pick([bound, -bound, bound + 1, bound // 3, -bound // 7, 0])
            indices.append(self.state.markets[market].funding_index + delta)
        return FundingTick(timestamp, tuple(indices))

    def withdraw(self) -> Transaction:
        name = self.pick(NAMES)
        free = self.free_margin(name)
        amount = max(1, free + self.pick([0, 1, -1, -free // 2]))
        return self.w.withdraw(name, amount)

    def forced(self) -> Transaction:
        name = self.pick(NAMES)
        free = self.free_margin(name)
        self.w.queue_forced(name, max(0, free + self.pick([0, 1, -7])), requester=self.pick([name, name, "stranger"]))
        return ForcedWithdraw()

    def deposit(self) -> Transaction:
        name = self.pick(NAMES)
        self.w.queue_deposit(name, self.draw(st.integers(0, 10**11)))
        return Deposit(self.w.ids[name])

    def liquidate(self) -> Transaction:
        victim = self.pick(self.targets()[0] or list(NAMES))
        liquidator = "whale" if victim != "whale" and self.draw(st.booleans()) else self.pick([n for n in NAMES if n != victim])
        market = self.pick(sorted(self.state.accounts[self.w.ids[victim]].positions) or [0])
        held = self.held(victim, market)
        step = self.step_size(market)
        oracle = self.state.markets[market].price
        mm = self.state.config.markets[market].maintenance_margin
        band = oracle * (FRACTION_ONE - mm) // FRACTION_ONE if held > 0 else oracle * (FRACTION_ONE + mm) // FRACTION_ONE
        tick = self.tick(market)
        price = max(tick, band // tick * tick + tick * self.draw(st.integers(-1, 2)))
        size = max(step, abs(held) * self.pick([1, 3, 10, 10]) // 10 // step * step)
        order = self.w.order(liquidator, market=market, is_buy=held > 0, size=size + self.pick([0, step]), limit_price=price, fee_rate=self.pick([0, 700]))
        return Liquidate(order, self.w.ids[victim], size)

    def deleverage(self) -> Transaction:
        victim = self.pick(self.targets()[1] or list(NAMES))
        market = self.pick(sorted(self.state.accounts[self.w.ids[victim]].positions) or [0])
        held = self.held(victim, market)
        others = [n for n in NAMES if n != victim and self.held(n, market) * held < 0] or [n for n in NAMES if n != victim]
        other = self.pick(others)
        cap = min(abs(held), abs(self.held(other, market))) or 1
        size = max(1, cap * self.draw(st.integers(1, 7)) // 7 + self.pick([0, 0, 1, -1]))
        return Deleverage(self.w.ids[victim], self.w.ids[other], market, size)

    def targets(self) -> tuple[list[str], list[str]]:
        """(liquidatable, underwater) accounts."""
        liquidatable, underwater = [], []
        for name in NAMES:
            collateral, positions = self.settled(name)
            if positions and is_liquidatable(self.state, collateral, positions):
                liquidatable.append(name)
            if positions and get_total_value(self.state, collateral, positions) < 0:
                underwater.append(name)
        return liquidatable, underwater

    def step(self) -> None:
        liquidatable, underwater = self.targets()
        actions = (
            (30, "trade"),
            (12, "oracle"),
            (5, "funding"),
            (6, "withdraw"),
            (3, "forced"),
            (3, "deposit"),
            (25 if liquidatable else 2, "liquidate"),
            (25 if underwater else 2, "deleverage"),
        )
        roll = self.draw(st.integers(0, sum(w for w, _ in actions) - 1))
        for weight, action in actions:
            if roll < weight:
                self.record(getattr(self, action)())
                return
            roll -= weight


@st.composite
def walks(draw: Callable[[st.SearchStrategy[Any]], Any], min_steps: int = 20, max_steps: int = 50) -> list[Step]:
    walk = Walk(draw)
    for _ in range(draw(st.integers(min_steps, max_steps))):
        walk.step()
    return walk.steps
