"""One test per validity rule of `optinode.spec.transition`, plus a happy path per transaction type.

Every invalid case goes through `assert_invalid`: exact error code, `applied=False`, the state root
and the whole state unchanged. A rejected forced withdrawal goes through `assert_forced_rejected`:
applied, only `forced_done` moves. Expected numbers are worked out by hand from the formulas in
transition.py/margin.py (comments show the arithmetic). `test_every_error_code_is_asserted` (last)
checks that every ErrorCode except OK is asserted somewhere in this file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec
import pytest
from coincurve import PublicKey

from optinode.spec import Receipt, compute_state_root
from optinode.spec.constants import (
    FRACTION_ONE, MAX_ACCOUNT_ID, MAX_AMOUNT, MAX_BALANCE, MAX_FUNDING_INDEX, MAX_NONCE, MAX_ORDER_MARKET,
    MAX_PRICE, MAX_SLOT_ID, MAX_TIMESTAMP, MAX_U32, MAX_U8, NONCE_HORIZON, NONCE_WINDOW, SECP256K1_N,
)
from optinode.spec.crypto import keccak
from optinode.spec.eip712 import compute_order_digest
from optinode.spec.errors import ErrorCode
from optinode.spec.genesis import GenesisMarket
from optinode.spec.margin import get_total_risk, get_total_value
from optinode.spec.state import Position, Slot, copy_state, get_total_collateral
from optinode.spec.types import (
    Deleverage, Deposit, DepositEntry, ForcedWithdraw, FundingTick, Liquidate, Malformed, OraclePrice, Order,
    PriceSample, SlotRef, Trade, Withdraw,
)

from optinode.testing.world import (
    BTC, BTC_PRICE, BTC_STEP, ETH, ETH_PRICE, ETH_STEP, ETH_TICK, FAR_EXPIRY, FUNDS, GENESIS, GENESIS_TIME, World,
)

E = ErrorCode


# --- helpers ------------------------------------------------------------------------------------------


def assert_invalid(w: World, tx: object, code: ErrorCode) -> None:
    """`tx` is rejected with `code`, not applied, and the state (and its root) is untouched."""
    root, before = w.root(), copy_state(w.state)
    receipt = w.apply(tx)  # type: ignore[arg-type]
    assert receipt == Receipt(code, False), receipt
    assert w.root() == root
    assert w.state == before


def assert_applied(w: World, tx: object) -> None:
    receipt = w.apply(tx)  # type: ignore[arg-type]
    assert receipt == Receipt(E.OK, True), receipt


def assert_forced_rejected(w: World, code: ErrorCode) -> None:
    """The next forced request is consumed with `code`; nothing but `forced_done` changes."""
    expected = copy_state(w.state)
    expected.forced_done += 1
    accounts = {i: (a.collateral, a.withdrawn, dict(a.positions)) for i, a in w.state.accounts.items()}
    receipt = w.apply(ForcedWithdraw())
    assert receipt == Receipt(code, True), receipt
    assert {i: (a.collateral, a.withdrawn, dict(a.positions)) for i, a in w.state.accounts.items()} == accounts
    assert w.root() == compute_state_root(expected)


def with_signature(message, signature: bytes):
    return msgspec.structs.replace(message, signature=signature)


SECP256K1_P = 2**256 - 2**32 - 977


def _r_without_point() -> int:
    """The smallest r for which no curve point has x == r (so no public key recovers)."""
    r = 1
    while pow((r**3 + 7) % SECP256K1_P, (SECP256K1_P - 1) // 2, SECP256K1_P) == 1:
        r += 1
    return r


def mangle(signature: bytes, how: str) -> bytes:
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return {
        "high_s": r + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,)),  # the malleable twin
        "v_29": signature[:64] + bytes((29,)),
        "v_raw_0": signature[:64] + bytes((0,)),
        "v_raw_1": signature[:64] + bytes((1,)),
        "length_64": signature[:64],
        "length_66": signature + b"\x00",
        "empty": b"",
        "r_zero": bytes(32) + signature[32:],
        "r_n": SECP256K1_N.to_bytes(32, "big") + signature[32:],
        "s_zero": r + bytes(32) + signature[64:],
        "no_point": _r_without_point().to_bytes(32, "big") + signature[32:],
    }[how]


BAD_SIGNATURES = ["high_s", "v_29", "v_raw_0", "v_raw_1", "length_64", "length_66", "empty", "r_zero", "r_n", "s_zero", "no_point"]


def test_high_s_twin_is_a_real_signature_by_the_same_key(world):
    """Sanity for the high-s case: without the low-s rule the twin would recover the signer."""
    world.deposit("alice", FUNDS)
    order = world.order("alice")
    twin = mangle(order.signature, "high_s")
    digest = compute_order_digest(world.domain, order)
    key = PublicKey.from_signature_and_message(twin[:64] + bytes((twin[64] - 27,)), digest, hasher=None)
    assert keccak(key.format(compressed=False)[1:])[12:] == world.address("alice")


# ======================================================================================================
# Well-formedness: MALFORMED
# ======================================================================================================

_UNSIGNED = dict(account_id=0, market=ETH, is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE, fee_rate=0, expiry=FAR_EXPIRY, nonce=0, signature=b"")


def _order(**fields) -> Order:
    return Order(**{**_UNSIGNED, **fields})


def _sample(**fields) -> PriceSample:
    return PriceSample(**{**dict(oracle_index=0, price=ETH_PRICE, timestamp=GENESIS_TIME + 1, signature=b""), **fields})


MALFORMED_TXS = {
    "deposit_negative_id": Deposit(account_id=-1),
    "deposit_id_too_large": Deposit(account_id=MAX_ACCOUNT_ID + 1),
    "withdraw_negative_id": Withdraw(-1, 1, FAR_EXPIRY, 0, b""),
    "withdraw_amount_too_large": Withdraw(0, MAX_AMOUNT + 1, FAR_EXPIRY, 0, b""),
    "withdraw_negative_amount": Withdraw(0, -1, FAR_EXPIRY, 0, b""),
    "withdraw_expiry_too_large": Withdraw(0, 1, MAX_TIMESTAMP + 1, 0, b""),
    "withdraw_nonce_too_large": Withdraw(0, 1, FAR_EXPIRY, MAX_NONCE + 1, b""),
    "trade_negative_size": Trade(_order(is_buy=False), _order(account_id=1), -1),
    "trade_size_too_large": Trade(_order(is_buy=False), _order(account_id=1), MAX_AMOUNT + 1),
    "trade_slot_negative": Trade(SlotRef(-1), _order(account_id=1), ETH_STEP),
    "trade_slot_too_large": Trade(_order(is_buy=False), SlotRef(MAX_SLOT_ID + 1), ETH_STEP),
    "order_account_too_large": Trade(_order(account_id=MAX_ACCOUNT_ID + 1, is_buy=False), _order(account_id=1), ETH_STEP),
    "order_market_too_large": Trade(_order(market=MAX_ORDER_MARKET + 1, is_buy=False), _order(account_id=1), ETH_STEP),
    "order_size_too_large": Trade(_order(size=MAX_AMOUNT + 1, is_buy=False), _order(account_id=1), ETH_STEP),
    "order_negative_price": Trade(_order(is_buy=False), _order(account_id=1, limit_price=-1), ETH_STEP),
    "order_price_too_large": Trade(_order(is_buy=False), _order(account_id=1, limit_price=MAX_PRICE + 1), ETH_STEP),
    "order_fee_rate_too_large": Trade(_order(is_buy=False, fee_rate=MAX_U32 + 1), _order(account_id=1), ETH_STEP),
    "order_negative_expiry": Trade(_order(is_buy=False, expiry=-1), _order(account_id=1), ETH_STEP),
    "order_nonce_too_large": Trade(_order(is_buy=False), _order(account_id=1, nonce=MAX_NONCE + 1), ETH_STEP),
    "oracle_market_too_large": OraclePrice(MAX_U8 + 1, (_sample(), _sample(oracle_index=1))),
    "oracle_too_many_samples": OraclePrice(ETH, tuple(_sample(oracle_index=i) for i in range(33))),
    "oracle_index_too_large": OraclePrice(ETH, (_sample(), _sample(oracle_index=MAX_U8 + 1))),
    "oracle_price_too_large": OraclePrice(ETH, (_sample(), _sample(oracle_index=1, price=MAX_PRICE + 1))),
    "oracle_negative_timestamp": OraclePrice(ETH, (_sample(timestamp=-1), _sample(oracle_index=1))),
    "funding_negative_timestamp": FundingTick(-1, (0, 0)),
    "funding_too_many_markets": FundingTick(GENESIS_TIME + 1, (0,) * 17),
    "funding_index_too_large": FundingTick(GENESIS_TIME + 1, (MAX_FUNDING_INDEX + 1, 0)),
    "funding_index_too_small": FundingTick(GENESIS_TIME + 1, (0, -MAX_FUNDING_INDEX - 1)),
    "liquidate_negative_id": Liquidate(_order(), -1, ETH_STEP),
    "liquidate_size_too_large": Liquidate(_order(), 0, MAX_AMOUNT + 1),
    "liquidate_bad_slot": Liquidate(SlotRef(-1), 0, ETH_STEP),
    "deleverage_market_too_large": Deleverage(0, 1, MAX_U8 + 1, ETH_STEP),
    "deleverage_negative_id": Deleverage(-1, 1, ETH, ETH_STEP),
    "deleverager_id_too_large": Deleverage(0, MAX_ACCOUNT_ID + 1, ETH, ETH_STEP),
    "deleverage_negative_size": Deleverage(0, 1, ETH, -1),
    "malformed_empty": Malformed(b""),
    "malformed_garbage": Malformed(b"\xff\x00garbage"),
}


@pytest.mark.parametrize("tx", MALFORMED_TXS.values(), ids=MALFORMED_TXS.keys())
def test_out_of_range_field_or_undecodable_record_is_malformed(funded_world, tx):
    funded_world.queue_deposit("alice", 1)  # so a Deposit is not rejected for the queue
    assert_invalid(funded_world, tx, E.MALFORMED)


AT_THE_BOUNDS = {
    # Every field at its largest well-formed value: not MALFORMED, the first failing rule instead.
    "deposit_max_id": (Deposit(MAX_ACCOUNT_ID), E.ACCOUNT_NOT_FOUND),
    "withdraw_max_id": (Withdraw(MAX_ACCOUNT_ID, MAX_AMOUNT, MAX_TIMESTAMP, MAX_NONCE, b""), E.ACCOUNT_NOT_FOUND),
    "withdraw_max_fields": (Withdraw(0, MAX_AMOUNT, MAX_TIMESTAMP, MAX_NONCE, b""), E.BAD_SIGNATURE),
    "trade_max_slot": (Trade(SlotRef(MAX_SLOT_ID), _order(account_id=1), ETH_STEP), E.SLOT_NOT_FOUND),
    "order_max_market": (Trade(_order(market=MAX_ORDER_MARKET), _order(account_id=1), ETH_STEP), E.MARKET_NOT_FOUND),
    "order_max_size": (Trade(_order(size=MAX_AMOUNT), _order(account_id=1), ETH_STEP), E.INVALID_ORDER),
    "order_max_price": (Trade(_order(limit_price=MAX_PRICE), _order(account_id=1), ETH_STEP), E.INVALID_ORDER),
    "order_max_fee_rate": (Trade(_order(fee_rate=MAX_U32), _order(account_id=1), ETH_STEP), E.INVALID_ORDER),
    "order_max_account": (Trade(_order(account_id=MAX_ACCOUNT_ID), _order(account_id=1), ETH_STEP), E.ACCOUNT_NOT_FOUND),
    "order_zero_fields": (Trade(_order(account_id=0, market=0, expiry=0, nonce=0, fee_rate=0), _order(account_id=1), ETH_STEP), E.BAD_SIGNATURE),
    "order_max_expiry_nonce_fill": (Trade(_order(expiry=MAX_TIMESTAMP, nonce=MAX_NONCE), _order(account_id=1), MAX_AMOUNT), E.BAD_SIGNATURE),
    "oracle_32_samples": (OraclePrice(ETH, tuple(_sample(oracle_index=i) for i in range(32))), E.BAD_SIGNATURE),
    "oracle_max_market": (OraclePrice(MAX_U8, (_sample(), _sample(oracle_index=1))), E.MARKET_NOT_FOUND),
    "oracle_max_index": (OraclePrice(ETH, (_sample(oracle_index=MAX_U8), _sample())), E.INVALID_ORACLE),
    "oracle_max_price_time": (OraclePrice(ETH, (_sample(price=MAX_PRICE, timestamp=MAX_TIMESTAMP), _sample(oracle_index=1))), E.FUTURE_TIMESTAMP),
    "funding_16_markets": (FundingTick(GENESIS_TIME + 1, (0,) * 16), E.WRONG_MARKET_COUNT),
    "funding_max_index": (FundingTick(GENESIS_TIME + 1, (MAX_FUNDING_INDEX, 0)), E.FUNDING_RATE_EXCEEDED),
    "funding_min_index": (FundingTick(GENESIS_TIME + 1, (0, -MAX_FUNDING_INDEX)), E.FUNDING_RATE_EXCEEDED),
    "funding_max_timestamp": (FundingTick(MAX_TIMESTAMP, (0, 0)), E.FUTURE_TIMESTAMP),
    "liquidate_max_fields": (Liquidate(SlotRef(MAX_SLOT_ID), MAX_ACCOUNT_ID, MAX_AMOUNT), E.SLOT_NOT_FOUND),
    "deleverage_max_market": (Deleverage(MAX_ACCOUNT_ID, MAX_ACCOUNT_ID, MAX_U8, MAX_AMOUNT), E.MARKET_NOT_FOUND),
    "deleverage_max_ids": (Deleverage(MAX_ACCOUNT_ID, MAX_ACCOUNT_ID, ETH, MAX_AMOUNT), E.ACCOUNT_NOT_FOUND),
}


@pytest.mark.parametrize("tx, code", AT_THE_BOUNDS.values(), ids=AT_THE_BOUNDS.keys())
def test_fields_at_their_bounds_are_well_formed(funded_world, tx, code):
    funded_world.queue_deposit("alice", 1)
    assert_invalid(funded_world, tx, code)


def test_well_formedness_is_checked_before_everything(world):
    # No deposit queued and no account: still MALFORMED, not NO_PENDING_DEPOSIT.
    assert_invalid(world, Deposit(account_id=-1), E.MALFORMED)


# ======================================================================================================
# Deposit
# ======================================================================================================


def test_deposit_creates_account_then_tops_it_up(world):
    world.queue_deposit("alice", 5_000_000)
    assert_applied(world, Deposit(0))
    alice = world.state.accounts[0]
    assert (alice.owner, alice.collateral, alice.withdrawn, alice.positions) == (world.address("alice"), 5_000_000, 0, {})
    assert (world.state.next_account_id, world.state.deposits_done) == (1, 1)
    world.queue_deposit("alice", 7)
    assert_applied(world, Deposit(0))
    assert world.state.accounts[0].collateral == 5_000_007
    assert (world.state.next_account_id, world.state.deposits_done) == (1, 2)
    world.ids["alice"] = 0
    world.check_conservation()


def test_deposit_of_zero_is_valid(world):
    # 4. "0 <= amount": a zero deposit is allowed (it still consumes the entry).
    world.queue_deposit("alice", 0)
    assert_applied(world, Deposit(0))
    assert world.state.accounts[0].collateral == 0 and world.state.deposits_done == 1


def test_deposit_1_no_pending_deposit(funded_world):
    assert_invalid(funded_world, Deposit(0), E.NO_PENDING_DEPOSIT)
    # An entry further down the queue is not the next one.
    funded_world.deposit_queue[funded_world.state.deposits_done + 1] = DepositEntry(funded_world.address("alice"), 1)
    assert_invalid(funded_world, Deposit(0), E.NO_PENDING_DEPOSIT)


def test_deposit_2_account_not_found(funded_world):
    funded_world.queue_deposit("dave", 1)
    assert_invalid(funded_world, Deposit(funded_world.state.next_account_id + 1), E.ACCOUNT_NOT_FOUND)


def test_deposit_3_owner_mismatch(funded_world):
    funded_world.queue_deposit("bob", 1)
    assert_invalid(funded_world, Deposit(funded_world.ids["alice"]), E.OWNER_MISMATCH)


@pytest.mark.parametrize("amount", [MAX_AMOUNT + 1, -1])
def test_deposit_4_amount_out_of_range(funded_world, amount):
    funded_world.deposit_queue[0 + funded_world.state.deposits_done] = DepositEntry(funded_world.address("alice"), amount)
    assert_invalid(funded_world, Deposit(0), E.INVALID_AMOUNT)


def test_deposit_of_max_amount_is_valid(funded_world):
    funded_world.deposit("alice", MAX_AMOUNT)
    assert funded_world.collateral("alice") == FUNDS + MAX_AMOUNT


def test_deposit_4_balance_overflow(funded_world):
    # Reaching MAX_BALANCE = 2**127 - 1 takes ~2**63 deposits of MAX_AMOUNT: unreachable in a test,
    # so the account is crafted just below the bound.
    funded_world.account("alice").collateral = MAX_BALANCE - 5
    funded_world.queue_deposit("alice", 6)
    assert_invalid(funded_world, Deposit(0), E.BALANCE_OVERFLOW)
    funded_world.deposit_queue[funded_world.state.deposits_done] = DepositEntry(funded_world.address("alice"), 5)
    assert_applied(funded_world, Deposit(0))
    assert funded_world.collateral("alice") == MAX_BALANCE


# ======================================================================================================
# Trade: happy paths, slots, rounding
# ======================================================================================================


def test_trade_partial_fill_fees_and_maker_slot(funded_world):
    w = funded_world
    maker = w.order("alice", is_buy=False, size=10 * ETH_STEP, limit_price=300_010_000, fee_rate=200)
    taker = w.order("bob", is_buy=True, size=4 * ETH_STEP, limit_price=301_000_000, fee_rate=500)
    assert_applied(w, Trade(maker, taker, 4 * ETH_STEP))
    # At the maker's price: 4e6 * 300_010_000 / 1e8 = 12_000_400 exactly (paid == received).
    # bob's fee   = ceil(12_000_400 * 500 / 1e6) = ceil(6000.2)  = 6001
    # alice's fee = ceil(12_000_400 * 200 / 1e6) = ceil(2400.08) = 2401
    assert w.collateral("alice") == FUNDS + 12_000_400 - 2401 == 1_011_997_999
    assert w.collateral("bob") == FUNDS - 12_000_400 - 6001 == 987_993_599
    assert w.position("alice") == Position(-4 * ETH_STEP, 0)
    assert w.position("bob") == Position(4 * ETH_STEP, 0)
    assert w.state.fees == 8402
    # The maker has 6e6 left: a slot; the taker is fully filled: no slot.
    assert w.state.slots == {0: Slot(0, ETH, False, 300_010_000, 6 * ETH_STEP, 200, FAR_EXPIRY)}
    assert w.state.next_slot == 1
    assert (w.account("alice").nonce_base, w.account("alice").nonce_bits) == (0, 1)
    assert (w.account("bob").nonce_base, w.account("bob").nonce_bits) == (0, 1)
    w.check_conservation()


def test_trade_continues_a_slot_until_order_filled(funded_world):
    w = funded_world
    maker = w.order("alice", is_buy=False, size=10 * ETH_STEP, limit_price=300_010_000, fee_rate=200)
    assert_applied(w, Trade(maker, w.order("bob", size=4 * ETH_STEP, limit_price=301_000_000, fee_rate=500), 4 * ETH_STEP))
    # carol takes the other 6e6 from slot 0, which keeps alice's price and fee rate:
    # 6e6 * 300_010_000 / 1e8 = 18_000_600; alice's fee = ceil(18_000_600 * 200 / 1e6) = ceil(3600.12) = 3601
    assert_applied(w, Trade(SlotRef(0), w.order("carol", size=6 * ETH_STEP, limit_price=300_010_000), 6 * ETH_STEP))
    assert w.collateral("alice") == 1_011_997_999 + 18_000_600 - 3601 == 1_029_994_998
    assert w.collateral("carol") == FUNDS - 18_000_600
    assert w.size("alice") == -10 * ETH_STEP and w.size("carol") == 6 * ETH_STEP
    assert w.state.slots[0].remaining == 0 and w.state.next_slot == 1
    assert w.state.fees == 8402 + 3601
    w.check_conservation()
    # ref 2: nothing left to fill.
    assert_invalid(w, Trade(SlotRef(0), w.order("carol", size=ETH_STEP, limit_price=300_010_000), ETH_STEP), E.ORDER_FILLED)


def test_trade_partial_taker_creates_slot_and_slot_can_be_taker(funded_world):
    w = funded_world
    # Both partially filled: two slots, maker's first.
    maker = w.order("alice", is_buy=False, size=3 * ETH_STEP)
    taker = w.order("bob", is_buy=True, size=5 * ETH_STEP, limit_price=ETH_PRICE + ETH_TICK)
    assert_applied(w, Trade(maker, taker, 2 * ETH_STEP))
    assert w.state.slots == {
        0: Slot(0, ETH, False, ETH_PRICE, ETH_STEP, 0, FAR_EXPIRY),
        1: Slot(1, ETH, True, ETH_PRICE + ETH_TICK, 3 * ETH_STEP, 0, FAR_EXPIRY),
    }
    # bob's slot is the taker against carol's new sell at exactly bob's limit.
    assert_applied(w, Trade(w.order("carol", is_buy=False, size=ETH_STEP, limit_price=ETH_PRICE + ETH_TICK), SlotRef(1), ETH_STEP))
    assert w.state.slots[1].remaining == 2 * ETH_STEP and w.state.next_slot == 2  # carol fully filled: no slot
    assert w.size("bob") == 3 * ETH_STEP
    # Both sides slots.
    assert_applied(w, Trade(SlotRef(0), SlotRef(1), ETH_STEP))
    assert w.state.slots[0].remaining == 0 and w.state.slots[1].remaining == ETH_STEP and w.state.next_slot == 2
    assert w.size("alice") == -3 * ETH_STEP and w.size("bob") == 4 * ETH_STEP
    w.check_conservation()


def test_trade_rounding_dust_goes_to_fees(funded_world):
    w = funded_world
    size, price = 1_234_500, BTC_PRICE + 1000  # 60_000_001_000
    maker = w.order("alice", market=BTC, is_buy=False, size=size, limit_price=price, fee_rate=250)
    taker = w.order("bob", market=BTC, is_buy=True, size=size, limit_price=price, fee_rate=1000)
    assert_applied(w, Trade(maker, taker, size))
    # size * price / 1e8 = 74_070_001_234_500_000 / 1e8 = 740_700_012.345
    # paid = 740_700_013, received = 740_700_012, dust = 1
    # bob's fee   = ceil(740_700_012.345 * 1000 / 1e6) = ceil(740_700.012345) = 740_701
    # alice's fee = ceil(740_700_012.345 *  250 / 1e6) = ceil(185_175.003086) = 185_176
    assert w.collateral("bob") == FUNDS - 740_700_013 - 740_701
    assert w.collateral("alice") == FUNDS + 740_700_012 - 185_176
    assert w.state.fees == 1 + 740_701 + 185_176
    assert w.position("bob", BTC) == Position(size, 0) and w.position("alice", BTC) == Position(-size, 0)
    w.check_conservation()


def test_trade_closing_a_position_removes_it(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", 2 * ETH_STEP))
    assert_applied(w, w.trade("bob", "alice", 2 * ETH_STEP))
    assert w.account("alice").positions == {} and w.account("bob").positions == {}
    assert w.collateral("alice") == FUNDS and w.collateral("bob") == FUNDS


# ======================================================================================================
# Trade: rules of each order (resolve_order), maker and taker
# ======================================================================================================


def test_trade_ref1_slot_not_found(funded_world):
    w = funded_world
    assert_invalid(w, Trade(SlotRef(0), w.order("bob"), ETH_STEP), E.SLOT_NOT_FOUND)
    assert_invalid(w, Trade(w.order("alice", is_buy=False), SlotRef(7), ETH_STEP), E.SLOT_NOT_FOUND)


def test_trade_ref3_slot_expired(funded_world):
    w = funded_world
    expiry = w.l1_timestamp + 100
    assert_applied(w, Trade(w.order("alice", is_buy=False, size=3 * ETH_STEP, expiry=expiry), w.order("bob"), ETH_STEP))
    w.l1_timestamp = expiry  # the batch's L1 time == expiry: still live
    assert_applied(w, Trade(SlotRef(0), w.order("carol"), ETH_STEP))
    w.l1_timestamp = expiry + 1  # no oracle or funding update in between: L1 time alone expires it
    assert_invalid(w, Trade(SlotRef(0), w.order("carol"), ETH_STEP), E.EXPIRED)


@pytest.mark.parametrize("side", ["maker", "taker"])
def test_trade_new1_market_not_found(funded_world, side):
    w = funded_world
    orders = {"maker": w.order("alice", is_buy=False), "taker": w.order("bob")}
    orders[side] = w.order("alice" if side == "maker" else "bob", is_buy=side == "taker", market=2)
    assert_invalid(w, Trade(orders["maker"], orders["taker"], ETH_STEP), E.MARKET_NOT_FOUND)


INVALID_ORDER_FIELDS = {
    "zero_size": dict(size=0),
    "size_off_step": dict(size=ETH_STEP + 1),
    "zero_price": dict(limit_price=0),
    "price_off_tick": dict(limit_price=ETH_PRICE + 1),
    "fee_rate_above_100pct": dict(fee_rate=FRACTION_ONE + 1),
}


@pytest.mark.parametrize("side", ["maker", "taker"])
@pytest.mark.parametrize("fields", INVALID_ORDER_FIELDS.values(), ids=INVALID_ORDER_FIELDS.keys())
def test_trade_new2_invalid_order(funded_world, side, fields):
    w = funded_world
    maker = w.order("alice", is_buy=False, **(fields if side == "maker" else {}))
    taker = w.order("bob", is_buy=True, **(fields if side == "taker" else {}))
    assert_invalid(w, Trade(maker, taker, ETH_STEP), E.INVALID_ORDER)


def test_trade_fee_rate_of_exactly_100pct_is_valid(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, taker_fields=dict(fee_rate=FRACTION_ONE)))
    assert w.collateral("bob") == FUNDS - 3_000_000 - 3_000_000  # notional 3e6, fee 100% of it


@pytest.mark.parametrize("side", ["maker", "taker"])
def test_trade_new3_account_not_found(funded_world, side):
    w = funded_world
    maker = w.order("alice", is_buy=False, **({"account_id": 9} if side == "maker" else {}))
    taker = w.order("bob", **({"account_id": 9} if side == "taker" else {}))
    assert_invalid(w, Trade(maker, taker, ETH_STEP), E.ACCOUNT_NOT_FOUND)


@pytest.mark.parametrize("side", ["maker", "taker"])
@pytest.mark.parametrize("how", BAD_SIGNATURES)
def test_trade_new4_bad_signature(funded_world, side, how):
    w = funded_world
    maker, taker = w.order("alice", is_buy=False), w.order("bob")
    if side == "maker":
        maker = with_signature(maker, mangle(maker.signature, how))
    else:
        taker = with_signature(taker, mangle(taker.signature, how))
    assert_invalid(w, Trade(maker, taker, ETH_STEP), E.BAD_SIGNATURE)


@pytest.mark.parametrize("side", ["maker", "taker"])
def test_trade_new5_wrong_signer(funded_world, side):
    w = funded_world
    maker = w.order("alice", is_buy=False, **({"signer": "carol"} if side == "maker" else {}))
    taker = w.order("bob", **({"signer": "carol"} if side == "taker" else {}))
    assert_invalid(w, Trade(maker, taker, ETH_STEP), E.WRONG_SIGNER)


def test_trade_new5_signature_of_another_order_is_wrong_signer(funded_world):
    # alice's genuine signature, but over different fields: it recovers some other address.
    w = funded_world
    genuine = w.order("alice", is_buy=False, size=2 * ETH_STEP)
    forged = msgspec.structs.replace(genuine, size=3 * ETH_STEP)
    assert_invalid(w, Trade(forged, w.order("bob", size=3 * ETH_STEP), 3 * ETH_STEP), E.WRONG_SIGNER)


@pytest.mark.parametrize("side", ["maker", "taker"])
def test_trade_new6_expired(funded_world, side):
    w = funded_world
    past = dict(expiry=w.l1_timestamp - 1)
    maker = w.order("alice", is_buy=False, **(past if side == "maker" else {}))
    taker = w.order("bob", **(past if side == "taker" else {}))
    assert_invalid(w, Trade(maker, taker, ETH_STEP), E.EXPIRED)


def test_trade_order_expiring_exactly_now_is_valid(funded_world):
    w = funded_world
    now = w.l1_timestamp
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=dict(expiry=now), taker_fields=dict(expiry=now)))


def test_trade_new8_nonce_used(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=dict(nonce=5)))
    # A different order (other size) with the same nonce.
    assert_invalid(w, w.trade("alice", "bob", 2 * ETH_STEP, maker_fields=dict(nonce=5)), E.NONCE_USED)
    # The same nonce on the taker side.
    assert_invalid(w, w.trade("carol", "alice", ETH_STEP, taker_fields=dict(nonce=5)), E.NONCE_USED)


def test_trade_new7_nonce_window_slides(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=dict(nonce=3)))
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=dict(nonce=1000)))
    # 1000 >= 0 + 256: the window slides so that 1000 is its top: base = 1000 - 255 = 745.
    assert w.account("alice").nonce_base == 745 and w.account("alice").nonce_bits == 1 << 255
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP, maker_fields=dict(nonce=3)), E.NONCE_TOO_LOW)
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP, maker_fields=dict(nonce=744)), E.NONCE_TOO_LOW)
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=dict(nonce=745)))


def test_trade_maker_rules_before_taker_rules(funded_world):
    w = funded_world
    maker = w.order("alice", is_buy=False, expiry=w.state.time - 1)
    taker = w.order("bob", signer="carol")
    assert_invalid(w, Trade(maker, taker, ETH_STEP), E.EXPIRED)


# ======================================================================================================
# Trade: rules 3-10
# ======================================================================================================


def test_trade_3_self_trade(funded_world):
    w = funded_world
    assert_invalid(w, w.trade("alice", "alice", ETH_STEP), E.SELF_TRADE)


def test_trade_3_self_trade_through_a_slot(funded_world):
    w = funded_world
    assert_applied(w, Trade(w.order("alice", is_buy=False, size=2 * ETH_STEP), w.order("bob"), ETH_STEP))
    assert_invalid(w, Trade(SlotRef(0), w.order("alice"), ETH_STEP), E.SELF_TRADE)


def test_trade_4_market_mismatch(funded_world):
    w = funded_world
    maker = w.order("alice", is_buy=False)
    taker = w.order("bob", market=BTC, size=ETH_STEP, limit_price=BTC_PRICE)
    assert_invalid(w, Trade(maker, taker, ETH_STEP), E.MARKET_MISMATCH)


@pytest.mark.parametrize("is_buy", [True, False])
def test_trade_5_same_side(funded_world, is_buy):
    w = funded_world
    side = dict(is_buy=is_buy)
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP, maker_fields=side, taker_fields=side), E.SAME_SIDE)


@pytest.mark.parametrize(
    "fill, maker_size, taker_size",
    [
        (0, ETH_STEP, ETH_STEP),
        (ETH_STEP + 1, 2 * ETH_STEP, 2 * ETH_STEP),
        (2 * ETH_STEP, ETH_STEP, 3 * ETH_STEP),
        (2 * ETH_STEP, 3 * ETH_STEP, ETH_STEP),
    ],
    ids=["zero", "off_step", "above_maker_remaining", "above_taker_remaining"],
)
def test_trade_6_invalid_fill_size(funded_world, fill, maker_size, taker_size):
    w = funded_world
    tx = Trade(w.order("alice", is_buy=False, size=maker_size), w.order("bob", size=taker_size), fill)
    assert_invalid(w, tx, E.INVALID_AMOUNT)


def test_trade_6_fill_above_slot_remaining(funded_world):
    w = funded_world
    assert_applied(w, Trade(w.order("alice", is_buy=False, size=3 * ETH_STEP), w.order("bob"), ETH_STEP))
    assert_invalid(w, Trade(SlotRef(0), w.order("carol", size=3 * ETH_STEP), 3 * ETH_STEP), E.INVALID_AMOUNT)


def test_trade_7_price_limit_taker_buys(funded_world):
    w = funded_world
    maker = dict(limit_price=ETH_PRICE + ETH_TICK)
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP, maker_fields=maker, taker_fields=dict(limit_price=ETH_PRICE)), E.PRICE_LIMIT)
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=maker, taker_fields=dict(limit_price=ETH_PRICE + ETH_TICK)))


def test_trade_7_price_limit_taker_sells(funded_world):
    w = funded_world
    maker = dict(is_buy=True, limit_price=ETH_PRICE)
    taker_high = dict(is_buy=False, limit_price=ETH_PRICE + ETH_TICK)
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP, maker_fields=maker, taker_fields=taker_high), E.PRICE_LIMIT)
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=maker, taker_fields=dict(is_buy=False, limit_price=ETH_PRICE)))
    # A taker selling with a lower limit gets the maker's (better) price.
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=maker, taker_fields=dict(is_buy=False, limit_price=ETH_PRICE - 10 * ETH_TICK)))
    assert w.collateral("bob") == FUNDS + 2 * 3_000_000  # 1e6 * 3e8 / 1e8 each time, at the maker's price


def _big_world() -> World:
    w = World()
    for name in ("alice", "bob", "carol"):
        w.deposit(name, 10**15)
    return w


def test_trade_8_position_limit_buyer():
    w = _big_world()
    limit = GENESIS.markets[ETH].max_position  # 10**15
    assert_invalid(w, w.trade("alice", "bob", limit + ETH_STEP), E.POSITION_LIMIT)
    # Exactly at the limit is allowed (margin: 3e15 notional needs 3e14 < 1e15 collateral).
    assert_applied(w, w.trade("alice", "bob", limit))
    assert w.size("bob") == limit and w.size("alice") == -limit


def test_trade_8_position_limit_seller():
    w = _big_world()
    limit = GENESIS.markets[ETH].max_position
    assert_applied(w, w.trade("alice", "bob", limit))
    # carol buys (fine), alice would go to -(limit + step).
    assert_invalid(w, w.trade("alice", "carol", ETH_STEP), E.POSITION_LIMIT)


def test_trade_9_balance_overflow_seller(funded_world):
    # Unreachable with real deposits (see test_deposit_4_balance_overflow): crafted.
    w = funded_world
    w.account("alice").collateral = MAX_BALANCE - 2_999_999  # receives 3_000_000
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP), E.BALANCE_OVERFLOW)


def test_trade_9_balance_overflow_fees(funded_world):
    w = funded_world
    w.state.fees = MAX_BALANCE
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP, taker_fields=dict(fee_rate=1)), E.BALANCE_OVERFLOW)


# ======================================================================================================
# Trade: rule 10, margin
# ======================================================================================================


@pytest.mark.parametrize("deposit, code", [(1_500_000, E.OK), (1_499_999, E.INSUFFICIENT_MARGIN)])
@pytest.mark.parametrize("alice_buys", [True, False])
def test_trade_10_initial_margin_on_increase(deposit, code, alice_buys):
    w = World()
    w.deposit("alice", deposit)
    w.deposit("bob", FUNDS)
    # 5e6 at 3e8: notional 15_000_000, initial margin 10% = 1_500_000; value after = the deposit.
    tx = w.trade("bob", "alice", 5 * ETH_STEP) if alice_buys else w.trade("alice", "bob", 5 * ETH_STEP)
    if code is E.OK:
        assert_applied(w, tx)
    else:
        assert_invalid(w, tx, E.INSUFFICIENT_MARGIN)


def _underwater_long() -> World:
    """alice: 2_000_000 collateral, buys 5e6 at 3e8 from bob -> collateral -13_000_000. Then the
    oracle goes to 2.7e8: value = -13e6 + 13.5e6 = 500_000 < maintenance 675_000 (liquidatable)."""
    w = World()
    w.deposit("alice", 2_000_000)
    w.deposit("bob", FUNDS)
    w.deposit("carol", FUNDS)
    assert_applied(w, w.trade("bob", "alice", 5 * ETH_STEP))
    assert w.collateral("alice") == -13_000_000
    w.set_price(ETH, 270_000_000)
    return w


def test_trade_10_reducing_trade_below_maintenance_allowed_when_not_worse():
    w = _underwater_long()
    # Sells 1e6 at 2.7e8: collateral -10_300_000, size 4e6: value 500_000 < maintenance 540_000,
    # but the excess -40_000 is better than before (500_000 - 675_000 = -175_000).
    px = dict(limit_price=270_000_000)
    assert_applied(w, w.trade("alice", "carol", ETH_STEP, maker_fields=px, taker_fields=px))
    assert w.collateral("alice") == -10_300_000 and w.size("alice") == 4 * ETH_STEP


def test_trade_10_reducing_trade_that_worsens_below_maintenance():
    w = _underwater_long()
    # Sells 1e6 at 2.5e8: collateral -10_500_000, value 300_000, excess -240_000 < -175_000.
    px = dict(limit_price=250_000_000)
    tx = w.trade("alice", "carol", ETH_STEP, maker_fields=px, taker_fields=px)
    assert_invalid(w, tx, E.INSUFFICIENT_MARGIN)


def test_trade_10_increasing_trade_of_an_underwater_account():
    w = _underwater_long()
    px = dict(limit_price=270_000_000)
    assert_invalid(w, w.trade("carol", "alice", ETH_STEP, maker_fields=px, taker_fields=px), E.INSUFFICIENT_MARGIN)


def test_trade_10_flip_counts_as_increase():
    w = _underwater_long()
    # Sells 9e6 at 2.7e8: long 5e6 -> short 4e6 (|size| shrinks, but the side flips).
    # collateral -13e6 + 24.3e6 = 11_300_000, value 500_000 < initial 1_080_000 -> rejected,
    # although as a "reduction" (maintenance 540_000, excess -40_000 > -175_000) it would pass.
    px = dict(limit_price=270_000_000)
    assert_invalid(w, w.trade("alice", "carol", 9 * ETH_STEP, maker_fields=px, taker_fields=px), E.INSUFFICIENT_MARGIN)


@pytest.mark.parametrize("deposit, code", [(37_035_002, E.OK), (37_035_001, E.INSUFFICIENT_MARGIN)])
def test_trade_10_margin_risk_rounds_up(deposit, code):
    w = World()
    w.deposit("alice", deposit)
    w.deposit("bob", FUNDS)
    price = BTC_PRICE + 1000
    w.set_price(BTC, price)
    # alice buys 1_234_500 at 60_000_001_000: pays 740_700_013 (see the dust test), value after
    # deposit - 740_700_013 + 740_700_012 = deposit - 1; initial risk = ceil(740_700_012.345 * 5%)
    # = ceil(37_035_000.61725) = 37_035_001.
    btc = dict(market=BTC, limit_price=price)
    tx = w.trade("bob", "alice", 1_234_500, maker_fields=btc, taker_fields=btc)
    if code is E.OK:
        assert_applied(w, tx)
    else:
        assert_invalid(w, tx, code)


def test_trade_10_reduction_landing_exactly_on_maintenance_is_allowed():
    w = World()
    w.deposit("alice", 2_000_000)
    w.deposit("bob", FUNDS)
    w.deposit("carol", FUNDS)
    assert_applied(w, w.trade("bob", "alice", 5 * ETH_STEP))  # value 2_000_000, maintenance 750_000
    # Selling 1e6 at 1.6e8: collateral -13e6 + 1_600_000, size 4e6 -> value 600_000 == maintenance
    # 600_000: allowed although the excess fell from 1_250_000 to 0. One tick lower: 599_900 < 600_000
    # and worse than before -> rejected.
    low = dict(limit_price=160_000_000 - ETH_TICK)
    assert_invalid(w, w.trade("alice", "carol", ETH_STEP, maker_fields=low, taker_fields=low), E.INSUFFICIENT_MARGIN)
    px = dict(limit_price=160_000_000)
    assert_applied(w, w.trade("alice", "carol", ETH_STEP, maker_fields=px, taker_fields=px))


def test_trade_10_reduction_below_maintenance_must_keep_the_value_to_risk_ratio():
    w = _underwater_long()  # value 500_000, maintenance 675_000: ratio 0.7407
    # Selling 1e6 at 2.6e8: value 500_000 - 100_000 = 400_000, maintenance 540_000: ratio 0.7407
    # (400_000 * 675_000 == 500_000 * 540_000), risk lower: healthier. One tick lower is worse.
    low = dict(limit_price=260_000_000 - ETH_TICK)
    assert_invalid(w, w.trade("alice", "carol", ETH_STEP, maker_fields=low, taker_fields=low), E.INSUFFICIENT_MARGIN)
    px = dict(limit_price=260_000_000)
    assert_applied(w, w.trade("alice", "carol", ETH_STEP, maker_fields=px, taker_fields=px))


def test_trade_10_closing_an_underwater_position_into_debt_is_refused():
    w = _bankrupt_long()  # alice: value -500_000 at 2.5e8
    # Closing at the oracle would leave -500_000 with nothing open: no risk left to be healthier
    # about, and a debt no transaction could recover (issue 7, finding 2).
    px = dict(limit_price=250_000_000)
    assert_invalid(w, w.trade("alice", "carol", 5 * ETH_STEP, maker_fields=px, taker_fields=px), E.INSUFFICIENT_MARGIN)


def test_trade_10_seller_margin():
    w = World()
    w.deposit("alice", 1)
    w.deposit("bob", FUNDS)
    # alice sells 5e6 with 1 unit of collateral; bob is fine.
    assert_invalid(w, w.trade("alice", "bob", 5 * ETH_STEP), E.INSUFFICIENT_MARGIN)


# ======================================================================================================
# Withdraw
# ======================================================================================================


def test_withdraw_happy_path(funded_world):
    w = funded_world
    assert_applied(w, w.withdraw("alice", 1234, nonce=7))
    alice = w.account("alice")
    assert (alice.collateral, alice.withdrawn, alice.nonce_base, alice.nonce_bits) == (FUNDS - 1234, 1234, 0, 1 << 7)
    w.check_conservation()


def test_withdraw_everything_without_positions(funded_world):
    w = funded_world
    assert_invalid(w, w.withdraw("alice", FUNDS + 1), E.INSUFFICIENT_MARGIN)
    assert_applied(w, w.withdraw("alice", FUNDS))
    assert w.collateral("alice") == 0 and w.account("alice").withdrawn == FUNDS


def test_withdraw_9_keeps_initial_margin(funded_world):
    w = funded_world
    assert_applied(w, w.trade("bob", "alice", 5 * ETH_STEP))
    # alice: collateral 985_000_000, value 1_000_000_000, initial margin 1_500_000.
    assert_invalid(w, w.withdraw("alice", 998_500_001), E.INSUFFICIENT_MARGIN)
    assert_applied(w, w.withdraw("alice", 998_500_000))
    assert w.collateral("alice") == -13_500_000


def test_withdraw_1_account_not_found(funded_world):
    w = funded_world
    assert_invalid(w, w.withdraw("alice", 1, account_id=3), E.ACCOUNT_NOT_FOUND)


@pytest.mark.parametrize("how", BAD_SIGNATURES)
def test_withdraw_2_bad_signature(funded_world, how):
    w = funded_world
    tx = w.withdraw("alice", 1)
    assert_invalid(w, with_signature(tx, mangle(tx.signature, how)), E.BAD_SIGNATURE)


def test_withdraw_3_wrong_signer(funded_world):
    w = funded_world
    assert_invalid(w, w.withdraw("alice", 1, signer="bob"), E.WRONG_SIGNER)
    # bob signs a withdrawal from alice's account.
    assert_invalid(w, w.withdraw("bob", 1, account_id=w.ids["alice"]), E.WRONG_SIGNER)


def test_withdraw_4_expired(funded_world):
    w = funded_world
    assert_invalid(w, w.withdraw("alice", 1, expiry=w.l1_timestamp - 1), E.EXPIRED)
    assert_applied(w, w.withdraw("alice", 1, expiry=w.l1_timestamp))


def test_withdraw_5_7_nonce_window(funded_world):
    w = funded_world
    for nonce in (0, 1):
        assert_applied(w, w.withdraw("alice", 1, nonce=nonce))
    assert_invalid(w, w.withdraw("alice", 1, nonce=1), E.NONCE_USED)
    # 256 = base + NONCE_WINDOW: slides by one; nonce 1's bit moves to bit 0 and stays used.
    assert_applied(w, w.withdraw("alice", 1, nonce=NONCE_WINDOW))
    alice = w.account("alice")
    assert alice.nonce_base == 1 and alice.nonce_bits == 1 | 1 << 255
    assert_invalid(w, w.withdraw("alice", 1, nonce=0), E.NONCE_TOO_LOW)
    assert_invalid(w, w.withdraw("alice", 1, nonce=1), E.NONCE_USED)
    assert_applied(w, w.withdraw("alice", 1, nonce=2))
    # Far above the window: everything older is forgotten and below the new base.
    assert_applied(w, w.withdraw("alice", 1, nonce=10_000))
    assert (alice.nonce_base, alice.nonce_bits) == (10_000 - NONCE_WINDOW + 1, 1 << 255)
    assert_invalid(w, w.withdraw("alice", 1, nonce=10_000 - NONCE_WINDOW), E.NONCE_TOO_LOW)
    assert_invalid(w, w.withdraw("alice", 1, nonce=10_000), E.NONCE_USED)
    assert_applied(w, w.withdraw("alice", 1, nonce=10_000 - NONCE_WINDOW + 1))
    # At most NONCE_HORIZON - 1 above the base: no single nonce can use up the nonce space.
    base = alice.nonce_base
    assert_invalid(w, w.withdraw("alice", 1, nonce=MAX_NONCE), E.NONCE_TOO_HIGH)
    assert_invalid(w, w.withdraw("alice", 1, nonce=base + NONCE_HORIZON), E.NONCE_TOO_HIGH)
    assert_applied(w, w.withdraw("alice", 1, nonce=base + NONCE_HORIZON - 1))
    assert alice.nonce_base == base + NONCE_HORIZON - NONCE_WINDOW
    assert w.account("alice").withdrawn == 7


def test_withdraw_nonces_are_shared_with_orders(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", ETH_STEP, maker_fields=dict(nonce=4)))
    assert_invalid(w, w.withdraw("alice", 1, nonce=4), E.NONCE_USED)


def test_withdraw_7_zero_amount(funded_world):
    w = funded_world
    assert_invalid(w, w.withdraw("alice", 0), E.INVALID_AMOUNT)


def test_withdraw_10_withdrawn_overflow(funded_world):
    # The cumulative `withdrawn` would pass MAX_BALANCE: unreachable with real deposits, crafted.
    w = funded_world
    w.account("alice").withdrawn = MAX_BALANCE
    assert_invalid(w, w.withdraw("alice", 1), E.BALANCE_OVERFLOW)


def test_withdraw_rule_order_expiry_before_nonce(funded_world):
    w = funded_world
    assert_applied(w, w.withdraw("alice", 1, nonce=0))
    assert_invalid(w, w.withdraw("alice", 1, nonce=0, expiry=0), E.EXPIRED)


# ======================================================================================================
# ForcedWithdraw
# ======================================================================================================


def test_forced_withdraw_happy_path(funded_world):
    w = funded_world
    w.queue_forced("alice", 1000)
    assert_applied(w, ForcedWithdraw())
    assert w.collateral("alice") == FUNDS - 1000 and w.account("alice").withdrawn == 1000
    assert w.state.forced_done == 1
    w.check_conservation()


def test_forced_withdraw_1_no_pending_request(funded_world):
    assert_invalid(funded_world, ForcedWithdraw(), E.NO_PENDING_FORCED)


def test_forced_withdraw_2_account_not_found(funded_world):
    funded_world.queue_forced("alice", 1, account_id=5)
    assert_forced_rejected(funded_world, E.ACCOUNT_NOT_FOUND)


def test_forced_withdraw_3_owner_mismatch(funded_world):
    funded_world.queue_forced("alice", 1, requester="bob")
    assert_forced_rejected(funded_world, E.OWNER_MISMATCH)


@pytest.mark.parametrize("amount", [MAX_AMOUNT + 1, 0, -1])
def test_forced_withdraw_4_5_invalid_amount(funded_world, amount):
    funded_world.queue_forced("alice", amount)
    assert_forced_rejected(funded_world, E.INVALID_AMOUNT)


def test_forced_withdraw_of_max_amount(funded_world):
    w = funded_world
    w.deposit("alice", MAX_AMOUNT)
    w.queue_forced("alice", MAX_AMOUNT)
    assert_applied(w, ForcedWithdraw())
    assert w.collateral("alice") == FUNDS and w.account("alice").withdrawn == MAX_AMOUNT


def test_forced_withdraw_7_insufficient_margin(funded_world):
    w = funded_world
    w.queue_forced("alice", FUNDS + 1)
    assert_forced_rejected(w, E.INSUFFICIENT_MARGIN)
    # The next request is served normally.
    w.queue_forced("alice", FUNDS)
    assert_applied(w, ForcedWithdraw())
    assert w.collateral("alice") == 0 and w.state.forced_done == 2


def test_forced_withdraw_7_rejection_does_not_settle_funding(funded_world):
    w = funded_world
    assert_applied(w, w.trade("bob", "alice", 5 * ETH_STEP))
    assert_applied(w, FundingTick(GENESIS_TIME + 100, (3000, 0)))
    w.queue_forced("alice", FUNDS)
    assert_forced_rejected(w, E.INSUFFICIENT_MARGIN)
    assert w.position("alice") == Position(5 * ETH_STEP, 0)  # still at the old index
    assert w.state.funding_pool == 0


def test_forced_withdraw_8_withdrawn_overflow(funded_world):
    w = funded_world
    w.account("alice").withdrawn = MAX_BALANCE
    w.queue_forced("alice", 1)
    assert_forced_rejected(w, E.BALANCE_OVERFLOW)


# ======================================================================================================
# OraclePrice
# ======================================================================================================

T = GENESIS_TIME


def test_oracle_price_median_of_three(world):
    tx = world.prices(ETH, [(0, 310_000_000, T + 5), (1, 290_000_000, T + 3), (2, 305_000_000, T + 9)])
    assert_applied(world, tx)
    market = world.state.markets[ETH]
    # Prices and timestamps take their medians independently.
    assert (market.price, market.price_time, world.state.time) == (305_000_000, T + 5, T + 5)
    assert world.state.markets[BTC].price == BTC_PRICE  # other market untouched


def test_oracle_price_two_samples_take_the_lower(world):
    assert_applied(world, world.prices(BTC, [(0, 61_000_000_000, T + 8), (2, 59_000_000_000, T + 4)]))
    market = world.state.markets[BTC]
    assert (market.price, market.price_time, world.state.time) == (59_000_000_000, T + 4, T + 4)


def test_oracle_price_does_not_move_time_backwards(world):
    world.l1_timestamp = T + 1000
    assert_applied(world, FundingTick(T + 100, (0, 0)))
    assert_applied(world, world.prices(ETH, [(0, ETH_PRICE, T + 50), (1, ETH_PRICE, T + 50)]))
    assert world.state.time == T + 100 and world.state.markets[ETH].price_time == T + 50


def test_oracle_price_1_market_not_found(world):
    assert_invalid(world, world.prices(2, [(0, ETH_PRICE, T + 1), (1, ETH_PRICE, T + 1)]), E.MARKET_NOT_FOUND)


@pytest.mark.parametrize("samples", [[], [(0, ETH_PRICE, T + 1)]], ids=["none", "one"])
def test_oracle_price_2_quorum_not_met(world, samples):
    assert_invalid(world, world.prices(ETH, samples), E.QUORUM_NOT_MET)


@pytest.mark.parametrize("indices", [(0, 3), (1, 1), (2, 1), (0, 1, 1)], ids=["unknown", "duplicate", "decreasing", "duplicate_third"])
def test_oracle_price_3_invalid_oracle(world, indices):
    # An unknown index is signed by oracle 0's key (there is no key 3).
    tx = world.prices(ETH, [(i, ETH_PRICE, T + 1) for i in indices], signers={3: 0})
    assert_invalid(world, tx, E.INVALID_ORACLE)


def test_oracle_price_4_invalid_price(world):
    assert_invalid(world, world.prices(ETH, [(0, ETH_PRICE, T + 1), (1, 0, T + 1)]), E.INVALID_PRICE)


def test_oracle_price_5_future_timestamp(world):
    l1 = world.l1_timestamp
    assert_invalid(world, world.prices(ETH, [(0, ETH_PRICE, T + 1), (1, ETH_PRICE, l1 + 1)]), E.FUTURE_TIMESTAMP)
    assert_applied(world, world.prices(ETH, [(0, ETH_PRICE, l1), (1, ETH_PRICE, l1)]))


@pytest.mark.parametrize("stale", [T, T - 1])
def test_oracle_price_7_stale_timestamp(world, stale):
    # The market's price_time starts at genesis.time.
    assert_invalid(world, world.prices(ETH, [(0, ETH_PRICE, T + 1), (1, ETH_PRICE, stale)]), E.STALE_TIMESTAMP)


def test_oracle_price_7_every_sample_newer_than_every_sample_of_the_last_update(world):
    assert_applied(world, world.prices(ETH, [(0, ETH_PRICE, T + 5), (1, ETH_PRICE, T + 10)]))  # price_time T + 5
    assert (world.state.markets[ETH].price_time, world.state.markets[ETH].sample_time) == (T + 5, T + 10)
    # oracle 1's sample of T + 10 is newer than the price time, but it was already used
    assert_invalid(world, world.prices(ETH, [(0, ETH_PRICE, T + 20), (1, ETH_PRICE, T + 10)]), E.STALE_TIMESTAMP)
    assert_invalid(world, world.prices(ETH, [(0, ETH_PRICE, T + 10), (1, ETH_PRICE, T + 20)]), E.STALE_TIMESTAMP)
    assert_applied(world, world.prices(ETH, [(0, ETH_PRICE, T + 11), (1, ETH_PRICE, T + 20)]))


@pytest.mark.parametrize("how", BAD_SIGNATURES)
def test_oracle_price_8_bad_signature(world, how):
    tx = world.prices(ETH, [(0, ETH_PRICE, T + 1), (1, ETH_PRICE, T + 1)])
    bad = with_signature(tx.samples[1], mangle(tx.samples[1].signature, how))
    assert_invalid(world, OraclePrice(ETH, (tx.samples[0], bad)), E.BAD_SIGNATURE)


def test_oracle_price_9_wrong_signer(world):
    # Sample for oracle 1 signed by oracle 2.
    assert_invalid(world, world.prices(ETH, [(0, ETH_PRICE, T + 1), (1, ETH_PRICE, T + 1)], signers={1: 2}), E.WRONG_SIGNER)


def test_oracle_price_9_sample_signed_for_another_market(world):
    btc = world.prices(BTC, [(0, ETH_PRICE, T + 1), (1, ETH_PRICE, T + 1)])
    assert_invalid(world, OraclePrice(ETH, btc.samples), E.WRONG_SIGNER)


# ======================================================================================================
# FundingTick
# ======================================================================================================

# Bounds over 100 s at the genesis prices (|delta| * 1e12 <= rate * price * elapsed):
#   ETH: 1e5 * 3e8 * 100 / 1e12 = 3_000;   BTC: 2e5 * 6e10 * 100 / 1e12 = 1_200_000
ETH_BOUND_100S, BTC_BOUND_100S = 3_000, 1_200_000


@pytest.mark.parametrize("indices", [(ETH_BOUND_100S, -BTC_BOUND_100S), (-ETH_BOUND_100S, BTC_BOUND_100S)])
def test_funding_tick_exactly_at_the_bound(world, indices):
    assert_applied(world, FundingTick(T + 100, indices))
    assert [m.funding_index for m in world.state.markets] == list(indices)
    assert world.state.funding_time == world.state.time == T + 100


@pytest.mark.parametrize(
    "indices", [(ETH_BOUND_100S + 1, 0), (-ETH_BOUND_100S - 1, 0), (0, BTC_BOUND_100S + 1), (0, -BTC_BOUND_100S - 1)]
)
def test_funding_tick_4_one_above_the_bound(world, indices):
    assert_invalid(world, FundingTick(T + 100, indices), E.FUNDING_RATE_EXCEEDED)


def test_funding_tick_4_bound_is_relative_to_the_current_index(world):
    assert_applied(world, FundingTick(T + 100, (ETH_BOUND_100S, 0)))
    assert_invalid(world, FundingTick(T + 200, (2 * ETH_BOUND_100S + 1, 0)), E.FUNDING_RATE_EXCEEDED)
    assert_applied(world, FundingTick(T + 200, (2 * ETH_BOUND_100S, 0)))


def test_funding_tick_4_bound_uses_the_current_price(world):
    world.set_price(ETH, 2 * ETH_PRICE, T + 1)
    # 1e5 * 6e8 * 100 / 1e12 = 6_000
    assert_invalid(world, FundingTick(T + 100, (6_001, 0)), E.FUNDING_RATE_EXCEEDED)
    assert_applied(world, FundingTick(T + 100, (6_000, 0)))


@pytest.mark.parametrize("indices", [(0,), (0, 0, 0)])
def test_funding_tick_1_wrong_market_count(world, indices):
    assert_invalid(world, FundingTick(T + 100, indices), E.WRONG_MARKET_COUNT)


def test_funding_tick_2_stale_timestamp(world):
    assert_invalid(world, FundingTick(T, (0, 0)), E.STALE_TIMESTAMP)  # == funding_time
    assert_invalid(world, FundingTick(T - 1, (0, 0)), E.STALE_TIMESTAMP)
    world.set_price(ETH, ETH_PRICE, T + 50)  # system time T + 50
    assert_invalid(world, FundingTick(T + 49, (0, 0)), E.STALE_TIMESTAMP)  # after funding_time, before time
    assert_applied(world, FundingTick(T + 50, (0, 0)))


def test_funding_tick_3_future_timestamp(world):
    l1 = world.l1_timestamp
    assert_invalid(world, FundingTick(l1 + 1, (0, 0)), E.FUTURE_TIMESTAMP)
    assert_applied(world, FundingTick(l1, (0, 0)))


def test_funding_is_settled_on_the_next_touch(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", 4 * ETH_STEP))  # bob long 4e6, alice short, at index 0
    assert_applied(w, FundingTick(T + 100, (2_999, 0)))
    # Nothing is settled by the tick itself.
    assert w.position("bob") == Position(4 * ETH_STEP, 0) and w.collateral("bob") == FUNDS - 12_000_000
    # bob (long) pays ceil(4e6 * 2999 / 1e8) = ceil(119.96) = 120 when next touched.
    assert_applied(w, w.withdraw("bob", 1))
    assert w.collateral("bob") == FUNDS - 12_000_000 - 120 - 1
    assert w.position("bob") == Position(4 * ETH_STEP, 2_999)
    assert w.state.funding_pool == 120
    # alice (short) pays ceil(-119.96) = -119, i.e. receives 119: 1 unit stays in the pool.
    assert_applied(w, w.withdraw("alice", 1))
    assert w.collateral("alice") == FUNDS + 12_000_000 + 119 - 1
    assert w.position("alice") == Position(-4 * ETH_STEP, 2_999)
    assert w.state.funding_pool == 1
    w.check_conservation()


def test_funding_settled_before_margin_in_a_trade(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", 4 * ETH_STEP))
    assert_applied(w, FundingTick(T + 100, (-3_000, 0)))  # now shorts pay: alice pays 4e6 * 3000 / 1e8 = 120
    assert_applied(w, w.trade("alice", "carol", ETH_STEP))
    assert w.collateral("alice") == FUNDS + 12_000_000 - 120 + 3_000_000
    assert w.position("alice") == Position(-5 * ETH_STEP, -3_000)
    assert w.position("carol") == Position(ETH_STEP, -3_000)
    assert w.state.funding_pool == 120
    w.check_conservation()


# ======================================================================================================
# Liquidate
# ======================================================================================================


def _liquidator(w: World, price: int, size: int = 5 * ETH_STEP, name: str = "carol", **fields) -> Order:
    return w.order(name, is_buy=True, size=size, limit_price=price, **fields)


def test_liquidate_whole_position_with_penalty():
    w = _underwater_long()
    assert_applied(w, Liquidate(_liquidator(w, 270_000_000, fee_rate=1000), w.ids["alice"], 5 * ETH_STEP))
    # alice receives floor(5e6 * 2.7e8 / 1e8) = 13_500_000 -> collateral 500_000, no position.
    # penalty = min(ceil(5e6 * 2.7e8 * 1e4 / 1e14) = 135_000, value left 500_000) = 135_000
    assert w.collateral("alice") == 500_000 - 135_000 and w.account("alice").positions == {}
    assert w.state.insurance == 135_000
    # carol pays 13_500_000 plus fee ceil(13_500_000 * 1000 / 1e6) = 13_500.
    assert w.collateral("carol") == FUNDS - 13_500_000 - 13_500
    assert w.position("carol") == Position(5 * ETH_STEP, 0)
    assert w.state.fees == 13_500
    w.check_conservation()


@pytest.mark.parametrize(
    "price, alice_after, penalty",
    [
        (262_000_000, 0, 100_000),  # value left 13_100_000 - 13_000_000 = 100_000 < 135_000: all of it
        (260_000_000, 0, 0),  # nothing left
    ],
)
def test_liquidate_penalty_capped_at_value_left(price, alice_after, penalty):
    w = _underwater_long()
    assert_applied(w, Liquidate(_liquidator(w, price), w.ids["alice"], 5 * ETH_STEP))
    assert w.collateral("alice") == alice_after and w.state.insurance == penalty
    w.check_conservation()


def test_liquidate_10_a_solvent_account_is_never_left_in_debt():
    w = _underwater_long()
    # The band's edge, 0.95 * 2.7e8, would leave alice at -175_000 with nothing open.
    assert_invalid(w, Liquidate(_liquidator(w, 256_500_000), w.ids["alice"], 5 * ETH_STEP), E.INSUFFICIENT_MARGIN)


def test_liquidate_partially_then_continue_from_a_slot():
    w = _underwater_long()
    assert_applied(w, Liquidate(_liquidator(w, 270_000_000), w.ids["alice"], 2 * ETH_STEP))
    # alice: -13e6 + 5_400_000 = -7_600_000, size 3e6, value 500_000;
    # penalty = ceil(2e6 * 2.7e8 * 1e4 / 1e14) = 54_000
    assert w.collateral("alice") == -7_654_000 and w.size("alice") == 3 * ETH_STEP
    assert w.state.slots == {0: Slot(w.ids["carol"], ETH, True, 270_000_000, 3 * ETH_STEP, 0, FAR_EXPIRY)}
    # Now value 446_000 >= maintenance 405_000: no longer liquidatable.
    assert_invalid(w, Liquidate(SlotRef(0), w.ids["alice"], ETH_STEP), E.NOT_LIQUIDATABLE)
    w.set_price(ETH, 260_000_000)  # value -7_654_000 + 7_800_000 = 146_000 < 390_000
    assert_applied(w, Liquidate(SlotRef(0), w.ids["alice"], 3 * ETH_STEP))
    # receives 8_100_000 -> 446_000; penalty ceil(3e6 * 2.6e8 * 1e4 / 1e14) = 78_000
    assert w.collateral("alice") == 368_000 and w.account("alice").positions == {}
    assert w.state.insurance == 54_000 + 78_000 and w.state.slots[0].remaining == 0
    w.check_conservation()


def _underwater_short(deposit: int = 2_000_000) -> World:
    """dave: 2_000_000 collateral, sells 5e6 at 3e8 to bob -> collateral 17_000_000. Oracle to
    3.3e8: value 17e6 - 16.5e6 = 500_000 < maintenance 825_000."""
    w = World()
    for name, amount in (("dave", deposit), ("bob", FUNDS), ("carol", FUNDS)):
        w.deposit(name, amount)
    assert_applied(w, w.trade("dave", "bob", 5 * ETH_STEP))
    w.set_price(ETH, 330_000_000)
    return w


def test_liquidate_rounding_dust_goes_to_fees():
    w = World()
    w.deposit("alice", 40_000_000)
    w.deposit("bob", FUNDS)
    w.deposit("carol", FUNDS)
    btc = dict(market=BTC, limit_price=BTC_PRICE)
    # alice buys 1e6 at 6e10: collateral 4e7 - 6e8 = -560_000_000, value 4e7 >= initial 3e7.
    assert_applied(w, w.trade("bob", "alice", 1_000_000, maker_fields=btc, taker_fields=btc))
    w.set_price(BTC, 57_000_000_000)  # value -5.6e8 + 5.7e8 = 10_000_000 < maintenance 14_250_000
    liquidator = w.order("carol", market=BTC, is_buy=True, size=123_400, limit_price=57_000_001_000)
    assert_applied(w, Liquidate(liquidator, w.ids["alice"], 123_400))
    # 123_400 * 57_000_001_000 / 1e8 = 70_338_001.234: carol pays 70_338_002, alice receives 70_338_001.
    # penalty = ceil(123_400 * 5.7e10 * 1e4 / 1e14) = 703_380 (value left 10_000_001 covers it)
    assert w.collateral("alice") == -560_000_000 + 70_338_001 - 703_380
    assert w.size("alice", BTC) == 876_600
    assert w.collateral("carol") == FUNDS - 70_338_002 and w.size("carol", BTC) == 123_400
    assert w.state.fees == 1 and w.state.insurance == 703_380
    w.check_conservation()


def test_liquidate_a_short():
    w = _underwater_short()
    # Upper band edge: 3.3e8 * 1.05 = 346_500_000.
    liquidator = w.order("carol", is_buy=False, size=5 * ETH_STEP, limit_price=346_500_000 + ETH_TICK)
    assert_invalid(w, Liquidate(liquidator, w.ids["dave"], 5 * ETH_STEP), E.LIQUIDATION_PRICE)
    # At the edge dave would pay 3_465_000 -> value 335_000 against risk 660_000: ratio 0.51 < 0.61.
    edge = w.order("carol", is_buy=False, size=ETH_STEP, limit_price=346_500_000)
    assert_invalid(w, Liquidate(edge, w.ids["dave"], ETH_STEP), E.INSUFFICIENT_MARGIN)
    # At 3.4e8: pays 3_400_000 -> 13_600_000, short 4e6: value 400_000 = ceil(500_000 * 660_000 / 825_000),
    # the ratio kept exactly, so no room for a penalty.
    fair = w.order("carol", is_buy=False, size=ETH_STEP, limit_price=340_000_000)
    assert_applied(w, Liquidate(fair, w.ids["dave"], ETH_STEP))
    assert w.collateral("dave") == 13_600_000 and w.state.insurance == 0
    w.set_price(ETH, 330_000_000)  # (a fresh sample; dave's value 400_000 < maintenance 660_000)
    liquidator = w.order("carol", is_buy=False, size=4 * ETH_STEP, limit_price=330_000_000, fee_rate=100)
    assert_applied(w, Liquidate(liquidator, w.ids["dave"], 4 * ETH_STEP))
    # dave pays 13_200_000 -> 400_000; penalty min(ceil(4e6 * 3.3e8 * 1e4 / 1e14) = 132_000, 400_000)
    assert w.collateral("dave") == 268_000 and w.account("dave").positions == {}
    # carol receives 3_400_000 + 13_200_000, minus the fee ceil(13_200_000 * 100 / 1e6) = 1_320
    assert w.collateral("carol") == FUNDS + 3_400_000 + 13_200_000 - 1_320 and w.size("carol") == -5 * ETH_STEP
    assert w.state.insurance == 132_000 and w.state.fees == 1_320
    w.check_conservation()


def test_liquidate_1_liquidator_order_rules():
    w = _underwater_long()
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000, signer="bob"), w.ids["alice"], ETH_STEP), E.WRONG_SIGNER)
    assert_invalid(w, Liquidate(SlotRef(0), w.ids["alice"], ETH_STEP), E.SLOT_NOT_FOUND)
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000 + 1), w.ids["alice"], ETH_STEP), E.INVALID_ORDER)


def test_liquidate_2_account_not_found():
    w = _underwater_long()
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000), 42, ETH_STEP), E.ACCOUNT_NOT_FOUND)


def test_liquidate_3_self_liquidation():
    w = _underwater_long()
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000, name="alice"), w.ids["alice"], ETH_STEP), E.SELF_TRADE)


@pytest.mark.parametrize("size", [0, ETH_STEP + 1, 6 * ETH_STEP], ids=["zero", "off_step", "above_order"])
def test_liquidate_4_invalid_fill_size(size):
    w = _underwater_long()
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000), w.ids["alice"], size), E.INVALID_AMOUNT)


def test_liquidate_5_not_liquidatable(funded_world):
    w = _underwater_long()
    w.set_price(ETH, 280_000_000)  # value 1_000_000 >= maintenance 700_000
    assert_invalid(w, Liquidate(_liquidator(w, 280_000_000), w.ids["alice"], ETH_STEP), E.NOT_LIQUIDATABLE)
    # An account without positions is never liquidatable.
    assert_invalid(funded_world, Liquidate(funded_world.order("carol"), funded_world.ids["alice"], ETH_STEP), E.NOT_LIQUIDATABLE)


def test_liquidate_5_value_equal_to_maintenance_is_not_liquidatable():
    w = World()
    w.deposit("alice", 1_700_000)
    w.deposit("bob", FUNDS)
    w.deposit("carol", FUNDS)
    assert_applied(w, w.trade("bob", "alice", 5 * ETH_STEP))  # collateral -13_300_000
    w.set_price(ETH, 280_000_000)  # value -13_300_000 + 14_000_000 = 700_000 == maintenance 700_000
    assert_invalid(w, Liquidate(_liquidator(w, 280_000_000), w.ids["alice"], ETH_STEP), E.NOT_LIQUIDATABLE)
    w.set_price(ETH, 280_000_000 - ETH_TICK)  # value 699_500 < maintenance ceil(699_975) = 699_975
    assert_applied(w, Liquidate(_liquidator(w, 280_000_000), w.ids["alice"], ETH_STEP))


def test_liquidate_6_not_reducing():
    w = _underwater_long()
    alice = w.ids["alice"]
    # Liquidator on the same side as the liquidated long (selling).
    assert_invalid(w, Liquidate(w.order("carol", is_buy=False, size=5 * ETH_STEP, limit_price=270_000_000), alice, ETH_STEP), E.NOT_REDUCING)
    # More than the whole position.
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000, size=10 * ETH_STEP), alice, 6 * ETH_STEP), E.NOT_REDUCING)
    # A market where alice holds nothing.
    btc = w.order("carol", market=BTC, is_buy=True, size=BTC_STEP, limit_price=BTC_PRICE)
    assert_invalid(w, Liquidate(btc, alice, BTC_STEP), E.NOT_REDUCING)


def test_liquidate_7_liquidation_price_band_long():
    w = _underwater_long()
    # Lower band edge: 2.7e8 * (1 - 0.05) = 256_500_000 (allowed, see the penalty test).
    assert_invalid(w, Liquidate(_liquidator(w, 256_500_000 - ETH_TICK), w.ids["alice"], ETH_STEP), E.LIQUIDATION_PRICE)


def test_liquidate_8_position_limit():
    w = _underwater_long()
    limit = GENESIS.markets[ETH].max_position
    w.account("carol").positions = {ETH: Position(limit - ETH_STEP, 0)}  # crafted
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000), w.ids["alice"], 2 * ETH_STEP), E.POSITION_LIMIT)


def test_liquidate_8_balance_overflow_insurance():
    w = _underwater_long()
    w.state.insurance = MAX_BALANCE  # crafted: any penalty overflows it
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000), w.ids["alice"], ETH_STEP), E.BALANCE_OVERFLOW)


def test_liquidate_9_liquidator_margin():
    w = _underwater_long()
    w.deposit("erin", 100_000)
    # erin buys 5e6 at 2.7e8 with 100_000: value 100_000 < initial 1_350_000.
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000, name="erin"), w.ids["alice"], 5 * ETH_STEP), E.INSUFFICIENT_MARGIN)


# ======================================================================================================
# Deleverage
# ======================================================================================================


def _bankrupt_long(deposit: int = 2_000_000) -> World:
    """alice buys 3e6 from bob and 2e6 from erin at 3e8 (collateral deposit - 15_000_000, long 5e6);
    carol sells 8e6 to dave. Then the oracle falls to 2.5e8: alice's value is deposit - 2_500_000 < 0."""
    w = World()
    w.deposit("alice", deposit)
    for name in ("bob", "carol", "dave", "erin"):
        w.deposit(name, FUNDS)
    assert_applied(w, w.trade("bob", "alice", 3 * ETH_STEP))
    assert_applied(w, w.trade("erin", "alice", 2 * ETH_STEP))
    assert_applied(w, w.trade("carol", "dave", 8 * ETH_STEP))
    w.set_price(ETH, 250_000_000)
    return w


