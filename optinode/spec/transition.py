"""The state transition function: one transaction at a time.

`state_transition` checks that the transaction is well formed and dispatches to its `process_*`
function. Each `process_*` runs its validity rules in the numbered order (the Solidity one-step
prover checks them in the same order, so both report the same error code), computing new values in
locals, and writes only after the last check. An `InvalidTransaction` therefore leaves the state
exactly as it was.
"""

from __future__ import annotations

from typing import Callable

import msgspec

from .constants import (
    FORCED_CANCEL_ALL,
    FORCED_DELEVERAGE,
    FORCED_DELEVERAGE_BITS,
    FRACTION_ONE,
    FUNDING_RATE_ONE,
    MAX_AMOUNT,
    MAX_BALANCE,
    MAX_NONCE,
    MAX_U32,
    MAX_U64,
    MAX_U8,
    MAX_SLOT_ID,
    NONCE_HORIZON,
    NONCE_WINDOW,
    PRICE_ONE,
)
from .crypto import recover_signer
from .eip712 import compute_order_digest, compute_typed_digest, hash_cancel_all, hash_oracle_price, hash_withdraw
from .errors import ErrorCode, InvalidTransaction
from .margin import (
    ceil_div,
    compute_bad_debt_cover,
    compute_deleverager_floor,
    compute_deposit_credit,
    compute_haircut,
    compute_liquidation_room,
    compute_ratio_value,
    compute_settled_funding,
    get_total_risk,
    get_total_value,
    get_value_and_risk,
    is_healthy_or_healthier,
    is_margin_ok_after_fill,
    with_position,
)
from .state import Account, Position, Slot, State, require_account, require_slot, set_account, set_slot
from .types import (
    CancelAll,
    CollectFees,
    Deleverage,
    Deposit,
    ForcedEntry,
    ForcedWithdraw,
    FundingTick,
    L1Context,
    Liquidate,
    Malformed,
    OraclePrice,
    Order,
    OrderOrRef,
    Receipt,
    SlotRef,
    Trade,
    Transaction,
    Withdraw,
)
from .well_formed import RANGE_CHECKS

APPLIED = Receipt(ErrorCode.OK, True)


def state_transition(state: State, tx: Transaction, ctx: L1Context) -> Receipt:
    """Apply one transaction. Invalid transactions return a receipt with `applied=False` and leave
    the state unchanged; a forced withdrawal that is rejected is applied (its request is consumed)."""
    try:
        check_well_formed(tx)
        return PROCESSORS[type(tx)](state, tx, ctx)
    except InvalidTransaction as invalid:
        return Receipt(invalid.code, False)


def apply_transactions(state: State, txs: list[Transaction], ctx: L1Context) -> list[Receipt]:
    return [state_transition(state, tx, ctx) for tx in txs]


# A check is written `if not (<the rule>): raise InvalidTransaction(<code>)` on the trade path (the
# shared checks and process_trade: every fill runs ~30 of them, and a call per check was a quarter of
# a trade's apply time; docs/benchmarks.md) and `require(<the rule>, <code>)` elsewhere. Both state the
# rule as the condition that must hold.
def require(condition: bool, code: ErrorCode, detail: str = "") -> None:
    if not condition:
        raise InvalidTransaction(code, detail)


# --- well-formedness: every field within its bound in the field table (spec/fields.py) -------------


def is_well_formed(tx: Transaction) -> bool:
    """Every integer field within its Bound and every list within its Count (the record codec can
    produce nothing else, so this only ever rejects a transaction built some other way). The checks
    are rendered from the field table into well_formed.py. Malformed, or anything that is not a
    transaction, is never well formed."""
    check = RANGE_CHECKS.get(type(tx))
    return check is not None and check(tx)


def check_well_formed(tx: Transaction) -> None:
    # A record the batch codec could not have produced is malformed, whatever its fields say.
    if not is_well_formed(tx):
        raise InvalidTransaction(ErrorCode.MALFORMED)


# --- shared checks ---------------------------------------------------------------------------------


def check_balance(value: int) -> None:
    if not (-MAX_BALANCE <= value <= MAX_BALANCE):
        raise InvalidTransaction(ErrorCode.BALANCE_OVERFLOW)


def check_signer(digest: bytes, signature: bytes, expected: bytes) -> None:
    signer = recover_signer(digest, signature)
    # The signature is 65 bytes r ‖ s ‖ v, v in {27, 28}, low s, and recovers a key.
    if signer is None:
        raise InvalidTransaction(ErrorCode.BAD_SIGNATURE)
    # The recovered address is the expected signer.
    if not (signer == expected):
        raise InvalidTransaction(ErrorCode.WRONG_SIGNER)


def compute_raised_window(base: int, bits: int, floor: int) -> tuple[int, int]:
    """The window (nonce_base, nonce_bits) moved up to start at `floor` >= base: the used marks of the
    nonces it keeps stay, the nonces below it are gone."""
    shift = floor - base
    return floor, (bits >> shift if shift < NONCE_WINDOW else 0)


def check_nonce(account: Account, nonce: int) -> tuple[int, int]:
    """The account's (nonce_base, nonce_bits) after using `nonce` (nonce rules 1-3)."""
    base, bits = account.nonce_base, account.nonce_bits
    # (nonce 1) The nonce is not below the window.
    if not (nonce >= base):
        raise InvalidTransaction(ErrorCode.NONCE_TOO_LOW)
    # (nonce 2) The nonce is less than NONCE_HORIZON above the window: the window moves up by less than
    #           NONCE_HORIZON per signed operation, so no nonce value can exhaust the nonce space.
    if not (nonce - base < NONCE_HORIZON):
        raise InvalidTransaction(ErrorCode.NONCE_TOO_HIGH)
    if nonce - base >= NONCE_WINDOW:  # slide the window up so that nonce is its top entry
        base, bits = compute_raised_window(base, bits, nonce - NONCE_WINDOW + 1)
    offset = nonce - base
    # (nonce 3) The nonce has not been used.
    if (bits >> offset) & 1:
        raise InvalidTransaction(ErrorCode.NONCE_USED)
    return base, bits | (1 << offset)


