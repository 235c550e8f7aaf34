"""Margin and validity pre-checks by the spec itself: what-if execution of one side of a fill.

The matcher never decides on its own whether a fill is valid. It asks the spec: `probe_side` builds a
small copy of the state holding only the tested account (and its slot) plus a neutral counterparty
— a fresh, flat account with ample collateral resting at the fill price — and runs
`spec.transition.state_transition` on `Trade(neutral, tested, size)` there. Every rule of a Trade that
concerns the tested side (signature, expiry, nonce, step and tick, position limit, balance range,
the margin rule of `spec.margin`) runs exactly as it will on the real state; the neutral side passes
all of its own by construction. So the receipt's code is the spec's answer for that side alone, and
when i7-risk changes the margin rules the pre-check changes with them.

Used for (docs/matching.md): the margin check of what is about to rest (all of it, at its own limit
price: the fill a resting order will execute), and to tell whether a failed fill is the maker's fault.

`is_side_ok` is the hot path's answer to the same question without the copied state: the spec's own
pieces of `process_trade` (resolve_order, Party, compute_party_after, check_party_after,
is_margin_ok_after_fill, ...) evaluated for the tested side alone, in ~a third of the time. It says
only yes or no; on no, `probe_side` gives the spec's code. It is proven equal to
`probe_side(...).ok` by a hypothesis differential test (tests/exchange/test_probe_fast.py), and being
wrong could not emit an invalid Trade anyway: every fill is still applied by `state_transition`.
"""

from __future__ import annotations

import msgspec

from optinode.spec.constants import MAX_SLOT_ID, MAX_TIMESTAMP, PRICE_ONE
from optinode.spec.errors import InvalidTransaction
from optinode.spec.margin import ceil_div, is_margin_ok_after_fill
from optinode.spec.state import Account, Position, Slot, State, require_account, require_slot
from optinode.spec.transition import (
    OrderSide,
    Party,
    check_balance,
    check_party_after,
    compute_fee,
    compute_party_after,
    is_well_formed,
    resolve_order,
    state_transition,
)
from optinode.spec.types import L1Context, Order, OrderOrRef, Receipt, SlotRef, Trade

# The neutral counterparty's collateral: far above any notional (sizes and prices are < 2**64 and
# margin fractions <= 1), far below MAX_BALANCE (2**127 - 1), so none of its own checks can fail.
NEUTRAL_COLLATERAL = 2**126
NEUTRAL_OWNER = bytes(20)
# A Trade reads no queue entry, only the batch's L1 time (expiry, price and funding age: docs/risk.md).
# At time 0 no order has expired and no price is stale: callers that fill for real pass the L1 time
# the batch is expected to carry.
PROBE_CTX = L1Context(l1_timestamp=0)


def probe_side(state: State, handle: OrderOrRef, size: int, price: int, ctx: L1Context = PROBE_CTX) -> Receipt:
    """The spec's receipt for `handle` filling `size` at `price` against a neutral counterparty.
    The real state is not touched."""
    if type(handle) is Order:
        account_id, market, is_buy, slot = handle.account_id, handle.market, handle.is_buy, None
    else:
        slot = require_slot(state, handle.slot)
        if slot is None:
            return state_transition(state, Trade(handle, handle, size), ctx)  # the spec's own SLOT_NOT_FOUND
        account_id, market, is_buy = slot.account_id, slot.market, slot.is_buy
    account = require_account(state, account_id) if market < len(state.markets) else None
    if account is None:
        # Unknown market or account: the spec's resolve_order rejects it (MARKET_NOT_FOUND,
        # INVALID_ORDER or ACCOUNT_NOT_FOUND) before any write; a Trade of the order with itself
        # could never apply anyway (SELF_TRADE), so the real state is safe to ask.
        return state_transition(state, Trade(handle, handle, size), ctx)
    neutral_id, neutral_slot = state.next_account_id, state.next_slot
    # The neutral side takes the opposite of the fill. If the fill alone were beyond the market's
    # position limit (a tested side may legally go from -limit to +limit), it starts from a position
    # the fill shrinks, so that its own limit check cannot fail either.
    limit = state.config.markets[market].max_position
    opening = min(size, limit) if is_buy else -min(size, limit)
    neutral_positions = {market: Position(opening, state.markets[market].funding_index)} if opening else {}
    accounts = {neutral_id: Account(owner=NEUTRAL_OWNER, collateral=NEUTRAL_COLLATERAL, positions=neutral_positions)}
    accounts[account_id] = msgspec.structs.replace(account)  # the spec writes into Account objects
    slots = {neutral_slot: Slot(neutral_id, market, not is_buy, price, size, 0, MAX_TIMESTAMP)}
    if slot is not None:
        slots[handle.slot] = slot  # frozen: the spec replaces slots, never mutates them
    probe = msgspec.structs.replace(
        state,
        markets=[msgspec.structs.replace(m) for m in state.markets],
        accounts=accounts,
        slots=slots,
        next_account_id=neutral_id + 1,
        next_slot=neutral_slot + 1,
        dirty_accounts=set(),
        dirty_slots=set(),
    )
    return state_transition(probe, Trade(SlotRef(neutral_slot), handle, size), ctx)