def _value(w: World, name: str) -> int:
    a = w.account(name)
    return get_total_value(w.state, a.collateral, a.positions)


def test_deleverage_whole_position_at_the_bankruptcy_price():
    w = _bankrupt_long()
    assert _value(w, "alice") == -500_000
    assert_applied(w, Deleverage(w.ids["alice"], w.ids["carol"], ETH, 5 * ETH_STEP))
    # Bankruptcy price 2.6e8: alice receives 5e6 * 2.5e8 / 1e8 + 500_000 = 13_000_000 -> value 0.
    assert w.collateral("alice") == 0 and w.account("alice").positions == {} and _value(w, "alice") == 0
    assert w.collateral("carol") == FUNDS + 24_000_000 - 13_000_000
    assert w.position("carol") == Position(-3 * ETH_STEP, 0)
    w.check_conservation()


def test_deleverage_partially_keeps_the_deleveraged_ratio_rounded_for_it():
    w = _bankrupt_long(deposit=2_000_001)  # value -499_999, risk 625_000
    assert_applied(w, Deleverage(w.ids["alice"], w.ids["carol"], ETH, 2 * ETH_STEP))
    # risk after 375_000: value after = ceil(-499_999 * 375_000 / 625_000) = ceil(-299_999.4) = -299_999,
    # so alice's collateral is -299_999 - 3e6 * 2.5 = -7_799_999: she receives 5_200_000 from carol.
    assert w.collateral("alice") == -12_999_999 + 5_200_000 == -7_799_999
    assert w.size("alice") == 3 * ETH_STEP
    assert _value(w, "alice") == -299_999
    assert w.collateral("carol") == FUNDS + 24_000_000 - 5_200_000 and w.size("carol") == -6 * ETH_STEP
    w.check_conservation()


