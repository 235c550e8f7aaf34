"""optinode_getOrder remembers finished orders across a restart: their status, reason and fills are
in the store (written in the same synced write batch as the log entry that finished them), so a
trading bot that reconciles after a node restart sees the same answer it saw before."""

from __future__ import annotations

import pytest
import trio

from optinode.exchange.mempool import Mempool
from optinode.services import rpc
from optinode.store.db import open_store
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK, FAR_EXPIRY

from tests.api.test_rpc import Api
from tests.services.conftest import FakeL1
from tests.services.test_engine import Harness, funded

pytestmark = pytest.mark.trio


async def serve(store, nursery) -> Api:
    h = await Harness(store, nursery).start()
    port = await nursery.start(rpc.run, rpc.RpcDeps(h.engine, h.submitter, Mempool(h.engine.state)))
    return Api(h, port)


async def test_finished_orders_keep_status_and_fills_across_a_restart(tmp_path, world) -> None:
    store = open_store(tmp_path / "db", identity="test")
    async with trio.open_nursery() as nursery:
        api = await serve(store, nursery)
        await funded(api.h, world, FakeL1(store, world))
        alice, bob = api.client("alice"), api.client("bob")
        # alice's bid rests, bob sells into part of it, alice cancels the rest: cancelled with one fill
        bid = await api.run(alice.send_order, 0, market=0, is_buy=True, size=3 * ETH_STEP, price=ETH_PRICE, nonce=1, expiry=FAR_EXPIRY)
        sold = await api.run(bob.send_order, 1, market=0, is_buy=False, size=ETH_STEP, price=ETH_PRICE - ETH_TICK, nonce=1, expiry=FAR_EXPIRY)
        assert sold["status"] == "filled"
        await api.run(alice.cancel_order, 0, bid["hash"])
        # a maker filled in full by two takers, and an IOC that found nothing
        ask = await api.run(alice.send_order, 0, market=0, is_buy=False, size=2 * ETH_STEP, price=ETH_PRICE + ETH_TICK, nonce=2, expiry=FAR_EXPIRY)
        for nonce in (2, 3):
            await api.run(bob.send_order, 1, market=0, is_buy=True, size=ETH_STEP, price=ETH_PRICE + ETH_TICK, nonce=nonce, expiry=FAR_EXPIRY)
        ioc = await api.run(bob.send_order, 1, market=0, is_buy=True, size=ETH_STEP, price=ETH_PRICE - 5 * ETH_TICK, nonce=4,
                            expiry=FAR_EXPIRY, timeInForce="ioc")
        assert ioc["status"] == "cancelled" and ioc["reason"] == "IOC_UNFILLED"
        # and one still resting, partially filled
        rest = await api.run(alice.send_order, 0, market=0, is_buy=True, size=2 * ETH_STEP, price=ETH_PRICE - 2 * ETH_TICK, nonce=3, expiry=FAR_EXPIRY)
        await api.run(bob.send_order, 1, market=0, is_buy=False, size=ETH_STEP, price=ETH_PRICE - 2 * ETH_TICK, nonce=5, expiry=FAR_EXPIRY)
        hashes = [bid["hash"], sold["hash"], ask["hash"], ioc["hash"], rest["hash"]]
        before = {h: await api.run(alice.call, "optinode_getOrder", h) for h in hashes}
        assert before[bid["hash"]]["status"] == "cancelled" and before[bid["hash"]]["filled"] == ETH_STEP
        assert before[ask["hash"]]["status"] == "filled" and len(before[ask["hash"]]["fills"]) == 2
        assert before[rest["hash"]]["status"] == "partially_filled" and len(before[rest["hash"]]["fills"]) == 1
        nursery.cancel_scope.cancel()
    store.close()
    store = open_store(tmp_path / "db", identity="test")
    async with trio.open_nursery() as nursery:
        api = await serve(store, nursery)
        client = api.client("alice")
        after = {h: await api.run(client.call, "optinode_getOrder", h) for h in hashes}
        nursery.cancel_scope.cancel()
    store.close()
    for h in hashes:
        assert after[h] == before[h], h


async def test_a_rebuild_rewrites_the_history_of_the_orders_it_re_applied(tmp_path, world) -> None:
    """A rebuild re-applies the log after a checkpoint (docs/sequencer.md, "Rebuilding batches"): the
    durable history must then say what holds now (before the fix it kept the discarded fills, and
    after a restart getOrder reported a fill that no batch holds)."""
    from optinode.exchange.orders import Placement, Status
    from optinode.services.engine import RebuildRequest

    from tests.services.conftest import make_engine
    from tests.services.test_rebuild import funded_engine

    async with funded_engine(tmp_path, world) as (store, h, l1):
        expiry = h.engine.head_time + 30
        early = await h.submitter.submit_book(Placement(world.order("bob", is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE - 3 * ETH_TICK)))
        await h.cut()  # the parent checkpoint: bob's bid rests in it
        short = await h.submitter.submit_book(Placement(world.order("alice", is_buy=True, size=2 * ETH_STEP, limit_price=ETH_PRICE, expiry=expiry)))
        taker = await h.submitter.submit_book(Placement(world.order("bob", is_buy=False, size=ETH_STEP, limit_price=ETH_PRICE)))
        hit = await h.submitter.submit_book(Placement(world.order("alice", is_buy=False, size=ETH_STEP, limit_price=ETH_PRICE - 3 * ETH_TICK)))
        assert taker.result.status is Status.FILLED and hit.result.status is Status.FILLED
        assert h.engine.history.get(early.result.order_hash).status is Status.FILLED
        await h.cut()
        await h.send(l1.head(10))  # alice's short-lived order has expired
        await h.send(RebuildRequest(2, 0))
        expected = {o.result.order_hash: h.engine.matcher.get(o.result.order_hash) for o in (early, short, taker, hit)}
    store = open_store(tmp_path / "db", identity="test")
    history = make_engine(store).history
    dropped = history.get(short.result.order_hash)
    assert dropped.status is Status.REJECTED and dropped.reason == "EXPIRED" and dropped.fills == ()
    rests = history.get(taker.result.order_hash)  # its maker is gone: it rests, unfilled
    assert rests.status is Status.RESTING and rests.fills == () and expected[taker.result.order_hash] is not None
    # bob's early bid (placed before the checkpoint: its record is rewound, not deleted) is filled
    # again by alice's re-applied sell, the best bid once alice's own expired bid is gone
    again = history.get(early.result.order_hash)
    assert again.status is Status.FILLED and [f.taker_hash for f in again.fills] == [hit.result.order_hash]
    assert [f.seq for f in again.fills] == [hit.seq] and len(history.get(hit.result.order_hash).fills) == 1
    store.close()