def check_nonce_floor(account: Account, floor: int) -> tuple[int, int]:
    """The account's window after a cancel-all raises its floor to `floor` (floor rules 1-2)."""
    # (floor 1) The floor rises (so a cancel-all is never replayed).
    require(floor > account.nonce_base, ErrorCode.NONCE_TOO_LOW)
    # (floor 2) By at most NONCE_HORIZON, and within the nonce range (nonce rule 2's reason).
    require(floor - account.nonce_base <= NONCE_HORIZON and floor <= MAX_NONCE, ErrorCode.NONCE_TOO_HIGH)
    return compute_raised_window(account.nonce_base, account.nonce_bits, floor)


def check_fresh(state: State, ctx: L1Context, markets: set[int]) -> None:
    """The prices and funding a transaction reads are recent against the batch's L1 timestamp (time
    rules 1-2). `markets` are the ones whose prices it reads: a transaction that reads none reads no
    funding either."""
    if not markets:
        return
    config = state.config
    now = ctx.l1_timestamp
    for market in sorted(markets):
        # (time 1) Each price read was set no more than price_validity before the batch's L1 time.
        if not (state.markets[market].price_time + config.price_validity >= now):
            raise InvalidTransaction(ErrorCode.STALE_PRICE)
    # (time 2) The funding indices were set no more than funding_validity before it.
    if not (state.funding_time + config.funding_validity >= now):
        raise InvalidTransaction(ErrorCode.STALE_FUNDING)


def get_read_markets(market: int | None, *accounts: Account) -> set[int]:
    """The markets whose prices a fill or withdrawal reads: the traded one and every held position's."""
    markets = set() if market is None else {market}
    for account in accounts:
        markets.update(account.positions)
    return markets


class OrderSide(msgspec.Struct, gc=False):
    """One side of a fill, resolved from a new signed order or a slot reference. (A Struct: built in
    C, twice per Trade; `gc=False`: it refers to nothing that refers back to it.)"""

    account_id: int
    account: Account  # as it is now (the fill writes into it)
    market: int
    is_buy: bool
    limit_price: int
    remaining: int  # what the order has left before this fill
    fee_rate: int
    expiry: int
    slot_id: int | None  # its slot, None for a new signed order
    nonce_state: tuple[int, int] | None  # a new order's nonce window after its nonce is used


def resolve_order(state: State, order: OrderOrRef, now: int) -> OrderSide:
    """`now` is the batch's L1 timestamp: orders expire against the clock the sequencer cannot stop."""
    if type(order) is SlotRef:
        slot = require_slot(state, order.slot)
        # (ref 1) The slot exists.
        if slot is None:
            raise InvalidTransaction(ErrorCode.SLOT_NOT_FOUND)
        # (ref 2) The order still has something to fill.
        if not (slot.remaining > 0):
            raise InvalidTransaction(ErrorCode.ORDER_FILLED)
        # (ref 3) The order has not expired.
        if not (now <= slot.expiry):
            raise InvalidTransaction(ErrorCode.EXPIRED)
        account = require_account(state, slot.account_id)
        return OrderSide(
            slot.account_id, account, slot.market, slot.is_buy, slot.limit_price, slot.remaining, slot.fee_rate, slot.expiry, order.slot, None
        )
    markets = state.config.markets
    # (new 1) The market exists.
    if not (order.market < len(markets)):
        raise InvalidTransaction(ErrorCode.MARKET_NOT_FOUND)
    config = markets[order.market]
    # (new 2) Size and limit price are positive multiples of the market's step and tick; fee rate <= 100%.
    if not (
        order.size > 0
        and order.size % config.step_size == 0
        and order.limit_price > 0
        and order.limit_price % config.tick_size == 0
        and order.fee_rate <= FRACTION_ONE
    ):
        raise InvalidTransaction(ErrorCode.INVALID_ORDER)
    account = require_account(state, order.account_id)
    # (new 3) The account exists.
    if account is None:
        raise InvalidTransaction(ErrorCode.ACCOUNT_NOT_FOUND)
    # (new 4, 5) The order is signed by the account owner.
    check_signer(compute_order_digest(state.config.domain_separator, order), order.signature, account.owner)
    # (new 6) The order has not expired.
    if not (now <= order.expiry):
        raise InvalidTransaction(ErrorCode.EXPIRED)
    # (new 7-9) The nonce is fresh (nonce rules 1-3).
    nonce_state = check_nonce(account, order.nonce)
    return OrderSide(
        order.account_id, account, order.market, order.is_buy, order.limit_price, order.size, order.fee_rate, order.expiry, None, nonce_state
    )


def check_fill_size(state: State, size: int, *sides: OrderSide) -> None:
    step = state.config.markets[sides[0].market].step_size
    # The fill is a positive multiple of the step and no larger than what each order has left.
    if not (size > 0 and size % step == 0):
        raise InvalidTransaction(ErrorCode.INVALID_AMOUNT)
    for side in sides:
        if not (size <= side.remaining):
            raise InvalidTransaction(ErrorCode.INVALID_AMOUNT)