def is_side_ok(state: State, handle: OrderOrRef, size: int, price: int, side: OrderSide | None = None) -> bool:
    """`probe_side(state, handle, size, price).ok`, computed on the real state without copying it
    (nothing is written). The neutral maker of the probe passes each of its own checks by
    construction (it is flat or shrinking, rich, fee-free and fresh), so what is left are the tested
    side's rules, in the order `process_trade` applies them.

    `side`, if given, is `resolve_order(state, handle, t)` already computed on the state as it is now
    for a `handle` already found well formed (the matcher's placement check, when nothing has filled
    since): it is what rule 2 resolves, since the only rule that reads the time is the expiry and
    nothing expires at the probe's time 0; and the probe's Trade is then well formed whenever rules
    6 and 11 hold (0 < size <= what the order has left, the neutral slot id within the tree)."""
    # The Trade of the probe must be well formed (its neutral slot id is the next one).
    if side is None and not is_well_formed(Trade(SlotRef(state.next_slot), handle, size)):
        return False
    try:
        # 2. The tested order resolves at the probe's time 0 (nothing expires at 0).
        if side is None:
            side = resolve_order(state, handle, PROBE_CTX.l1_timestamp)
        market = side.market
        # 6. A valid fill size for both (the neutral slot holds exactly `size`).
        if not (size > 0 and size % state.config.markets[market].step_size == 0 and size <= side.remaining):
            return False
        # 7. The neutral maker's price is `price`: it must satisfy the tested side's limit.
        if not (price <= side.limit_price if side.is_buy else price >= side.limit_price):
            return False
        # 7a. Prices and funding are fresh at time 0: always. Then the tested party's fill.
        party = Party(state, side.account_id, side.account)
        paid = ceil_div(size * price, PRICE_ONE)
        received = size * price // PRICE_ONE
        fee = compute_fee(size, price, side.fee_rate)
        if side.is_buy:
            new_size, collateral, positions = compute_party_after(state, party, market, size, -paid - fee)
        else:
            new_size, collateral, positions = compute_party_after(state, party, market, -size, received - fee)
        # 8-9. Position limit and balance; 9a. the fee account (the neutral pays no fee); 9b. the pool.
        check_party_after(state, market, new_size, collateral)
        check_balance(state.fees + fee + (paid - received))
        check_balance(state.funding_pool + party.funding_paid)
    except InvalidTransaction:
        return False
    # 10. Margin after the fill.
    if not is_margin_ok_after_fill(state, party.collateral, party.positions, collateral, positions, market):
        return False
    # 11. Slot room: the probe's neutral slot is taken, and a partial new order needs one more.
    new_slots = 1 if side.slot_id is None and side.remaining > size else 0
    return state.next_slot + 1 + new_slots <= MAX_SLOT_ID + 1
