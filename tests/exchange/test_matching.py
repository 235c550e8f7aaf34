"""The matcher, one behaviour per test: each order type, priority, self-trade prevention, the margin
pre-check, cancels and expiry. Every emitted Trade was applied by the spec on the desk's state; the
property tests (test_matching_properties.py) re-apply them on an independent copy."""

from __future__ import annotations

import msgspec
import pytest

from optinode.exchange.matching import Matcher, UnknownOrder
from optinode.exchange.orders import CancelAll, Placement, Status, TimeInForce
from optinode.spec.errors import ErrorCode
from optinode.spec.types import Order, SlotRef
from optinode.testing.world import ETH, ETH_PRICE, ETH_STEP, ETH_TICK, FUNDS, price_of

from .conftest import Desk


def encoded(state) -> bytes:
    return msgspec.msgpack.encode(state)


def test_non_crossing_orders_rest_and_show_in_depth(desk: Desk) -> None:
    ask = desk.place("bob", buy=False, lots=5, ticks=2)
    bid = desk.place("alice", buy=True, lots=3, ticks=-1)
    assert (ask.status, bid.status) == (Status.RESTING, Status.RESTING)
    assert desk.m.depth(ETH, 10) == {
        "bids": [(ETH_PRICE - ETH_TICK, 3 * ETH_STEP, 1)],
        "asks": [(ETH_PRICE + 2 * ETH_TICK, 5 * ETH_STEP, 1)],
    }
    assert desk.w.state.next_slot == 0 and desk.w.size("alice") == 0  # nothing executed


def test_price_then_time_priority_and_fill_at_the_makers_price(desk: Desk) -> None:
    first = desk.place("bob", buy=False, lots=1, ticks=3)
    better = desk.place("carol", buy=False, lots=1, ticks=1)
    second_same_price = desk.place("carol", buy=False, lots=1, ticks=3)
    taker = desk.place("alice", buy=True, lots=3, ticks=10)
    assert taker.status == Status.FILLED
    assert [f.maker_hash for f in taker.fills] == [better.order_hash, first.order_hash, second_same_price.order_hash]
    assert [f.price for f in taker.fills] == [ETH_PRICE + ETH_TICK, ETH_PRICE + 3 * ETH_TICK, ETH_PRICE + 3 * ETH_TICK]
    assert desk.w.size("alice") == 3 * ETH_STEP
    assert desk.m.depth(ETH, 5) == {"bids": [], "asks": []}


def test_partial_fills_continue_through_the_specs_slot(desk: Desk) -> None:
    maker = desk.place("bob", buy=False, lots=10)
    one = desk.place("alice", buy=True, lots=4)
    assert one.status == Status.FILLED and isinstance(one.fills[0].trade.maker, Order)
    two = desk.place("carol", buy=True, lots=4)
    assert two.fills[0].trade.maker == SlotRef(0)  # the rest of bob's order lives in slot 0
    assert desk.w.state.slots[0].remaining == 2 * ETH_STEP
    assert desk.m.get(maker.order_hash).remaining == 2 * ETH_STEP
    # A taker bigger than the book: fills what there is, rests the rest as its own slot-backed order.
    three = desk.place("alice", buy=True, lots=5)
    assert three.status == Status.PARTIALLY_FILLED and three.remaining == 3 * ETH_STEP
    assert desk.m.get(three.order_hash).handle == SlotRef(1)
    assert desk.m.get(maker.order_hash) is None  # filled


def test_ioc_fills_what_crosses_and_cancels_the_rest(desk: Desk) -> None:
    desk.place("bob", buy=False, lots=2)
    ioc = desk.place("alice", buy=True, lots=5, tif=TimeInForce.IOC)
    assert ioc.status == Status.CANCELLED and ioc.reason == "IOC_UNFILLED"
    assert sum(f.size for f in ioc.fills) == 2 * ETH_STEP
    assert desk.m.get(ioc.order_hash) is None and desk.m.depth(ETH, 5)["bids"] == []
    none = desk.place("carol", buy=True, lots=1, ticks=-5, tif=TimeInForce.IOC)
    assert none.status == Status.CANCELLED and none.fills == () and desk.m.depth(ETH, 5)["bids"] == []


