"""One market's order book: price-time priority over resting orders.

Each side is a list of price levels, best first, and each level a FIFO of the orders resting at that
price, oldest first. `seq` is the matcher's command-order counter, so priority is a function of the
order in which commands were accepted, never of wall-clock time.

Why levels and not one sorted map over (price, seq): a book holds many orders at few prices (a
market maker's quotes sit on a handful of ticks), and the engine's operations are "the best order",
"append at a price", "remove this order". With a level per price these are a list index, a dict
lookup and an append or a delete in an `OrderedDict` (C, O(1); a plain dict would scan the holes a
FIFO leaves at its front), plus a `bisect.insort` into the list of prices only when a price level
opens — several times cheaper than sortedcontainers' pure-Python insert and peek (measured:
docs/benchmarks.md, "The engine thread's CPU"). The iteration order is the same: price priority,
then seq.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Iterator

import msgspec

from optinode.spec.types import OrderOrRef


class RestingOrder(msgspec.Struct, gc=False):
    """A live order: the signed order's bounds and what the matcher tracks about it.

    ``gc=False``: the garbage collector never tracks it (it refers to no object that refers back to
    it, so it cannot be part of a reference cycle; reference counting frees it). A book of tens of
    thousands of resting orders then adds nothing to a full collection's walk, which stops the
    engine's thread (docs/benchmarks.md, "The batch cut")."""

    order_hash: bytes
    account_id: int
    owner: bytes  # the account's L1 address: self-trade prevention groups by it
    market: int
    is_buy: bool
    price: int
    remaining: int
    seq: int
    handle: OrderOrRef  # the signed Order until its first fill, then its SlotRef
    reduce_only: bool
    expiry: int
    nonce: int  # the signed nonce (cancel-all compares it)
    filled: int = 0


class BookSide:
    """The bids or the asks: price levels best first (a level's key is -price for bids, price for
    asks, so ascending keys are best first for both), each an OrderedDict seq -> order."""

    __slots__ = ("is_buy", "keys", "levels", "count")

    def __init__(self, is_buy: bool) -> None:
        self.is_buy = is_buy
        self.keys: list[int] = []  # sorted ascending: best price first
        self.levels: dict[int, OrderedDict[int, RestingOrder]] = {}
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, order: RestingOrder) -> None:
        key = -order.price if self.is_buy else order.price
        level = self.levels.get(key)
        if level is None:
            level = self.levels[key] = OrderedDict()
            insort(self.keys, key)
        elif next(reversed(level)) > order.seq:
            # (Never on the engine's paths: an order rests with a seq above every resting one, and a
            # restore adds them in seq order. Kept correct anyway: the level is re-sorted.)
            level[order.seq] = order
            for seq in sorted(level):
                level.move_to_end(seq)
            self.count += 1
            return
        level[order.seq] = order
        self.count += 1

    def remove(self, order: RestingOrder) -> None:
        key = -order.price if self.is_buy else order.price
        level = self.levels[key]
        del level[order.seq]
        self.count -= 1
        if not level:
            del self.levels[key]
            del self.keys[bisect_left(self.keys, key)]

    def best(self) -> RestingOrder | None:
        if not self.count:
            return None
        return next(iter(self.levels[self.keys[0]].values()))

    def values(self) -> Iterator[RestingOrder]:
        """Every order, best first (price, then seq)."""
        levels = self.levels
        for key in self.keys:
            yield from levels[key].values()

    def crossing(self, limit_key: int) -> int:
        """How many orders rest at keys <= limit_key."""
        levels = self.levels
        return sum(len(levels[key]) for key in self.keys[:bisect_left(self.keys, limit_key + 1)])


class MarketBook:
    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids = BookSide(True)
        self.asks = BookSide(False)

    def side(self, is_buy: bool) -> BookSide:
        return self.bids if is_buy else self.asks

    def add(self, order: RestingOrder) -> None:
        (self.bids if order.is_buy else self.asks).add(order)

    def remove(self, order: RestingOrder) -> None:
        (self.bids if order.is_buy else self.asks).remove(order)

    def best(self, is_buy: bool) -> RestingOrder | None:
        """The best resting order on the bid (is_buy) or ask side."""
        return (self.bids if is_buy else self.asks).best()

    def crossing(self, taker_is_buy: bool, limit_price: int) -> int:
        """How many resting orders an order on this side with this limit could meet (an upper bound
        on its fills): asks at or below a buy's limit, bids at or above a sell's. O(price levels)."""
        if taker_is_buy:
            return self.asks.crossing(limit_price)  # every ask price <= limit
        return self.bids.crossing(-limit_price)  # every bid price >= limit

    def levels(self, is_buy: bool, depth: int) -> list[tuple[int, int, int]]:
        """Up to `depth` price levels of one side, best first: (price, total remaining, order count)."""
        side = self.side(is_buy)
        out: list[tuple[int, int, int]] = []
        for key in side.keys[:depth]:
            level = side.levels[key]
            out.append((-key if is_buy else key, sum(o.remaining for o in level.values()), len(level)))
        return out

    def __iter__(self) -> Iterator[RestingOrder]:
        yield from self.bids.values()
        yield from self.asks.values()