def check_slot_capacity(state: State, size: int, *sides: OrderSide) -> None:
    new_slots = 0
    for side in sides:
        if side.slot_id is None and side.remaining > size:
            new_slots += 1
    # The rest of each partially filled new order gets a slot id within the slot tree.
    if not (state.next_slot + new_slots <= MAX_SLOT_ID + 1):
        raise InvalidTransaction(ErrorCode.TREE_FULL)


def compute_fee(size: int, price: int, fee_rate: int) -> int:
    return ceil_div(size * price * fee_rate, PRICE_ONE * FRACTION_ONE)


def compute_close_at_oracle(state: State, market: int, size: int, closing_long: bool) -> int:
    """The collateral change of closing `size` at the oracle price: a long sells and receives the
    notional rounded down, a short buys back and pays it rounded up."""
    notional = state.markets[market].price * size
    return notional // PRICE_ONE if closing_long else -ceil_div(notional, PRICE_ONE)


def write_order_side(state: State, side: OrderSide, filled: int) -> None:
    """Record the nonce of a new order and what remains of the order (a new slot if partial)."""
    if side.nonce_state is not None:
        side.account.nonce_base, side.account.nonce_bits = side.nonce_state
    remaining = side.remaining - filled
    if side.slot_id is not None:
        set_slot(state, side.slot_id, msgspec.structs.replace(require_slot(state, side.slot_id), remaining=remaining))
    elif remaining > 0:
        set_slot(
            state,
            state.next_slot,
            Slot(side.account_id, side.market, side.is_buy, side.limit_price, remaining, side.fee_rate, side.expiry),
        )
        state.next_slot += 1


# --- process_* --------------------------------------------------------------------------------------


def process_deposit(state: State, tx: Deposit, ctx: L1Context) -> Receipt:
    entry = ctx.deposits.get(state.deposits_done)
    # 1. An L1 deposit is waiting in the queue.
    require(entry is not None, ErrorCode.NO_PENDING_DEPOSIT)
    if tx.account_id == state.next_account_id:
        account = None  # a new account for entry.owner
    else:
        account = require_account(state, tx.account_id)
        # 2. The account exists, or the id is the next free one.
        require(account is not None, ErrorCode.ACCOUNT_NOT_FOUND)
        # 3. An existing account belongs to the depositor.
        require(account.owner == entry.owner, ErrorCode.OWNER_MISMATCH)
    # Once a loss is socialized, a deposit buys collateral units at their token value (1 - L/T), so
    # that a new depositor bears none of a loss that happened before it came.
    credit = compute_deposit_credit(entry.amount, state.socialized_loss, state.total_collateral)
    collateral = (account.collateral if account else 0) + credit
    # 4. The amount is in range and the balance does not overflow.
    require(0 <= entry.amount <= MAX_AMOUNT, ErrorCode.INVALID_AMOUNT)
    check_balance(collateral)
    # 4a. The state's total collateral stays in range (and so does the socialized loss, below it).
    check_balance(state.total_collateral + credit)
    if account is None:
        account = Account(owner=entry.owner, positions={})
        state.next_account_id += 1
    account.collateral = collateral
    set_account(state, tx.account_id, account)
    state.socialized_loss += credit - entry.amount
    state.total_collateral += credit
    state.deposits_done += 1
    return APPLIED


class Party:
    """An account taking part in a fill, with funding settled (nothing written yet)."""

    __slots__ = ("account_id", "account", "collateral", "positions", "funding_paid")

    def __init__(self, state: State, account_id: int, account: Account) -> None:
        self.account_id = account_id
        self.account = account
        self.collateral, self.positions, self.funding_paid = compute_settled_funding(state, account)


def compute_party_after(state: State, party: Party, market: int, size_delta: int, collateral_delta: int) -> tuple[int, int, dict[int, Position]]:
    """The party's new size in `market`, collateral and positions after a fill (nothing checked)."""
    old = party.positions.get(market)
    new_size = (old.size if old else 0) + size_delta
    collateral = party.collateral + collateral_delta
    return new_size, collateral, with_position(party.positions, market, new_size, state.markets[market].funding_index)


def check_party_after(state: State, market: int, new_size: int, collateral: int) -> None:
    # The new position is within the market's risk limit.
    if not (abs(new_size) <= state.config.markets[market].max_position):
        raise InvalidTransaction(ErrorCode.POSITION_LIMIT)
    # The collateral stays in range.
    check_balance(collateral)


def check_margin(state: State, party: Party, collateral: int, positions: dict[int, Position], market: int) -> None:
    # The margin rule holds after the fill: initial margin after an exposure increase, otherwise
    # healthy or healthier (see margin.is_margin_ok_after_fill).
    if not is_margin_ok_after_fill(state, party.collateral, party.positions, collateral, positions, market):
        raise InvalidTransaction(ErrorCode.INSUFFICIENT_MARGIN)


def compute_funding_pool(state: State, *parties: Party) -> int:
    """The funding pool after the parties' settlements (checked by the caller with check_balance)."""
    pool = state.funding_pool
    for party in parties:
        pool += party.funding_paid
    return pool


def write_party(state: State, party: Party, collateral: int, positions: dict[int, Position]) -> None:
    account = party.account
    account.collateral = collateral
    account.positions = positions
    set_account(state, party.account_id, account)


