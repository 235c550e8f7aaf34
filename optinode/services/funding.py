"""The funding service: samples the premium of each book over its oracle and ticks the funding index.

    await nursery.start(funding.run, FundingDeps(view, submitter, FundingPolicy(...)))

Every `sample_interval` seconds it records each market's premium, `(mid - oracle) / oracle` (no
sample while a side of the book is empty); every `interval` seconds it submits one `FundingTick`
for all markets, stamped with the newest L1 time, whose index changes are the averaged premium's
rate over the time since the last tick (`exchange.funding_rate`: premium plus clamped interest,
per period, clamped to the market's max rate, rounded toward zero) — within the spec's bound by
construction, and checked by the spec on a copy (`what_if`) before it is submitted.

A tick goes out even when every rate is zero: the spec refuses trades, liquidations and withdrawals
that read funding older than `funding_validity` (docs/risk.md §6), so regular ticks are what keep
the exchange open. The interval must therefore stay well below that window.

Timeouts: the acknowledgement wait is bounded by `submit_timeout`; a refused or late tick keeps
the samples and is tried again at the next premium sample (not a whole interval later), and the
next one covers the whole elapsed time (the rate is per second, so nothing is lost or paid twice).
A tick the engine refuses is never logged or posted: the engine runs the spec again, so a tick a
price update overtook (its change computed at the old price no longer fits the bound) is only
retried. After an accepted tick the liquidator is nudged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from optinode.exchange.funding_rate import PremiumAverage, compute_index_change, compute_premium, compute_rate_per_second
from optinode.exchange.what_if import what_if
from optinode.services.engine import Rejected, Submitter
from optinode.services.market_view import EngineView
from optinode.spec.state import State
from optinode.spec.types import FundingTick, L1Context

log = logging.getLogger("optinode.services.funding")


@dataclass(frozen=True)
class FundingPolicy:
    interval: float = 60.0
    sample_interval: float = 5.0
    submit_timeout: float = 10.0
    period: int = 28_800
    interest_ppm: int = 0
    interest_band_ppm: int = 500


def compute_funding_tick(state: State, premiums: list[PremiumAverage], now: int, policy: FundingPolicy) -> FundingTick | None:
    """The tick at L1 time `now`, or None when time has not moved past the last tick and the system time."""
    if now <= state.funding_time or now < state.time:
        return None
    elapsed = now - state.funding_time
    indices = []
    for market, config, premium in zip(state.markets, state.config.markets, premiums):
        rate = compute_rate_per_second(premium.mean(), period=policy.period, interest_ppm=policy.interest_ppm,
                                       band_ppm=policy.interest_band_ppm, max_rate=config.max_funding_rate)
        indices.append(market.funding_index + compute_index_change(rate, market.price, elapsed))
    return FundingTick(now, tuple(indices))


@dataclass
class FundingDeps:
    view: EngineView
    submitter: Submitter
    policy: FundingPolicy = FundingPolicy()
    nudge: trio.MemorySendChannel[None] | None = None
    premiums: list[PremiumAverage] = field(default_factory=list)
    ticks: int = 0
    refused: dict[str, int] = field(default_factory=dict)


def sample_premiums(deps: FundingDeps) -> None:
    state = deps.view.state
    for market, premium in enumerate(deps.premiums):
        mid = deps.view.mid(market)
        if mid is not None:
            premium.add(compute_premium(mid, state.markets[market].price))


async def tick(deps: FundingDeps) -> bool:
    view = deps.view
    now = view.l1_time()
    state = view.state
    tx = compute_funding_tick(state, deps.premiums, now, deps.policy)
    if tx is None:
        return False
    receipt = what_if(state, tx, L1Context(max(now, view.tx_time())))
    if not receipt.ok:
        return _refuse(deps, receipt.code.name)
    with trio.move_on_after(deps.policy.submit_timeout) as scope:
        try:
            await deps.submitter.submit(tx)
        except Rejected as rejected:
            return _refuse(deps, rejected.code.name)
    if scope.cancelled_caught:
        return _refuse(deps, "TIMEOUT")
    deps.ticks += 1
    for premium in deps.premiums:
        premium.reset()
    if deps.nudge is not None:
        try:
            deps.nudge.send_nowait(None)
        except trio.WouldBlock:
            pass
    return True


def _refuse(deps: FundingDeps, reason: str) -> bool:
    deps.refused[reason] = deps.refused.get(reason, 0) + 1
    log.info("funding tick not submitted: %s", reason)
    return False


async def run(deps: FundingDeps, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    policy = deps.policy
    deps.premiums = [PremiumAverage() for _ in deps.view.state.markets]
    task_status.started()
    next_tick = trio.current_time() + policy.interval
    while True:
        sample_premiums(deps)
        if trio.current_time() >= next_tick:
            # A tick not applied (refused: e.g. a price update overtook it between the check and the
            # engine, so its change no longer fits the spec's bound at the new price; or late) is tried
            # again at the next sample, not a whole interval later: funding must not go stale.
            accepted = await tick(deps)
            next_tick = trio.current_time() + (policy.interval if accepted else policy.sample_interval)
        await trio.sleep(min(policy.sample_interval, max(0.0, next_tick - trio.current_time())))