def test_post_only_rests_or_is_rejected_without_executing(desk: Desk) -> None:
    desk.place("bob", buy=False, lots=2, ticks=1)
    root = desk.w.root()
    crossing = desk.place("alice", buy=True, lots=1, ticks=1, tif=TimeInForce.POST_ONLY)
    assert crossing.status == Status.REJECTED and crossing.reason == "POST_ONLY_WOULD_CROSS"
    assert desk.w.root() == root
    passive = desk.place("alice", buy=True, lots=1, ticks=0, tif=TimeInForce.POST_ONLY)
    assert passive.status == Status.RESTING


def test_reduce_only_never_opens_and_is_capped_at_the_position(desk: Desk) -> None:
    rejected = desk.place("alice", buy=False, lots=1, reduce_only=True)
    assert rejected.status == Status.REJECTED and rejected.reason == "REDUCE_ONLY"
    desk.place("bob", buy=False, lots=3)
    desk.place("alice", buy=True, lots=3)  # alice long 3
    desk.place("carol", buy=True, lots=10)  # a deep bid
    reduce = desk.place("alice", buy=False, lots=5, reduce_only=True)
    assert reduce.status == Status.CANCELLED and reduce.reason == "REDUCE_ONLY"
    assert sum(f.size for f in reduce.fills) == 3 * ETH_STEP
    assert desk.w.size("alice") == 0  # closed, never flipped short


def test_resting_reduce_only_is_cancelled_once_nothing_is_left_to_reduce(desk: Desk) -> None:
    desk.place("bob", buy=False, lots=2)
    desk.place("alice", buy=True, lots=2)  # alice long 2
    resting = desk.place("alice", buy=False, lots=2, ticks=5, reduce_only=True)
    assert resting.status == Status.RESTING
    desk.place("bob", buy=True, lots=2, ticks=-10)
    desk.place("alice", buy=False, lots=2, ticks=-20, tif=TimeInForce.IOC)  # alice closes elsewhere
    assert desk.w.size("alice") == 0
    taker = desk.place("carol", buy=True, lots=2, ticks=5)
    assert [c.reason for c in taker.cancelled] == ["REDUCE_ONLY"]
    assert taker.fills == () and desk.w.size("alice") == 0


def test_self_trade_prevention_cancels_the_resting_order_same_account(desk: Desk) -> None:
    own = desk.place("alice", buy=False, lots=2)
    desk.place("bob", buy=False, lots=2, ticks=1)
    taker = desk.place("alice", buy=True, lots=2, ticks=1)
    assert [(c.order_hash, c.reason) for c in taker.cancelled] == [(own.order_hash, "SELF_TRADE")]
    assert taker.status == Status.FILLED and taker.fills[0].maker_account == desk.w.ids["bob"]


def test_self_trade_prevention_covers_accounts_of_the_same_owner() -> None:
    desk = Desk()
    desk.w.deposit("alice-2", FUNDS, owner="alice")  # a second account of alice's key
    own = desk.place("alice-2", buy=False, lots=1)
    taker = desk.place("alice", buy=True, lots=1)
    assert [c.reason for c in taker.cancelled] == ["SELF_TRADE"] and taker.cancelled[0].order_hash == own.order_hash
    assert taker.status == Status.RESTING and desk.w.size("alice") == 0