def process_trade(state: State, tx: Trade, ctx: L1Context) -> Receipt:
    # 1-2. Each order is a valid new signed order or a live slot (rules in resolve_order).
    maker = resolve_order(state, tx.maker, ctx.l1_timestamp)
    taker = resolve_order(state, tx.taker, ctx.l1_timestamp)
    # 3. Two different accounts.
    if not (maker.account_id != taker.account_id):
        raise InvalidTransaction(ErrorCode.SELF_TRADE)
    # 4. The same market.
    if not (maker.market == taker.market):
        raise InvalidTransaction(ErrorCode.MARKET_MISMATCH)
    # 5. Opposite sides.
    if not (maker.is_buy != taker.is_buy):
        raise InvalidTransaction(ErrorCode.SAME_SIDE)
    # 6. A valid fill size for both orders.
    size = tx.size
    check_fill_size(state, size, maker, taker)
    # 7. The trade executes at the maker's price, which must satisfy the taker's limit.
    price = maker.limit_price
    if not (price <= taker.limit_price if taker.is_buy else price >= taker.limit_price):
        raise InvalidTransaction(ErrorCode.PRICE_LIMIT)
    market = maker.market
    buyer, seller = (maker, taker) if maker.is_buy else (taker, maker)
    # 7a. The prices and funding the fill reads are fresh (time rules 1-2).
    check_fresh(state, ctx, get_read_markets(market, buyer.account, seller.account))
    buyer_party = Party(state, buyer.account_id, buyer.account)
    seller_party = Party(state, seller.account_id, seller.account)
    # The buyer pays the notional rounded up, the seller receives it rounded down: the dust is a fee.
    paid = ceil_div(size * price, PRICE_ONE)
    received = size * price // PRICE_ONE
    buyer_fee = compute_fee(size, price, buyer.fee_rate)
    seller_fee = compute_fee(size, price, seller.fee_rate)
    buyer_size, buyer_collateral, buyer_positions = compute_party_after(state, buyer_party, market, size, -paid - buyer_fee)
    seller_size, seller_collateral, seller_positions = compute_party_after(state, seller_party, market, -size, received - seller_fee)
    # 8-9. Positions within the risk limit and balances in range (buyer, then seller).
    check_party_after(state, market, buyer_size, buyer_collateral)
    check_party_after(state, market, seller_size, seller_collateral)
    fees = state.fees + buyer_fee + seller_fee + (paid - received)
    # 9a. The fee account stays in range.
    check_balance(fees)
    pool = compute_funding_pool(state, buyer_party, seller_party)
    # 9b. The funding pool stays in range.
    check_balance(pool)
    # 10. Margin: initial margin after an exposure increase, otherwise healthy or healthier (buyer,
    #     then seller).
    check_margin(state, buyer_party, buyer_collateral, buyer_positions, market)
    check_margin(state, seller_party, seller_collateral, seller_positions, market)
    # 11. Room in the slot tree for partial remainders.
    check_slot_capacity(state, size, maker, taker)
    # Write.
    write_party(state, buyer_party, buyer_collateral, buyer_positions)
    write_party(state, seller_party, seller_collateral, seller_positions)
    write_order_side(state, maker, size)
    write_order_side(state, taker, size)
    state.fees = fees
    state.funding_pool = pool
    return APPLIED


def check_withdrawal(state: State, account_id: int, account: Account, amount: int) -> tuple[Party, int, int]:
    """The settled party, its collateral after withdrawing `amount` and the funding pool (withdrawal
    rules 1-5)."""
    # (withdrawal 1) The amount is positive.
    require(amount > 0, ErrorCode.INVALID_AMOUNT)
    party = Party(state, account_id, account)
    collateral = party.collateral - amount
    # (withdrawal 2) The settled collateral stays in range.
    check_balance(collateral)
    # (withdrawal 3) The funding pool stays in range.
    pool = compute_funding_pool(state, party)
    check_balance(pool)
    # (withdrawal 4) What remains covers the initial margin of the open positions (with none: collateral >= 0).
    require(
        get_total_value(state, collateral, party.positions) >= get_total_risk(state, party.positions, initial=True),
        ErrorCode.INSUFFICIENT_MARGIN,
    )
    # (withdrawal 5) The cumulative withdrawn amount stays in range.
    check_balance(account.withdrawn + amount)
    return party, collateral, pool


def write_withdrawal(state: State, party: Party, collateral: int, pool: int, amount: int) -> None:
    """`amount` collateral units leave the state; the bridge pays them less the socialized loss's
    haircut (docs/risk.md §4.4), which also leaves the loss: the rate L/T stays the same."""
    haircut = compute_haircut(amount, state.socialized_loss, state.total_collateral)
    party.account.withdrawn += amount - haircut
    write_party(state, party, collateral, party.positions)
    state.funding_pool = pool
    state.socialized_loss -= haircut
    state.total_collateral -= amount


def process_withdraw(state: State, tx: Withdraw, ctx: L1Context) -> Receipt:
    account = require_account(state, tx.account_id)
    # 1. The account exists.
    require(account is not None, ErrorCode.ACCOUNT_NOT_FOUND)
    # 2-3. Signed by the owner.
    check_signer(compute_typed_digest(state.config.domain_separator, hash_withdraw(tx)), tx.signature, account.owner)
    # 4. Not expired (against the batch's L1 timestamp).
    require(ctx.l1_timestamp <= tx.expiry, ErrorCode.EXPIRED)
    # 5-7. A fresh nonce (nonce rules 1-3).
    nonce_state = check_nonce(account, tx.nonce)
    # 8-9. The prices and funding of the account's positions are fresh (time rules 1-2).
    check_fresh(state, ctx, get_read_markets(None, account))
    # 10-14. Amount, ranges, margin (withdrawal rules 1-5).
    party, collateral, pool = check_withdrawal(state, tx.account_id, account, tx.amount)
    account.nonce_base, account.nonce_bits = nonce_state
    write_withdrawal(state, party, collateral, pool, tx.amount)
    return APPLIED


def is_cancel_all_request(entry: ForcedEntry) -> bool:
    return entry.amount >= FORCED_CANCEL_ALL


def is_deleverage_request(entry: ForcedEntry) -> bool:
    return FORCED_DELEVERAGE <= entry.amount < FORCED_CANCEL_ALL


