"""The matching engine: order books over the spec state, emitting only Trades the spec applied.

`Matcher` owns one `MarketBook` per market and works on the engine's spec `State`. Every fill is
executed by `spec.transition.state_transition` on that state the moment it is matched: a fill is
emitted (returned in `PlaceResult.fills`, to be logged and batched) only if its receipt is OK, and
an invalid Trade leaves the state untouched (a spec guarantee), so an emitted Trade is never
invalid and nothing here re-implements a rule. When a fill fails, `probe.probe_side` asks the spec
whose side failed: a failing maker is cancelled and matching goes on, a failing taker stops with the
spec's ErrorCode. What is about to rest is probed the same way at its own limit price.

Determinism: the books, the emitted Trades and the state are a function of the initial state and the
sequence of commands (`apply`) and spec transactions the engine interleaves with them (price and
funding ticks). Nothing reads a clock or iterates an unordered collection, so replaying the durable
log rebuilds the same books (tests/exchange/test_rebuild.py).

See docs/matching.md for order types, priority, self-trade prevention and the margin pre-check.
"""

from __future__ import annotations

import heapq

import msgspec
from sortedcontainers import SortedList

from optinode.spec.eip712 import compute_order_digest
from optinode.spec.errors import ErrorCode, InvalidInput, InvalidTransaction
from optinode.spec.state import State, require_account
from optinode.spec.transition import OrderSide, is_well_formed, resolve_order, state_transition
from optinode.spec.types import L1Context, Order, OrderOrRef, SlotRef, Trade

from .book import MarketBook, RestingOrder
from .orders import (
    CancelAll,
    Cancelled,
    CancelOrder,
    Command,
    ExpireOrders,
    Fill,
    Placement,
    PlaceResult,
    Reason,
    RestingView,
    Status,
    TimeInForce,
    reason_name,
)
from .probe import PROBE_CTX, is_side_ok, probe_side

DEFAULT_MAX_OPEN_ORDERS = 1_000  # per account, all markets
# Per account: accepted orders not yet expired that `seen` remembers (replay protection) before the
# account's book nonce floor rises past the oldest of them (docs/matching.md, "Replay protection"):
# `seen` then holds at most this many entries per account, whatever the order rate and expiries.
DEFAULT_MAX_REMEMBERED = 4_096
FIRST_SLOT = SlotRef(0)


class UnknownOrder(InvalidInput):
    """A cancel named an order that is not live for that account (an expected client error)."""


class RestingSnapshot(RestingView, frozen=True, array_like=True, gc=False):
    """One resting order in a checkpoint: its view plus what the matcher tracks besides (the owner is
    the account's)."""

    nonce: int
    filled: int


class MatcherSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything that decides the matcher's future behaviour, stored in each state checkpoint next to
    the spec state (so a restart is that checkpoint plus the later log, not the whole log from
    genesis). The lookup tables (`orders`, `by_account`, `by_expiry`, `reserved`) are functions of
    the resting orders and are rebuilt from them."""

    resting: tuple[RestingSnapshot, ...]  # in seq order (seq is unique: placement order)
    nonce_floor: tuple[tuple[int, int], ...]  # sorted (account, floor)
    seen: tuple[tuple[bytes, int, int, int], ...]  # sorted (order hash, expiry, account, nonce): accepted orders not yet expired
    seq: int


class BookChanges(msgspec.Struct, frozen=True):
    """The matcher's changes since the last cut (`Matcher.take_changes`): the rows an incremental
    checkpoint rewrites. None: the resting order left the book / the hash left `seen`."""

    resting: list[tuple[bytes, RestingSnapshot | None]]
    seen: list[tuple[bytes, tuple[int, int, int] | None]]  # (expiry, account, nonce)
    floors: list[tuple[int, int]]
    seq: int


def _snapshot(o: RestingOrder) -> RestingSnapshot:
    return RestingSnapshot(o.order_hash, o.account_id, o.market, o.is_buy, o.price, o.remaining, o.seq, o.handle, o.reduce_only,
                           o.expiry, o.nonce, o.filled)


class Matcher:
    def __init__(self, state: State, *, max_open_orders: int = DEFAULT_MAX_OPEN_ORDERS,
                 max_remembered: int = DEFAULT_MAX_REMEMBERED) -> None:
        self.state = state
        self.max_open_orders = max_open_orders
        self.max_remembered = max_remembered
        self.books = [MarketBook() for _ in state.config.markets]
        self.orders: dict[bytes, RestingOrder] = {}  # live orders by hash
        self.by_account: dict[int, dict[bytes, RestingOrder]] = {}
        # Live orders by signed expiry: expiry -> {seq: hash}, and a heap of the expiries that have
        # (or had) a bucket; a bucket that empties is dropped and its heap entry skipped when it
        # comes up. (A SortedList of (expiry, seq, hash) cost ~1.7 µs per resting order; this ~0.3.)
        self.by_expiry: dict[int, dict[int, bytes]] = {}
        self.expiry_heap: list[int] = []
        self.in_expiry_heap: set[int] = set()
        self.reserved: dict[tuple[int, int], bytes] = {}  # (account, nonce) of live orders not yet filled
        self.nonce_floor: dict[int, int] = {}  # cancel-all: nonces below it are refused
        # Every order accepted (live or not) until its signed expiry has passed: a cancelled order
        # that never filled has an unused nonce, so without this its signature could be replayed.
        # Bounded per account (`max_remembered`): past it the oldest nonce goes and the account's
        # book floor rises above it, which refuses that signature just as well.
        self.seen: dict[bytes, tuple[int, int, int]] = {}  # hash -> (expiry, account, nonce)
        self.seen_by_expiry: list[tuple[int, bytes]] = []  # a heap of (expiry, hash)
        self.seen_by_account: dict[int, SortedList] = {}  # account -> its seen (nonce, hash), lowest first
        self.seq = 0
        # What changed since the last `take_changes` (the next checkpoint's rows): order hashes whose
        # resting order was added, changed or removed; hashes that entered or left `seen`; accounts
        # whose cancel-all floor rose.
        self._changed: set[bytes] = set()
        self._seen_changed: set[bytes] = set()
        self._floors_changed: set[int] = set()

    # --- commands --------------------------------------------------------------------------------

    def apply(self, command: Command, ctx: L1Context = PROBE_CTX) -> object:
        """Apply one logged command (the engine's replay entry point)."""
        # Every change to the books goes through here, so this is where the incremental checkpoint
        # learns what changed (`take_changes`): the orders a result names, never a scan of the book.
        kind = type(command)
        if kind is Placement:
            placed = self.place(command, ctx)
            if placed.logged:  # (a result that is not logged changed nothing)
                changed = self._changed
                changed.add(placed.order_hash)
                changed.update([fill.maker_hash for fill in placed.fills])
                changed.update([gone.order_hash for gone in placed.cancelled])
                self._seen_changed.add(placed.order_hash)
                self._bound_seen(command.order.account_id)
            return placed
        if kind is CancelOrder:
            cancelled = self.cancel(command.account_id, command.order_hash)
            self._changed.add(cancelled.order_hash)
            return cancelled
        if kind is CancelAll:
            removed = self.cancel_all(command.account_id, command.nonce_below)
            self._changed.update([gone.order_hash for gone in removed])
            self._floors_changed.add(command.account_id)
            self._bound_seen(command.account_id)
            return removed
        if kind is ExpireOrders:
            expired = self.expire()
            self._changed.update([gone.order_hash for gone in expired])
            return expired
        raise TypeError(f"not a book command: {command!r}")

    def order_hash(self, order: Order) -> bytes:
        """An order's id: its EIP-712 digest (signature excluded)."""
        return compute_order_digest(self.state.config.domain_separator, order)

    def place(self, placement: Placement, ctx: L1Context = PROBE_CTX) -> PlaceResult:
        order = placement.order
        # The spec's range checks of an order are those of a Trade that carries it (against a slot
        # reference, always in range: the order is checked once): an order out of them could not
        # even be hashed (the mempool refuses it first; this keeps the engine whole whatever it is
        # handed).
        if not is_well_formed(Trade(order, FIRST_SLOT, 0)):
            return PlaceResult(b"", Status.REJECTED, reason=ErrorCode.MALFORMED.name, logged=False)
        order_hash = compute_order_digest(self.state.config.domain_separator, order)  # (self.order_hash)
        # Orders expire against the batch's L1 time (docs/risk.md), which is never before the system
        # time (every oracle and funding timestamp is at most its batch's L1 time).
        now = max(ctx.l1_timestamp, self.state.time)
        side = self._check_placement(placement, order_hash, now)
        if type(side) is not OrderSide:
            return PlaceResult(order_hash, Status.REJECTED, reason=reason_name(side), logged=False)
        self.seq += 1
        taker = RestingOrder(
            order_hash, order.account_id, side.account.owner, order.market, order.is_buy, order.limit_price,
            order.size, self.seq, order, placement.reduce_only, order.expiry, order.nonce,
        )
        # Remembered whatever the outcome (a result that changed nothing is not logged and leaves
        # no trace, so it is forgotten again below).
        self._remember(order_hash, order)
        fills, cancelled, stop = self._match(taker, ctx)
        if stop is None and taker.remaining > 0:
            # With no fill the state is the one the placement check resolved the order on.
            stop = Reason.IOC_UNFILLED if placement.tif is TimeInForce.IOC else self._check_rest(taker, None if fills else side)
            if stop is None:
                self._rest(taker)
                status = Status.PARTIALLY_FILLED if fills else Status.RESTING
                return PlaceResult(order_hash, status, tuple(fills), None, tuple(cancelled), taker.remaining)
        if stop is None:
            return PlaceResult(order_hash, Status.FILLED, tuple(fills), None, tuple(cancelled))
        if fills or stop is Reason.IOC_UNFILLED:
            return PlaceResult(order_hash, Status.CANCELLED, tuple(fills), reason_name(stop), tuple(cancelled))
        if not cancelled:  # nothing happened after all: leave no trace, so it need not be logged
            self.seq -= 1
            self._forget(order_hash, order.expiry)
        return PlaceResult(order_hash, Status.REJECTED, (), reason_name(stop), tuple(cancelled), logged=bool(cancelled))

    def cancel(self, account_id: int, order_hash: bytes) -> Cancelled:
        order = self.orders.get(order_hash)
        if order is None or order.account_id != account_id:
            raise UnknownOrder(f"no live order 0x{order_hash.hex()} of account {account_id}")
        return self._remove(order, Reason.USER_CANCELLED)

    def cancel_all(self, account_id: int, nonce_below: int) -> list[Cancelled]:
        """Cancel the account's live orders with a nonce below `nonce_below` (all of them for a
        nonce above the account's window) and refuse such nonces from now on."""
        self.nonce_floor[account_id] = max(self.nonce_floor.get(account_id, 0), nonce_below)
        live = list(self.by_account.get(account_id, {}).values())
        return [self._remove(o, Reason.USER_CANCELLED) for o in live if o.nonce < nonce_below]

    def expire(self) -> list[Cancelled]:
        """Remove resting orders whose signed expiry is before the system time (the spec's clock),
        and forget expired orders' hashes (their signatures can no longer fill)."""
        now = self.state.time
        removed = []
        while (expiry := self.next_expiry()) is not None and expiry < now:
            bucket = self.by_expiry[expiry]
            for seq in sorted(bucket):  # (expiry, seq) order
                removed.append(self._remove(self.orders[bucket[seq]], ErrorCode.EXPIRED))
        while self.seen_by_expiry and self.seen_by_expiry[0][0] < now:
            expiry, order_hash = heapq.heappop(self.seen_by_expiry)
            entry = self.seen.get(order_hash)
            if entry is not None and entry[0] == expiry:  # (else forgotten already)
                self._drop_seen(order_hash)
        return removed

    def next_expiry(self) -> int | None:
        """The earliest signed expiry of a live order (None: no order rests)."""
        heap = self.expiry_heap
        while heap and heap[0] not in self.by_expiry:
            self.in_expiry_heap.discard(heapq.heappop(heap))
        return heap[0] if heap else None

    # --- views -----------------------------------------------------------------------------------

    def open_orders(self, account_id: int) -> list[RestingView]:
        return [self._view(o) for o in self.by_account.get(account_id, {}).values()]

    def get(self, order_hash: bytes) -> RestingView | None:
        order = self.orders.get(order_hash)
        return self._view(order) if order else None

    def depth(self, market: int, levels: int) -> dict[str, list[tuple[int, int, int]]]:
        book = self.books[market]
        return {"bids": book.levels(True, levels), "asks": book.levels(False, levels)}

    def snapshot(self) -> tuple:
        """Everything that decides future matching, in a canonical order (equal iff the books are)."""
        books = tuple(tuple(self._view(o) for o in book) for book in self.books)
        return (
            books,
            tuple(sorted(self.nonce_floor.items())),
            tuple(sorted(self.seen.items())),
            tuple(sorted(self.reserved.items())),
            self.seq,
        )

    def export(self) -> MatcherSnapshot:
        """The whole matcher in checkpoint form (see `MatcherSnapshot`), O(book); `restore` inverts
        it. The engine's cuts write `take_changes` instead (docs/sequencer.md, "Checkpoints")."""
        resting = sorted((o for book in self.books for o in book), key=lambda o: o.seq)
        return MatcherSnapshot(
            resting=tuple(_snapshot(o) for o in resting),
            nonce_floor=tuple(sorted(self.nonce_floor.items())),
            seen=tuple(sorted((h, *entry) for h, entry in self.seen.items())),
            seq=self.seq,
        )

    def take_changes(self) -> BookChanges:
        """What changed since the last call (or since `restore`), as the rows of the next incremental
        checkpoint, and forget it: O(what changed), never O(book). A resting order that is gone, or a
        hash no longer in `seen`, comes as None (its row is deleted)."""
        orders, seen, floors = self.orders, self.seen, self.nonce_floor
        changes = BookChanges(
            resting=[(h, _snapshot(orders[h]) if h in orders else None) for h in self._changed],
            seen=[(h, seen.get(h)) for h in self._seen_changed],
            floors=[(a, floors[a]) for a in self._floors_changed],
            seq=self.seq,
        )
        self._changed, self._seen_changed, self._floors_changed = set(), set(), set()
        return changes

    @classmethod
    def restore(cls, state: State, snapshot: MatcherSnapshot, *, max_open_orders: int = DEFAULT_MAX_OPEN_ORDERS,
                max_remembered: int = DEFAULT_MAX_REMEMBERED) -> Matcher:
        """A matcher over `state` (the state of the same checkpoint) in the exported condition (the
        resting orders in any order: they are placed back in seq order)."""
        matcher = cls(state, max_open_orders=max_open_orders, max_remembered=max_remembered)
        for r in sorted(snapshot.resting, key=lambda r: r.seq):
            owner = require_account(state, r.account_id).owner  # (an order rests only on an existing account)
            order = RestingOrder(r.order_hash, r.account_id, owner, r.market, r.is_buy, r.price, r.remaining, r.seq, r.handle,
                                 r.reduce_only, r.expiry, r.nonce)
            order.filled = r.filled
            matcher._rest(order)
        matcher.nonce_floor = dict(snapshot.nonce_floor)
        matcher.seen = {h: (expiry, account, nonce) for h, expiry, account, nonce in snapshot.seen}
        matcher.seen_by_expiry = [(expiry, h) for h, expiry, _, _ in snapshot.seen]
        heapq.heapify(matcher.seen_by_expiry)
        for h, _, account, nonce in snapshot.seen:
            matcher.seen_by_account.setdefault(account, SortedList()).add((nonce, h))
        matcher.seq = snapshot.seq
        return matcher

    # --- matching --------------------------------------------------------------------------------

    def _check_placement(self, placement: Placement, order_hash: bytes, now: int) -> Reason | ErrorCode | OrderSide:
        """Why the order cannot be accepted at all, or (it can) its side as the spec resolves it now.
        Changes nothing."""
        order = placement.order
        if order_hash in self.seen:
            return Reason.DUPLICATE_ORDER
        if order.nonce < self.nonce_floor.get(order.account_id, 0):
            return Reason.NONCE_CANCELLED
        if (order.account_id, order.nonce) in self.reserved:
            return Reason.NONCE_IN_USE
        state = self.state
        try:
            # The spec's rules of the order itself: market, step and tick, fee rate, account,
            # signature (memoised at intake), expiry, nonce window. Nothing is written.
            side = resolve_order(state, order, now)
        except InvalidTransaction as invalid:
            return invalid.code
        if placement.reduce_only and self._reducible(order.account_id, order.market, order.is_buy) == 0:
            return Reason.REDUCE_ONLY
        if placement.tif is not TimeInForce.IOC and len(self.by_account.get(order.account_id, ())) >= self.max_open_orders:
            return Reason.TOO_MANY_OPEN_ORDERS
        if placement.tif is TimeInForce.POST_ONLY:
            best = self._best_unexpired(order.market, not order.is_buy)
            if best is not None and self._crosses(order.is_buy, order.limit_price, best.price):
                return Reason.POST_ONLY_WOULD_CROSS
            # It will rest in full: its margin now, as for any order that rests (_check_rest).
            size = self._resting_size(order.account_id, order.market, order.is_buy, order.size, placement.reduce_only)
            code = self._side_code(order, size, order.limit_price, side)
            if code is not None:
                return code
        return side

    def _side_code(self, handle: OrderOrRef, size: int, price: int, side: OrderSide | None = None) -> ErrorCode | None:
        """The spec's code for `handle` filling `size` at `price` (None: it would apply). The fast
        pre-check answers the common yes; a no is asked of the full probe for its code. `side`: the
        handle already resolved on the current state (see `is_side_ok`)."""
        if is_side_ok(self.state, handle, size, price, side):
            return None
        receipt = probe_side(self.state, handle, size, price)
        return None if receipt.ok else receipt.code

    def _resting_size(self, account_id: int, market: int, is_buy: bool, remaining: int, reduce_only: bool) -> int:
        return min(remaining, self._reducible(account_id, market, is_buy)) if reduce_only else remaining

    def _check_rest(self, order: RestingOrder, side: OrderSide | None) -> Reason | ErrorCode | None:
        """Why what is left of an order may not rest, or None. A resting order executes at its own
        limit price, so the spec is asked about exactly that fill: all of the rest, at that price
        (for reduce-only, what it can still reduce). `side`: see `_side_code`."""
        size = order.remaining  # (> 0)
        if order.reduce_only:
            size = self._resting_size(order.account_id, order.market, order.is_buy, size, True)
            if size == 0:
                return Reason.REDUCE_ONLY
        return self._side_code(order.handle, size, order.price, side)

    @staticmethod
    def _crosses(taker_buys: bool, taker_price: int, maker_price: int) -> bool:
        return maker_price <= taker_price if taker_buys else maker_price >= taker_price

    def _best_unexpired(self, market: int, is_buy: bool) -> RestingOrder | None:
        """The best resting order on a side that has not expired, without changing the book (a
        refused order must leave no trace: it is not logged)."""
        for order in self.books[market].side(is_buy).values():
            if order.expiry >= self.state.time:
                return order
        return None

    def _reducible(self, account_id: int, market: int, is_buy: bool) -> int:
        """How much an order on this side can fill without opening or growing the position."""
        account = require_account(self.state, account_id)
        position = account.positions.get(market) if account else None
        held = position.size if position else 0
        return max(0, -held) if is_buy else max(0, held)

    def _match(self, taker: RestingOrder, ctx: L1Context) -> tuple[list[Fill], list[Cancelled], Reason | ErrorCode | None]:
        fills: list[Fill] = []
        cancelled: list[Cancelled] = []
        state = self.state
        taker_buys, limit = taker.is_buy, taker.price
        opposite = self.books[taker.market].side(not taker_buys)
        while taker.remaining > 0:
            maker = opposite.best()
            if maker is None or not (maker.price <= limit if taker_buys else maker.price >= limit):  # (_crosses)
                return fills, cancelled, None
            if maker.expiry < state.time:
                cancelled.append(self._remove(maker, ErrorCode.EXPIRED))
                continue
            if maker.owner == taker.owner:
                # Self-trade prevention (same account, or another account of the same owner):
                # cancel the resting order, keep the incoming one (docs/matching.md).
                cancelled.append(self._remove(maker, Reason.SELF_TRADE))
                continue
            size = min(taker.remaining, maker.remaining)
            if taker.reduce_only:
                size = min(size, self._reducible(taker.account_id, taker.market, taker.is_buy))
                if size == 0:
                    return fills, cancelled, Reason.REDUCE_ONLY
            if maker.reduce_only:
                cap = self._reducible(maker.account_id, maker.market, maker.is_buy)
                if cap == 0:
                    cancelled.append(self._remove(maker, Reason.REDUCE_ONLY))
                    continue
                size = min(size, cap)
            trade = Trade(maker.handle, taker.handle, size)
            next_slot = state.next_slot
            receipt = state_transition(state, trade, ctx)
            if receipt.ok:
                fills.append(self._filled(maker, taker, trade, next_slot))
                continue
            # The fill is invalid and the state unchanged. Whose fault is it? The taker's order
            # passed the spec's order rules at placement and nothing of them changes while it
            # matches, so ask the spec about the maker alone: a maker that fails (its margin after
            # a price move, its nonce used by another of its orders, ...) is cancelled with the
            # spec's code and matching goes on; otherwise the taker fails at this fill (its margin,
            # its position limit) or a global limit is hit, and the taker stops here.
            maker_receipt = probe_side(state, maker.handle, size, maker.price)
            if not maker_receipt.ok:
                cancelled.append(self._remove(maker, maker_receipt.code))
                continue
            return fills, cancelled, receipt.code
        return fills, cancelled, None

    def _filled(self, maker: RestingOrder, taker: RestingOrder, trade: Trade, next_slot: int) -> Fill:
        """Book-keeping after an applied Trade; the spec gave each partially filled new order the
        next slot id, maker first (spec.transition.write_order_side)."""
        size = trade.size
        for side in (maker, taker):
            side.remaining -= size
            side.filled += size
            if type(side.handle) is Order:
                self.reserved.pop((side.account_id, side.nonce), None)
                if side.remaining > 0:
                    side.handle = SlotRef(next_slot)
                    next_slot += 1
        assert self.state.next_slot == next_slot, "slot ids out of step with the spec"
        if maker.remaining == 0:
            self._unlink(maker)
        return Fill(
            trade, maker.order_hash, taker.order_hash, maker.account_id, taker.account_id, maker.market,
            taker.is_buy, maker.price, size,
        )

    # --- book-keeping ----------------------------------------------------------------------------

    def _remember(self, order_hash: bytes, order: Order) -> None:
        self.seen[order_hash] = (order.expiry, order.account_id, order.nonce)
        heapq.heappush(self.seen_by_expiry, (order.expiry, order_hash))
        mine = self.seen_by_account.get(order.account_id)
        if mine is None:
            mine = self.seen_by_account[order.account_id] = SortedList()
        mine.add((order.nonce, order_hash))

    def _forget(self, order_hash: bytes, expiry: int) -> None:
        _, account, nonce = self.seen.pop(order_hash)  # its heap entry is skipped when it comes up
        self._unlist_seen(account, nonce, order_hash)

    def _drop_seen(self, order_hash: bytes) -> None:
        _, account, nonce = self.seen.pop(order_hash)
        self._unlist_seen(account, nonce, order_hash)
        self._seen_changed.add(order_hash)

    def _unlist_seen(self, account: int, nonce: int, order_hash: bytes) -> None:
        mine = self.seen_by_account[account]
        mine.remove((nonce, order_hash))
        if not mine:
            del self.seen_by_account[account]

    def _bound_seen(self, account: int) -> None:
        """Keep `seen` bounded per account (docs/matching.md, "Replay protection"): past
        `max_remembered` entries, the lowest nonce's go and the account's book floor rises above it
        (`_check_placement` refuses a nonce below the floor: NONCE_CANCELLED), so a forgotten hash
        still cannot be replayed. Entries below the floor (a cancel-all's too) are redundant and go.
        Deterministic in the command sequence, so a replay forgets the same ones."""
        mine = self.seen_by_account.get(account)
        if mine is None:
            return
        floor = self.nonce_floor.get(account, 0)
        if len(mine) > self.max_remembered:
            raised = mine[len(mine) - self.max_remembered - 1][0] + 1  # the nonce floor that leaves at most max_remembered
            if raised > floor:
                floor = self.nonce_floor[account] = raised
                self._floors_changed.add(account)
        while mine and mine[0][0] < floor:
            self._drop_seen(mine[0][1])
            mine = self.seen_by_account.get(account)

    def _rest(self, order: RestingOrder) -> None:
        self.books[order.market].add(order)
        self.orders[order.order_hash] = order
        self.by_account.setdefault(order.account_id, {})[order.order_hash] = order
        bucket = self.by_expiry.get(order.expiry)
        if bucket is None:
            bucket = self.by_expiry[order.expiry] = {}
            if order.expiry not in self.in_expiry_heap:
                self.in_expiry_heap.add(order.expiry)
                heapq.heappush(self.expiry_heap, order.expiry)
        bucket[order.seq] = order.order_hash
        if type(order.handle) is Order:
            self.reserved[(order.account_id, order.nonce)] = order.order_hash

    def _unlink(self, order: RestingOrder) -> None:
        self.books[order.market].remove(order)
        del self.orders[order.order_hash]
        mine = self.by_account[order.account_id]
        del mine[order.order_hash]
        if not mine:
            del self.by_account[order.account_id]
        bucket = self.by_expiry[order.expiry]
        del bucket[order.seq]
        if not bucket:
            del self.by_expiry[order.expiry]
        if type(order.handle) is Order:
            self.reserved.pop((order.account_id, order.nonce), None)

    def _remove(self, order: RestingOrder, reason: Reason | ErrorCode) -> Cancelled:
        self._unlink(order)
        return Cancelled(order.order_hash, order.account_id, reason_name(reason))

    @staticmethod
    def _view(order: RestingOrder) -> RestingView:
        return RestingView(
            order.order_hash, order.account_id, order.market, order.is_buy, order.price, order.remaining,
            order.seq, order.handle, order.reduce_only, order.expiry,
        )