def test_deleverage_a_short():
    w = _underwater_short()
    w.set_price(ETH, 350_000_000)  # dave: 17e6 - 17.5e6 = -500_000
    assert_applied(w, Deleverage(w.ids["dave"], w.ids["bob"], ETH, 5 * ETH_STEP))
    # dave pays 17_500_000 - 500_000 = 17_000_000 (bankruptcy price 3.4e8): collateral 0.
    assert w.collateral("dave") == 0 and w.account("dave").positions == {}
    assert w.collateral("bob") == FUNDS - 15_000_000 + 17_000_000 and w.account("bob").positions == {}
    w.check_conservation()


def test_deleverage_a_short_partially_keeps_the_deleveraged_ratio():
    w = _underwater_short(deposit=2_000_001)
    w.set_price(ETH, 350_000_000)  # dave: 17_000_001 - 17_500_000 = -499_999, risk 875_000
    assert_applied(w, Deleverage(w.ids["dave"], w.ids["bob"], ETH, 2 * ETH_STEP))
    # risk after 525_000: value after ceil(-499_999 * 0.6) = -299_999; collateral -299_999 + 10_500_000
    assert w.collateral("dave") == 17_000_001 - 6_800_000 and w.size("dave") == -3 * ETH_STEP
    assert _value(w, "dave") == -299_999
    assert w.collateral("bob") == FUNDS - 15_000_000 + 6_800_000 and w.size("bob") == 3 * ETH_STEP
    w.check_conservation()


