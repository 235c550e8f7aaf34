"""Hypothesis strategies: small exchange worlds and random transaction sequences.

`scenarios()` draws a `Scenario` (the driver's `Recording`): the test driver's genesis
(`optinode.testing.world`: ETH-USD and BTC-USD, 3 oracles with quorum 2; here with 100x its funding
rates, `STRATEGY_GENESIS`), one L1Context
(the deposit and forced-withdrawal queues of the whole run) and a sequence of transactions of every
type, a mix of valid and invalid ones. It starts by funding 3-6 traders through the deposit queue,
then draws each transaction against a *shadow* `World` that it advances with the spec itself, so that
it can aim at the interesting paths: fills sized near the margin limit, SlotRef continuations of live
slots, liquidations of accounts a price shock pushed under maintenance, deleverages of accounts with
negative value, withdrawals near the free margin... Each transaction is then, with some probability,
broken in one specific way (wrong signer, stale timestamp, bogus slot, ...). The `notes` of a
scenario name the intent of each transaction (useful in failure reports and coverage statistics).

The shadow run only steers generation: tests replay `scenario.txs` on a fresh genesis state. The
queue entries a transaction reads are fixed before it is drawn, so the replay sees the same inputs.

Everything is deterministic given the hypothesis choices (keys are the driver's `test_key`s, each
account's nonces count from 0 as the driver's do), and a
scenario serializes with `optinode.spec.serde` (`Scenario.to_json`), so the same strategy can drive
differential tests against the Solidity one-step prover.
"""

from __future__ import annotations

import random
from typing import Any, Callable

import msgspec
from hypothesis import strategies as st

from optinode.spec.constants import (
    FRACTION_ONE, FUNDING_RATE_ONE, MAX_ACCOUNT_ID, MAX_AMOUNT, MAX_FUNDING_INDEX, MAX_SLOT_ID, MAX_U8,
    FORCED_CANCEL_ALL, NONCE_HORIZON, NONCE_WINDOW, PRICE_ONE, SECP256K1_N,
)
from optinode.spec.margin import compute_settled_funding, get_total_risk, get_total_value, is_liquidatable
from optinode.spec.types import (
    CancelAll, CollectFees, Deleverage, Deposit, DepositEntry, ForcedEntry, ForcedWithdraw, FundingTick, L1Context, Liquidate, Malformed,
    OraclePrice, Order, OrderOrRef, PriceSample, SlotRef, Trade, Transaction, Withdraw,
)
from optinode.testing.world import (
    BTC, ETH, GENESIS, GENESIS_TIME, Recording, World, consumed_deposits, describe, make_genesis, test_key,
)
from optinode.wallet import Key, sign_cancel_all, sign_order, sign_withdraw

__all__ = ["TX_TYPES", "Scenario", "consumed_deposits", "describe", "scenarios", "seeded_scenario"]

# --- the world -------------------------------------------------------------------------------------

L1_TIMESTAMP = GENESIS_TIME + 1_000_000  # the batch's L1 time: oracle/funding timestamps stay below it
N_ORACLES = len(GENESIS.oracles)
MAX_TRADERS = 6
MAX_ACCOUNTS = 8  # traders may open a second account with a deposit to the next free id

TRADER_KEYS = tuple(test_key(f"trader-{i}") for i in range(MAX_TRADERS))

# The driver's genesis with 100x its funding rates, so that funding moves margins within the few
# minutes of system time a scenario spans (the test genesis's rates take days to matter). Trader 0 is
# the fee owner (its accounts can CollectFees).
STRATEGY_GENESIS = make_genesis(
    fee_owner=TRADER_KEYS[0].address,
    # windows wider than the scenario's span: every price and funding index stays usable (the time rules
    # have their own tests in test_rules.py and test_oracle_time.py)
    max_sample_age=2 * 10**6,
    price_validity=2 * 10**6,
    funding_validity=2 * 10**6,
    markets=(
        msgspec.structs.replace(GENESIS.markets[ETH], max_funding_rate=100 * GENESIS.markets[ETH].max_funding_rate),
        # BTC: an oracle rule of its own (f = 1, all three samples) and a price-move limit of 0.2% per
        # second, so that random updates exercise both per-market rules (a shock that comes too soon
        # after the last price is refused with PRICE_MOVE_TOO_FAST)
        msgspec.structs.replace(
            GENESIS.markets[BTC], max_funding_rate=100 * GENESIS.markets[BTC].max_funding_rate, oracle_faults=1, quorum=3, max_price_move=2_000
        ),
    ),
)
MARKETS = STRATEGY_GENESIS.markets
GENESIS_PRICES = tuple(m.price for m in MARKETS)
STRANGER = test_key("stranger")

TX_TYPES: tuple[type, ...] = (
    Deposit, Trade, Withdraw, ForcedWithdraw, OraclePrice, FundingTick, Liquidate, Deleverage, CancelAll, CollectFees, Malformed
)
Scenario = Recording  # what `scenarios()` draws: a genesis, one L1 context, the transactions and their notes


