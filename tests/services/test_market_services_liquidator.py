"""The liquidator's own account (docs/market-services.md, "The liquidator account"): the positions it
takes over can push it below maintenance like anyone's, so it is in the risk index like any other
account — alerted when below maintenance, deleveraged when bankrupt — and it never emits a
liquidation its own margin cannot carry (the spec's Liquidate rule 9)."""

from __future__ import annotations

import logging

import pytest

from optinode.services import liquidator
from optinode.services.market_view import EngineView
from optinode.spec.errors import ErrorCode
from optinode.spec.margin import compute_settled_funding, get_total_risk, get_value_and_risk
from optinode.spec.types import Deleverage, Liquidate
from optinode.store.memory import open_memory
from optinode.testing.world import ETH, ETH_UNIT, USD, test_key

from tests.services.conftest import FakeL1
from tests.services.test_engine import Harness
from tests.services.test_market_services import NO_TIMEOUT, idle, leveraged, logged, set_price, until, value_and_risk

ALICE, BOB, LIQUIDATOR = 0, 1, 2


@pytest.fixture
def store():
    return open_memory()


async def started(h, **kwargs) -> liquidator.LiquidatorDeps:
    deps = liquidator.LiquidatorDeps(EngineView(h.engine), h.submitter, test_key("liquidator"), interval=1.0,
                                     submit_timeout=NO_TIMEOUT, **kwargs)
    await h.nursery.start(liquidator.run, deps)
    return deps


@pytest.mark.trio
async def test_the_liquidators_own_account_is_indexed_alerted_and_deleveraged_when_bankrupt(store, world, nursery, autojump_clock, caplog) -> None:
    """Before the fix the liquidator left its own account out of the index: after taking alice's long
    over, a further fall made it bankrupt and nothing was ever emitted for it (its deficit stayed)."""
    caplog.set_level(logging.INFO, logger="optinode.services.liquidator")
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await leveraged(h, world, l1, liquidator_funds=300 * USD)  # just enough to take 1 ETH at 2800 (initial 280)
    deps = await started(h)
    await set_price(h, world, l1, "2800")
    await until(h, lambda: deps.emitted["Liquidate"])
    state = h.engine.state
    assert state.accounts[LIQUIDATOR].positions[ETH].size == ETH_UNIT  # it took alice's long over
    assert deps.index.keys.get(LIQUIDATOR) is not None  # and its own account is in the index

    await set_price(h, world, l1, "2600")  # liquidator: TV 100 < TR 130, not bankrupt
    await idle(h, 3)
    alerts = [r for r in caplog.records if getattr(r, "event", None) == "liquidator_below_maintenance"]
    assert len(alerts) == 1 and alerts[0].fields["account"] == LIQUIDATOR  # once, not every round
    assert deps.emitted["Deleverage"] == 0  # nothing valid yet: it cannot liquidate itself
    assert LIQUIDATOR in deps.index.parked

    await set_price(h, world, l1, "2400")  # liquidator: TV = 300 - 400 = -100 + penalty; the fund cannot cover it
    await until(h, lambda: deps.emitted["Deleverage"])
    assert logged(h.engine, Deleverage) == [Deleverage(LIQUIDATOR, BOB, ETH, ETH_UNIT)]
    state = h.engine.state
    assert not state.accounts[LIQUIDATOR].positions and state.accounts[LIQUIDATOR].collateral >= 0  # no deficit left behind
    await idle(h, 2)
    assert any(getattr(r, "event", None) == "liquidator_healthy" for r in caplog.records)


@pytest.mark.trio
async def test_a_liquidator_short_of_margin_takes_only_what_its_margin_carries(store, world, nursery, autojump_clock) -> None:
    """With 100 USD it cannot take alice's whole 1 ETH at 2800 (initial margin 280): the spec would
    refuse that Liquidate (rule 9), so the service must not emit it; it takes the largest part its
    margin carries and every emitted liquidation leaves it at or above initial margin."""
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await leveraged(h, world, l1, liquidator_funds=100 * USD)
    deps = await started(h)
    await set_price(h, world, l1, "2800")
    await until(h, lambda: deps.emitted["Liquidate"])
    await idle(h, 3)
    liquidations = logged(h.engine, Liquidate)
    assert liquidations and all(tx.size < ETH_UNIT for tx in liquidations)  # never the whole position
    assert deps.refused.get(ErrorCode.INSUFFICIENT_MARGIN.name, 0) == 0  # nothing the engine had to refuse
    state = h.engine.state
    collateral, positions, _ = compute_settled_funding(state, state.accounts[LIQUIDATOR])
    value, _ = get_value_and_risk(state, collateral, positions)
    assert value >= get_total_risk(state, positions, initial=True)  # its exposure needs initial margin, and has it
    assert state.accounts[LIQUIDATOR].positions[ETH].size == sum(tx.size for tx in liquidations)
    assert value_and_risk(state, LIQUIDATOR)[0] > 0
