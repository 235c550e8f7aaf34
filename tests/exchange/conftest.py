"""Fixtures for the exchange tests: a World (optinode.testing.world) with a Matcher on its state.

    desk  (function)  alice, bob, carol (ids 0, 1, 2) holding FUNDS each, and a Matcher
"""

from __future__ import annotations

from typing import Any

import pytest

from optinode.exchange.matching import Matcher
from optinode.exchange.orders import Placement, PlaceResult, TimeInForce
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK, FUNDS, World


class Desk:
    """A World and a Matcher on its state; `place` signs and places an order in one call."""

    def __init__(self, names: tuple[str, ...] = ("alice", "bob", "carol"), funds: int = FUNDS) -> None:
        self.w = World()
        for name in names:
            self.w.deposit(name, funds)
        self.m = Matcher(self.w.state)

    def order(self, name: str, *, buy: bool, lots: int = 1, ticks: int = 0, **fields: Any):
        """A signed ETH order of `lots` steps at the genesis price + `ticks` ticks."""
        return self.w.order(name, is_buy=buy, size=lots * ETH_STEP, limit_price=ETH_PRICE + ticks * ETH_TICK, **fields)

    def place(self, name: str, *, buy: bool, lots: int = 1, ticks: int = 0, tif: TimeInForce = TimeInForce.GTC,
              reduce_only: bool = False, **fields: Any) -> PlaceResult:
        return self.m.place(Placement(self.order(name, buy=buy, lots=lots, ticks=ticks, **fields), tif, reduce_only))


@pytest.fixture
def desk() -> Desk:
    return Desk()