def test_deleverage_1_market_not_found():
    w = _bankrupt_long()
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids["carol"], 2, ETH_STEP), E.MARKET_NOT_FOUND)


@pytest.mark.parametrize("which", ["deleveraged", "deleverager"])
def test_deleverage_2_account_not_found(which):
    w = _bankrupt_long()
    deleveraged = 42 if which == "deleveraged" else w.ids["alice"]
    deleverager = 42 if which == "deleverager" else w.ids["carol"]
    assert_invalid(w, Deleverage(deleveraged, deleverager, ETH, ETH_STEP), E.ACCOUNT_NOT_FOUND)


def test_deleverage_3_self_trade():
    w = _bankrupt_long()
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids["alice"], ETH, ETH_STEP), E.SELF_TRADE)


def test_deleverage_4_zero_size():
    w = _bankrupt_long()
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids["carol"], ETH, 0), E.INVALID_AMOUNT)


@pytest.mark.parametrize("price", [300_000_000, 260_000_000], ids=["positive", "exactly_zero"])
def test_deleverage_5_not_deleverageable(price):
    w = _bankrupt_long()
    w.set_price(ETH, price)  # at 2.6e8: value -13e6 + 13e6 = 0
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids["carol"], ETH, ETH_STEP), E.NOT_DELEVERAGEABLE)


