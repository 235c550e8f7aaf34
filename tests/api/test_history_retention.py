"""The order history's retention (optinode/exchange/history.py): finished orders are pruned once
their retention has passed in L1 time (30 days with fills, 3 days without), live orders never, and
the records are written in the log entry's own write batch."""

from __future__ import annotations

import pytest

from optinode.exchange.history import RETENTION_FILLED, RETENTION_UNFILLED
from optinode.exchange.orders import CancelOrder, Placement, Status
from optinode.services.journal import Journal
from optinode.store import keys
from optinode.store.memory import open_memory
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK

from tests.services.conftest import FakeL1
from tests.services.test_engine import Harness, funded

pytestmark = pytest.mark.trio


async def test_finished_orders_are_pruned_after_their_retention_and_live_ones_are_kept(world, nursery) -> None:
    store = open_memory(identity="test")
    h = await Harness(store, nursery).start()
    await funded(h, world, FakeL1(store, world))
    place = h.submitter.submit_book
    filled = await place(Placement(world.order("alice", is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE)))
    taker = await place(Placement(world.order("bob", is_buy=False, size=ETH_STEP, limit_price=ETH_PRICE)))
    unfilled = await place(Placement(world.order("alice", is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE - 5 * ETH_TICK)))
    await place(CancelOrder(world.ids["alice"], unfilled.result.order_hash))
    live = await place(Placement(world.order("alice", is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE - 6 * ETH_TICK)))
    history = h.engine.history
    assert not history.pending  # flushed with the log entries
    maker = history.get(filled.result.order_hash)
    assert maker.status is Status.FILLED and [f.seq for f in maker.fills] == [taker.seq] and maker.finished_seq == taker.seq
    assert history.get(unfilled.result.order_hash).status is Status.CANCELLED
    # every record came with the log entry that changed it: none is newer than the log
    last_seq = max(e.seq for e in Journal(store).entries())
    assert all(r.placed_seq <= last_seq for r in map(history.get, (filled.result.order_hash, live.result.order_hash)))
    finished_at = maker.finished_at
    assert history.prune(finished_at + RETENTION_UNFILLED) == 0  # (strictly before: nothing is due yet)
    assert history.prune(finished_at + RETENTION_UNFILLED + 1) == 1
    assert history.get(unfilled.result.order_hash) is None and history.get(filled.result.order_hash) is not None
    assert history.prune(finished_at + RETENTION_FILLED + 1) == 2  # the filled maker and taker
    assert history.get(filled.result.order_hash) is None and history.get(taker.result.order_hash) is None
    assert history.get(live.result.order_hash).status is Status.RESTING  # live: kept
    assert list(store.iterate(prefix=keys.prefix_of(keys.Prefix.ORDER_PRUNE))) == []
