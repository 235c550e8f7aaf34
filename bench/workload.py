"""A market-maker-like workload for benchmarks: a few makers quote resting orders that many takers
fill in small pieces, so most fills continue an order already in the state (a slot reference)."""

from __future__ import annotations

import random

from optinode.spec import L1Context, State, create_genesis_state
from optinode.spec.constants import PRICE_ONE
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import compute_order_digest
from optinode.spec.state import get_account
from optinode.spec.transition import state_transition
from optinode.spec.types import Deposit, DepositEntry, Order, SlotRef, Trade
from optinode.testing.scenario import GENESIS_TIME, STEP, make_test_genesis
from optinode.wallet import Key, sign_order

EXPIRY = GENESIS_TIME + 30 * 86_400
LOT = 10 * STEP


class Workload:
    """Funded accounts and a pre-signed list of trades (signatures verified once, as at admission)."""

    def __init__(self, trades: int = 10_000, makers: int = 8, takers: int = 2_000, fills_per_order: int = 12, seed: int = 1):
        rng = random.Random(seed)
        self.genesis = make_test_genesis()
        self.state: State = create_genesis_state(self.genesis)
        ds = self.state.config.domain_separator
        keys = [Key.from_seed(f"bench-{i}") for i in range(makers + takers)]
        deposits = {i: DepositEntry(k.address, 10**15) for i, k in enumerate(keys)}
        self.ctx = L1Context(l1_timestamp=GENESIS_TIME + 3600, deposits=deposits)
        for i in range(len(keys)):
            assert state_transition(self.state, Deposit(i), self.ctx).ok
        nonces = [0] * len(keys)
        self.trades: list[Trade] = []
        resting: list[tuple[object, int, bool, int, int] | None] = [None] * makers  # (order|slot, remaining, is_buy, price, market)
        next_slot = 0
        for n in range(trades):
            m = n % makers
            if resting[m] is None:
                market = m % 2
                is_buy = rng.random() < 0.5
                price = (3 if market == 0 else 6) * PRICE_ONE + (-1 if is_buy else 1) * rng.randrange(1, 50) * 10**4
                nonces[m] += 1
                size = fills_per_order * 2 * LOT
                order = sign_order(keys[m], ds, account_id=m, market=market, is_buy=is_buy, size=size, limit_price=price,
                                   fee_rate=0, expiry=EXPIRY, nonce=nonces[m])
                resting[m] = (order, size, is_buy, price, market)
            handle, remaining, is_buy, price, market = resting[m]
            taker = makers + rng.randrange(takers)
            fill = min(remaining, rng.randrange(1, 4) * LOT)
            nonces[taker] += 1
            taker_order = sign_order(keys[taker], ds, account_id=taker, market=market, is_buy=not is_buy, size=fill,
                                     limit_price=price + (10**6 if not is_buy else -10**6), fee_rate=500, expiry=EXPIRY,
                                     nonce=nonces[taker])
            self.trades.append(Trade(handle, taker_order, fill))
            remaining -= fill
            if remaining == 0:
                resting[m] = None
            elif isinstance(handle, Order):  # the rest lives in the next slot from now on
                resting[m] = (SlotRef(next_slot), remaining, is_buy, price, market)
                next_slot += 1
            else:
                resting[m] = (handle, remaining, is_buy, price, market)
        self.signed_orders = [o for t in self.trades for o in (t.maker, t.taker) if isinstance(o, Order)]

    def preverify(self) -> None:
        ds = self.state.config.domain_separator
        for order in self.signed_orders:
            signer = recover_signer(compute_order_digest(ds, order), order.signature)
            assert signer == get_account(self.state, order.account_id).owner
