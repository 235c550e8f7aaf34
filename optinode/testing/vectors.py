"""Shared one-step test vectors: `python -m optinode.testing.vectors [--check]`.

Writes tests/vectors/<type>/<case>.json, each one transaction against a pre-state given as a
witness: pre-state root, the transaction (JSON and its batch record), the L1 inputs it may read,
the witness, and the expected post-state root, error code and whether it applied. The Python spec
(`spec.witness.execute_witness`) and the Solidity one-step prover are both tested against exactly
these files. Cases cover every transaction type and every error code.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

from optinode.spec.codec import decode_transaction, encode_transaction
from optinode.spec.constants import MAX_AMOUNT, MAX_BALANCE, MAX_SLOT_ID, PRICE_ONE
from optinode.spec.errors import ErrorCode
from optinode.spec.serde import to_plain
from optinode.spec.state import Account
from optinode.spec.types import (
    Deleverage,
    Deposit,
    ForcedWithdraw,
    FundingTick,
    L1Context,
    Liquidate,
    Malformed,
    OraclePrice,
    SlotRef,
    Trade,
    Transaction,
)
from optinode.spec.witness import build_witness, execute_witness
from optinode.testing.scenario import BTC, ETH, ETH_PRICE, GENESIS_TIME, Scenario

VECTORS_DIR = Path(__file__).resolve().parents[2] / "tests" / "vectors"
USD = 10**6
ETH_UNIT = 10**9  # base units per ETH


def base_world() -> Scenario:
    """alice, bob, carol funded; alice long 1 ETH from bob; a resting partial order of alice's in slot 0."""
    w = Scenario()
    w.open_account("alice", 100_000 * USD)
    w.open_account("bob", 100_000 * USD)
    w.open_account("carol", 1_000_000 * USD)
    maker = w.order("alice", is_buy=True, size=3 * ETH_UNIT, price=ETH_PRICE)
    w.must(Trade(maker, w.order("bob", is_buy=False, size=ETH_UNIT, price=ETH_PRICE), ETH_UNIT))
    w.root()
    return w


def leveraged_world() -> Scenario:
    """dave: 1,000 USD, long 3 ETH at 3000 (9,000 USD notional, initial margin 900) against carol."""
    w = base_world()
    w.open_account("dave", 1_000 * USD)
    w.must(
        Trade(
            w.order("carol", is_buy=False, size=3 * ETH_UNIT, price=ETH_PRICE),
            w.order("dave", is_buy=True, size=3 * ETH_UNIT, price=ETH_PRICE),
            3 * ETH_UNIT,
        )
    )
    w.root()
    return w


def set_price(w: Scenario, market: int, price: int) -> None:
    w.oracle_time = getattr(w, "oracle_time", GENESIS_TIME) + 10
    t = w.oracle_time
    w.must(OraclePrice(market, (w.price(0, market, price, t), w.price(1, market, price, t))))
    w.root()