@pytest.mark.parametrize(
    "deleverager, size",
    [("dave", ETH_STEP), ("bob", 4 * ETH_STEP), ("carol", 6 * ETH_STEP)],
    ids=["same_side", "above_deleverager_position", "above_deleveraged_position"],
)
def test_deleverage_6_not_reducing(deleverager, size):
    w = _bankrupt_long()
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids[deleverager], ETH, size), E.NOT_REDUCING)


def test_deleverage_6_no_position_in_market():
    w = _bankrupt_long()
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids["carol"], BTC, BTC_STEP), E.NOT_REDUCING)


def test_deleverage_7_balance_overflow():
    w = _underwater_short()
    w.set_price(ETH, 350_000_000)  # dave: -500_000; bob, long 5e6, receives 17_000_000 closing it
    # Crafted: one unit more than bob's collateral can hold after receiving it (taken from carol, so
    # that the state's total stays in range).
    extra = MAX_BALANCE - 17_000_000 + 1 - w.account("bob").collateral
    w.account("bob").collateral += extra
    w.account("carol").collateral -= extra
    w.touch(w.ids["bob"], w.ids["carol"])
    assert_invalid(w, Deleverage(w.ids["dave"], w.ids["bob"], ETH, 5 * ETH_STEP), E.BALANCE_OVERFLOW)