def get_forced_deleverage(entry: ForcedEntry) -> tuple[int, int, int] | None:
    """(deleverager id, market, size) of a forced deleverage request's amount word, or None when a bit
    between the packed fields and the flag is set."""
    word = entry.amount - FORCED_DELEVERAGE
    if word >> FORCED_DELEVERAGE_BITS:
        return None
    return (word >> 72) & MAX_U32, (word >> 64) & MAX_U8, word & MAX_U64


def require_forced_read_markets(state: State, entry: ForcedEntry, account: Account | None) -> set[int]:
    """The markets whose prices a forced request reads (`require_`: reading the deleverager may raise
    WitnessError): a withdrawal the account's; a deleverage both
    accounts'; a cancel-all none."""
    if is_cancel_all_request(entry) or account is None:
        return set()
    if not is_deleverage_request(entry):
        return get_read_markets(None, account)
    fields = get_forced_deleverage(entry)
    other = require_account(state, fields[0]) if fields is not None else None
    return get_read_markets(None, account) | (get_read_markets(None, other) if other is not None else set())


def process_forced_withdraw(state: State, tx: ForcedWithdraw, ctx: L1Context) -> Receipt:
    """The next L1 forced request: a withdrawal, a cancel-all (FORCED_CANCEL_ALL in the amount word)
    or a deleverage of a bankrupt account (FORCED_DELEVERAGE)."""
    entry = ctx.forced.get(state.forced_done)
    # 1. An L1 forced request is waiting (otherwise the transaction is invalid).
    require(entry is not None, ErrorCode.NO_PENDING_FORCED)
    account = require_account(state, entry.account_id)
    cancel_all = is_cancel_all_request(entry)
    deleverage = is_deleverage_request(entry)
    # 2-3. A withdrawal or a deleverage reads fresh prices and funding for the accounts' positions
    #      (time rules 1-2). Otherwise the transaction is invalid and the request stays queued: the
    #      sequencer must post fresh prices before the forced deadline rather than get the request
    #      rejected on stale ones.
    check_fresh(state, ctx, require_forced_read_markets(state, entry, account))
    # From here on the request is consumed whatever happens; a failed rule rejects it with a reason.
    try:
        # 4. The account exists.
        require(account is not None, ErrorCode.ACCOUNT_NOT_FOUND)
        if deleverage:
            # Anyone may ask (the waterfall protects every holder): no owner check.
            fields = get_forced_deleverage(entry)
            # 5. The amount word packs nothing beyond (deleverager, market, size).
            require(fields is not None, ErrorCode.INVALID_AMOUNT)
            # 6-13. The deleverage rules 1-8 (check_deleverage).
            fill = check_deleverage(state, ctx, entry.account_id, *fields)
        else:
            # 5. The requester owns it.
            require(account.owner == entry.requester, ErrorCode.OWNER_MISMATCH)
            if cancel_all:
                # 6-7. The new nonce floor rises by at most NONCE_HORIZON (floor rules 1-2).
                nonce_state = check_nonce_floor(account, entry.amount - FORCED_CANCEL_ALL)
            else:
                # 6. The amount is in range.
                require(entry.amount <= MAX_AMOUNT, ErrorCode.INVALID_AMOUNT)
                # 7-11. Amount positive, ranges, margin (withdrawal rules 1-5).
                party, collateral, pool = check_withdrawal(state, entry.account_id, account, entry.amount)
    except InvalidTransaction as rejected:
        state.forced_done += 1
        return Receipt(rejected.code, True)
    if deleverage:
        write_deleverage(state, fill)
    elif cancel_all:
        account.nonce_base, account.nonce_bits = nonce_state
        set_account(state, entry.account_id, account)
    else:
        write_withdrawal(state, party, collateral, pool, entry.amount)
    state.forced_done += 1
    return APPLIED