def test_an_order_that_would_fail_margin_is_rejected_with_the_spec_code() -> None:
    desk = Desk()
    desk.w.deposit("whale", 100 * FUNDS)
    desk.place("whale", buy=False, lots=5000)
    root, book = desk.w.root(), desk.m.snapshot()
    # 1000 USD covers the 10% initial margin of ~3.3 ETH; 4 ETH = 4000 lots does not.
    big = desk.place("alice", buy=True, lots=4000)
    assert big.status == Status.REJECTED and big.reason == ErrorCode.INSUFFICIENT_MARGIN.name
    assert big.fills == () and not big.logged
    assert desk.w.root() == root and desk.m.snapshot() == book  # nothing executed, the maker untouched
    resting = desk.place("carol", buy=True, lots=4000, ticks=-10)  # would rest: checked at its own price
    assert resting.status == Status.REJECTED and resting.reason == "INSUFFICIENT_MARGIN"
    post_only = desk.place("carol", buy=True, lots=4000, ticks=-10, tif=TimeInForce.POST_ONLY)
    assert post_only.reason == "INSUFFICIENT_MARGIN"
    assert desk.m.snapshot() == book


def test_what_cannot_rest_for_margin_is_cancelled_after_the_fills_that_passed(desk: Desk) -> None:
    desk.place("bob", buy=False, lots=100)
    order = desk.place("alice", buy=True, lots=4000)  # 100 lots fill; 3900 more would not be covered
    assert order.status == Status.CANCELLED and order.reason == "INSUFFICIENT_MARGIN"
    assert sum(f.size for f in order.fills) == 100 * ETH_STEP and desk.m.get(order.order_hash) is None


def test_an_aggressive_limit_is_judged_at_the_price_it_fills_at(desk: Desk) -> None:
    # alice can afford ~3.3 ETH at 3000; at her limit of 3300 a full fill would need more margin
    # than at the maker's 3000: each fill is checked at its own (maker's) price.
    desk.place("bob", buy=False, lots=300)
    desk.place("carol", buy=False, lots=3000)
    ioc = desk.place("alice", buy=True, lots=3300, ticks=3000, tif=TimeInForce.IOC)
    assert ioc.status == Status.FILLED and {f.price for f in ioc.fills} == {ETH_PRICE}


def test_a_maker_that_fails_margin_after_a_price_move_is_cancelled_and_matching_goes_on(desk: Desk) -> None:
    weak = desk.place("bob", buy=False, lots=3000)  # 9000 USD short: 900 USD initial margin, fits
    assert weak.status == Status.RESTING
    desk.w.set_price(ETH, price_of(ETH, "3500"))  # now bob's short would be under water
    healthy = desk.place("carol", buy=False, lots=5, ticks=100)
    taker = desk.place("alice", buy=True, lots=3000, ticks=100)  # takes all of bob's: he cannot short 3 ETH now
    assert [(c.order_hash, c.reason) for c in taker.cancelled] == [(weak.order_hash, "INSUFFICIENT_MARGIN")]
    assert [f.maker_hash for f in taker.fills] == [healthy.order_hash]
    assert desk.w.size("bob") == 0


def test_bad_signature_and_unknown_account_are_rejected_with_spec_codes(desk: Desk) -> None:
    forged = desk.w.order("alice", is_buy=True, size=ETH_STEP, signer="bob")
    assert desk.m.place(Placement(forged)).reason == "WRONG_SIGNER"
    garbage = msgspec.structs.replace(desk.w.order("alice"), signature=b"\x01" * 65)
    assert desk.m.place(Placement(garbage)).reason == "BAD_SIGNATURE"
    nobody = desk.w.order("alice", account_id=77)
    assert desk.m.place(Placement(nobody)).reason == "ACCOUNT_NOT_FOUND"
    off_tick = desk.w.order("alice", limit_price=ETH_PRICE + 1)
    assert desk.m.place(Placement(off_tick)).reason == "INVALID_ORDER"
    unknown_market = desk.w.order("alice", market=9)
    assert desk.m.place(Placement(unknown_market)).reason == "MARKET_NOT_FOUND"
    out_of_range = msgspec.structs.replace(desk.w.order("alice"), size=2**64)  # cannot even be hashed
    assert desk.m.place(Placement(out_of_range)).reason == "MALFORMED"