Case = Callable[[], tuple[Scenario, Transaction, str]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[name] = fn
        return fn

    return register


# --- Deposit -------------------------------------------------------------------------------------------
@case("deposit/ok_new_account")
def _():
    w = base_world(); w.queue_deposit("erin", 5_000 * USD)
    return w, Deposit(w.state.next_account_id), "a deposit creates the next account id"


@case("deposit/ok_existing")
def _():
    w = base_world(); w.queue_deposit("bob", 7 * USD)
    return w, Deposit(1), "a deposit credits an existing account of the same owner"


@case("deposit/no_pending")
def _():
    w = base_world()
    return w, Deposit(1), "NO_PENDING_DEPOSIT: the queue is empty"


@case("deposit/account_not_found")
def _():
    w = base_world(); w.queue_deposit("bob", 7 * USD)
    return w, Deposit(w.state.next_account_id + 1), "ACCOUNT_NOT_FOUND: neither an account nor the next id"


@case("deposit/owner_mismatch")
def _():
    w = base_world(); w.queue_deposit("bob", 7 * USD)
    return w, Deposit(0), "OWNER_MISMATCH: account 0 belongs to alice"


@case("deposit/invalid_amount")
def _():
    w = base_world(); w.queue_deposit("bob", MAX_AMOUNT + 1)
    return w, Deposit(1), "INVALID_AMOUNT: hostile L1 data above the u64 amount range"


@case("deposit/balance_overflow")
def _():
    w = base_world()
    w.state.accounts[1].collateral = MAX_BALANCE - 1
    w.state.dirty_accounts.add(1); w.root()
    w.queue_deposit("bob", 2)
    return w, Deposit(1), "BALANCE_OVERFLOW: collateral would exceed MAX_BALANCE"


# --- Trade ---------------------------------------------------------------------------------------------
def _trade(w: Scenario, maker: Any = None, taker: Any = None, size: int = ETH_UNIT // 2) -> Trade:
    maker = maker or w.order("carol", is_buy=False, size=ETH_UNIT, price=ETH_PRICE)
    taker = taker or w.order("bob", is_buy=True, size=ETH_UNIT // 2, price=ETH_PRICE + 100 * TICK_PRICE, fee_rate=500)
    return Trade(maker, taker, size)


TICK_PRICE = 10**4


@case("trade/ok_new_orders_partial")
def _():
    w = base_world()
    return w, _trade(w), "a new maker order partially filled (opens a slot) by a new taker fully filled"


@case("trade/ok_slot_maker")
def _():
    w = base_world()
    return w, Trade(SlotRef(0), w.order("carol", is_buy=False, size=ETH_UNIT, price=ETH_PRICE, fee_rate=300), ETH_UNIT), "a fill continuing alice's resting order in slot 0"


@case("trade/ok_funding_settlement")
def _():
    w = base_world()
    w.must(FundingTick(GENESIS_TIME + 100, (3_000, 0)))
    w.root()
    return w, Trade(SlotRef(0), w.order("bob", is_buy=False, size=ETH_UNIT, price=ETH_PRICE), ETH_UNIT), "both parties settle funding before the fill"


@case("trade/ok_reduce_close")
def _():
    w = base_world()
    return w, Trade(w.order("carol", is_buy=True, size=ETH_UNIT, price=ETH_PRICE), w.order("bob", is_buy=False, size=ETH_UNIT, price=ETH_PRICE), ETH_UNIT), "bob closes his short (position removed)"


@case("trade/invalid_order")
def _():
    w = base_world()
    return w, _trade(w, maker=w.order("carol", is_buy=False, size=ETH_UNIT + 1, price=ETH_PRICE)), "INVALID_ORDER: size off the step"


@case("trade/market_not_found")
def _():
    w = base_world()
    return w, _trade(w, maker=w.order("carol", market=5, is_buy=False, size=ETH_UNIT, price=ETH_PRICE)), "MARKET_NOT_FOUND"


@case("trade/account_not_found")
def _():
    w = base_world()
    return w, _trade(w, maker=w.order("carol", account_id=9, is_buy=False, size=ETH_UNIT, price=ETH_PRICE)), "ACCOUNT_NOT_FOUND"


@case("trade/bad_signature")
def _():
    w = base_world()
    good = w.order("carol", is_buy=False, size=ETH_UNIT, price=ETH_PRICE)
    high_s = good.signature[:32] + (2**256 - 1 - 2**255).to_bytes(32, "big") + good.signature[64:]
    from msgspec.structs import replace
    return w, _trade(w, maker=replace(good, signature=high_s)), "BAD_SIGNATURE: s above n/2"


@case("trade/wrong_signer")
def _():
    w = base_world()
    forged = w.order("bob", account_id=2, is_buy=False, size=ETH_UNIT, price=ETH_PRICE)
    return w, _trade(w, maker=forged), "WRONG_SIGNER: bob signs an order for carol's account"


@case("trade/expired")
def _():
    w = base_world()
    return w, _trade(w, maker=w.order("carol", is_buy=False, size=ETH_UNIT, price=ETH_PRICE, expiry=GENESIS_TIME - 1)), "EXPIRED"


@case("trade/nonce_too_low")
def _():
    w = base_world()
    w.must(_trade(w, taker=w.order("bob", is_buy=True, size=ETH_UNIT // 2, price=ETH_PRICE, nonce=1000)))
    w.root()
    return w, _trade(w, taker=w.order("bob", is_buy=True, size=ETH_UNIT // 2, price=ETH_PRICE, nonce=3)), "NONCE_TOO_LOW: nonce 1000 slid the window past 3"


@case("trade/nonce_used")
def _():
    w = base_world()
    return w, _trade(w, taker=w.order("bob", is_buy=True, size=ETH_UNIT // 2, price=ETH_PRICE, nonce=1)), "NONCE_USED: bob's nonce 1 filled before"


@case("trade/slot_not_found")
def _():
    w = base_world()
    return w, _trade(w, maker=SlotRef(7)), "SLOT_NOT_FOUND"


@case("trade/order_filled")
def _():
    w = base_world()
    w.must(Trade(SlotRef(0), w.order("carol", is_buy=False, size=2 * ETH_UNIT, price=ETH_PRICE), 2 * ETH_UNIT)); w.root()
    return w, Trade(SlotRef(0), w.order("bob", is_buy=False, size=ETH_UNIT, price=ETH_PRICE), ETH_UNIT), "ORDER_FILLED: slot 0 has nothing left"


@case("trade/self_trade")
def _():
    w = base_world()
    return w, _trade(w, taker=w.order("carol", is_buy=True, size=ETH_UNIT // 2, price=ETH_PRICE)), "SELF_TRADE"


@case("trade/market_mismatch")
def _():
    w = base_world()
    return w, _trade(w, taker=w.order("bob", market=BTC, is_buy=True, size=ETH_UNIT // 2, price=ETH_PRICE)), "MARKET_MISMATCH"


@case("trade/same_side")
def _():
    w = base_world()
    return w, _trade(w, taker=w.order("bob", is_buy=False, size=ETH_UNIT // 2, price=ETH_PRICE)), "SAME_SIDE"


@case("trade/invalid_amount")
def _():
    w = base_world()
    return w, _trade(w, size=2 * ETH_UNIT), "INVALID_AMOUNT: fill larger than the taker's order"


@case("trade/price_limit")
def _():
    w = base_world()
    return w, _trade(w, taker=w.order("bob", is_buy=True, size=ETH_UNIT // 2, price=ETH_PRICE - TICK_PRICE)), "PRICE_LIMIT: the maker asks more than the taker bids"


@case("trade/position_limit")
def _():
    w = base_world()
    big = 10**15 + 10**6
    return w, Trade(w.order("carol", is_buy=False, size=big, price=ETH_PRICE), w.order("bob", is_buy=True, size=big, price=ETH_PRICE), big), "POSITION_LIMIT"


@case("trade/insufficient_margin")
def _():
    w = base_world()
    size = 400 * ETH_UNIT  # 1.2M USD notional on 100k collateral, 10% initial margin
    return w, Trade(w.order("carol", is_buy=False, size=size, price=ETH_PRICE), w.order("bob", is_buy=True, size=size, price=ETH_PRICE), size), "INSUFFICIENT_MARGIN"


@case("trade/balance_overflow")
def _():
    w = base_world()
    w.state.accounts[2].collateral = MAX_BALANCE - 1
    w.state.dirty_accounts.add(2); w.root()
    return w, _trade(w), "BALANCE_OVERFLOW: the seller's collateral would exceed MAX_BALANCE"


@case("trade/funding_pool_overflow")
def _():
    w = base_world()
    w.state.markets[ETH].funding_index = 1_000  # alice (long 1 ETH) pays 10,000 on settlement
    w.state.funding_pool = MAX_BALANCE - 5
    w.root()
    return w, Trade(SlotRef(0), w.order("carol", is_buy=False, size=ETH_UNIT, price=ETH_PRICE), ETH_UNIT), "BALANCE_OVERFLOW: the funding pool would leave its range"


@case("trade/tree_full")
def _():
    w = base_world()
    w.state.next_slot = MAX_SLOT_ID + 1  # every slot id is taken
    w.root()
    return w, _trade(w), "TREE_FULL: the maker's remainder would need a slot id past the tree"


# --- Withdraw ------------------------------------------------------------------------------------------
@case("withdraw/ok")
def _():
    w = base_world()
    return w, w.withdraw("carol", 1_000 * USD), "carol withdraws 1,000 USD"


@case("withdraw/account_not_found")
def _():
    w = base_world()
    return w, w.withdraw("carol", 1_000 * USD, account_id=42), "ACCOUNT_NOT_FOUND"


@case("withdraw/wrong_signer")
def _():
    w = base_world()
    return w, w.withdraw("bob", 1_000 * USD, account_id=2), "WRONG_SIGNER"


@case("withdraw/expired")
def _():
    w = base_world()
    return w, w.withdraw("carol", 1_000 * USD, expiry=GENESIS_TIME - 1), "EXPIRED"


@case("withdraw/invalid_amount")
def _():
    w = base_world()
    return w, w.withdraw("carol", 0), "INVALID_AMOUNT: zero"


@case("withdraw/insufficient_margin")
def _():
    w = base_world()
    return w, w.withdraw("alice", 99_900 * USD), "INSUFFICIENT_MARGIN: alice's long needs 300 USD initial margin"


@case("withdraw/settled_collateral_overflow")
def _():
    w = base_world()
    w.state.markets[ETH].funding_index = 1_000  # bob (short 1 ETH) receives 10,000 on settlement
    w.state.accounts[1].collateral = MAX_BALANCE - 10
    w.state.dirty_accounts.add(1)
    w.root()
    return w, w.withdraw("bob", 1), "BALANCE_OVERFLOW: funding received pushes the settled collateral out of range"


# --- ForcedWithdraw ------------------------------------------------------------------------------------
@case("forced/ok")
def _():
    w = base_world(); w.queue_forced("carol", 2, 5_000 * USD)
    return w, ForcedWithdraw(), "carol's forced withdrawal executes"


@case("forced/no_pending")
def _():
    w = base_world()
    return w, ForcedWithdraw(), "NO_PENDING_FORCED: invalid, nothing consumed"


@case("forced/rejected_account_not_found")
def _():
    w = base_world(); w.queue_forced("carol", 77, 5 * USD)
    return w, ForcedWithdraw(), "rejected ACCOUNT_NOT_FOUND: the request is consumed"


@case("forced/rejected_owner_mismatch")
def _():
    w = base_world(); w.queue_forced("bob", 2, 5 * USD)
    return w, ForcedWithdraw(), "rejected OWNER_MISMATCH"


@case("forced/rejected_invalid_amount")
def _():
    w = base_world(); w.queue_forced("carol", 2, MAX_AMOUNT + 1)
    return w, ForcedWithdraw(), "rejected INVALID_AMOUNT: hostile L1 data"


@case("forced/rejected_insufficient_margin")
def _():
    w = base_world(); w.queue_forced("carol", 2, 2_000_000 * USD)
    return w, ForcedWithdraw(), "rejected INSUFFICIENT_MARGIN: more than carol has"


# --- OraclePrice ---------------------------------------------------------------------------------------
def _samples(w: Scenario, market: int = ETH, prices=(ETH_PRICE, ETH_PRICE + 10**6, ETH_PRICE - 10**6), times=(100, 110, 120)):
    return tuple(w.price(i, market, p, GENESIS_TIME + t) for i, (p, t) in enumerate(zip(prices, times)))


@case("oracle/ok_median")
def _():
    w = base_world()
    return w, OraclePrice(ETH, _samples(w)), "three samples: price and time are the lower medians"


@case("oracle/market_not_found")
def _():
    w = base_world()
    return w, OraclePrice(9, _samples(w, market=9)), "MARKET_NOT_FOUND"


@case("oracle/quorum_not_met")
def _():
    w = base_world()
    return w, OraclePrice(ETH, _samples(w)[:1]), "QUORUM_NOT_MET"


@case("oracle/invalid_oracle")
def _():
    w = base_world()
    s = _samples(w)
    return w, OraclePrice(ETH, (s[1], s[0])), "INVALID_ORACLE: indices not increasing"


@case("oracle/invalid_price")
def _():
    w = base_world()
    return w, OraclePrice(ETH, _samples(w, prices=(0, ETH_PRICE, ETH_PRICE))), "INVALID_PRICE: zero"


@case("oracle/future_timestamp")
def _():
    w = base_world()
    return w, OraclePrice(ETH, _samples(w, times=(100, 10**6, 120))), "FUTURE_TIMESTAMP: after the batch's L1 time"


@case("oracle/stale_timestamp")
def _():
    w = base_world()
    return w, OraclePrice(ETH, _samples(w, times=(0, 110, 120))), "STALE_TIMESTAMP: not newer than the current price"


@case("oracle/wrong_signer")
def _():
    w = base_world()
    s = _samples(w)
    from msgspec.structs import replace
    return w, OraclePrice(ETH, (replace(s[0], oracle_index=2), s[1])), "WRONG_SIGNER: oracle 0's sample claimed as oracle 2's"


@case("oracle/bad_signature")
def _():
    w = base_world()
    s = _samples(w)
    from msgspec.structs import replace
    return w, OraclePrice(ETH, (replace(s[0], signature=bytes(32) + s[0].signature[32:]), s[1])), "BAD_SIGNATURE: r = 0"


# --- FundingTick ---------------------------------------------------------------------------------------
# bound: |delta| * 1e12 <= max_rate (1e5) * price * elapsed
@case("funding/ok")
def _():
    w = base_world()
    bound = 100_000 * ETH_PRICE * 100 // 10**12
    return w, FundingTick(GENESIS_TIME + 100, (bound, -1)), "ETH index moves by exactly the bound"


@case("funding/wrong_market_count")
def _():
    w = base_world()
    return w, FundingTick(GENESIS_TIME + 100, (1,)), "WRONG_MARKET_COUNT"


@case("funding/stale_timestamp")
def _():
    w = base_world()
    return w, FundingTick(GENESIS_TIME, (0, 0)), "STALE_TIMESTAMP"


@case("funding/future_timestamp")
def _():
    w = base_world()
    return w, FundingTick(GENESIS_TIME + 10**7, (0, 0)), "FUTURE_TIMESTAMP"


@case("funding/rate_exceeded")
def _():
    w = base_world()
    bound = 100_000 * ETH_PRICE * 100 // 10**12
    return w, FundingTick(GENESIS_TIME + 100, (bound + 1, 0)), "FUNDING_RATE_EXCEEDED by one unit"


# --- Liquidate -----------------------------------------------------------------------------------------
def _crashed(price: int) -> Scenario:
    w = leveraged_world()
    set_price(w, ETH, price)
    return w


@case("liquidate/ok")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)  # dave's value 160 USD < maintenance ~408 USD
    return w, Liquidate(w.order("carol", is_buy=True, size=3 * ETH_UNIT, price=2_700 * PRICE_ONE // 1000), 3, ETH_UNIT), "carol takes 1 of dave's 3 ETH; penalty to insurance"


@case("liquidate/not_liquidatable")
def _():
    w = leveraged_world()
    return w, Liquidate(w.order("carol", is_buy=True, size=ETH_UNIT, price=ETH_PRICE), 3, ETH_UNIT), "NOT_LIQUIDATABLE"


@case("liquidate/not_reducing")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w, Liquidate(w.order("carol", is_buy=False, size=ETH_UNIT, price=2_700 * PRICE_ONE // 1000), 3, ETH_UNIT), "NOT_REDUCING: the liquidator must buy dave's long"


@case("liquidate/price_band")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w, Liquidate(w.order("carol", is_buy=True, size=ETH_UNIT, price=2_000 * PRICE_ONE // 1000), 3, ETH_UNIT), "LIQUIDATION_PRICE: far below the band"


@case("liquidate/self")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w, Liquidate(w.order("dave", is_buy=True, size=ETH_UNIT, price=2_700 * PRICE_ONE // 1000), 3, ETH_UNIT), "SELF_TRADE"


@case("liquidate/account_not_found")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w, Liquidate(w.order("carol", is_buy=True, size=ETH_UNIT, price=2_700 * PRICE_ONE // 1000), 30, ETH_UNIT), "ACCOUNT_NOT_FOUND"


@case("liquidate/into_debt")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    edge = 2_584 * PRICE_ONE // 1000  # 0.95 x the oracle: inside the band
    return w, Liquidate(w.order("carol", is_buy=True, size=3 * ETH_UNIT, price=edge), 3, 3 * ETH_UNIT), "INSUFFICIENT_MARGIN: the band's edge would leave dave at -248 USD with nothing open"


@case("liquidate/ratio_worse")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w, Liquidate(w.order("carol", is_buy=True, size=ETH_UNIT, price=2_600 * PRICE_ONE // 1000), 3, ETH_UNIT), "INSUFFICIENT_MARGIN: dave's value/risk ratio would fall from 160/408 to 40/272"


@case("liquidate/penalty_room")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w, Liquidate(w.order("carol", is_buy=True, size=ETH_UNIT, price=2_680 * PRICE_ONE // 1000), 3, ETH_UNIT), "the penalty is capped at 13.33 USD, the room that keeps dave's value/risk ratio"


def _insured(price: int) -> Scenario:
    """dave is liquidated at 2720 (81.6 USD penalty to the fund); erin (300 USD) buys 1 ETH from carol
    at 2720; then the oracle gaps to `price`."""
    w = _crashed(2_720 * PRICE_ONE // 1000)
    at = 2_720 * PRICE_ONE // 1000
    w.must(Liquidate(w.order("carol", is_buy=True, size=3 * ETH_UNIT, price=at), 3, 3 * ETH_UNIT))
    w.open_account("erin", 300 * USD)
    w.must(Trade(w.order("carol", is_buy=False, size=ETH_UNIT, price=at), w.order("erin", is_buy=True, size=ETH_UNIT, price=at), ETH_UNIT))
    w.root()
    set_price(w, ETH, price)
    return w


@case("liquidate/insurance_cover")
def _():
    w = _insured(2_400 * PRICE_ONE // 1000)  # erin at -20 USD
    return w, Liquidate(w.order("bob", is_buy=True, size=ETH_UNIT, price=2_400 * PRICE_ONE // 1000), 4, ETH_UNIT), "the insurance fund pays erin's 20 USD debt as bob closes her"


@case("liquidate/insurance_short")
def _():
    w = _insured(2_000 * PRICE_ONE // 1000)  # erin at -420 USD, the fund holds 81.6
    return w, Liquidate(w.order("bob", is_buy=True, size=ETH_UNIT, price=2_000 * PRICE_ONE // 1000), 4, ETH_UNIT), "INSUFFICIENT_MARGIN: the fund cannot cover erin's debt: deleverage instead"


# --- Deleverage ----------------------------------------------------------------------------------------
@case("deleverage/ok")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)  # dave's value -500 USD
    return w, Deleverage(3, 2, ETH, 3 * ETH_UNIT), "dave's whole long closes against carol's short at the bankruptcy price"


@case("deleverage/partial")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w, Deleverage(3, 2, ETH, ETH_UNIT), "a third of dave's long; his deficit shrinks by a third"


@case("deleverage/not_deleverageable")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    return w, Deleverage(3, 2, ETH, ETH_UNIT), "NOT_DELEVERAGEABLE: value still positive"


@case("deleverage/not_reducing")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w, Deleverage(3, 0, ETH, ETH_UNIT), "NOT_REDUCING: alice is long too"


@case("deleverage/self")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w, Deleverage(3, 3, ETH, ETH_UNIT), "SELF_TRADE"


@case("deleverage/market_not_found")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w, Deleverage(3, 2, 7, ETH_UNIT), "MARKET_NOT_FOUND"


@case("deleverage/invalid_amount")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w, Deleverage(3, 2, ETH, 0), "INVALID_AMOUNT: zero"


@case("deleverage/off_step")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w, Deleverage(3, 2, ETH, ETH_UNIT + 1), "INVALID_AMOUNT: not a multiple of the market's step"


@case("deleverage/account_not_found")
def _():
    w = _crashed(2_500 * PRICE_ONE // 1000)
    return w, Deleverage(3, 99, ETH, ETH_UNIT), "ACCOUNT_NOT_FOUND"


@case("deleverage/insurance_first")
def _():
    w = _insured(2_400 * PRICE_ONE // 1000)  # erin at -20 USD
    return w, Deleverage(4, 2, ETH, ETH_UNIT), "the fund pays erin's 20 USD debt: carol is closed at the oracle price"


@case("deleverage/insurance_partial")
def _():
    w = _insured(2_000 * PRICE_ONE // 1000)  # erin at -420 USD
    return w, Deleverage(4, 2, ETH, ETH_UNIT), "the fund pays 81.6 USD of erin's debt, carol the other 338.4"


@case("deleverage/deleverager_margin")
def _():
    w = _insured(2_000 * PRICE_ONE // 1000)
    w.state.accounts[2].collateral = 2_100 * USD  # carol: value 100 USD, short 1 ETH
    w.state.dirty_accounts.add(2); w.root()
    return w, Deleverage(4, 2, ETH, ETH_UNIT), "INSUFFICIENT_MARGIN: carol cannot take 338.4 USD with 100 USD of value"


@case("deleverage/cross_market_share")
def _():
    w = leveraged_world()
    milli = 10**7  # 0.001 BTC
    w.must(Trade(w.order("alice", market=BTC, is_buy=False, size=milli, price=6 * PRICE_ONE), w.order("dave", market=BTC, is_buy=True, size=milli, price=6 * PRICE_ONE), milli))
    w.root()
    set_price(w, ETH, 2_500 * PRICE_ONE // 1000)  # dave at -500 USD, nearly all of it from ETH
    return w, Deleverage(3, 0, BTC, milli), "alice takes only the BTC leg's share (0.8%) of dave's ETH-made deficit"


@case("trade/healthier")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)  # dave: value 160, maintenance 408
    p = 2_670 * PRICE_ONE // 1000
    return w, Trade(w.order("bob", is_buy=True, size=ETH_UNIT, price=p), w.order("dave", is_buy=False, size=ETH_UNIT, price=p), ETH_UNIT), "dave sells 1 ETH below the oracle: still under maintenance, but healthier (110/272 >= 160/408)"


@case("trade/not_healthier")
def _():
    w = _crashed(2_720 * PRICE_ONE // 1000)
    p = 2_660 * PRICE_ONE // 1000
    return w, Trade(w.order("bob", is_buy=True, size=ETH_UNIT, price=p), w.order("dave", is_buy=False, size=ETH_UNIT, price=p), ETH_UNIT), "INSUFFICIENT_MARGIN: dave's value/risk ratio would fall (100/272 < 160/408)"


@case("trade/close_into_debt")
def _():
    w = _crashed(2_600 * PRICE_ONE // 1000)  # dave at -200 USD
    p = 2_600 * PRICE_ONE // 1000
    return w, Trade(w.order("bob", is_buy=True, size=3 * ETH_UNIT, price=p), w.order("dave", is_buy=False, size=3 * ETH_UNIT, price=p), 3 * ETH_UNIT), "INSUFFICIENT_MARGIN: closing would leave dave at -200 USD with nothing open"


# --- Malformed -----------------------------------------------------------------------------------------
@case("malformed/garbage")
def _():
    w = base_world()
    return w, Malformed(b"\x0f\xde\xad"), "MALFORMED: unknown type nibble"


@case("malformed/truncated_trade")
def _():
    w = base_world()
    return w, Malformed(b"\x32\x05"), "MALFORMED: a trade record cut short"


def pending_l1(w: Scenario) -> L1Context:
    """The L1 inputs one transaction can read: the entries at the queues' next indices."""
    ctx = w.ctx
    d, f = w.state.deposits_done, w.state.forced_done
    return L1Context(
        l1_timestamp=ctx.l1_timestamp,
        deposits={d: ctx.deposits[d]} if d in ctx.deposits else {},
        forced={f: ctx.forced[f]} if f in ctx.forced else {},
    )


def build_vector(name: str, fn: Case) -> dict[str, Any]:
    w, tx, description = fn()
    pre_root = w.root()
    record = encode_transaction(tx)
    decoded = decode_transaction(record)
    assert decoded == tx, f"{name}: the record does not round-trip"
    ctx = pending_l1(w)
    witness = build_witness(w.state, w.commitment, tx, ctx)
    receipt = w.apply(tx)
    post_root = w.root()
    witness_root, witness_receipt = execute_witness(pre_root, witness, tx, ctx)
    assert (witness_root, witness_receipt) == (post_root, receipt), f"{name}: witness execution disagrees"
    # A description opening with a code name (or "rejected CODE") states the intended outcome.
    intended = re.match(r"(?:rejected )?([A-Z_]{4,})\b", description)
    expected_code = intended.group(1) if intended else "OK"
    assert receipt.code.name == expected_code, f"{name}: got {receipt.code.name}, meant {expected_code}"
    return {
        "name": name,
        "description": description,
        "pre_root": "0x" + pre_root.hex(),
        "tx": to_plain(tx),
        "record": "0x" + record.hex(),
        "l1": to_plain(ctx),
        "witness": to_plain(witness),
        "expected": {
            "post_root": "0x" + post_root.hex(),
            "code": int(receipt.code),
            "code_name": receipt.code.name,
            "applied": receipt.applied,
        },
    }


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
