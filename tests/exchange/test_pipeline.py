"""Mempool and matcher together under trio, as the engine will run them: concurrent clients submit
signed orders (one of them floods), an engine loop drains the fair queue into the matcher. Every
queued order is placed, and the flooding account does not delay the others' orders behind its own."""

from __future__ import annotations

import pytest
import trio

from optinode.exchange.matching import Matcher
from optinode.exchange.mempool import Limits, Mempool
from optinode.exchange.orders import Placement, Status
from optinode.spec.types import Trade
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK, World


@pytest.mark.trio
async def test_clients_through_mempool_and_matcher() -> None:
    w = World()
    for name in ("flood", "alice", "bob"):
        w.deposit(name, 10**12)
    pool = Mempool(w.state, Limits(max_request_items=500, items_per_second=1e6, burst=10**6, recovery_chunk=16))
    matcher = Matcher(w.state)
    flood = [Placement(w.order("flood", is_buy=False, size=ETH_STEP, limit_price=ETH_PRICE + (10 + i % 5) * ETH_TICK)) for i in range(400)]
    alice = [Placement(w.order("alice", is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE + 20 * ETH_TICK)) for _ in range(5)]
    bob = [Placement(w.order("bob", is_buy=False, size=ETH_STEP, limit_price=ETH_PRICE - ETH_TICK)) for _ in range(5)]
    order_of_service: list[int] = []
    results = []

    async def engine() -> None:
        while len(order_of_service) < 410:
            for placement, _ in await pool.next_batch(8):
                order_of_service.append(placement.order.account_id)
                results.append(matcher.place(placement, w.ctx))
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        # The flood is queued first; the engine starts when everyone's orders are waiting, so
        # what is measured is the queue's order of service, not thread timing.
        assert all(isinstance(h, bytes) for h in await pool.submit(flood))
        async with trio.open_nursery() as clients:
            clients.start_soon(pool.submit, alice)
            clients.start_soon(pool.submit, bob)
        nursery.start_soon(engine)
    ids = w.ids
    # one order per waiting account per turn: alice's and bob's five orders each are all served
    # within the first five rounds, with only five of the flood's 400 before the last of them
    last_small = max(i for i, a in enumerate(order_of_service) if a != ids["flood"])
    assert last_small < 15 and order_of_service[: last_small + 1].count(ids["flood"]) == 5
    assert not [r for r in results if r.status is Status.REJECTED]
    trades = [t for r in results for t in r.trades]
    assert trades and all(isinstance(t, Trade) for t in trades)
    assert w.size("alice") == 5 * ETH_STEP
