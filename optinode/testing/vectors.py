"""Shared one-step test vectors: `python -m optinode.testing.vectors [--check]`.

Writes tests/vectors/<group>/<case>.json, each one transaction against a pre-state given as a
witness: pre-state root, the transaction (JSON and its batch record), the L1 inputs it may read,
the witness, and the expected post-state root, error code and whether it applied. The Python spec
(`spec.witness.execute_witness`) and the Solidity one-step prover are both tested against exactly
these files. Cases cover every transaction type and every error code.

Each case is a named function that builds its pre-state on the test driver (`optinode.testing.world`),
and returns `w.vector(tx, expect=ErrorCode.X, description=...)`: the case states the outcome it
expects, and `World.vector` asserts it (with the record round trip and the witness execution) before
it yields the vector. A forced withdrawal that is consumed but refused says `applied=True`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from msgspec.structs import replace

from optinode.spec.constants import FORCED_CANCEL_ALL, FORCED_DELEVERAGE, MAX_AMOUNT, MAX_BALANCE, MAX_NONCE, MAX_SLOT_ID, NONCE_HORIZON, PRICE_ONE
from optinode.spec.errors import ErrorCode
from optinode.spec.types import (
    CancelAll,
    CollectFees,
    Deleverage,
    Deposit,
    ForcedWithdraw,
    FundingTick,
    Liquidate,
    Malformed,
    OraclePrice,
    SlotRef,
    Trade,
)
from optinode.testing.world import BTC, ETH, ETH_MARKET, ETH_PRICE, ETH_TICK, ETH_UNIT, GENESIS_TIME, USD, WINDOW, World, make_genesis
from optinode.wallet import sign_cancel_all

E = ErrorCode
VECTORS_DIR = Path(__file__).resolve().parents[2] / "tests" / "vectors"


def base_world() -> World:
    """alice, bob, carol funded; alice long 1 ETH from bob; a resting partial order of alice's in slot 0."""
    w = World()
    w.deposit("alice", 100_000 * USD)
    w.deposit("bob", 100_000 * USD)
    w.deposit("carol", 1_000_000 * USD)
    w.must(w.trade("alice", "bob", ETH_UNIT, maker_buys=True, maker_fields=dict(size=3 * ETH_UNIT)))
    w.root()
    return w


def leveraged_world() -> World:
    """dave: 1,000 USD, long 3 ETH at 3000 (9,000 USD notional, initial margin 900) against carol."""
    w = base_world()
    w.deposit("dave", 1_000 * USD)
    w.must(w.trade("carol", "dave", 3 * ETH_UNIT))
    w.root()
    return w