def test_deleverage_8_a_bankrupt_deleverager_keeps_its_ratio_and_the_rest_is_socialized():
    w = _bankrupt_long()
    # Crafted: carol is deep in debt herself (value about -MAX_BALANCE): she cannot pay alice's
    # share. She ends at her own bankruptcy price (her value/risk ratio kept), and what she cannot
    # pay is socialized. (Before the socialized-loss rule: refused, INSUFFICIENT_MARGIN.)
    carol = w.ids["carol"]
    w.account("carol").collateral = -MAX_BALANCE + 2_600_000
    w.touch(carol)
    value_before, risk_before = _value(w, "carol"), get_total_risk(w.state, w.account("carol").positions, initial=False)
    assert_applied(w, Deleverage(w.ids["alice"], carol, ETH, ETH_STEP))
    risk_after = get_total_risk(w.state, w.account("carol").positions, initial=False)
    assert _value(w, "carol") == -((-value_before * risk_after) // risk_before)  # ceil(value * risk ratio)
    assert w.state.socialized_loss > 0 and w.state.total_collateral == get_total_collateral(w.state)


# ======================================================================================================
# Malformed
# ======================================================================================================


def test_malformed_record_never_changes_anything(funded_world):
    w = funded_world
    w.queue_deposit("alice", 1)
    w.queue_forced("alice", 1)
    assert_invalid(w, Malformed(b"\x01\x02\x03"), E.MALFORMED)
    assert (w.state.deposits_done, w.state.forced_done) == (3, 0)


# ======================================================================================================
# Range of the settled collateral and of the funding pool (every path that settles funding)
# ======================================================================================================


def _extreme_world() -> World:
    """A genesis that check_genesis accepts, with the largest funding rate and price: one funding
    tick can move the index by MAX_FUNDING_INDEX ((2**64 - 1)**2 * 1e12 s / 1e12 > 2**127)."""
    big = 2**64 - 1
    market = GenesisMarket(
        name="X", step_size=1, tick_size=1, initial_margin=100_000, maintenance_margin=50_000, liquidation_fee=0,
        max_funding_rate=big, max_position=10**12, price=big,
    )
    # validity windows as wide as the funding tick's span, so the stale genesis price stays usable
    genesis = msgspec.structs.replace(GENESIS, markets=(market,), price_validity=10**14, funding_validity=10**14)
    w = World(genesis, l1_timestamp=T + 10**13)
    for name in ("long", "s1", "s2", "s3", "mm"):
        w.deposit(name, MAX_AMOUNT)
    w.deposit("long", MAX_AMOUNT)
    return w


FAR = dict(expiry=MAX_TIMESTAMP)


def _extreme_trade(w: World, seller: str, buyer: str, size: int) -> Trade:
    return w.trade(seller, buyer, size, limit_price=2**64 - 1, **FAR)


@pytest.mark.parametrize("forced", [False, True], ids=["withdraw", "forced_withdraw"])
def test_withdraw_8_settled_collateral_range(forced):
    w = _extreme_world()
    assert_applied(w, _extreme_trade(w, "s1", "long", 10**8))
    assert_applied(w, FundingTick(T + 10**12, (MAX_FUNDING_INDEX,)))
    # s1 (short 1e8) receives 1e8 * (2**127 - 1) / 1e8 = MAX_BALANCE when settled: its collateral
    # (2 * 1.8e19 already) would leave the range, and the state root could not be computed.
    if forced:
        w.queue_forced("s1", 1)
        assert_forced_rejected(w, E.BALANCE_OVERFLOW)
    else:
        assert_invalid(w, w.withdraw("s1", 1, **FAR), E.BALANCE_OVERFLOW)


def test_trade_9_funding_pool_range():
    w = _extreme_world()
    for short in ("s1", "s2", "s3"):
        assert_applied(w, _extreme_trade(w, short, "long", 5 * 10**7))
    assert_applied(w, FundingTick(T + 10**12, (MAX_FUNDING_INDEX,)))
    # Each short receives -ceil(-5e7 * (2**127 - 1) / 1e8) = 2**126 - 1 when it next trades.
    assert_applied(w, _extreme_trade(w, "mm", "s1", 1))
    assert_applied(w, _extreme_trade(w, "mm", "s2", 1))
    assert w.state.funding_pool == -(2**127 - 2) == -MAX_BALANCE + 1
    # The third would take the pool to -(3 * 2**126 - 3), beyond the int128 of the commitment.
    assert_invalid(w, _extreme_trade(w, "mm", "s3", 1), E.BALANCE_OVERFLOW)
    w.root()


def _pool_full(w: World) -> None:
    """A +100 ETH index tick (longs owe funding), then the pool crafted to MAX_BALANCE."""
    w.l1_timestamp = w.state.time + 1_000
    assert_applied(w, FundingTick(w.state.time + 100, (100, 0)))
    w.state.funding_pool = MAX_BALANCE


def test_withdraw_8_funding_pool_range(funded_world):
    w = funded_world
    assert_applied(w, w.trade("bob", "alice", 5 * ETH_STEP))
    _pool_full(w)  # alice owes ceil(5e6 * 100 / 1e8) = 5
    assert_invalid(w, w.withdraw("alice", 1), E.BALANCE_OVERFLOW)
    assert_applied(w, w.withdraw("bob", 1))  # bob receives 5: the pool shrinks


def test_trade_9_funding_pool_range_crafted(funded_world):
    w = funded_world
    assert_applied(w, w.trade("bob", "alice", 5 * ETH_STEP))
    _pool_full(w)
    assert_invalid(w, w.trade("carol", "alice", ETH_STEP), E.BALANCE_OVERFLOW)


def test_liquidate_8_funding_pool_range():
    w = _underwater_long()
    _pool_full(w)  # alice still liquidatable (value 500_000 - 5)
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000), w.ids["alice"], ETH_STEP), E.BALANCE_OVERFLOW)


