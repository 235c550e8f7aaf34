"""A market-maker-like workload for benchmarks: a few makers quote resting orders that many takers
fill in small pieces, so most fills continue an order already in the state (a slot reference).
Built on the test driver (`optinode.testing.world`): its genesis, keys and nonce convention."""

from __future__ import annotations

import random

from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import compute_order_digest
from optinode.spec.state import State, require_account
from optinode.spec.types import L1Context, Order, OrderOrRef, SlotRef, Trade
from optinode.testing.world import GENESIS_TIME, World

EXPIRY = GENESIS_TIME + 30 * 86_400
LOTS = 10  # steps per lot


class Workload:
    """Funded accounts and a pre-signed list of trades (signatures verified once, as at admission)."""

    def __init__(self, trades: int = 10_000, makers: int = 8, takers: int = 2_000, fills_per_order: int = 12, seed: int = 1):
        rng = random.Random(seed)
        w = World(l1_timestamp=GENESIS_TIME + 3600)
        names = [f"bench-{i}" for i in range(makers + takers)]
        for name in names:
            w.deposit(name, 10**15)
        markets = w.genesis.markets
        self.world = w
        self.state: State = w.state
        self.ctx: L1Context = w.ctx
        self.trades: list[Trade] = []
        resting: list[tuple[OrderOrRef, int, bool, int, int] | None] = [None] * makers  # (order|slot, remaining, is_buy, price, market)
        next_slot = 0
        for n in range(trades):
            m = n % makers
            if resting[m] is None:
                market = m % 2
                config = markets[market]
                is_buy = rng.random() < 0.5
                price = config.price + (-1 if is_buy else 1) * rng.randrange(1, 50) * config.tick_size
                size = fills_per_order * 2 * LOTS * config.step_size
                order = w.order(names[m], market=market, is_buy=is_buy, size=size, limit_price=price, expiry=EXPIRY)
                resting[m] = (order, size, is_buy, price, market)
            handle, remaining, is_buy, price, market = resting[m]  # type: ignore[misc]
            config = markets[market]
            taker = makers + rng.randrange(takers)
            fill = min(remaining, rng.randrange(1, 4) * LOTS * config.step_size)
            through = 100 * config.tick_size
            taker_order = w.order(names[taker], market=market, is_buy=not is_buy, size=fill,
                                  limit_price=price + (through if not is_buy else -through), fee_rate=500, expiry=EXPIRY)
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
            assert signer == require_account(self.state, order.account_id).owner