# --- the generator ---------------------------------------------------------------------------------

class Draws:
    """Where the generator's choices come from: Hypothesis (`HypothesisDraws`, shrinking, the property
    tests) or a seeded `random.Random` (`SeededDraws`, uniform and reproducible whatever modules are
    loaded: the coverage check measures the generator's reach with it)."""

    def integer(self, low: int, high: int) -> int:
        raise NotImplementedError

    def binary(self, max_size: int) -> bytes:
        raise NotImplementedError


class HypothesisDraws(Draws):
    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def binary(self, max_size: int) -> bytes:
        return self.draw(st.binary(max_size=max_size))


class SeededDraws(Draws):
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def binary(self, max_size: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(0, max_size))


PERMILLE_FILLS = (50, 250, 500, 800, 950, 1000, 1000, 1300)  # of the capacity estimate; > 1000 aims past the margin


class Generator:
    """Draws transactions one at a time against a shadow state it advances with the spec."""

    def __init__(self, draws: Draws) -> None:
        self.draws = draws
        self.world = World(STRATEGY_GENESIS, l1_timestamp=L1_TIMESTAMP)  # the shadow run
        self.genesis = self.world.genesis
        self.state = self.world.state
        self.domain = self.world.domain
        self.deposits = self.world.deposit_queue
        self.forced = self.world.forced_queue
        self.deposits_closed = False  # once a Deposit found the queue empty, no entry is appended
        self.forced_closed = False
        self.owner_keys: dict[int, Key] = {}  # account id -> owner key
        self.traders: list[Key] = []
        self.next_nonce: dict[int, int] = {}
        self.issued_nonces: dict[int, list[int]] = {}
        self.withdrawals: list[Withdraw] = []  # signed earlier, for replays
        self.notes: list[str] = []  # the intent of each transaction the world applied
        self.broken = False  # the spec raised: stop generating (the tests report it)

    # --- drawing helpers: every choice goes through `integer` or `binary` (see `Draws`) ---

    def integer(self, low: int, high: int) -> int:
        return self.draws.integer(low, high)

    def boolean(self) -> bool:
        return self.draws.integer(0, 1) == 1

    def binary(self, max_size: int) -> bytes:
        return self.draws.binary(max_size)

    def chance(self, percent: int) -> bool:
        return self.integer(0, 99) < percent

    def pick(self, options: list[Any] | tuple[Any, ...]) -> Any:
        return options[self.integer(0, len(options) - 1)]

    def weighted(self, options: list[tuple[int, Any]]) -> Any:
        options = [(w, v) for w, v in options if w > 0]
        total = sum(w for w, _ in options)
        roll = self.integer(0, total - 1)
        for weight, value in options:
            if roll < weight:
                return value
            roll -= weight
        raise AssertionError("unreachable")

    # --- shadow-state helpers ---

    @property
    def ctx(self) -> L1Context:
        return self.world.ctx

    def account_ids(self) -> list[int]:
        return sorted(self.state.accounts)

    def settled(self, account_id: int) -> tuple[int, dict]:
        collateral, positions, _ = compute_settled_funding(self.state, self.state.accounts[account_id])
        return collateral, positions

    def value(self, account_id: int) -> int:
        collateral, positions = self.settled(account_id)
        return get_total_value(self.state, collateral, positions)

    def free_margin(self, account_id: int) -> int:
        collateral, positions = self.settled(account_id)
        return get_total_value(self.state, collateral, positions) - get_total_risk(self.state, positions, initial=True)

    def held(self, account_id: int, market: int) -> int:
        position = self.state.accounts[account_id].positions.get(market)
        return position.size if position else 0

    def oracle(self, market: int) -> int:
        return self.state.markets[market].price

    def round_price(self, market: int, price: int, up: bool = False) -> int:
        tick = MARKETS[market].tick_size
        rounded = -(-price // tick) * tick if up else price // tick * tick
        return max(tick, rounded)

    def round_size(self, market: int, size: int) -> int:
        step = MARKETS[market].step_size
        return max(step, size // step * step)

    def capacity(self, account_id: int, market: int, is_buy: bool, price: int) -> int:
        """Roughly the largest fill this account can take on this side without failing margin."""
        held = self.held(account_id, market)
        closing = max(0, -held) if is_buy else max(0, held)
        free = max(0, self.free_margin(account_id))
        oracle = self.oracle(market)
        config = MARKETS[market]
        # collateral per base unit, x PRICE_ONE: initial margin, the price's distance from the oracle, fees
        unit = oracle * config.initial_margin // FRACTION_ONE + abs(price - oracle) + oracle // 500 + 1
        extra = free * PRICE_ONE // unit
        limit = config.max_position - abs(held) + closing
        return max(0, min(closing + extra, limit))

    def solvent(self, accounts: list[int]) -> list[int]:
        """Mostly the accounts with free margin (so that most fills can pass the margin check)."""
        solvent = [a for a in accounts if self.free_margin(a) > 0]
        return solvent if solvent and self.chance(80) else accounts

    def live_slots(self, **where: Any) -> list[int]:
        out = []
        for slot_id, slot in sorted(self.state.slots.items()):
            if slot.remaining > 0 and slot.expiry >= L1_TIMESTAMP and all(getattr(slot, k) == v for k, v in where.items()):
                out.append(slot_id)
        return out

    def liquidatable(self) -> list[int]:
        out = []
        for account_id in self.account_ids():
            collateral, positions = self.settled(account_id)
            if positions and is_liquidatable(self.state, collateral, positions):
                out.append(account_id)
        return out

    def underwater(self) -> list[int]:
        return [a for a in self.account_ids() if self.state.accounts[a].positions and self.value(a) < 0]

    # --- signing helpers ---

    def take_nonce(self, account_id: int, how: str = "fresh") -> int:
        """A nonce for a new order or withdrawal: fresh, already used, or one that slides the window."""
        issued = self.issued_nonces.setdefault(account_id, [])
        if how == "used" and account_id in self.state.accounts:
            account = self.state.accounts[account_id]
            used = [n for n in issued if n < account.nonce_base or (account.nonce_bits >> (n - account.nonce_base)) & 1]
            if used:
                return self.pick(used[-4:])
        nonce = self.next_nonce.get(account_id, 0)
        if how == "jump":
            nonce += NONCE_WINDOW + self.integer(0, 40)
        self.next_nonce[account_id] = nonce + 1
        issued.append(nonce)
        return nonce

    def key_of(self, account_id: int) -> Key:
        return self.owner_keys.get(account_id, STRANGER)

    def signer_for(self, account_id: int, fault: str) -> Key:
        if fault == "wrong-signer":
            return self.pick([k for k in (*TRADER_KEYS, STRANGER) if k is not self.key_of(account_id)])
        return self.key_of(account_id)

    def corrupt(self, signature: bytes) -> bytes:
        kind = self.integer(0, 3)
        if kind == 0:  # v out of range
            return signature[:64] + bytes((29,))
        if kind == 1:  # high s (malleated)
            s = int.from_bytes(signature[32:64], "big")
            return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - signature[64],))
        if kind == 2:  # truncated
            return signature[:64]
        return bytes(65)  # r = s = 0

    def order(
        self,
        account_id: int,
        market: int,
        is_buy: bool,
        size: int,
        price: int,
        fault: str = "ok",
        expiry: int | None = None,
    ) -> Order:
        fee_rate = self.pick((0, 0, 200, 500, 1_000))
        if fault == "fee-rate":
            fee_rate = FRACTION_ONE + 1
        if expiry is None:
            expiry = L1_TIMESTAMP + self.integer(300, 7_200)
        if fault == "expired":
            expiry = L1_TIMESTAMP - self.integer(1, 100)
        nonce = self.take_nonce(account_id, {"nonce-used": "used", "nonce-jump": "jump"}.get(fault, "fresh"))
        order = sign_order(
            self.signer_for(account_id, fault),
            self.domain,
            account_id=account_id,
            market=market,
            is_buy=is_buy,
            size=size,
            limit_price=price,
            fee_rate=fee_rate,
            expiry=expiry,
            nonce=nonce,
        )
        if fault == "bad-signature":
            order = msgspec.structs.replace(order, signature=self.corrupt(order.signature))
        return order

    def order_size(self, market: int, fill: int) -> int:
        """An order at least as large as the fill, often larger (so partial fills leave slots)."""
        extra = self.pick((0, 0, 1, 2, 3))
        return fill + self.round_size(market, fill) * extra

    # --- queue helpers ---

    def pending_deposit(self) -> DepositEntry | None:
        """The queue entry the next Deposit reads (None: none is queued yet)."""
        return self.deposits.get(self.state.deposits_done)

    def push_deposit(self, owner: bytes, amount: int) -> None:
        assert self.state.deposits_done not in self.deposits and not self.deposits_closed
        self.deposits[self.state.deposits_done] = DepositEntry(owner=owner, amount=amount)

    def deposit_amount(self) -> int:
        return self.weighted([(1, 0), (10, self.integer(10**7, 10**9)), (10, self.integer(10**9, 10**10))])

    # --- one transaction per type ---

    def gen_deposit(self) -> tuple[Transaction, str]:
        entry = self.pending_deposit()
        if entry is None and not self.deposits_closed and self.chance(2):
            self.deposits_closed = True  # the queue is empty from now on: every Deposit is NO_PENDING_DEPOSIT
        if self.deposits_closed and self.state.deposits_done not in self.deposits:
            return Deposit(account_id=self.pick(self.account_ids() or [0])), "deposit:queue-empty"
        if entry is None:
            kind = self.weighted([(12, "top-up"), (3, "new-account"), (2, "owner-mismatch"), (1, "no-account")])
            accounts = self.account_ids()
            if kind == "new-account" and len(accounts) < MAX_ACCOUNTS:
                owner = self.pick(TRADER_KEYS)
                self.push_deposit(owner.address, self.deposit_amount())
                self.owner_keys.setdefault(self.state.next_account_id, owner)
                return Deposit(account_id=self.state.next_account_id), "deposit:new-account"
            account_id = self.pick(accounts)
            owner = self.key_of(account_id)
            if kind == "owner-mismatch":
                other = self.pick([k for k in (*TRADER_KEYS, STRANGER) if k is not owner])
                self.push_deposit(other.address, self.deposit_amount())
                return Deposit(account_id=account_id), "deposit:owner-mismatch"
            self.push_deposit(owner.address, self.deposit_amount())
            if kind == "no-account":
                return Deposit(account_id=self.state.next_account_id + self.integer(1, 3)), "deposit:no-account"
            return Deposit(account_id=account_id), "deposit:top-up"
        # An entry is waiting (an earlier Deposit for it was invalid): credit it to one of its owner's accounts.
        mine = [a for a in self.account_ids() if self.state.accounts[a].owner == entry.owner]
        if len(self.state.accounts) < MAX_ACCOUNTS or not mine:
            mine.append(self.state.next_account_id)
        account_id = self.pick(mine)
        if account_id == self.state.next_account_id:
            self.owner_keys.setdefault(account_id, next(k for k in (*TRADER_KEYS, STRANGER) if k.address == entry.owner))
        return Deposit(account_id=account_id), "deposit:pending"

    def gen_trade(self) -> tuple[Transaction, str]:
        accounts = self.account_ids()
        fault = self.weighted(
            [
                (60, "ok"),
                (3, "wrong-signer"),
                (3, "bad-signature"),
                (3, "expired"),
                (3, "nonce-used"),
                (2, "nonce-jump"),
                (3, "self-trade"),
                (2, "same-side"),
                (2, "market-mismatch"),
                (3, "price-limit"),
                (3, "fill-size"),
                (2, "bogus-slot"),
                (3, "dead-slot"),
                (2, "fee-rate"),
                (2, "off-tick"),
                (2, "no-account"),
            ]
        )
        state = self.state
        maker_slot = taker_slot = None
        live = self.live_slots()
        if live and self.chance(30):
            maker_slot = self.pick(live)
            slot = state.slots[maker_slot]
            market, maker_id, maker_buys, price = slot.market, slot.account_id, slot.is_buy, slot.limit_price
        else:
            market = self.pick((BTC, ETH))
            maker_id = self.pick(self.solvent(accounts))
            maker_buys = self.boolean()
            oracle = self.oracle(market)
            price = self.round_price(market, oracle + oracle * self.integer(-100, 100) // 10_000)
        others = [a for a in accounts if a != maker_id] or accounts
        taker_id = maker_id if fault == "self-trade" else self.pick(self.solvent(others))
        taker_buys = maker_buys if fault == "same-side" else not maker_buys
        candidates = self.live_slots(market=market, is_buy=taker_buys)
        candidates = [s for s in candidates if state.slots[s].account_id != maker_id or fault == "self-trade"]
        if maker_slot is None:
            # a live opposite slot can take the taker's place; the maker's price then meets its limit
            if candidates and fault not in ("self-trade", "same-side") and self.chance(25):
                taker_slot = self.pick(candidates)
                taker = state.slots[taker_slot]
                taker_id = taker.account_id
                price = min(price, taker.limit_price) if taker_buys else max(price, taker.limit_price)
        elif candidates and fault != "same-side" and self.chance(20):
            taker_slot = self.pick(candidates)
            taker_id = state.slots[taker_slot].account_id
        # the taker's limit: at the maker's price or a few ticks through it (or short of it)
        tick = MARKETS[market].tick_size
        through = self.integer(0, 3) * tick
        if fault == "price-limit" and taker_slot is None:
            through = -tick * self.integer(1, 3)
        taker_price = max(tick, price + through if taker_buys else price - through)
        # the fill: a fraction of what both sides can take
        buyer, seller = (maker_id, taker_id) if maker_buys else (taker_id, maker_id)
        cap = min(self.capacity(buyer, market, True, price), self.capacity(seller, market, False, price))
        fill = self.round_size(market, cap * self.pick(PERMILLE_FILLS) // 1000)
        for slot_id in (maker_slot, taker_slot):
            if slot_id is not None:
                fill = min(fill, state.slots[slot_id].remaining)
        order_fill = fill
        if fault == "fill-size":  # zero, off the step, or more than the orders hold
            fill = self.pick([0, fill + 1, 5 * fill + MARKETS[market].step_size])
        order_fault = fault if fault in ("wrong-signer", "bad-signature", "expired", "nonce-used", "nonce-jump", "fee-rate") else "ok"
        maker_order: OrderOrRef
        taker_order: OrderOrRef
        if maker_slot is not None:
            maker_order = SlotRef(maker_slot)
        else:
            size = self.order_size(market, order_fill)
            if fault == "off-tick":
                price += 1
            maker_order = self.order(maker_id, market, maker_buys, size, price, order_fault if self.chance(50) else "ok")
        if taker_slot is not None:
            taker_order = SlotRef(taker_slot)
        else:
            taker_market = 1 - market if fault == "market-mismatch" else market
            size = self.round_size(taker_market, order_fill)
            tid = taker_id if fault != "no-account" else state.next_account_id + 5
            taker_order = self.order(tid, taker_market, taker_buys, size, self.round_price(taker_market, taker_price), order_fault)
        if fault == "bogus-slot":
            ref = SlotRef(state.next_slot + self.integer(0, 5))
            maker_order, taker_order = (ref, taker_order) if self.chance(50) else (maker_order, ref)
        if fault == "dead-slot":  # a slot that exists but is filled or expired
            dead = [s for s, slot in sorted(state.slots.items()) if slot.remaining == 0 or slot.expiry < L1_TIMESTAMP]
            maker_order = SlotRef(self.pick(dead) if dead else state.next_slot)
        return Trade(maker=maker_order, taker=taker_order, size=fill), f"trade:{fault}"

    def gen_withdraw(self) -> tuple[Transaction, str]:
        fault = self.weighted(
            [(65, "ok"), (5, "wrong-signer"), (4, "bad-signature"), (4, "expired"), (5, "replay"), (8, "too-much"), (3, "zero"), (3, "no-account")]
        )
        if fault == "replay" and self.withdrawals:
            return self.pick(self.withdrawals[-5:]), "withdraw:replay"
        account_id = self.pick(self.account_ids())
        free = self.free_margin(account_id)
        amount = max(1, free * self.pick((100, 500, 900, 1000)) // 1000)
        if fault == "too-much":
            amount = max(free + 1, 1)
        elif fault == "zero":
            amount = 0
        expiry = L1_TIMESTAMP + self.integer(60, 3_600)
        if fault == "expired":
            expiry = L1_TIMESTAMP - self.integer(1, 100)
        if fault == "no-account":
            account_id = self.state.next_account_id + self.integer(0, 3)
        nonce = self.take_nonce(account_id, "jump" if self.chance(3) else "fresh")
        tx = sign_withdraw(self.signer_for(account_id, fault), self.domain, account_id, amount, expiry, nonce)
        if fault == "bad-signature":
            tx = msgspec.structs.replace(tx, signature=self.corrupt(tx.signature))
        self.withdrawals.append(tx)
        return tx, f"withdraw:{fault}"

    def gen_forced(self) -> tuple[Transaction, str]:
        index = self.state.forced_done
        if index in self.forced:
            return ForcedWithdraw(), "forced:pending"
        if self.forced_closed or self.chance(2):
            self.forced_closed = True
            return ForcedWithdraw(), "forced:queue-empty"
        fault = self.weighted(
            [(60, "ok"), (8, "wrong-requester"), (6, "no-account"), (10, "too-much"), (3, "zero"), (3, "huge"), (8, "cancel-all")]
        )
        account_id = self.pick(self.account_ids())
        requester = self.key_of(account_id).address
        free = self.free_margin(account_id)
        amount = max(1, free * self.pick((100, 500, 1000)) // 1000)
        if fault == "wrong-requester":
            requester = self.pick([k for k in (*TRADER_KEYS, STRANGER) if k.address != requester]).address
        elif fault == "no-account":
            account_id = self.state.next_account_id + self.integer(0, 3)
        elif fault == "too-much":
            amount = max(1, free + 1 + self.integer(0, 10**6))
        elif fault == "zero":
            amount = 0
        elif fault == "huge":
            amount = MAX_AMOUNT + 1
        elif fault == "cancel-all":  # a censored user's cancel-all: the floor rises past every nonce issued
            amount = FORCED_CANCEL_ALL | self.raise_floor(account_id)
        self.forced[index] = ForcedEntry(requester=requester, account_id=account_id, amount=amount)
        return ForcedWithdraw(), f"forced:{fault}"

    def raise_floor(self, account_id: int) -> int:
        """A new nonce floor above every nonce issued to the account (later nonces continue from it)."""
        floor = self.next_nonce.get(account_id, 0) + self.integer(1, 300)
        self.next_nonce[account_id] = floor
        return floor

    def gen_cancel_all(self) -> tuple[Transaction, str]:
        fault = self.weighted([(60, "ok"), (8, "replay"), (6, "too-high"), (6, "wrong-signer"), (4, "bad-signature"), (4, "no-account")])
        account_id = self.pick(self.account_ids())
        if fault == "no-account":
            account_id = self.state.next_account_id + self.integer(0, 3)
        if fault == "replay":  # a floor that does not rise
            account = self.state.accounts.get(account_id)
            floor = account.nonce_base if account is not None else 0
        elif fault == "too-high":
            account = self.state.accounts.get(account_id)
            floor = (account.nonce_base if account is not None else 0) + NONCE_HORIZON + 1 + self.integer(0, 10)
        else:
            floor = self.raise_floor(account_id)
        tx = sign_cancel_all(self.signer_for(account_id, fault), self.domain, account_id, floor)
        if fault == "bad-signature":
            tx = msgspec.structs.replace(tx, signature=self.corrupt(tx.signature))
        return tx, f"cancel-all:{fault}"

    def gen_collect_fees(self) -> tuple[Transaction, str]:
        fee_accounts = [a for a in self.account_ids() if self.key_of(a) is TRADER_KEYS[0]]
        if fee_accounts and self.chance(80):
            return CollectFees(self.pick(fee_accounts)), "collect-fees:owner"
        return CollectFees(self.pick(self.account_ids())), "collect-fees:any"

    def target_price(self, market: int) -> int:
        """The next oracle price: a small move, a shock big enough to liquidate leveraged accounts, or a
        gap that jumps past liquidation straight into bad debt."""
        price = self.oracle(market)
        base = GENESIS_PRICES[market]
        kind = self.weighted([(5, "small"), (4, "shock"), (1, "gap")])
        if kind == "small":
            bps = self.integer(-300, 300)
        else:
            # mostly against the most leveraged holder of this market (a crash after leveraged longs)
            holders = [a for a in self.account_ids() if self.held(a, market)]
            if holders and self.chance(75):
                down = self.held(min(holders, key=self.free_margin), market) > 0
            else:
                down = self.boolean()
            down = down if base // 2 <= price <= 2 * base else price > base
            # a shock mostly lands between maintenance and bankruptcy of a 10x account (5-10%)
            shock = (500, 1_000) if self.chance(60) else (1_000, 3_000)
            bps = self.integer(*(shock if kind == "shock" else (3_000, 6_000))) * (-1 if down else 1)
        return max(1, price + price * bps // 10_000)

    def gen_oracle(self) -> tuple[Transaction, str]:
        fault = self.weighted(
            [
                (70, "ok"),
                (4, "quorum"),
                (4, "stale"),
                (3, "future"),
                (3, "order"),
                (3, "wrong-signer"),
                (2, "bad-signature"),
                (2, "zero-price"),
                (2, "no-market"),
            ]
        )
        held = [m for m in (BTC, ETH) if any(self.held(a, m) for a in self.account_ids())]
        market = self.pick(held if held and self.chance(70) else (BTC, ETH))
        target = self.target_price(market)
        oracles = self.pick(((0, 1), (0, 2), (1, 2), (0, 1, 2), (0, 1, 2)))
        if len(oracles) < MARKETS[market].quorum and self.chance(80):  # mostly a quorum of the market's own
            oracles = (0, 1, 2)
        if fault == "quorum":
            oracles = self.pick(((), (0,), (2,)))
        elif fault == "order":
            oracles = self.pick(((1, 0), (0, 0), (0, 1, 3), (2, 1, 0)))
        start = max(self.state.markets[market].sample_time, self.state.time)
        step = self.integer(1, 600)
        samples = []
        for n, index in enumerate(oracles):
            price = max(1, target + target * self.integer(-20, 20) // 10_000)
            timestamp = start + step + self.integer(0, 5)
            if fault == "zero-price" and n == 0:
                price = 0
            if fault == "stale" and n == len(oracles) - 1:
                timestamp = self.state.markets[market].sample_time - self.integer(0, 10)
            if fault == "future" and n == 0:
                timestamp = L1_TIMESTAMP + self.integer(1, 100)
            signer = index % N_ORACLES
            if fault == "wrong-signer" and n == len(oracles) - 1:
                signer = (index + 1) % N_ORACLES
            sample = self.world.sample(index, market, price, timestamp, signer=signer)
            if fault == "bad-signature" and n == 0:
                sample = msgspec.structs.replace(sample, signature=self.corrupt(sample.signature))
            samples.append(sample)
        if fault == "no-market":
            market = 2 + self.integer(0, 3)
        return OraclePrice(market=market, samples=tuple(samples)), f"oracle:{fault}"

    def gen_funding(self) -> tuple[Transaction, str]:
        fault = self.weighted([(70, "ok"), (8, "exceeded"), (5, "stale"), (3, "future"), (4, "count")])
        state = self.state
        # mostly a funding period; sometimes days at once (funding over a long time)
        elapsed = self.integer(*((0, 900) if self.chance(85) else (900, 200_000)))
        timestamp = max(state.funding_time + 1, state.time) + elapsed
        if fault == "stale":
            timestamp = self.pick([state.funding_time, max(0, state.time - 1)])
        elif fault == "future":
            timestamp = L1_TIMESTAMP + self.integer(1, 100)
        elapsed = max(0, timestamp - state.funding_time)
        indices = []
        for market, config in enumerate(MARKETS):
            current = state.markets[market].funding_index
            bound = config.max_funding_rate * state.markets[market].price * elapsed // FUNDING_RATE_ONE
            delta = self.weighted([(2, bound), (2, -bound), (5, bound * self.integer(-1000, 1000) // 1000), (1, 0)])
            indices.append(current + delta)
        if fault == "exceeded":
            market = self.pick((BTC, ETH))
            bound = MARKETS[market].max_funding_rate * state.markets[market].price * elapsed // FUNDING_RATE_ONE
            current = state.markets[market].funding_index
            indices[market] = current + (bound + 1 + self.integer(0, 10**6)) * self.pick((1, -1))
        elif fault == "count":
            indices = indices[:1] if self.chance(50) else indices + [0]
        return FundingTick(timestamp=timestamp, indices=tuple(indices)), f"funding:{fault}"

    def gen_liquidate(self) -> tuple[Transaction, str]:
        fault = self.weighted(
            [
                (50, "ok"), (15, "discount"), (6, "healthy"), (4, "self"), (5, "wrong-side"), (5, "too-big"), (6, "price-band"),
                (3, "no-account"), (3, "bad-order"),
            ]
        )
        accounts = self.account_ids()
        targets = self.liquidatable()
        solvent = [a for a in targets if self.value(a) >= 0]
        if solvent and self.chance(80):  # a bankrupt one can only be liquidated with the insurance fund's help
            targets = solvent
        if targets and fault != "healthy":
            victim = self.pick(targets)
        else:
            healthy = [a for a in accounts if self.state.accounts[a].positions and a not in targets]
            victim = self.pick(healthy or accounts)
        markets = sorted(self.state.accounts[victim].positions) or [self.pick((BTC, ETH))]
        market = self.pick(markets)
        held = self.held(victim, market)
        buys = held > 0 if held != 0 else self.boolean()
        if fault == "wrong-side":
            buys = not buys
        others = [a for a in accounts if a != victim] or accounts
        liquidator = victim if fault == "self" else max(others, key=self.free_margin) if self.chance(70) else self.pick(others)
        oracle = self.oracle(market)
        mm = MARKETS[market].maintenance_margin
        # a price inside the band [oracle * (1 - mm), oracle * (1 + mm)] on the liquidated side; or just outside.
        # Within the discount healthy-or-healthier allows, mm x value / risk (none once bankrupt), except
        # for the "discount" fault, which asks for the unscaled band (usually more than the rule allows).
        u = self.pick((0, 300, 700, 950)) if fault != "price-band" else self.pick((1_100, 1_500))
        if fault not in ("price-band", "discount") and victim in self.state.accounts:
            collateral, positions = self.settled(victim)
            risk = get_total_risk(self.state, positions, initial=False)
            if risk > 0:
                u = u * max(0, min(get_total_value(self.state, collateral, positions), risk)) // risk
        if held > 0:
            price = self.round_price(market, oracle - oracle * mm * u // (FRACTION_ONE * 1000), up=True)
            if fault == "price-band":
                price = self.round_price(market, oracle - oracle * mm * u // (FRACTION_ONE * 1000))
        else:
            price = self.round_price(market, oracle + oracle * mm * u // (FRACTION_ONE * 1000))
            if fault == "price-band":
                price = self.round_price(market, oracle + oracle * mm * u // (FRACTION_ONE * 1000), up=True)
        size = abs(held) * self.pick((100, 250, 500, 1000, 1000)) // 1000
        if fault != "too-big":  # within what the liquidator's margin can take
            size = min(size, self.capacity(liquidator, market, buys, price))
        size = self.round_size(market, size)
        if fault != "too-big" and abs(held) >= MARKETS[market].step_size:
            size = min(size, abs(held) // MARKETS[market].step_size * MARKETS[market].step_size)
        if fault == "too-big":
            size = self.round_size(market, abs(held) + MARKETS[market].step_size)
        if fault == "no-account":
            victim = self.state.next_account_id + self.integer(0, 3)
        order: OrderOrRef
        slots = [s for s in self.live_slots(account_id=liquidator, market=market, is_buy=buys) if self.state.slots[s].remaining >= size]
        if slots and fault not in ("price-band", "bad-order") and self.chance(30):
            order = SlotRef(self.pick(slots))
        else:
            order_fault = self.pick(("wrong-signer", "bad-signature", "expired", "nonce-used")) if fault == "bad-order" else "ok"
            order = self.order(liquidator, market, buys, self.order_size(market, size), price, order_fault)
        return Liquidate(liquidator=order, liquidated_id=victim, size=size), f"liquidate:{fault}"

    def gen_deleverage(self) -> tuple[Transaction, str]:
        fault = self.weighted(
            [(65, "ok"), (8, "healthy"), (4, "self"), (6, "same-side"), (5, "too-big"), (3, "zero"), (3, "no-market"), (2, "no-account")]
        )
        accounts = self.account_ids()
        targets = self.underwater()
        if targets and fault != "healthy":
            victim = self.pick(targets)
        else:
            victim = self.pick([a for a in accounts if self.state.accounts[a].positions] or accounts)
        market = self.pick(sorted(self.state.accounts[victim].positions) or [BTC])
        held = self.held(victim, market)
        if fault == "self":
            other = victim
        else:
            want_opposite = fault != "same-side"
            pool = [a for a in accounts if a != victim and (self.held(a, market) * held < 0) == want_opposite and self.held(a, market) != 0]
            other = self.pick(pool or [a for a in accounts if a != victim] or accounts)
        cap = min(abs(held), abs(self.held(other, market))) or MARKETS[market].step_size
        size = cap * self.pick((100, 300, 500, 1000, 1000)) // 1000
        if self.chance(80):  # mostly on the step grid (the spec does not require it for deleveraging)
            size = size // MARKETS[market].step_size * MARKETS[market].step_size
        size = max(1, size)
        if fault == "too-big":
            size = cap + self.integer(1, 1000)
        elif fault == "zero":
            size = 0
        if fault == "no-market":
            market = 2 + self.integer(0, 5)
        elif fault == "no-account":
            other = self.state.next_account_id + self.integer(0, 3)
        return Deleverage(deleveraged_id=victim, deleverager_id=other, market=market, size=size), f"deleverage:{fault}"

    def gen_malformed(self) -> tuple[Transaction, str]:
        kind = self.integer(0, 9)
        sig = bytes(65)
        if kind <= 3:
            return Malformed(data=self.binary(48)), "malformed:bytes"
        if kind == 4:
            return Deposit(account_id=MAX_ACCOUNT_ID + 1), "malformed:deposit-id"
        if kind == 5:
            return Withdraw(account_id=0, amount=-1, expiry=0, nonce=0, signature=sig), "malformed:withdraw-amount"
        if kind == 6:
            return Trade(maker=SlotRef(MAX_SLOT_ID + 1), taker=SlotRef(0), size=1), "malformed:slot-id"
        if kind == 7:
            samples = tuple(PriceSample(i % 3, 1, 1, sig) for i in range(33))
            return OraclePrice(market=0, samples=samples), "malformed:too-many-samples"
        if kind == 8:
            return FundingTick(timestamp=0, indices=(MAX_FUNDING_INDEX + 1, 0)), "malformed:funding-index"
        return Deleverage(deleveraged_id=0, deleverager_id=1, market=MAX_U8 + 1, size=1), "malformed:market"

    GENERATORS: dict[type, str] = {
        Deposit: "gen_deposit",
        Trade: "gen_trade",
        Withdraw: "gen_withdraw",
        ForcedWithdraw: "gen_forced",
        OraclePrice: "gen_oracle",
        FundingTick: "gen_funding",
        Liquidate: "gen_liquidate",
        Deleverage: "gen_deleverage",
        CancelAll: "gen_cancel_all",
        CollectFees: "gen_collect_fees",
        Malformed: "gen_malformed",
    }

    # --- driving ---

    def push(self, tx: Transaction, note: str) -> None:
        self.notes.append(note)
        try:
            self.world.apply(tx)
        except Exception:  # a spec bug: keep the tx (the properties report it) and stop here
            self.broken = True

    def fund_traders(self, count: int) -> None:
        for i in range(count):
            key = TRADER_KEYS[i]
            self.push_deposit(key.address, self.integer(10**8, 10**10))
            self.owner_keys[self.state.next_account_id] = key
            self.push(Deposit(account_id=self.state.next_account_id), "deposit:fund")

    def step(self) -> None:
        liquidatable = bool(self.liquidatable())
        underwater = bool(self.underwater())
        kind = self.weighted(
            [
                (18, Trade),
                (12, OraclePrice),
                (6, Withdraw),
                (5, ForcedWithdraw),
                (5, FundingTick),
                (5, Deposit),
                (3, Malformed),
                (14 if liquidatable else 2, Liquidate),
                (14 if underwater else 2, Deleverage),
                (2, CancelAll),
                (2, CollectFees),
            ]
        )
        tx, note = getattr(self, self.GENERATORS[kind])()
        self.push(tx, note)

    def scenario(self) -> Scenario:
        return self.world.recording(self.notes)


def generate(draws: Draws, min_txs: int = 0, max_txs: int = 40) -> Scenario:
    """Genesis, an L1 context and `3..6` funding deposits followed by `min_txs..max_txs` random transactions."""
    generator = Generator(draws)
    generator.fund_traders(draws.integer(3, MAX_TRADERS))
    for _ in range(draws.integer(min_txs, max_txs)):
        if generator.broken:
            break
        generator.step()
    return generator.scenario()


@st.composite
def scenarios(draw: Callable[[st.SearchStrategy[Any]], Any], min_txs: int = 0, max_txs: int = 40) -> Scenario:
    """`generate` with Hypothesis' choices (the property tests: shrinking, the example database)."""
    return generate(HypothesisDraws(draw), min_txs, max_txs)


def seeded_scenario(seed: int, min_txs: int = 0, max_txs: int = 40) -> Scenario:
    """`generate` with a `random.Random(seed)`'s uniform choices: the same scenario in every run."""
    return generate(SeededDraws(random.Random(seed)), min_txs, max_txs)