def test_deleverage_7_funding_pool_range():
    w = _bankrupt_long()
    _pool_full(w)
    # alice pays ceil(5e6 * 100 / 1e8) = 5 and bob (short 3e6) receives 3: the pool grows by 2.
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids["bob"], ETH, ETH_STEP), E.BALANCE_OVERFLOW)


# ======================================================================================================
# Capacity: the slot tree has 2**32 ids; a remainder that would need one past it is TREE_FULL
# ======================================================================================================


def _slots_nearly_full(w: World, left: int) -> None:
    w.state.next_slot = MAX_SLOT_ID + 1 - left  # ids below are "taken" (never referenced here)


def test_trade_11_tree_full(funded_world):
    w = funded_world
    _slots_nearly_full(w, 1)
    # Two new orders both partially filled need two ids: TREE_FULL, nothing written.
    maker = w.order("alice", is_buy=False, size=10 * ETH_STEP, limit_price=ETH_PRICE)
    taker = w.order("bob", size=8 * ETH_STEP, limit_price=ETH_PRICE)
    assert_invalid(w, Trade(maker, taker, 4 * ETH_STEP), E.TREE_FULL)
    # One remainder takes the last id.
    assert_applied(w, Trade(maker, taker, 8 * ETH_STEP))
    assert w.state.next_slot == MAX_SLOT_ID + 1 and w.state.slots[MAX_SLOT_ID].remaining == 2 * ETH_STEP
    # A full fill needs no slot, so it still works; another remainder does not fit.
    assert_applied(w, Trade(SlotRef(MAX_SLOT_ID), w.order("carol", size=2 * ETH_STEP, limit_price=ETH_PRICE), 2 * ETH_STEP))
    assert_invalid(
        w, Trade(w.order("alice", is_buy=False, size=4 * ETH_STEP, limit_price=ETH_PRICE), w.order("carol", size=ETH_STEP, limit_price=ETH_PRICE), ETH_STEP), E.TREE_FULL
    )