def test_cancel_by_hash_is_owner_scoped_and_a_cancelled_order_cannot_come_back(desk: Desk) -> None:
    order = desk.order("bob", buy=False, lots=2)
    placed = desk.m.place(Placement(order))
    with pytest.raises(UnknownOrder):
        desk.m.cancel(desk.w.ids["alice"], placed.order_hash)
    assert desk.m.cancel(desk.w.ids["bob"], placed.order_hash).reason == "USER_CANCELLED"
    assert desk.m.depth(ETH, 5)["asks"] == []
    again = desk.m.place(Placement(order))  # the same signed order, replayed
    assert again.status == Status.REJECTED and again.reason == "DUPLICATE_ORDER"


def test_cancel_all_raises_the_nonce_floor(desk: Desk) -> None:
    a = desk.place("bob", buy=False, lots=1, ticks=1)
    b = desk.place("bob", buy=False, lots=1, ticks=2)
    later = desk.order("bob", buy=False, lots=1, ticks=3)  # nonce 2, signed before the cancel
    removed = desk.m.apply(CancelAll(desk.w.ids["bob"], nonce_below=3))
    assert {c.order_hash for c in removed} == {a.order_hash, b.order_hash}
    assert desk.m.place(Placement(later)).reason == "NONCE_CANCELLED"
    assert desk.place("bob", buy=False, lots=1).status == Status.RESTING  # nonce 3 is fine


def test_two_live_orders_cannot_share_a_nonce(desk: Desk) -> None:
    desk.place("bob", buy=False, lots=1, ticks=1, nonce=5)
    clash = desk.place("bob", buy=False, lots=2, ticks=1, nonce=5)
    assert clash.reason == "NONCE_IN_USE"


def test_resting_orders_expire_by_the_specs_clock(desk: Desk) -> None:
    now = desk.w.state.time
    short = desk.place("bob", buy=False, lots=1, expiry=now + 10)
    long = desk.place("carol", buy=False, lots=1, ticks=1)
    desk.w.set_price(ETH, ETH_PRICE, timestamp=now + 20)  # system time moves past bob's expiry
    taker = desk.place("alice", buy=True, lots=1, ticks=1)
    assert [(c.order_hash, c.reason) for c in taker.cancelled] == [(short.order_hash, "EXPIRED")]
    assert taker.fills[0].maker_hash == long.order_hash
    resting = desk.place("bob", buy=False, lots=1, expiry=now + 30)
    desk.w.set_price(ETH, ETH_PRICE, timestamp=now + 40)
    assert [c.order_hash for c in desk.m.expire()] == [resting.order_hash]
    assert desk.m.depth(ETH, 5)["asks"] == []
    expired_taker = desk.place("alice", buy=True, lots=1, expiry=now + 35)
    assert expired_taker.reason == "EXPIRED"


def test_too_many_open_orders() -> None:
    desk = Desk()
    desk.m = Matcher(desk.w.state, max_open_orders=2)
    desk.place("bob", buy=False, lots=1, ticks=1)
    desk.place("bob", buy=False, lots=1, ticks=2)
    assert desk.place("bob", buy=False, lots=1, ticks=3).reason == "TOO_MANY_OPEN_ORDERS"
    assert desk.place("bob", buy=True, lots=1, ticks=-50, tif=TimeInForce.IOC).status == Status.CANCELLED


def test_a_refused_order_leaves_no_trace_even_past_an_expired_top_of_book(desk: Desk) -> None:
    now = desk.w.state.time
    desk.place("bob", buy=False, lots=1, expiry=now + 1)
    desk.place("carol", buy=False, lots=1, ticks=2)
    desk.w.set_price(ETH, ETH_PRICE, timestamp=now + 5)  # bob's ask has expired, still on the book
    before = desk.m.snapshot()
    refused = desk.place("alice", buy=True, lots=1, ticks=3, tif=TimeInForce.POST_ONLY)
    assert refused.reason == "POST_ONLY_WOULD_CROSS" and not refused.logged  # crosses carol, not bob
    assert desk.m.snapshot() == before