def lower_median(values: list[int]) -> int:
    return sorted(values)[(len(values) - 1) // 2]


def is_price_move_allowed(max_price_move: int, old_price: int, new_price: int, elapsed: int) -> bool:
    """|new - old| <= max_price_move / FRACTION_ONE * old * elapsed, exactly (no rounding); 0 = no limit."""
    return max_price_move == 0 or abs(new_price - old_price) * FRACTION_ONE <= max_price_move * old_price * elapsed


def process_oracle_price(state: State, tx: OraclePrice, ctx: L1Context) -> Receipt:
    # 1. The market exists.
    require(tx.market < len(state.markets), ErrorCode.MARKET_NOT_FOUND)
    market = state.markets[tx.market]
    market_config = state.config.markets[tx.market]
    config = state.config
    oracles = config.oracles
    # 2. At least the market's quorum of samples. Genesis makes quorum >= 2f + 1 for the market's own f
    #    (genesis.check_market_oracles), so the lower median of any subset the sequencer includes lies
    #    between two honest samples.
    require(len(tx.samples) >= market_config.quorum, ErrorCode.QUORUM_NOT_MET)
    previous_index = -1
    for sample in tx.samples:
        # 3. Oracle indices are known and strictly increasing (each oracle counts once).
        require(previous_index < sample.oracle_index < len(oracles), ErrorCode.INVALID_ORACLE)
        previous_index = sample.oracle_index
        # 3a. The oracle is one of this market's (its bit is in the market's oracle set).
        require((market_config.oracle_set >> sample.oracle_index) & 1 == 1, ErrorCode.INVALID_ORACLE)
        # 4. The price is positive.
        require(sample.price > 0, ErrorCode.INVALID_PRICE)
        # 5. Not later than the batch's L1 timestamp.
        require(sample.timestamp <= ctx.l1_timestamp, ErrorCode.FUTURE_TIMESTAMP)
        # 6. Not older than max_sample_age before it.
        require(sample.timestamp + config.max_sample_age >= ctx.l1_timestamp, ErrorCode.SAMPLE_TOO_OLD)
        # 7. Newer than every sample of the market's last update, so no sample is ever used twice.
        require(sample.timestamp > market.sample_time, ErrorCode.STALE_TIMESTAMP)
        # 8-9. Signed by that oracle.
        digest = compute_typed_digest(config.domain_separator, hash_oracle_price(tx.market, sample))
        check_signer(digest, sample.signature, oracles[sample.oracle_index])
    # The new price and its time are the lower medians: f oracles move neither outside the honest
    # samples. The newest sample time is the bar every later sample must clear.
    price = lower_median([s.price for s in tx.samples])
    price_time = lower_median([s.timestamp for s in tx.samples])
    # 10. The price moves no faster than the market's max_price_move per second since the last price's
    #     time (rule 7 makes price_time later than it). Rejected, never clamped: a stored price is always
    #     one a quorum signed; the bound grows with the time elapsed, so a real move gets through late
    #     but never stays out (genesis.check_price_move_liveness, docs/risk.md).
    require(
        is_price_move_allowed(market_config.max_price_move, market.price, price, price_time - market.price_time),
        ErrorCode.PRICE_MOVE_TOO_FAST,
    )
    market.price = price
    market.price_time = price_time
    market.sample_time = max(s.timestamp for s in tx.samples)
    state.time = max(state.time, market.price_time)
    return APPLIED


def process_funding_tick(state: State, tx: FundingTick, ctx: L1Context) -> Receipt:
    # 1. One index per market.
    require(len(tx.indices) == len(state.markets), ErrorCode.WRONG_MARKET_COUNT)
    # 2. Time moves forward: after the last funding tick and not before the system time.
    require(tx.timestamp > state.funding_time and tx.timestamp >= state.time, ErrorCode.STALE_TIMESTAMP)
    # 3. Not later than the batch's L1 timestamp.
    require(tx.timestamp <= ctx.l1_timestamp, ErrorCode.FUTURE_TIMESTAMP)
    elapsed = tx.timestamp - state.funding_time
    for market, config, index in zip(state.markets, state.config.markets, tx.indices):
        # 4. |index change| <= max rate * price * elapsed, exactly (no rounding).
        require(
            abs(index - market.funding_index) * FUNDING_RATE_ONE <= config.max_funding_rate * market.price * elapsed,
            ErrorCode.FUNDING_RATE_EXCEEDED,
        )
    for market, index in zip(state.markets, tx.indices):
        market.funding_index = index
    state.funding_time = state.time = tx.timestamp
    return APPLIED


def process_liquidate(state: State, tx: Liquidate, ctx: L1Context) -> Receipt:
    # 1. The liquidator's order is a valid new signed order or a live slot.
    liquidator = resolve_order(state, tx.liquidator, ctx.l1_timestamp)
    liquidated_account = require_account(state, tx.liquidated_id)
    # 2. The liquidated account exists.
    require(liquidated_account is not None, ErrorCode.ACCOUNT_NOT_FOUND)
    # 3. Two different accounts.
    require(liquidator.account_id != tx.liquidated_id, ErrorCode.SELF_TRADE)
    # 4. A valid fill size for the liquidator's order.
    size = tx.size
    check_fill_size(state, size, liquidator)
    market = liquidator.market
    # 4a. The prices and funding the liquidation reads are fresh (time rules 1-2).
    check_fresh(state, ctx, get_read_markets(market, liquidator.account, liquidated_account))
    liquidated = Party(state, tx.liquidated_id, liquidated_account)
    value_before, risk_before = get_value_and_risk(state, liquidated.collateral, liquidated.positions)
    # 5. The liquidated account is below maintenance margin.
    require(value_before < risk_before, ErrorCode.NOT_LIQUIDATABLE)
    position = liquidated.positions.get(market)
    held = position.size if position else 0
    # 6. The fill only shrinks the liquidated position: it takes the other side, at most all of it.
    require(
        held != 0 and (held > 0) == liquidator.is_buy and size <= abs(held),
        ErrorCode.NOT_REDUCING,
    )
    price = liquidator.limit_price
    oracle = state.markets[market].price
    maintenance = state.config.markets[market].maintenance_margin
    # 7. The price is within the maintenance band around the oracle price (rule 10 bounds it further).
    if held > 0:
        require(price * FRACTION_ONE >= oracle * (FRACTION_ONE - maintenance), ErrorCode.LIQUIDATION_PRICE)
    else:
        require(price * FRACTION_ONE <= oracle * (FRACTION_ONE + maintenance), ErrorCode.LIQUIDATION_PRICE)
    liquidator_party = Party(state, liquidator.account_id, liquidator.account)
    paid = ceil_div(size * price, PRICE_ONE)
    received = size * price // PRICE_ONE
    liquidator_fee = compute_fee(size, price, liquidator.fee_rate)
    if liquidator.is_buy:
        liquidator_delta, liquidated_delta = -paid - liquidator_fee, received
    else:
        liquidator_delta, liquidated_delta = received - liquidator_fee, -paid
    signed_size = size if liquidator.is_buy else -size
    liquidator_size, liquidator_collateral, liquidator_positions = compute_party_after(
        state, liquidator_party, market, signed_size, liquidator_delta
    )
    liquidated_size, liquidated_collateral, liquidated_positions = compute_party_after(
        state, liquidated, market, -signed_size, liquidated_delta
    )
    # 8. Positions within limits and balances in range (liquidator, then liquidated).
    check_party_after(state, market, liquidator_size, liquidator_collateral)
    check_party_after(state, market, liquidated_size, liquidated_collateral)
    # Bad debt: a bankrupt account's shortfall on what closes is paid by the insurance fund first,
    # valued at the oracle price (the fund never pays a liquidator's discount).
    value_filled, risk_after = get_value_and_risk(state, liquidated_collateral, liquidated_positions)
    value_at_oracle = value_filled - liquidated_delta + compute_close_at_oracle(state, market, size, held > 0)
    cover = compute_bad_debt_cover(value_before, risk_before, max(value_filled, value_at_oracle), risk_after, state.insurance)
    # The penalty is a fraction of the oracle notional, capped so that the account stays healthy or
    # healthier and never pays more than the value it has left.
    room = compute_liquidation_room(value_before, risk_before, value_filled + cover, risk_after)
    penalty = min(compute_fee(size, oracle, state.config.markets[market].liquidation_fee), room)
    liquidated_collateral += cover - penalty
    insurance = state.insurance + penalty - cover
    fees = state.fees + liquidator_fee + (paid - received)
    pool = compute_funding_pool(state, liquidator_party, liquidated)
    # 8a. The liquidated account's collateral stays in range.
    check_balance(liquidated_collateral)
    # 8b. The insurance fund stays in range.
    check_balance(insurance)
    # 8c. The fee account stays in range.
    check_balance(fees)
    # 8d. The funding pool stays in range.
    check_balance(pool)
    # 9. The liquidator meets the margin rule.
    check_margin(state, liquidator_party, liquidator_collateral, liquidator_positions, market)
    # 10. The liquidated account ends healthy or healthier (after the fund's cover and the penalty):
    #     a solvent account is never left in debt, and no discount deepens a bankrupt one's.
    require(
        is_healthy_or_healthier(value_before, risk_before, value_filled + cover - penalty, risk_after),
        ErrorCode.INSUFFICIENT_MARGIN,
    )
    # 11. Room in the slot tree for the liquidator order's remainder.
    check_slot_capacity(state, size, liquidator)
    write_party(state, liquidator_party, liquidator_collateral, liquidator_positions)
    write_party(state, liquidated, liquidated_collateral, liquidated_positions)
    write_order_side(state, liquidator, size)
    state.insurance = insurance
    state.fees = fees
    state.funding_pool = pool
    return APPLIED


class DeleverageFill:
    """What a valid deleverage writes (computed by check_deleverage, written by write_deleverage)."""

    __slots__ = ("deleveraged", "deleverager", "deleveraged_collateral", "deleveraged_positions",
                 "deleverager_collateral", "deleverager_positions", "insurance", "pool", "socialized")

    def __init__(self, deleveraged, deleverager, deleveraged_collateral, deleveraged_positions,
                 deleverager_collateral, deleverager_positions, insurance, pool, socialized):
        self.deleveraged: Party = deleveraged
        self.deleverager: Party = deleverager
        self.deleveraged_collateral: int = deleveraged_collateral
        self.deleveraged_positions: dict[int, Position] = deleveraged_positions
        self.deleverager_collateral: int = deleverager_collateral
        self.deleverager_positions: dict[int, Position] = deleverager_positions
        self.insurance: int = insurance
        self.pool: int = pool
        self.socialized: int = socialized


def check_deleverage(state: State, ctx: L1Context, deleveraged_id: int, deleverager_id: int, market: int, size: int) -> DeleverageFill:
    """Deleverage rules 1-8 (process_deleverage; a forced deleverage request runs the same rules)."""
    # 1. The market exists.
    require(market < len(state.markets), ErrorCode.MARKET_NOT_FOUND)
    deleveraged_account = require_account(state, deleveraged_id)
    deleverager_account = require_account(state, deleverager_id)
    # 2. Both accounts exist.
    require(deleveraged_account is not None and deleverager_account is not None, ErrorCode.ACCOUNT_NOT_FOUND)
    # 3. Two different accounts.
    require(deleveraged_id != deleverager_id, ErrorCode.SELF_TRADE)
    # 4. The size is a positive multiple of the market's step (what remains stays tradeable).
    require(size > 0 and size % state.config.markets[market].step_size == 0, ErrorCode.INVALID_AMOUNT)
    # 4a. The prices and funding the deleverage reads are fresh (time rules 1-2).
    check_fresh(state, ctx, get_read_markets(market, deleveraged_account, deleverager_account))
    deleveraged = Party(state, deleveraged_id, deleveraged_account)
    deleverager = Party(state, deleverager_id, deleverager_account)
    value, risk = get_value_and_risk(state, deleveraged.collateral, deleveraged.positions)
    # 5. The deleveraged account's total value is negative.
    require(value < 0, ErrorCode.NOT_DELEVERAGEABLE)
    a = deleveraged.positions.get(market)
    b = deleverager.positions.get(market)
    held = a.size if a else 0
    other = b.size if b else 0
    # 6. Opposite positions, and the size closes at most each of them.
    require(held * other < 0 and size <= abs(held) and size <= abs(other), ErrorCode.NOT_REDUCING)
    signed_size = -size if held > 0 else size  # the deleveraged side's change
    remaining = with_position(deleveraged.positions, market, held + signed_size, state.markets[market].funding_index)
    # At the market's bankruptcy price: the deleveraged account keeps its value/risk ratio, so the
    # part of its deficit that moves is this position's share of its risk (all of it when nothing
    # stays open), never the deficit of its other markets. Rounded for the deleveraged (it must end
    # healthier), i.e. against the deleverager.
    risk_after = get_total_risk(state, remaining, initial=False)
    # 6a. The closure lowers the deleveraged account's risk (rounding can leave a tiny step's risk
    #     unchanged: then nothing would move and the account would not be healthier), or it closes the
    #     deleverager's whole opposite position: a holder too small to lower the rounded risk still
    #     takes its part at the oracle price (the ratio, and so the value, stay the same), so that the
    #     holders one after another can always close a position whose risk only falls when all of it
    #     closes (and then the deficit moves).
    require(risk_after < risk or size == abs(other), ErrorCode.NOT_REDUCING)
    target = compute_ratio_value(value, risk, risk_after)
    deleveraged_delta = target - get_total_value(state, deleveraged.collateral, remaining)
    # What that pays beyond the oracle price is bad debt: the insurance fund pays it first, the
    # deleverager only the rest.
    at_oracle = compute_close_at_oracle(state, market, size, held > 0)
    cover = max(0, min(state.insurance, deleveraged_delta - at_oracle))
    deleveraged_size, deleveraged_collateral, deleveraged_positions = compute_party_after(
        state, deleveraged, market, signed_size, deleveraged_delta
    )
    deleverager_size, deleverager_collateral, deleverager_positions = compute_party_after(
        state, deleverager, market, -signed_size, cover - deleveraged_delta
    )
    insurance = state.insurance - cover
    # The deleverager ends healthy or healthier (its share is bounded by its position in this market
    # at this market's bankruptcy price). If it cannot, it ends at its floor — all of its value given
    # up (0), or, bankrupt itself, at its own bankruptcy price — and what it cannot pay comes from
    # what is left of the insurance fund, then from the socialized loss: the last resort.
    shortfall = 0
    if not is_margin_ok_after_fill(state, deleverager.collateral, deleverager.positions, deleverager_collateral, deleverager_positions, market):
        value_before, risk_before = get_value_and_risk(state, deleverager.collateral, deleverager.positions)
        floor = compute_deleverager_floor(value_before, risk_before, get_total_risk(state, deleverager_positions, initial=False))
        shortfall = max(0, floor - get_total_value(state, deleverager_collateral, deleverager_positions))
    fund_share = min(insurance, shortfall)
    socialized = shortfall - fund_share
    insurance -= fund_share
    deleverager_collateral += shortfall
    pool = compute_funding_pool(state, deleveraged, deleverager)
    # 7. The deleveraged account's collateral stays in range (positions only shrink: no limit check).
    check_balance(deleveraged_collateral)
    # 7a. The deleverager's collateral stays in range.
    check_balance(deleverager_collateral)
    # 7b. The funding pool stays in range.
    check_balance(pool)
    # 8. The total collateral stays in range with the socialized part (and so does the loss, below it).
    check_balance(state.total_collateral + socialized)
    return DeleverageFill(
        deleveraged, deleverager, deleveraged_collateral, deleveraged_positions,
        deleverager_collateral, deleverager_positions, insurance, pool, socialized,
    )


def write_deleverage(state: State, fill: DeleverageFill) -> None:
    write_party(state, fill.deleveraged, fill.deleveraged_collateral, fill.deleveraged_positions)
    write_party(state, fill.deleverager, fill.deleverager_collateral, fill.deleverager_positions)
    state.insurance = fill.insurance
    state.funding_pool = fill.pool
    # The socialized part is new collateral units that no token backs: every unit's token value falls.
    state.socialized_loss += fill.socialized
    state.total_collateral += fill.socialized


def process_deleverage(state: State, tx: Deleverage, ctx: L1Context) -> Receipt:
    # 1-8. The deleverage rules (check_deleverage).
    write_deleverage(state, check_deleverage(state, ctx, tx.deleveraged_id, tx.deleverager_id, tx.market, tx.size))
    return APPLIED


def process_cancel_all(state: State, tx: CancelAll, ctx: L1Context) -> Receipt:
    account = require_account(state, tx.account_id)
    # 1. The account exists.
    require(account is not None, ErrorCode.ACCOUNT_NOT_FOUND)
    # 2-3. Signed by the owner.
    check_signer(compute_typed_digest(state.config.domain_separator, hash_cancel_all(tx)), tx.signature, account.owner)
    # 4-5. The floor rises by at most NONCE_HORIZON (floor rules 1-2).
    account.nonce_base, account.nonce_bits = check_nonce_floor(account, tx.nonce_floor)
    set_account(state, tx.account_id, account)
    return APPLIED


def process_collect_fees(state: State, tx: CollectFees, ctx: L1Context) -> Receipt:
    account = require_account(state, tx.account_id)
    # 1. The account exists.
    require(account is not None, ErrorCode.ACCOUNT_NOT_FOUND)
    # 2. It belongs to the genesis fee owner.
    require(account.owner == state.config.fee_owner, ErrorCode.OWNER_MISMATCH)
    # 3. There are fees to collect.
    require(state.fees > 0, ErrorCode.INVALID_AMOUNT)
    collateral = account.collateral + state.fees
    # 4. The balance stays in range.
    check_balance(collateral)
    account.collateral = collateral
    set_account(state, tx.account_id, account)
    state.fees = 0
    return APPLIED


def process_malformed(state: State, tx: Malformed, ctx: L1Context) -> Receipt:
    raise InvalidTransaction(ErrorCode.MALFORMED)


PROCESSORS: dict[type, Callable[[State, Transaction, L1Context], Receipt]] = {
    Deposit: process_deposit,
    Trade: process_trade,
    Withdraw: process_withdraw,
    ForcedWithdraw: process_forced_withdraw,
    OraclePrice: process_oracle_price,
    FundingTick: process_funding_tick,
    Liquidate: process_liquidate,
    Deleverage: process_deleverage,
    CancelAll: process_cancel_all,
    CollectFees: process_collect_fees,
    Malformed: process_malformed,
}
