"""`probe.is_side_ok` (the matcher's hot-path margin pre-check) against `probe.probe_side` (the spec's
own `state_transition` on a copied probe state): a hypothesis differential test over hand-built
states — collateral from deep debt to far beyond any notional, positions in both markets up to the
risk limit with unsettled funding, moved prices, used nonces, slots, the fee account and funding pool
at the edge of their range, the slot tree nearly full — and fills of new orders and slot references
at their own limit price, at other prices and at sizes off the step."""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from optinode.exchange.probe import is_side_ok, probe_side
from optinode.spec.constants import MAX_BALANCE, MAX_SLOT_ID
from optinode.spec.errors import InvalidTransaction
from optinode.spec.state import Position, Slot
from optinode.spec.transition import resolve_order
from optinode.spec.types import SlotRef
from optinode.testing.world import BTC, ETH, World

NAMES = ("alice", "bob")
_STATE = msgspec.json.Encoder()

collateral = st.one_of(st.integers(-10**9, 10**10), st.integers(-MAX_BALANCE, MAX_BALANCE))
position = st.tuples(st.integers(-3, 3), st.integers(0, 10**6), st.integers(-50, 50))  # (fraction of the limit /3, lots, funding offset)
account = st.tuples(collateral, st.dictionaries(st.sampled_from([ETH, BTC]), position, max_size=2), st.integers(0, 3), st.integers(0, 2**8 - 1))
market_move = st.tuples(st.integers(-40, 40), st.integers(-10**4, 10**4))  # (price % off, funding index)
edge = st.sampled_from(["none", "none", "fees", "pool", "slots-1", "slots-0", "slots+1"])
handle = st.one_of(
    st.tuples(st.just("order"), st.sampled_from(NAMES), st.sampled_from([ETH, BTC]), st.booleans(),
              st.integers(1, 10**6), st.integers(-30, 30), st.sampled_from([0, 500, 10**6]), st.integers(0, 300)),
    st.tuples(st.just("slot"), st.sampled_from(NAMES), st.sampled_from([ETH, BTC]), st.booleans(),
              st.integers(0, 10**6), st.integers(-30, 30), st.sampled_from([0, 500]), st.integers(0, 1)),
)
fill = st.tuples(st.sampled_from(["all", "all", "part", "lots", "odd"]), st.integers(1, 10**6), st.sampled_from(["own", "own", "off"]), st.integers(-5, 5))


def build(accounts, moves, which_edge) -> World:
    w = World()
    for name in NAMES:
        w.deposit(name, 1)
    state = w.state
    for i, (market_state, (pct, funding)) in enumerate(zip(state.markets, moves)):
        tick = state.config.markets[i].tick_size
        market_state.price = max(tick, market_state.price * (100 + pct) // 100 // tick * tick)
        market_state.funding_index = funding
    for name, (coll, positions, base, bits) in zip(NAMES, accounts):
        a = w.account(name)
        a.collateral = coll
        a.nonce_base, a.nonce_bits = base, bits
        a.positions = {}
        for market, (third, lots, offset) in positions.items():
            config = state.config.markets[market]
            size = third * config.max_position // 3 if third else lots * config.step_size
            size = max(-config.max_position, min(config.max_position, size))
            if size:
                a.positions[market] = Position(size, state.markets[market].funding_index + offset)
    if which_edge == "fees":
        state.fees = MAX_BALANCE - 10**6
    elif which_edge == "pool":
        state.funding_pool = MAX_BALANCE - 30
    elif which_edge.startswith("slots"):
        # the probe's neutral slot takes one, a partial new order one more: room for both, one, none
        state.next_slot = MAX_SLOT_ID + int(which_edge[5:])
    return w


def make_handle(w: World, spec):
    kind, name, market, is_buy, lots, ticks, fee_rate, extra = spec
    config = w.state.config.markets[market]
    price = max(config.tick_size, w.genesis.markets[market].price + ticks * config.tick_size)
    if kind == "order":
        size = lots * config.step_size
        return w.order(name, market=market, is_buy=is_buy, size=size, limit_price=price, fee_rate=fee_rate, nonce=extra), price, size
    slot_id = w.state.next_slot
    remaining = lots * config.step_size
    w.state.slots[slot_id] = Slot(w.ids[name], market, is_buy, price, remaining, fee_rate, 2**40 if extra else 1)
    w.state.next_slot += 1
    return SlotRef(slot_id), price, remaining


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(accounts=st.tuples(account, account), moves=st.tuples(market_move, market_move), which_edge=edge, spec=handle, how=fill)
def test_is_side_ok_is_probe_side_ok(accounts, moves, which_edge, spec, how) -> None:
    w = build(accounts, moves, which_edge)
    handle, limit, remaining = make_handle(w, spec)
    size_kind, lots, price_kind, ticks = how
    step = w.state.config.markets[spec[2]].step_size
    size = {"all": remaining, "part": max(step, remaining // 2 // step * step), "lots": lots * step, "odd": lots * step + 1}[size_kind]
    price = limit if price_kind == "own" else max(1, limit + ticks * w.state.config.markets[spec[2]].tick_size)
    before = _STATE.encode(w.state)
    fast = is_side_ok(w.state, handle, size, price)
    assert _STATE.encode(w.state) == before  # nothing written
    receipt = probe_side(w.state, handle, size, price)
    event(f"ok={fast} code={receipt.code.name}")
    assert fast == receipt.ok
    # Given the side already resolved (the matcher's placement check, at the batch's L1 time), the
    # same answer: the time only decides whether the order resolves at all.
    try:
        side = resolve_order(w.state, handle, 0 if spec[0] == "slot" else spec[7] % 2)
    except InvalidTransaction:
        return
    assert is_side_ok(w.state, handle, size, price, side) == fast
    assert _STATE.encode(w.state) == before


def test_an_unknown_slot_and_an_unknown_account_are_not_ok() -> None:
    w = build(((10**9, {}, 0, 0), (10**9, {}, 0, 0)), ((0, 0), (0, 0)), "none")
    assert not is_side_ok(w.state, SlotRef(99), 10**6, 10**8) and not probe_side(w.state, SlotRef(99), 10**6, 10**8).ok
    order = w.order("alice", account_id=7)
    assert not is_side_ok(w.state, order, order.size, order.limit_price) and not probe_side(w.state, order, order.size, order.limit_price).ok