Case = Callable[[], dict[str, Any]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    """Register a vector case under `<group>/<name>` (its file: tests/vectors/<group>/<name>.json)."""

    def register(fn: Case) -> Case:
        assert name not in CASES, f"two vector cases named {name}"
        CASES[name] = fn
        return fn

    return register


# --- Deposit -------------------------------------------------------------------------------------------
@case("deposit/ok_new_account")
def _():
    w = base_world(); w.queue_deposit("erin", 5_000 * USD)
    return w.vector(Deposit(w.state.next_account_id), expect=E.OK, description="a deposit creates the next account id")


@case("deposit/ok_existing")
def _():
    w = base_world(); w.queue_deposit("bob", 7 * USD)
    return w.vector(Deposit(1), expect=E.OK, description="a deposit credits an existing account of the same owner")


@case("deposit/no_pending")
def _():
    w = base_world()
    return w.vector(Deposit(1), expect=E.NO_PENDING_DEPOSIT, description="the queue is empty")


@case("deposit/account_not_found")
def _():
    w = base_world(); w.queue_deposit("bob", 7 * USD)
    return w.vector(Deposit(w.state.next_account_id + 1), expect=E.ACCOUNT_NOT_FOUND, description="neither an account nor the next id")


@case("deposit/owner_mismatch")
def _():
    w = base_world(); w.queue_deposit("bob", 7 * USD)
    return w.vector(Deposit(0), expect=E.OWNER_MISMATCH, description="account 0 belongs to alice")


@case("deposit/invalid_amount")
def _():
    w = base_world(); w.queue_deposit("bob", MAX_AMOUNT + 1)
    return w.vector(Deposit(1), expect=E.INVALID_AMOUNT, description="hostile L1 data above the u64 amount range")


@case("deposit/balance_overflow")
def _():
    w = base_world()
    w.state.accounts[1].collateral = MAX_BALANCE - 1
    w.touch(1); w.root()
    w.queue_deposit("bob", 2)
    return w.vector(Deposit(1), expect=E.BALANCE_OVERFLOW, description="collateral would exceed MAX_BALANCE")


# --- Trade ---------------------------------------------------------------------------------------------
def _trade(w: World, maker: Any = None, taker: Any = None, size: int = ETH_UNIT // 2) -> Trade:
    maker = maker or w.order("carol", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE)
    taker = taker or w.order("bob", is_buy=True, size=ETH_UNIT // 2, limit_price=ETH_PRICE + 100 * ETH_TICK, fee_rate=500)
    return Trade(maker, taker, size)


@case("trade/ok_new_orders_partial")
def _():
    w = base_world()
    return w.vector(_trade(w), expect=E.OK, description="a new maker order partially filled (opens a slot) by a new taker fully filled")


@case("trade/ok_slot_maker")
def _():
    w = base_world()
    return w.vector(Trade(SlotRef(0), w.order("carol", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE, fee_rate=300), ETH_UNIT), expect=E.OK, description="a fill continuing alice's resting order in slot 0")


@case("trade/ok_funding_settlement")
def _():
    w = base_world()
    w.must(FundingTick(GENESIS_TIME + 100, (3_000, 0)))
    w.root()
    return w.vector(Trade(SlotRef(0), w.order("bob", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE), ETH_UNIT), expect=E.OK, description="both parties settle funding before the fill")


@case("trade/ok_reduce_close")
def _():
    w = base_world()
    return w.vector(Trade(w.order("carol", is_buy=True, size=ETH_UNIT, limit_price=ETH_PRICE), w.order("bob", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE), ETH_UNIT), expect=E.OK, description="bob closes his short (position removed)")


@case("trade/invalid_order")
def _():
    w = base_world()
    return w.vector(_trade(w, maker=w.order("carol", is_buy=False, size=ETH_UNIT + 1, limit_price=ETH_PRICE)), expect=E.INVALID_ORDER, description="size off the step")


@case("trade/market_not_found")
def _():
    w = base_world()
    return w.vector(_trade(w, maker=w.order("carol", market=5, is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE)), expect=E.MARKET_NOT_FOUND)


@case("trade/account_not_found")
def _():
    w = base_world()
    return w.vector(_trade(w, maker=w.order("carol", account_id=9, is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE)), expect=E.ACCOUNT_NOT_FOUND)


@case("trade/bad_signature")
def _():
    w = base_world()
    good = w.order("carol", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE)
    high_s = good.signature[:32] + (2**256 - 1 - 2**255).to_bytes(32, "big") + good.signature[64:]
    return w.vector(_trade(w, maker=replace(good, signature=high_s)), expect=E.BAD_SIGNATURE, description="s above n/2")


@case("trade/wrong_signer")
def _():
    w = base_world()
    forged = w.order("bob", account_id=2, is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE)
    return w.vector(_trade(w, maker=forged), expect=E.WRONG_SIGNER, description="bob signs an order for carol's account")


@case("trade/expired")
def _():
    w = base_world()
    return w.vector(_trade(w, maker=w.order("carol", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE, expiry=GENESIS_TIME - 1)), expect=E.EXPIRED)


@case("trade/nonce_too_low")
def _():
    w = base_world()
    w.must(_trade(w, taker=w.order("bob", is_buy=True, size=ETH_UNIT // 2, limit_price=ETH_PRICE, nonce=1000)))
    w.root()
    return w.vector(_trade(w, taker=w.order("bob", is_buy=True, size=ETH_UNIT // 2, limit_price=ETH_PRICE, nonce=3)), expect=E.NONCE_TOO_LOW, description="nonce 1000 slid the window past 3")


@case("trade/nonce_used")
def _():
    w = base_world()
    return w.vector(_trade(w, taker=w.order("bob", is_buy=True, size=ETH_UNIT // 2, limit_price=ETH_PRICE, nonce=0)), expect=E.NONCE_USED, description="bob's nonce 0 filled before")


@case("trade/slot_not_found")
def _():
    w = base_world()
    return w.vector(_trade(w, maker=SlotRef(7)), expect=E.SLOT_NOT_FOUND)


@case("trade/order_filled")
def _():
    w = base_world()
    w.must(Trade(SlotRef(0), w.order("carol", is_buy=False, size=2 * ETH_UNIT, limit_price=ETH_PRICE), 2 * ETH_UNIT)); w.root()
    return w.vector(Trade(SlotRef(0), w.order("bob", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE), ETH_UNIT), expect=E.ORDER_FILLED, description="slot 0 has nothing left")


@case("trade/self_trade")
def _():
    w = base_world()
    return w.vector(_trade(w, taker=w.order("carol", is_buy=True, size=ETH_UNIT // 2, limit_price=ETH_PRICE)), expect=E.SELF_TRADE)


@case("trade/market_mismatch")
def _():
    w = base_world()
    return w.vector(_trade(w, taker=w.order("bob", market=BTC, is_buy=True, size=ETH_UNIT // 2, limit_price=ETH_PRICE)), expect=E.MARKET_MISMATCH)


@case("trade/same_side")
def _():
    w = base_world()
    return w.vector(_trade(w, taker=w.order("bob", is_buy=False, size=ETH_UNIT // 2, limit_price=ETH_PRICE)), expect=E.SAME_SIDE)


@case("trade/invalid_amount")
def _():
    w = base_world()
    return w.vector(_trade(w, size=2 * ETH_UNIT), expect=E.INVALID_AMOUNT, description="fill larger than the taker's order")


@case("trade/price_limit")
def _():
    w = base_world()
    return w.vector(_trade(w, taker=w.order("bob", is_buy=True, size=ETH_UNIT // 2, limit_price=ETH_PRICE - ETH_TICK)), expect=E.PRICE_LIMIT, description="the maker asks more than the taker bids")


@case("trade/position_limit")
def _():
    w = base_world()
    big = 10**15 + 10**6
    return w.vector(Trade(w.order("carol", is_buy=False, size=big, limit_price=ETH_PRICE), w.order("bob", is_buy=True, size=big, limit_price=ETH_PRICE), big), expect=E.POSITION_LIMIT)


@case("trade/insufficient_margin")
def _():
    w = base_world()
    size = 400 * ETH_UNIT  # 1.2M USD notional on 100k collateral, 10% initial margin
    return w.vector(Trade(w.order("carol", is_buy=False, size=size, limit_price=ETH_PRICE), w.order("bob", is_buy=True, size=size, limit_price=ETH_PRICE), size), expect=E.INSUFFICIENT_MARGIN)


@case("trade/balance_overflow")
def _():
    w = base_world()
    w.state.accounts[2].collateral = MAX_BALANCE - 1
    w.touch(2); w.root()
    return w.vector(_trade(w), expect=E.BALANCE_OVERFLOW, description="the seller's collateral would exceed MAX_BALANCE")


@case("trade/funding_pool_overflow")
def _():
    w = base_world()
    w.state.markets[ETH].funding_index = 1_000  # alice (long 1 ETH) pays 10,000 on settlement
    w.state.funding_pool = MAX_BALANCE - 5
    w.root()
    return w.vector(Trade(SlotRef(0), w.order("carol", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE), ETH_UNIT), expect=E.BALANCE_OVERFLOW, description="the funding pool would leave its range")


@case("trade/tree_full")
def _():
    w = base_world()
    w.state.next_slot = MAX_SLOT_ID + 1  # every slot id is taken
    w.root()
    return w.vector(_trade(w), expect=E.TREE_FULL, description="the maker's remainder would need a slot id past the tree")


# --- Withdraw ------------------------------------------------------------------------------------------
@case("withdraw/ok")
def _():
    w = base_world()
    return w.vector(w.withdraw("carol", 1_000 * USD), expect=E.OK, description="carol withdraws 1,000 USD")


@case("withdraw/account_not_found")
def _():
    w = base_world()
    return w.vector(w.withdraw("carol", 1_000 * USD, account_id=42), expect=E.ACCOUNT_NOT_FOUND)


@case("withdraw/wrong_signer")
def _():
    w = base_world()
    return w.vector(w.withdraw("bob", 1_000 * USD, account_id=2), expect=E.WRONG_SIGNER)


@case("withdraw/expired")
def _():
    w = base_world()
    return w.vector(w.withdraw("carol", 1_000 * USD, expiry=GENESIS_TIME - 1), expect=E.EXPIRED)


@case("withdraw/invalid_amount")
def _():
    w = base_world()
    return w.vector(w.withdraw("carol", 0), expect=E.INVALID_AMOUNT, description="zero")


@case("withdraw/insufficient_margin")
def _():
    w = base_world()
    return w.vector(w.withdraw("alice", 99_900 * USD), expect=E.INSUFFICIENT_MARGIN, description="alice's long needs 300 USD initial margin")


@case("withdraw/settled_collateral_overflow")
def _():
    w = base_world()
    w.state.markets[ETH].funding_index = 1_000  # bob (short 1 ETH) receives 10,000 on settlement
    w.state.accounts[1].collateral = MAX_BALANCE - 10
    w.touch(1)
    w.root()
    return w.vector(w.withdraw("bob", 1), expect=E.BALANCE_OVERFLOW, description="funding received pushes the settled collateral out of range")


# --- ForcedWithdraw ------------------------------------------------------------------------------------
@case("forced/ok")
def _():
    w = base_world(); w.queue_forced("carol", 5_000 * USD, account_id=2)
    return w.vector(ForcedWithdraw(), expect=E.OK, description="carol's forced withdrawal executes")


@case("forced/no_pending")
def _():
    w = base_world()
    return w.vector(ForcedWithdraw(), expect=E.NO_PENDING_FORCED, description="invalid, nothing consumed")


@case("forced/rejected_account_not_found")
def _():
    w = base_world(); w.queue_forced("carol", 5 * USD, account_id=77)
    return w.vector(ForcedWithdraw(), expect=E.ACCOUNT_NOT_FOUND, applied=True, description="consumed, not executed: the request is consumed")


@case("forced/rejected_owner_mismatch")
def _():
    w = base_world(); w.queue_forced("bob", 5 * USD, account_id=2)
    return w.vector(ForcedWithdraw(), expect=E.OWNER_MISMATCH, applied=True, description="consumed, not executed")


@case("forced/rejected_invalid_amount")
def _():
    w = base_world(); w.queue_forced("carol", MAX_AMOUNT + 1, account_id=2)
    return w.vector(ForcedWithdraw(), expect=E.INVALID_AMOUNT, applied=True, description="consumed, not executed: hostile L1 data")


@case("forced/rejected_insufficient_margin")
def _():
    w = base_world(); w.queue_forced("carol", 2_000_000 * USD, account_id=2)
    return w.vector(ForcedWithdraw(), expect=E.INSUFFICIENT_MARGIN, applied=True, description="consumed, not executed: more than carol has")


# --- OraclePrice ---------------------------------------------------------------------------------------
def _samples(w: World, market: int = ETH, prices=(ETH_PRICE, ETH_PRICE + 10**6, ETH_PRICE - 10**6), times=(100, 110, 120)):
    return tuple(w.sample(i, market, p, GENESIS_TIME + t) for i, (p, t) in enumerate(zip(prices, times)))


@case("oracle/ok_median")
def _():
    w = base_world()
    return w.vector(OraclePrice(ETH, _samples(w)), expect=E.OK, description="three samples: price and time are the lower medians")


@case("oracle/market_not_found")
def _():
    w = base_world()
    return w.vector(OraclePrice(9, _samples(w, market=9)), expect=E.MARKET_NOT_FOUND)


@case("oracle/quorum_not_met")
def _():
    w = base_world()
    return w.vector(OraclePrice(ETH, _samples(w)[:1]), expect=E.QUORUM_NOT_MET)


@case("oracle/invalid_oracle")
def _():
    w = base_world()
    s = _samples(w)
    return w.vector(OraclePrice(ETH, (s[1], s[0])), expect=E.INVALID_ORACLE, description="indices not increasing")


@case("oracle/invalid_price")
def _():
    w = base_world()
    return w.vector(OraclePrice(ETH, _samples(w, prices=(0, ETH_PRICE, ETH_PRICE))), expect=E.INVALID_PRICE, description="zero")


@case("oracle/future_timestamp")
def _():
    w = base_world()
    return w.vector(OraclePrice(ETH, _samples(w, times=(100, 10**6, 120))), expect=E.FUTURE_TIMESTAMP, description="after the batch's L1 time")


@case("oracle/stale_timestamp")
def _():
    w = base_world()
    return w.vector(OraclePrice(ETH, _samples(w, times=(0, 110, 120))), expect=E.STALE_TIMESTAMP, description="not newer than the current price")


@case("oracle/wrong_signer")
def _():
    w = base_world()
    s = _samples(w)
    return w.vector(OraclePrice(ETH, (replace(s[0], oracle_index=2), s[1])), expect=E.WRONG_SIGNER, description="oracle 0's sample claimed as oracle 2's")


@case("oracle/bad_signature")
def _():
    w = base_world()
    s = _samples(w)
    return w.vector(OraclePrice(ETH, (replace(s[0], signature=bytes(32) + s[0].signature[32:]), s[1])), expect=E.BAD_SIGNATURE, description="r = 0")


# --- FundingTick ---------------------------------------------------------------------------------------
# bound: |delta| * 1e12 <= max_rate (1e5) * price * elapsed
@case("funding/ok")
def _():
    w = base_world()
    bound = 100_000 * ETH_PRICE * 100 // 10**12
    return w.vector(FundingTick(GENESIS_TIME + 100, (bound, -1)), expect=E.OK, description="ETH index moves by exactly the bound")


@case("funding/wrong_market_count")
def _():
    w = base_world()
    return w.vector(FundingTick(GENESIS_TIME + 100, (1,)), expect=E.WRONG_MARKET_COUNT)


@case("funding/stale_timestamp")
def _():
    w = base_world()
    return w.vector(FundingTick(GENESIS_TIME, (0, 0)), expect=E.STALE_TIMESTAMP)


@case("funding/future_timestamp")
def _():
    w = base_world()
    return w.vector(FundingTick(GENESIS_TIME + 10**7, (0, 0)), expect=E.FUTURE_TIMESTAMP)


@case("funding/rate_exceeded")
def _():
    w = base_world()
    bound = 100_000 * ETH_PRICE * 100 // 10**12
    return w.vector(FundingTick(GENESIS_TIME + 100, (bound + 1, 0)), expect=E.FUNDING_RATE_EXCEEDED, description="by one unit")


# --- Liquidate -----------------------------------------------------------------------------------------
def _crashed(price: int) -> World:
    w = leveraged_world()
    w.set_price(ETH, price, GENESIS_TIME + 10)
    w.root()
    return w


@case("liquidate/ok")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)  # dave's value 160 USD < maintenance ~408 USD
    return w.vector(Liquidate(w.order("carol", is_buy=True, size=3 * ETH_UNIT, limit_price=2_700 * PRICE_ONE // 1000), 3, ETH_UNIT), expect=E.OK, description="carol takes 1 of dave's 3 ETH; penalty to insurance")


@case("liquidate/not_liquidatable")
def _():
    w = leveraged_world()
    return w.vector(Liquidate(w.order("carol", is_buy=True, size=ETH_UNIT, limit_price=ETH_PRICE), 3, ETH_UNIT), expect=E.NOT_LIQUIDATABLE)


@case("liquidate/not_reducing")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w.vector(Liquidate(w.order("carol", is_buy=False, size=ETH_UNIT, limit_price=2_700 * PRICE_ONE // 1000), 3, ETH_UNIT), expect=E.NOT_REDUCING, description="the liquidator must buy dave's long")


@case("liquidate/price_band")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w.vector(Liquidate(w.order("carol", is_buy=True, size=ETH_UNIT, limit_price=2_000 * PRICE_ONE // 1000), 3, ETH_UNIT), expect=E.LIQUIDATION_PRICE, description="far below the band")


@case("liquidate/self")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w.vector(Liquidate(w.order("dave", is_buy=True, size=ETH_UNIT, limit_price=2_700 * PRICE_ONE // 1000), 3, ETH_UNIT), expect=E.SELF_TRADE)


@case("liquidate/account_not_found")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w.vector(Liquidate(w.order("carol", is_buy=True, size=ETH_UNIT, limit_price=2_700 * PRICE_ONE // 1000), 30, ETH_UNIT), expect=E.ACCOUNT_NOT_FOUND)


def _liquidation(w: World, usd: int, size: int = ETH_UNIT, *, by: str = "carol", victim: int = 3) -> Liquidate:
    """`by` buys `size` of `victim`'s long at `usd` dollars per ETH (an order of exactly that size)."""
    return Liquidate(w.order(by, is_buy=True, size=size, limit_price=usd * PRICE_ONE // 1000), victim, size)


@case("liquidate/into_debt")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)  # 2584 = 0.95 x the oracle: inside the band
    return w.vector(_liquidation(w, 2_584, 3 * ETH_UNIT), expect=E.INSUFFICIENT_MARGIN, description="the band's edge would leave dave at -248 USD with nothing open")


@case("liquidate/ratio_worse")
def _():
    tx = _liquidation(w := _crashed(2_720 * PRICE_ONE // 1000), 2_600)
    return w.vector(tx, expect=E.INSUFFICIENT_MARGIN, description="dave's value/risk ratio would fall from 160/408 to 40/272")


@case("liquidate/penalty_room")
def _():
    tx = _liquidation(w := _crashed(2_720 * PRICE_ONE // 1000), 2_680)
    return w.vector(tx, expect=E.OK, description="the penalty is capped at 13.33 USD, the room that keeps dave's value/risk ratio")


def _insured(price: int) -> World:
    """dave is liquidated at 2720 (81.6 USD penalty to the fund); erin (300 USD) buys 1 ETH from carol
    at 2720; then the oracle gaps to `price`."""
    w = _crashed(2_720 * PRICE_ONE // 1000)
    at = 2_720 * PRICE_ONE // 1000
    w.must(_liquidation(w, 2_720, 3 * ETH_UNIT))
    w.deposit("erin", 300 * USD)
    w.must(w.trade("carol", "erin", ETH_UNIT, limit_price=at))
    w.set_price(ETH, price)
    w.root()
    return w


@case("liquidate/insurance_cover")
def _():
    w = _insured(2_400 * PRICE_ONE // 1000)  # erin at -20 USD
    return w.vector(_liquidation(w, 2_400, by="bob", victim=4), expect=E.OK, description="the insurance fund pays erin's 20 USD debt as bob closes her")


@case("liquidate/bankrupt_discount")
def _():
    w = _insured(2_400 * PRICE_ONE // 1000)  # erin at -20 USD
    return w.vector(_liquidation(w, 2_350, by="bob", victim=4), expect=E.INSUFFICIENT_MARGIN, description="the fund pays erin's debt at the oracle price, never bob's discount")


@case("liquidate/insurance_short")
def _():
    w = _insured(2_000 * PRICE_ONE // 1000)  # erin at -420 USD, the fund holds 81.6
    return w.vector(_liquidation(w, 2_000, by="bob", victim=4), expect=E.INSUFFICIENT_MARGIN, description="the fund cannot cover erin's debt: deleverage instead")


# --- Deleverage ----------------------------------------------------------------------------------------
@case("deleverage/ok")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)  # dave's value -500 USD
    return w.vector(Deleverage(3, 2, ETH, 3 * ETH_UNIT), expect=E.OK, description="dave's whole long closes against carol's short at the bankruptcy price")


@case("deleverage/partial")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w.vector(Deleverage(3, 2, ETH, ETH_UNIT), expect=E.OK, description="a third of dave's long; his deficit shrinks by a third")


@case("deleverage/not_deleverageable")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w.vector(Deleverage(3, 2, ETH, ETH_UNIT), expect=E.NOT_DELEVERAGEABLE, description="value still positive")


@case("deleverage/not_reducing")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w.vector(Deleverage(3, 0, ETH, ETH_UNIT), expect=E.NOT_REDUCING, description="alice is long too")


@case("deleverage/self")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w.vector(Deleverage(3, 3, ETH, ETH_UNIT), expect=E.SELF_TRADE)


@case("deleverage/market_not_found")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w.vector(Deleverage(3, 2, 7, ETH_UNIT), expect=E.MARKET_NOT_FOUND)


@case("deleverage/invalid_amount")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w.vector(Deleverage(3, 2, ETH, 0), expect=E.INVALID_AMOUNT, description="zero")


@case("deleverage/off_step")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w.vector(Deleverage(3, 2, ETH, ETH_UNIT + 1), expect=E.INVALID_AMOUNT, description="not a multiple of the market's step")


@case("deleverage/account_not_found")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w.vector(Deleverage(3, 99, ETH, ETH_UNIT), expect=E.ACCOUNT_NOT_FOUND)


@case("deleverage/insurance_first")
def _():
    w = _insured(2_400 * PRICE_ONE // 1000)  # erin at -20 USD
    return w.vector(Deleverage(4, 2, ETH, ETH_UNIT), expect=E.OK, description="the fund pays erin's 20 USD debt: carol is closed at the oracle price")


@case("deleverage/insurance_partial")
def _():
    w = _insured(2_000 * PRICE_ONE // 1000)  # erin at -420 USD
    return w.vector(Deleverage(4, 2, ETH, ETH_UNIT), expect=E.OK, description="the fund pays 81.6 USD of erin's debt, carol the other 338.4")


def _poor_carol(value_usd: int) -> World:
    """_insured at 2000 (erin at -420 USD, the fund at 81.6) with carol, short 1 ETH, worth `value_usd`."""
    w = _insured(2_000 * PRICE_ONE // 1000)
    w.state.accounts[2].collateral = (2_000 + value_usd) * USD
    w.touch(2)
    w.root()
    return w


@case("deleverage/socialized")
def _():
    tx = Deleverage(4, 2, ETH, ETH_UNIT)
    return _poor_carol(100).vector(tx, expect=E.OK, description="the fund pays 81.6 USD, carol the 100 USD she has (ending at 0), the other 238.4 are socialized")


def _socialized_world() -> World:
    """deleverage/socialized applied: a socialized loss of 238.4 USD over ~1.2M USD of collateral."""
    w = _poor_carol(100)
    w.must(Deleverage(4, 2, ETH, ETH_UNIT))
    w.root()
    assert w.state.socialized_loss == 238_400_000
    return w


@case("deleverage/bankrupt_deleverager")
def _():
    w = _insured(2_000 * PRICE_ONE // 1000)  # erin at -420 USD, the fund at 81.6
    w.state.accounts[2].collateral = 1_000 * USD  # carol, short 1 ETH: value -1,000 USD (crafted)
    w.touch(2)
    w.root()
    tx = Deleverage(4, 2, ETH, ETH_UNIT)
    return w.vector(tx, expect=E.OK, description="carol is bankrupt too: she closes at her own bankruptcy price; the fund, then the socialized loss, pay the gap")


@case("deposit/total_overflow")
def _():
    w = base_world()
    w.state.total_collateral = MAX_BALANCE - 1  # crafted: the state's total at the edge of its range
    w.root()
    w.queue_deposit("bob", 2)
    return w.vector(Deposit(1), expect=E.BALANCE_OVERFLOW, description="rule 4a: the total collateral would exceed MAX_BALANCE")


@case("deleverage/total_overflow")
def _():
    w = _poor_carol(100)
    w.state.total_collateral = MAX_BALANCE - 1  # crafted
    w.root()
    return w.vector(Deleverage(4, 2, ETH, ETH_UNIT), expect=E.BALANCE_OVERFLOW, description="rule 8: the socialized part would take the total collateral out of range")


@case("deposit/after_socialized_loss")
def _():
    w = _socialized_world()
    w.queue_deposit("frank", 1_000 * USD)
    return w.vector(Deposit(w.state.next_account_id), expect=E.OK, description="1,000 USD buy units at their token value: credited 1000 * T / (T - L)")


@case("withdraw/haircut")
def _():
    w = _socialized_world()
    return w.vector(w.withdraw("bob", 1_000 * USD), expect=E.OK, description="bob withdraws 1,000 USD of units and is paid them less ceil(1000 * L / T)")


@case("forced/haircut")
def _():
    w = _socialized_world()
    w.queue_forced("bob", 1_000 * USD, account_id=1)
    return w.vector(ForcedWithdraw(), expect=E.OK, description="a forced withdrawal takes the same haircut")


def _forced_deleverage_word(deleverager: int, market: int, size: int) -> int:
    return FORCED_DELEVERAGE | deleverager << 72 | market << 64 | size


@case("forced/deleverage_ok")
def _():
    w = _insured(2_400 * PRICE_ONE // 1000)  # erin at -20 USD
    w.queue_forced("frank", _forced_deleverage_word(2, ETH, ETH_UNIT), account_id=4)
    return w.vector(ForcedWithdraw(), expect=E.OK, description="anyone forces erin's deleverage against carol: the fund pays erin's 20 USD debt")


@case("forced/deleverage_rejected_invalid_amount")
def _():
    w = _insured(2_400 * PRICE_ONE // 1000)
    w.queue_forced("frank", _forced_deleverage_word(2, ETH, ETH_UNIT) | 1 << 200, account_id=4)
    return w.vector(ForcedWithdraw(), expect=E.INVALID_AMOUNT, applied=True, description="consumed, not executed: a bit set between the fields and the flag")


@case("forced/deleverage_rejected_not_deleverageable")
def _():
    w = _insured(2_720 * PRICE_ONE // 1000)
    w.queue_forced("frank", _forced_deleverage_word(2, ETH, ETH_UNIT), account_id=4)
    return w.vector(ForcedWithdraw(), expect=E.NOT_DELEVERAGEABLE, applied=True, description="consumed, not executed: erin is not bankrupt")


@case("forced/deleverage_rejected_account_not_found")
def _():
    w = _insured(2_400 * PRICE_ONE // 1000)
    w.queue_forced("frank", _forced_deleverage_word(99, ETH, ETH_UNIT), account_id=4)
    return w.vector(ForcedWithdraw(), expect=E.ACCOUNT_NOT_FOUND, applied=True, description="consumed, not executed: no deleverager 99")


@case("forced/deleverage_stale_price")
def _():
    w = _stale(_insured(2_400 * PRICE_ONE // 1000), WINDOW + 1, 0)
    w.queue_forced("frank", _forced_deleverage_word(2, ETH, ETH_UNIT), account_id=4)
    return w.vector(ForcedWithdraw(), expect=E.STALE_PRICE, description="invalid and not consumed: the sequencer must post a fresh price first")


@case("deleverage/last_resort")
def _():
    tx = Deleverage(4, 2, ETH, ETH_UNIT // 2)
    return _poor_carol(150).vector(tx, expect=E.OK, description="the fund spent, carol takes 128.4 USD of erin's debt and ends below maintenance, never below zero")


def _dust_market_world() -> World:
    """ETH and a market priced at 1 unit: alice (in debt, crafted) long 10^9 units of it from bob, whose
    maintenance risk ceil(10^9 x 1 x 5% / 10^8) = 1 does not change when 1,000 units close."""
    dust = replace(ETH_MARKET, name="DUST-USD", step_size=1_000, tick_size=1, price=1)
    w = World(make_genesis(markets=(ETH_MARKET, dust)))
    w.deposit("alice", 100 * USD)
    w.deposit("bob", 100 * USD)
    w.must(w.trade("bob", "alice", 10**9, market=1, limit_price=1))
    w.state.accounts[0].collateral = -100
    w.touch(0)
    w.root()
    return w


@case("deleverage/risk_unchanged")
def _():
    w = _dust_market_world()
    return w.vector(Deleverage(0, 1, 1, 1_000), expect=E.NOT_REDUCING, description="closing one step leaves alice's rounded risk unchanged")


@case("deleverage/risk_unchanged_whole_holder")
def _():
    w = _dust_market_world()
    w.deposit("carol", 100 * USD)
    w.must(w.trade("carol", "bob", 1_000, market=1, limit_price=1))  # bob now holds 10^9 - 1,000 short
    w.root()
    return w.vector(Deleverage(0, 2, 1, 1_000), expect=E.OK, description="carol's whole short is too small to lower alice's rounded risk: she still takes her part")


@case("deleverage/cross_market_share")
def _():
    w = leveraged_world()
    sats = 100_000  # 0.001 BTC (60 USD)
    w.must(w.trade("alice", "dave", sats, market=BTC, limit_price=600 * PRICE_ONE))
    w.set_price(ETH, 2_500 * PRICE_ONE // 1000, GENESIS_TIME + 10)  # dave at -500 USD, nearly all of it from ETH
    w.root()
    return w.vector(Deleverage(3, 0, BTC, sats), expect=E.OK, description="alice takes only the BTC leg's share of dave's ETH-made deficit")


@case("trade/healthier")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)  # dave: value 160, maintenance 408
    tx = w.trade("dave", "bob", ETH_UNIT, limit_price=2_670 * PRICE_ONE // 1000)
    return w.vector(tx, expect=E.OK, description="dave sells 1 ETH below the oracle: still under maintenance, but healthier (110/272 >= 160/408)")


@case("trade/not_healthier")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    tx = w.trade("dave", "bob", ETH_UNIT, limit_price=2_660 * PRICE_ONE // 1000)
    return w.vector(tx, expect=E.INSUFFICIENT_MARGIN, description="dave's value/risk ratio would fall (100/272 < 160/408)")


@case("trade/close_into_debt")
def _():
    w = _crashed(2_600 * PRICE_ONE // 1000)  # dave at -200 USD
    tx = w.trade("dave", "bob", 3 * ETH_UNIT, limit_price=2_600 * PRICE_ONE // 1000)
    return w.vector(tx, expect=E.INSUFFICIENT_MARGIN, description="closing would leave dave at -200 USD with nothing open")


# --- time: expiry against the batch's L1 time, price and funding validity (docs/risk.md) ---------------
def _stale(w: World, price_age: int, funding_age: int) -> World:
    """L1 time moved so that ETH's price is `price_age` and the funding `funding_age` seconds old
    (BTC's price time crafted to the L1 time, so that only ETH can be stale)."""
    now = w.state.markets[ETH].price_time + price_age
    w.l1_timestamp = now
    w.state.markets[BTC].price_time = now
    w.state.funding_time = now - funding_age
    w.root()
    return w


@case("trade/expired_by_l1_time")
def _():
    w = base_world()  # no oracle or funding update since genesis: the system time is the genesis time
    expiry = GENESIS_TIME + 100
    maker = w.order("carol", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE, expiry=expiry)
    return w.vector(_trade(w, maker=maker), expect=E.EXPIRED, description="expiry after the system time but before the batch's L1 time")


@case("trade/stale_price")
def _():
    w = _stale(base_world(), WINDOW + 1, 0)
    return w.vector(_trade(w), expect=E.STALE_PRICE, description="the ETH price is one second past price_validity")


@case("trade/stale_funding")
def _():
    w = _stale(base_world(), WINDOW, WINDOW + 1)
    return w.vector(_trade(w), expect=E.STALE_FUNDING, description="price at the edge of its window; funding one second past")


@case("trade/ok_at_the_validity_edge")
def _():
    w = _stale(base_world(), WINDOW, WINDOW)
    return w.vector(_trade(w), expect=E.OK, description="price and funding exactly as old as their windows allow")


@case("trade/stale_price_of_a_held_market")
def _():
    w = _stale(base_world(), WINDOW + 1, 0)  # ETH stale, BTC fresh
    btc = dict(market=BTC, size=10**6, limit_price=600 * PRICE_ONE)
    trade = Trade(w.order("carol", is_buy=False, **btc), w.order("alice", is_buy=True, **btc), 10**6)
    return w.vector(trade, expect=E.STALE_PRICE, description="a BTC trade reads ETH's stale price: alice holds ETH")


@case("withdraw/expired_by_l1_time")
def _():
    w = base_world()
    return w.vector(w.withdraw("carol", 1_000 * USD, expiry=GENESIS_TIME + 100), expect=E.EXPIRED, description="expiry before the batch's L1 time")


@case("withdraw/nonce_too_high")
def _():
    w = base_world()
    return w.vector(w.withdraw("carol", 1_000 * USD, nonce=MAX_NONCE), expect=E.NONCE_TOO_HIGH, description="a nonce 2**64 - 1 would leave 255 nonces: refused")


@case("withdraw/stale_price")
def _():
    w = _stale(base_world(), WINDOW + 1, 0)
    return w.vector(w.withdraw("alice", 1_000 * USD), expect=E.STALE_PRICE, description="alice holds ETH, whose price is stale")


@case("withdraw/ok_no_position_stale_price")
def _():
    w = _stale(base_world(), WINDOW + 1, WINDOW + 1)
    return w.vector(w.withdraw("carol", 1_000 * USD), expect=E.OK, description="carol holds nothing: no price or funding is read")


@case("withdraw/stale_funding")
def _():
    w = _stale(base_world(), 0, WINDOW + 1)
    return w.vector(w.withdraw("alice", 1_000 * USD), expect=E.STALE_FUNDING)


@case("forced/stale_price")
def _():
    w = _stale(base_world(), WINDOW + 1, 0)
    w.queue_forced("alice", 5 * USD)
    return w.vector(ForcedWithdraw(), expect=E.STALE_PRICE, description="invalid and not consumed: the sequencer must post a fresh price first")


@case("forced/cancel_all_ok")
def _():
    w = base_world(); w.queue_forced("carol", FORCED_CANCEL_ALL | 500, account_id=2)
    return w.vector(ForcedWithdraw(), expect=E.OK, description="a forced cancel-all raises carol's nonce floor to 500")


@case("forced/cancel_all_rejected_nonce_too_low")
def _():
    w = base_world(); w.queue_forced("carol", FORCED_CANCEL_ALL | 0, account_id=2)
    return w.vector(ForcedWithdraw(), expect=E.NONCE_TOO_LOW, applied=True, description="consumed, not executed: the floor does not rise")


@case("forced/cancel_all_rejected_nonce_too_high")
def _():
    w = base_world(); w.queue_forced("carol", FORCED_CANCEL_ALL | (NONCE_HORIZON + 1), account_id=2)
    return w.vector(ForcedWithdraw(), expect=E.NONCE_TOO_HIGH, applied=True, description="consumed, not executed: more than NONCE_HORIZON up")


@case("forced/cancel_all_rejected_owner_mismatch")
def _():
    w = base_world(); w.queue_forced("bob", FORCED_CANCEL_ALL | 5, account_id=2)
    return w.vector(ForcedWithdraw(), expect=E.OWNER_MISMATCH, applied=True)


@case("oracle/sample_too_old")
def _():
    w = base_world()
    w.l1_timestamp = GENESIS_TIME + 110 + WINDOW + 1  # sample 0 (at +100) and 1 (+110) are too old
    return w.vector(OraclePrice(ETH, _samples(w)), expect=E.SAMPLE_TOO_OLD, description="older than max_sample_age before the batch's L1 time")


@case("oracle/sample_reused")
def _():
    w = base_world()
    first = _samples(w)
    w.must(OraclePrice(ETH, first)); w.root()  # price time +110 (median), newest sample +120
    again = (w.sample(0, ETH, ETH_PRICE, GENESIS_TIME + 130), w.sample(1, ETH, ETH_PRICE, GENESIS_TIME + 140), first[2])
    return w.vector(OraclePrice(ETH, again), expect=E.STALE_TIMESTAMP, description="oracle 2's sample of the last update, again")


@case("liquidate/stale_price")
def _():
    w = _stale(_crashed(2_720 * PRICE_ONE // 1000), WINDOW + 1, 0)
    return w.vector(Liquidate(w.order("carol", is_buy=True, size=3 * ETH_UNIT, limit_price=2_700 * PRICE_ONE // 1000), 3, ETH_UNIT), expect=E.STALE_PRICE)


@case("deleverage/stale_funding")
def _():
    w = _stale(_crashed(2_500 * PRICE_ONE // 1000), 0, WINDOW + 1)
    return w.vector(Deleverage(3, 2, ETH, 3 * ETH_UNIT), expect=E.STALE_FUNDING)


# --- CancelAll -----------------------------------------------------------------------------------------
def _cancel_all(w: World, floor: int, name: str = "carol", signer: str | None = None, account_id: int = 2) -> CancelAll:
    return sign_cancel_all(w.key(signer or name), w.domain, account_id, floor)


@case("cancel_all/ok")
def _():
    w = base_world()
    w.must(w.withdraw("carol", 1, nonce=7)); w.root()
    return w.vector(_cancel_all(w, 5), expect=E.OK, description="floor 0 -> 5; nonce 7 stays used (bit 2)")


@case("cancel_all/ok_whole_window")
def _():
    w = base_world()
    return w.vector(_cancel_all(w, NONCE_HORIZON), expect=E.OK, description="the largest raise: NONCE_HORIZON")


@case("cancel_all/account_not_found")
def _():
    w = base_world()
    return w.vector(_cancel_all(w, 5, account_id=42), expect=E.ACCOUNT_NOT_FOUND)


@case("cancel_all/wrong_signer")
def _():
    w = base_world()
    return w.vector(_cancel_all(w, 5, signer="bob"), expect=E.WRONG_SIGNER)


@case("cancel_all/bad_signature")
def _():
    w = base_world()
    good = _cancel_all(w, 5)
    return w.vector(replace(good, signature=bytes(32) + good.signature[32:]), expect=E.BAD_SIGNATURE, description="r = 0")


@case("cancel_all/nonce_too_low")
def _():
    w = base_world()
    return w.vector(_cancel_all(w, 0), expect=E.NONCE_TOO_LOW, description="the floor must rise (a replay is refused)")


@case("cancel_all/nonce_too_high")
def _():
    w = base_world()
    return w.vector(_cancel_all(w, NONCE_HORIZON + 1), expect=E.NONCE_TOO_HIGH)


# --- CollectFees ---------------------------------------------------------------------------------------
def _fees_world() -> World:
    w = base_world()
    w.deposit("fees", 10 * USD)  # test_key("fees") is the genesis fee owner; account 3
    w.state.fees = 1_234_567  # crafted: what earlier trades charged
    w.root()
    return w


@case("collect_fees/ok")
def _():
    w = _fees_world()
    return w.vector(CollectFees(3), expect=E.OK, description="the fee balance moves into the fee owner's account")


@case("collect_fees/account_not_found")
def _():
    w = _fees_world()
    return w.vector(CollectFees(9), expect=E.ACCOUNT_NOT_FOUND)


@case("collect_fees/owner_mismatch")
def _():
    w = _fees_world()
    return w.vector(CollectFees(2), expect=E.OWNER_MISMATCH, description="carol is not the fee owner")


@case("collect_fees/nothing_to_collect")
def _():
    w = _fees_world()
    w.state.fees = 0; w.root()
    return w.vector(CollectFees(3), expect=E.INVALID_AMOUNT)


@case("collect_fees/balance_overflow")
def _():
    w = _fees_world()
    w.state.fees = MAX_BALANCE; w.root()
    return w.vector(CollectFees(3), expect=E.BALANCE_OVERFLOW)


# --- Malformed -----------------------------------------------------------------------------------------
@case("malformed/garbage")
def _():
    w = base_world()
    return w.vector(Malformed(b"\x0f\xde\xad"), expect=E.MALFORMED, description="unknown type nibble")


@case("malformed/truncated_trade")
def _():
    w = base_world()
    return w.vector(Malformed(b"\x32\x05"), expect=E.MALFORMED, description="a trade record cut short")


def build_vector(name: str, fn: Case) -> dict[str, Any]:
    try:
        return {"name": name, **fn()}
    except AssertionError as error:
        raise AssertionError(f"vector {name}: {error}") from error


def render(vector: dict[str, Any]) -> str:
    return json.dumps(vector, indent=1, sort_keys=False) + "\n"


def generate() -> dict[Path, str]:
    return {VECTORS_DIR / f"{name}.json": render(build_vector(name, fn)) for name, fn in CASES.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description="write or check tests/vectors")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files on disk differ")
    args = parser.parse_args()
    files = generate()
    on_disk = {p for p in VECTORS_DIR.rglob("*.json")}
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text] + sorted(on_disk - set(files))
    if args.check:
        for p in stale:
            print(f"stale: {p.relative_to(VECTORS_DIR)}", file=sys.stderr)
        return 1 if stale else 0
    for p in on_disk - set(files):
        p.unlink()
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    codes = {json.loads(t)["expected"]["code_name"] for t in files.values()}
    print(f"wrote {len(files)} vectors to {VECTORS_DIR}; codes covered: {len(codes)}/{len(ErrorCode)}")
    missing = {c.name for c in ErrorCode} - codes
    if missing:
        print(f"codes not covered: {sorted(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