def test_liquidate_10_tree_full():
    w = _underwater_long()
    _slots_nearly_full(w, 0)
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000), w.ids["alice"], 2 * ETH_STEP), E.TREE_FULL)
    assert_applied(w, Liquidate(_liquidator(w, 270_000_000), w.ids["alice"], 5 * ETH_STEP))  # no remainder


def test_deleverage_4_off_step():
    w = _bankrupt_long()
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids["carol"], ETH, ETH_STEP + 1), E.INVALID_AMOUNT)


# ======================================================================================================
# Time, oracle age, nonce horizon and floors, fees (issue 7; docs/risk.md)
# ======================================================================================================

DAY = 86_400  # the test genesis: max_sample_age = price_validity = funding_validity = 2 days


def test_oracle_price_6_sample_too_old(world):
    world.l1_timestamp = T + 1 + 2 * DAY + 1  # 2 days + 1 s
    assert_invalid(world, world.prices(ETH, [(0, ETH_PRICE, T + 2), (1, ETH_PRICE, T + 1)]), E.SAMPLE_TOO_OLD)
    world.l1_timestamp = T + 1 + 2 * DAY  # exactly max_sample_age old: accepted
    assert_applied(world, world.prices(ETH, [(0, ETH_PRICE, T + 1), (1, ETH_PRICE, T + 2)]))


def _stale(w: World, price_age: int, funding_age: int) -> None:
    """Move L1 time so that ETH's price is `price_age` and the funding `funding_age` seconds old
    (BTC's price is refreshed so that only ETH can be stale)."""
    now = w.state.markets[ETH].price_time + price_age
    w.l1_timestamp = now
    w.state.markets[BTC].price_time = now  # crafted: BTC fresh, funding `funding_age` old
    w.state.funding_time = now - funding_age


def test_trade_7a_stale_price_and_funding(funded_world):
    w = funded_world
    _stale(w, 2 * DAY + 1, 0)
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP), E.STALE_PRICE)
    _stale(w, 2 * DAY, 2 * DAY + 1)
    assert_invalid(w, w.trade("alice", "bob", ETH_STEP), E.STALE_FUNDING)
    _stale(w, 2 * DAY, 2 * DAY)  # both exactly at their window: usable
    assert_applied(w, w.trade("alice", "bob", ETH_STEP))


def test_trade_7a_reads_the_prices_of_every_held_market(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", ETH_STEP))
    # A BTC trade between alice (long ETH) and carol reads ETH's price too.
    now = w.state.markets[ETH].price_time + 2 * DAY + 1
    w.l1_timestamp = now
    w.set_price(BTC, BTC_PRICE, now)
    w.state.funding_time = now
    btc = dict(market=BTC, size=BTC_STEP, limit_price=BTC_PRICE)
    assert_invalid(w, Trade(w.order("alice", is_buy=False, **btc), w.order("carol", **btc), BTC_STEP), E.STALE_PRICE)
    w.deposit("dave", FUNDS)  # no position: a BTC trade with carol reads only BTC's fresh price
    assert_applied(w, Trade(w.order("dave", is_buy=False, **btc), w.order("carol", **btc), BTC_STEP))


def test_withdraw_8_9_stale_prices_only_for_held_markets(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", ETH_STEP))
    _stale(w, 2 * DAY + 1, 2 * DAY + 1)
    assert_invalid(w, w.withdraw("alice", 1), E.STALE_PRICE)
    assert_applied(w, w.withdraw("carol", 1))  # no position: reads no price and no funding
    w.set_price(ETH, ETH_PRICE, w.l1_timestamp)
    assert_invalid(w, w.withdraw("alice", 1), E.STALE_FUNDING)


def test_forced_withdraw_2_3_stale_prices_leave_the_request_queued(funded_world):
    w = funded_world
    assert_applied(w, w.trade("alice", "bob", ETH_STEP))
    _stale(w, 2 * DAY + 1, 0)
    w.queue_forced("alice", 1)
    assert_invalid(w, ForcedWithdraw(), E.STALE_PRICE)  # not consumed: the sequencer must post a price
    w.set_price(ETH, ETH_PRICE, w.l1_timestamp)
    assert_applied(w, ForcedWithdraw())
    assert w.account("alice").withdrawn == 1


def test_liquidate_4a_stale_price():
    w = _underwater_long()
    _stale(w, 2 * DAY + 1, 0)
    assert_invalid(w, Liquidate(_liquidator(w, 270_000_000), w.ids["alice"], 5 * ETH_STEP), E.STALE_PRICE)


def test_deleverage_4a_stale_funding():
    w = _bankrupt_long()
    _stale(w, 0, 2 * DAY + 1)
    assert_invalid(w, Deleverage(w.ids["alice"], w.ids["bob"], ETH, ETH_STEP), E.STALE_FUNDING)


def test_cancel_all_raises_the_floor_and_cancels_outstanding_orders(funded_world):
    from optinode.wallet import sign_cancel_all

    w = funded_world
    resting = w.order("alice", is_buy=False, nonce=7)
    assert_applied(w, w.withdraw("alice", 1, nonce=9))
    cancel = sign_cancel_all(w.key("alice"), w.domain, w.ids["alice"], 8)
    assert_applied(w, cancel)
    alice = w.account("alice")
    assert (alice.nonce_base, alice.nonce_bits) == (8, 1 << 1)  # nonce 9 stays used
    assert_invalid(w, Trade(resting, w.order("bob"), ETH_STEP), E.NONCE_TOO_LOW)
    assert_invalid(w, w.withdraw("alice", 1, nonce=9), E.NONCE_USED)
    assert_applied(w, w.withdraw("alice", 1, nonce=8))
    # 4. Replaying it (or any floor not above the base) is invalid.
    assert_invalid(w, cancel, E.NONCE_TOO_LOW)


def test_cancel_all_rules(funded_world):
    from optinode.spec.types import CancelAll
    from optinode.wallet import sign_cancel_all

    w = funded_world
    # 1. The account exists.
    assert_invalid(w, sign_cancel_all(w.key("alice"), w.domain, 99, 5), E.ACCOUNT_NOT_FOUND)
    # 2. A valid signature; 3. by the owner.
    good = sign_cancel_all(w.key("alice"), w.domain, w.ids["alice"], 5)
    assert_invalid(w, CancelAll(good.account_id, good.nonce_floor, bytes(65)), E.BAD_SIGNATURE)
    assert_invalid(w, sign_cancel_all(w.key("bob"), w.domain, w.ids["alice"], 5), E.WRONG_SIGNER)
    # 4. The floor rises.
    assert_invalid(w, sign_cancel_all(w.key("alice"), w.domain, w.ids["alice"], 0), E.NONCE_TOO_LOW)
    # 5. By at most NONCE_HORIZON: a cancel-all cannot brick the account either.
    assert_invalid(w, sign_cancel_all(w.key("alice"), w.domain, w.ids["alice"], NONCE_HORIZON + 1), E.NONCE_TOO_HIGH)
    assert_invalid(w, sign_cancel_all(w.key("alice"), w.domain, w.ids["alice"], MAX_NONCE), E.NONCE_TOO_HIGH)
    assert_applied(w, sign_cancel_all(w.key("alice"), w.domain, w.ids["alice"], NONCE_HORIZON))
    assert (w.account("alice").nonce_base, w.account("alice").nonce_bits) == (NONCE_HORIZON, 0)


def test_forced_cancel_all(funded_world):
    from optinode.spec.constants import FORCED_CANCEL_ALL

    w = funded_world
    resting = w.order("alice", is_buy=False, nonce=3)
    w.queue_forced("alice", FORCED_CANCEL_ALL | 100)
    assert_applied(w, ForcedWithdraw())
    assert w.account("alice").nonce_base == 100 and w.state.forced_done == 1
    assert_invalid(w, Trade(resting, w.order("bob"), ETH_STEP), E.NONCE_TOO_LOW)
    # Rejected with a reason (and consumed): a floor that does not rise, one too high, another's account.
    w.queue_forced("alice", FORCED_CANCEL_ALL | 100)
    assert_forced_rejected(w, E.NONCE_TOO_LOW)
    w.queue_forced("alice", FORCED_CANCEL_ALL | (100 + NONCE_HORIZON + 1))
    assert_forced_rejected(w, E.NONCE_TOO_HIGH)
    w.queue_forced("alice", FORCED_CANCEL_ALL | (FORCED_CANCEL_ALL - 1))
    assert_forced_rejected(w, E.NONCE_TOO_HIGH)
    w.queue_forced("alice", FORCED_CANCEL_ALL | 200, requester="bob")
    assert_forced_rejected(w, E.OWNER_MISMATCH)
    # A cancel-all reads no prices: stale ones do not hold it up.
    _stale(w, 10 * DAY, 10 * DAY)
    w.queue_forced("alice", FORCED_CANCEL_ALL | 200)
    assert_applied(w, ForcedWithdraw())


def test_collect_fees_and_withdraw_them(funded_world):
    from optinode.spec.types import CollectFees

    w = funded_world
    assert_applied(w, w.trade("alice", "bob", 10 * ETH_STEP, maker_fields=dict(fee_rate=1000), taker_fields=dict(fee_rate=1000)))
    fees = w.state.fees
    assert fees == 2 * 30_000  # 2 * ceil(1e7 * 3e8 * 1e3 / 1e14)
    # 3. Nothing to collect until there are fees; 2. only into an account of the fee owner.
    assert_invalid(w, CollectFees(w.ids["carol"]), E.OWNER_MISMATCH)
    assert_invalid(w, CollectFees(99), E.ACCOUNT_NOT_FOUND)
    w.deposit("fees", 1)  # test_key("fees") is the genesis fee owner
    assert_applied(w, CollectFees(w.ids["fees"]))
    assert w.state.fees == 0 and w.collateral("fees") == fees + 1
    assert_invalid(w, CollectFees(w.ids["fees"]), E.INVALID_AMOUNT)
    assert_applied(w, w.withdraw("fees", fees + 1))
    # 4. The balance stays in range.
    w.deposit("fees", 1)
    w.state.fees = MAX_BALANCE  # crafted
    assert_invalid(w, CollectFees(w.ids["fees"]), E.BALANCE_OVERFLOW)


# ======================================================================================================
# Meta: every error code is asserted somewhere above
# ======================================================================================================


def _asserted_codes() -> set[str]:
    """Every `E.X` / `ErrorCode.X` that appears in a (non-xfail) test function or its decorators."""
    tree = ast.parse(Path(__file__).read_text())
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_") or node.name == "test_every_error_code_is_asserted":
            continue
        if any("xfail" in ast.unparse(d) for d in node.decorator_list):
            continue  # a test of a known spec bug does not count as coverage
        for sub in ast.walk(node):
            if isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id in ("E", "ErrorCode"):
                names.add(sub.attr)
    return names


def test_every_error_code_is_asserted():
    missing = {code.name for code in ErrorCode if code is not ErrorCode.OK} - _asserted_codes()
    assert not missing, f"no test asserts {sorted(missing)}"
