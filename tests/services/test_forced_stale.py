"""Forced requests other than withdrawals while a market's price is stale (docs/sequencer.md, "Queues").

An attacker with two accounts opens opposite positions, waits for the oracle to lag, and sends a
forced deleverage (anyone may) or a forced cancel-all: the request must wait at the head of the
forced queue (alert ``forced_request_waiting``, once) without stopping the engine, be consumed once
prices and funding are fresh, and come back to the queue if a rebuild at a fresh L1 time finds it
stale — also across a restart. A cancel-all reads no prices: alone it is consumed at once, behind a
waiting request it waits its turn (the queue is FIFO, as the Rollup checks it). On LevelDB; the anvil
tests in tests/l1/sequencer/test_forced_stale.py drive the same through the Bridge.
"""

from __future__ import annotations

import logging

import pytest
import trio

from optinode.services.engine import RebuildRequest, Rebuilt
from optinode.services.journal import ForcedCommand, Journal
from optinode.spec.constants import FORCED_CANCEL_ALL, FORCED_DELEVERAGE
from optinode.spec.errors import ErrorCode
from optinode.spec.types import FundingTick
from optinode.store.db import open_store
from optinode.testing.world import BTC, ETH, ETH_UNIT, USD

from tests.services.conftest import CONFIRMATIONS, FakeL1
from tests.services.test_engine import Harness, db, funded  # noqa: F401 - the db fixture
from tests.services.test_rebuild import _received, funded_engine

DELEVERAGE = FORCED_DELEVERAGE | 1 << 72 | ETH << 64 | ETH_UNIT // 10  # alice's (account 0) position against bob's (1)


def waiting_alerts(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "forced_request_waiting"]


def forced_entries(store) -> list:
    return [e for e in Journal(store).entries() if type(e.command) is ForcedCommand]


async def positions_then_stale(h: Harness, world, l1: FakeL1) -> None:
    """alice long, bob short 0.1 ETH in batch 1; then the L1 clock runs past the genesis price's validity."""
    await funded(h, world, l1)
    await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
    assert (await h.cut()).index == 1
    state = h.engine.state
    l1.time = state.markets[ETH].price_time + state.config.price_validity + 60


async def fresh_prices(h: Harness, world, now: int) -> None:
    state = h.engine.state
    for market in (ETH, BTC):
        price = state.markets[market].price
        await h.submitter.submit(world.prices(market, [(0, price, now), (1, price, now)]))
    await h.submitter.submit(FundingTick(now, tuple(m.funding_index for m in state.markets)))


@pytest.mark.trio
async def test_a_forced_deleverage_on_a_stale_price_waits_and_a_cancel_all_waits_behind_it(tmp_path, world, caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.engine")
    store = open_store(tmp_path / "db", identity="test")
    try:
        async with trio.open_nursery() as inner:
            h = await Harness(store, inner).start()
            l1 = FakeL1(store, world)
            await positions_then_stale(h, world, l1)
            state = h.engine.state
            # carol (neither account's owner: anyone may ask) forces a deleverage; alice a cancel-all behind it
            requests = [l1.forced("carol", 0, DELEVERAGE), l1.forced("alice", 0, FORCED_CANCEL_ALL | 500)]
            await h.send(*requests, l1.deposit("carol", 7 * USD))  # and a deposit after both
            world.ids["carol"] = 2
            await h.send(l1.head(CONFIRMATIONS + 1), l1.head(1), l1.head(1))
            assert state.forced_done == 0 and state.accounts[0].nonce_base == 0  # both wait (FIFO)
            assert state.deposits_done == 3  # deposits go on
            assert forced_entries(store) == []
            assert [r.fields["index"] for r in waiting_alerts(caplog)] == [0]  # once, for the head, over three heads
            assert waiting_alerts(caplog)[0].fields["reason"] in (ErrorCode.STALE_PRICE.name, ErrorCode.STALE_FUNDING.name)
            await h.submitter.submit(world.withdraw("carol", USD))  # the engine still serves (carol reads no price)
            inner.cancel_scope.cancel()
        # a restart does not stop on it either: the requests are the follower's stored events
        caplog.clear()
        async with trio.open_nursery() as inner:
            h = Harness(store, inner)
            for request in requests:
                h.engine.absorb(request)
            await h.start()
            state = h.engine.state
            await h.send(l1.head(1))
            assert state.forced_done == 0 and [r.fields["index"] for r in waiting_alerts(caplog)] == [0]
            await fresh_prices(h, world, l1.time)
            await h.send(l1.head(1))
            # consumed once each, in order: the deleverage (recorded with the spec's reason: alice is not
            # bankrupt), then the cancel-all (applied)
            assert state.forced_done == 2 and state.accounts[0].nonce_base == 500
            consumed = forced_entries(store)
            assert [e.command.index for e in consumed] == [0, 1]
            assert consumed[0].codes[0] != ErrorCode.OK and consumed[1].codes == (int(ErrorCode.OK),)
            inner.cancel_scope.cancel()
    finally:
        store.close()


@pytest.mark.trio
async def test_a_forced_cancel_all_reads_no_price_and_is_consumed_while_prices_are_stale(db, world, nursery) -> None:
    h = await Harness(db, nursery).start()
    l1 = FakeL1(db, world)
    await positions_then_stale(h, world, l1)
    await h.send(l1.forced("alice", 0, FORCED_CANCEL_ALL | 9), l1.head(CONFIRMATIONS + 1))
    assert h.engine.state.forced_done == 1 and h.engine.state.accounts[0].nonce_base == 9


@pytest.mark.trio
async def test_a_rebuild_that_finds_a_consumed_deleverage_stale_requeues_it_and_the_cancel_all_behind_it(tmp_path, world) -> None:
    """Both were consumed in batch 2 at a fresh time; batch 2 goes stale before it is posted (a long
    L1 outage) and is rebuilt after the prices went stale: neither is consumed by the rebuilt state
    (no deleverage executed on a stale price, no cancel-all jumping the queue), both go back to the
    head of the queue, and both are consumed live once prices are fresh, each once."""
    async with funded_engine(tmp_path, world) as (store, h, l1):
        await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
        assert (await h.cut()).index == 1
        await h.send(l1.forced("carol", 0, DELEVERAGE), l1.forced("alice", 0, FORCED_CANCEL_ALL | 500))
        await h.send(l1.head(CONFIRMATIONS + 1))
        state = h.engine.state
        assert state.forced_done == 2 and state.accounts[0].nonce_base == 500
        two = await h.cut()
        assert two.index == 2 and two.forced_done == 2
        l1.time = state.markets[ETH].price_time + state.config.price_validity + 60  # the outage
        await h.send(l1.head(1), RebuildRequest(2, 0))
        out = await _received(h)
        assert isinstance(out[0], Rebuilt) and out[0].from_index == 2
        assert state.forced_done == 0 and state.accounts[0].nonce_base == 0
        assert [e.dropped for e in forced_entries(store)] == ["WAITING_FOR_PRICE", "WAITING_FOR_PRICE"]
        assert all(r.forced_done == 0 for r in out[1:])  # no rebuilt batch claims them
        await h.send(l1.head(1))
        assert state.forced_done == 0  # still stale: they wait
        await fresh_prices(h, world, l1.time)
        await h.send(l1.head(1))
        assert state.forced_done == 2 and state.accounts[0].nonce_base == 500
        live = [e for e in forced_entries(store) if not e.dropped]
        assert [e.command.index for e in live] == [0, 1]  # once each, in order
