"""Funding from the premium of the book over the oracle, in integers (docs/market-services.md, "Funding").

The model is the one perpetual exchanges converged on (BitMEX, then dYdX and Hyperliquid), with our
units and our spec's bound:

- a **premium sample** is `(mid - oracle) / oracle`, the book's mid price against the oracle price,
  taken every few seconds (no sample when a side of the book is empty: an empty book says nothing);
- at a tick the samples since the last tick are **averaged** (a TWAP: one late quote cannot set the
  rate), and the rate for one funding *period* (8 h by default) is
  `P + clamp(interest - P, -band, +band)`: the premium plus an interest term kept near it;
- the **per-second rate** is that over the period, **clamped to the market's max_funding_rate**, and
  the index moves by `rate × oracle price × elapsed` — rounded toward zero, so that the spec's rule
  `|Δindex| × FUNDING_RATE_ONE <= max_rate × price × elapsed` (process_funding_tick rule 4) holds
  exactly whatever the premium.

Longs pay when the index rises (spec/margin.py), so a book above the oracle makes longs pay shorts,
which pulls the book back. All fractions here are FUNDING_RATE_ONE (10**12) fixed point.
"""

from __future__ import annotations

from dataclasses import dataclass

from optinode.spec.constants import FRACTION_ONE, FUNDING_RATE_ONE


def compute_premium(mid: int, oracle: int) -> int:
    """(mid - oracle) / oracle in FUNDING_RATE_ONE units, rounded toward zero."""
    numerator = (mid - oracle) * FUNDING_RATE_ONE
    return numerator // oracle if numerator >= 0 else -((-numerator) // oracle)


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def compute_rate_per_second(premium: int, *, period: int, interest_ppm: int, band_ppm: int, max_rate: int) -> int:
    """The funding rate per second (FUNDING_RATE_ONE units) for an average premium, within ±max_rate."""
    scale = FUNDING_RATE_ONE // FRACTION_ONE
    band = band_ppm * scale
    per_period = premium + clamp(interest_ppm * scale - premium, -band, band)
    per_second = abs(per_period) // period  # toward zero
    per_second = per_second if per_period >= 0 else -per_second
    return clamp(per_second, -max_rate, max_rate)


def compute_index_change(rate: int, price: int, elapsed: int) -> int:
    """rate × price × elapsed / FUNDING_RATE_ONE, rounded toward zero (so it never exceeds the bound)."""
    magnitude = abs(rate) * price * max(0, elapsed) // FUNDING_RATE_ONE
    return magnitude if rate >= 0 else -magnitude


@dataclass
class PremiumAverage:
    """The premium samples of one market since the last tick."""

    total: int = 0
    count: int = 0

    def add(self, premium: int) -> None:
        self.total += premium
        self.count += 1

    def mean(self) -> int:
        """The average premium (0 when no sample was taken: no book, no premium)."""
        if self.count == 0:
            return 0
        mean = abs(self.total) // self.count
        return mean if self.total >= 0 else -mean

    def reset(self) -> None:
        self.total = 0
        self.count = 0
