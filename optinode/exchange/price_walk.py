"""The devnet's price walk: what the devnet oracles sign (docs/market-services.md, "Oracle feed").

A geometric random walk per market, deterministic from a seed: step n of market m draws from
`random.Random(f"{seed}:{m}:{n}")`, so the same seed and the same update times give the same prices
on every run (the scenarios and the tests rely on it). The walk is

- **volatile**: each step moves the fundamental price by a normal draw of stdev
  `volatility × sqrt(elapsed seconds)` (relative);
- **scripted**: a crash makes the fundamental fall by `drop` at a given step of one market;
- **bounded**: when a maximum move per second is set (the walk's own, or the spec's when a market
  has one), the published price follows the fundamental no faster than that bound allows, so a
  crash plays out over several updates instead of being refused;
- **noisy across oracles**: each oracle signs its own sample, the published price times a small
  deterministic offset within `spread`, so the on-chain price is the spec's median of distinct
  samples (and every sample stays within the move bound around the last on-chain price).

Prices are PRICE_ONE fixed point per base unit and rounded to the market's tick (the spec needs
only a positive price; ticks keep them readable and usable as limit prices).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from optinode.spec.constants import FRACTION_ONE, MAX_PRICE


@dataclass(frozen=True)
class Crash:
    market: int
    after_updates: int  # the walk's step of that market at which the fall starts
    drop_ppm: int  # the fundamental falls by this fraction (parts per million)


@dataclass(frozen=True)
class WalkParams:
    seed: int = 0
    volatility_ppm: int = 500  # relative stdev per sqrt(second)
    spread_ppm: int = 200  # oracle samples differ by up to this fraction of the price
    max_move_ppm_per_s: int = 0  # 0: unbounded
    crashes: tuple[Crash, ...] = ()


def compute_move_bound(price: int, max_move_ppm_per_s: int, elapsed: int) -> int | None:
    """The most a price may move from `price` in `elapsed` seconds (None: unbounded)."""
    if max_move_ppm_per_s <= 0:
        return None
    return price * max_move_ppm_per_s * max(0, elapsed) // FRACTION_ONE


def clamp_move(target: int, reference: int, bound: int | None) -> int:
    if bound is None:
        return target
    return max(reference - bound, min(reference + bound, target))


def round_to_tick(price: int, tick: int) -> int:
    """The nearest positive multiple of `tick`, at most MAX_PRICE."""
    rounded = (price + tick // 2) // tick * tick
    return max(tick, min(rounded, MAX_PRICE // tick * tick))


@dataclass
class _Market:
    fundamental: float  # the walk before any move bound (float: a devnet simulation, not a rule)
    published: int  # the price the oracles last signed around
    time: int | None  # the walk's time (L1 seconds); None: it starts at its first step
    steps: int = 0


@dataclass
class PriceWalk:
    params: WalkParams
    start_prices: list[int]  # one per market (the genesis prices)
    ticks: list[int]
    start_time: int | None  # None: each market's walk starts at its first step (no move for the time before)
    markets: list[_Market] = field(init=False)

    def __post_init__(self) -> None:
        self.markets = [_Market(float(p), p, self.start_time) for p in self.start_prices]

    def step(self, market: int, now: int, max_move_ppm_per_s: int = 0) -> int:
        """Advance market's walk to L1 time `now`; the published price (bounded by the tighter of the
        walk's own move bound and `max_move_ppm_per_s`, e.g. the spec's)."""
        state = self.markets[market]
        elapsed = 0 if state.time is None else max(0, now - state.time)
        rng = random.Random(f"{self.params.seed}:{market}:{state.steps}")
        sigma = self.params.volatility_ppm / FRACTION_ONE * math.sqrt(elapsed)
        state.fundamental *= math.exp(rng.gauss(0.0, 1.0) * sigma - sigma * sigma / 2)  # mean-preserving
        for crash in self.params.crashes:
            if crash.market == market and crash.after_updates == state.steps:
                state.fundamental *= 1 - crash.drop_ppm / FRACTION_ONE
        state.steps += 1
        previous = state.published
        bound = self.bound(previous, elapsed, max_move_ppm_per_s)
        target = max(1, min(MAX_PRICE, int(state.fundamental)))
        # rounding to the tick must not step outside the bound
        state.published = clamp_move(round_to_tick(clamp_move(target, previous, bound), self.ticks[market]), previous, bound)
        state.time = now if state.time is None else max(state.time, now)
        return state.published

    def bound(self, price: int, elapsed: int, max_move_ppm_per_s: int = 0) -> int | None:
        rates = [r for r in (self.params.max_move_ppm_per_s, max_move_ppm_per_s) if r > 0]
        return compute_move_bound(price, min(rates), elapsed) if rates else None

    def sample_price(self, market: int, oracle: int, *, last_price: int, elapsed: int, max_move_ppm_per_s: int = 0) -> int:
        """What oracle `oracle` signs for the current step: the published price offset by its own
        deterministic share of the spread, kept within the move bound around the last on-chain price."""
        state = self.markets[market]
        rng = random.Random(f"{self.params.seed}:{market}:{state.steps}:oracle:{oracle}")
        offset = rng.uniform(-1.0, 1.0) * self.params.spread_ppm / FRACTION_ONE
        price = max(1, int(state.published * (1 + offset)))
        return clamp_move(price, last_price, self.bound(last_price, elapsed, max_move_ppm_per_s))
