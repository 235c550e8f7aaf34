"""The oracle feed: collects signed price samples and has the engine include an `OraclePrice`.

    source = DevnetWalkSource(walk, signers, domain_separator)      # or a real feed (PriceSource)
    await nursery.start(oracle_feed.run, OracleDeps(view, submitter, source, interval=1.0))

Every `interval` seconds, for each market whose last samples are older than the newest L1 time, it
asks the `PriceSource` for one signed sample per oracle, keeps one usable sample per oracle (each
checked alone against the spec's per-sample rules, so that one bad sample cannot sink the update),
sorts them by oracle index, and —
if they reach the quorum — runs the `OraclePrice` through the spec on a copy (`what_if`) before
submitting it. It submits every valid sample it has, not just a quorum: the lower median of more
honest samples is closer to the middle, and a sequencer that drops samples gains nothing (the
quorum rule keeps even the worst subset's median between honest samples, docs/risk.md §5).

**Sources.** `DevnetWalkSource` signs the devnet walk with the devnet's public oracle keys;
`services.http_price.HttpPriceSource` (``source = "http"``) fetches each market's price from an HTTP
JSON API and signs it with the oracle keys this node holds, only once it verified it. Anything else
implementing `PriceSource.collect` (Chainlink Data Streams, Pyth, other operators' signers) fits the
same slot; the feed checks every sample's signature whatever the source. A source that holds
connections has `aclose()`, called when the feed stops.

Timeouts: collecting is bounded by `collect_timeout` and the durable acknowledgement by
`submit_timeout`; a slow source or a stalled engine costs one update, never the service. After an
accepted update the liquidator is nudged (a bounded channel of one; a nudge already waiting is
enough).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import trio

from optinode.exchange.price_walk import PriceWalk
from optinode.exchange.what_if import what_if
from optinode.services.engine import Rejected, Submitter
from optinode.services.market_view import EngineView
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import compute_typed_digest, hash_oracle_price
from optinode.spec.state import State
from optinode.spec.types import L1Context, OraclePrice, PriceSample
from optinode.wallet import Key, sign_price

log = logging.getLogger("optinode.services.oracle_feed")


class PriceSource(Protocol):
    """Where signed samples come from. `collect` returns what it has for `market` (any oracles, any
    order; the service filters): samples must be newer than `newer_than` and not after `now` (the
    L1 time the update will be judged against)."""

    async def collect(self, state: State, market: int, *, newer_than: int, now: int) -> list[PriceSample]: ...


def get_max_move(state: State, market: int) -> int:
    """The spec's maximum price move per second for the market (parts per million of the last price;
    0: none)."""
    return state.config.markets[market].max_price_move


def get_quorum(state: State, market: int) -> int:
    """The samples an update of the market needs: the market's own quorum (`MarketConfig.quorum`,
    committed in the state). There is no global quorum to fall back to: each market's oracle rule
    (its oracle set, f and quorum) is its own (docs/risk.md §5)."""
    return state.config.markets[market].quorum


def is_market_oracle(state: State, market: int, oracle_index: int) -> bool:
    """Whether the oracle signs this market's prices: its bit is in the market's oracle set (a
    bitmask over the genesis oracles)."""
    oracle_set = state.config.markets[market].oracle_set
    return 0 <= oracle_index < len(state.config.oracles) and (oracle_set >> oracle_index) & 1 == 1


@dataclass
class DevnetWalkSource:
    """The devnet's oracles: each configured signer signs its own sample of the walk."""

    walk: PriceWalk
    signers: list[tuple[int, Key]]  # (oracle index in the genesis, key)

    async def collect(self, state: State, market: int, *, newer_than: int, now: int) -> list[PriceSample]:
        if now <= newer_than:
            return []
        last = state.markets[market]
        max_move = get_max_move(state, market)
        self.walk.step(market, now, max_move)
        elapsed = now - last.price_time
        domain = state.config.domain_separator
        return [
            sign_price(key, domain, index, market,
                       self.walk.sample_price(market, index, last_price=last.price, elapsed=elapsed, max_move_ppm_per_s=max_move), now)
            for index, key in self.signers
        ]


def is_sample_usable(state: State, market: int, sample: PriceSample, now: int) -> bool:
    """The spec's per-sample rules for one sample (oracle of the market, positive price, newer than the
    market's last samples, not after `now` and not older than max_sample_age, signed by that oracle),
    so that one bad sample — a lying or broken source — cannot sink the whole update. The spec runs
    every rule again on the update before it is submitted."""
    if not is_market_oracle(state, market, sample.oracle_index) or sample.price <= 0:
        return False
    if not state.markets[market].sample_time < sample.timestamp <= now or sample.timestamp + state.config.max_sample_age < now:
        return False
    digest = compute_typed_digest(state.config.domain_separator, hash_oracle_price(market, sample))
    return recover_signer(digest, sample.signature) == state.config.oracles[sample.oracle_index]


def select_samples(state: State, market: int, samples: list[PriceSample], now: int) -> tuple[PriceSample, ...]:
    """One usable sample per oracle of the market (the newest), sorted by oracle index (the spec's
    order rule)."""
    newest: dict[int, PriceSample] = {}
    for sample in samples:
        if not is_sample_usable(state, market, sample, now):
            continue
        kept = newest.get(sample.oracle_index)
        if kept is None or sample.timestamp > kept.timestamp:
            newest[sample.oracle_index] = sample
    return tuple(newest[i] for i in sorted(newest))


@dataclass
class OracleDeps:
    view: EngineView
    submitter: Submitter
    source: PriceSource
    interval: float = 1.0
    collect_timeout: float = 2.0
    submit_timeout: float = 10.0
    nudge: trio.MemorySendChannel[None] | None = None  # the liquidator's wake-up
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)


async def update_market(deps: OracleDeps, market: int) -> bool:
    """One update of one market; True if the engine accepted it."""
    view = deps.view
    now = view.l1_time()
    last = view.state.markets[market]
    if now <= last.sample_time:
        return False  # no L1 time has passed since the last samples: nothing newer can be valid
    samples: list[PriceSample] = []
    with trio.move_on_after(deps.collect_timeout):
        samples = await deps.source.collect(view.state, market, newer_than=last.sample_time, now=now)
    state = view.state  # (read again: the engine may have moved while we waited)
    chosen = select_samples(state, market, samples, now)
    if len(chosen) < get_quorum(state, market):
        _refuse(deps, "QUORUM_NOT_MET")
        return False
    tx = OraclePrice(market, chosen)
    receipt = what_if(state, tx, L1Context(max(now, view.tx_time())))
    if not receipt.ok:
        _refuse(deps, receipt.code.name)
        return False
    with trio.move_on_after(deps.submit_timeout) as scope:
        try:
            await deps.submitter.submit(tx)
        except Rejected as rejected:
            _refuse(deps, rejected.code.name)
            return False
    if scope.cancelled_caught:
        _refuse(deps, "TIMEOUT")
        return False
    deps.accepted += 1
    if deps.nudge is not None:
        try:
            deps.nudge.send_nowait(None)
        except trio.WouldBlock:
            pass  # a nudge is already waiting
    return True


def _refuse(deps: OracleDeps, reason: str) -> None:
    deps.refused[reason] = deps.refused.get(reason, 0) + 1
    log.info("oracle update not submitted: %s", reason)


async def run(deps: OracleDeps, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    try:
        while True:
            for market in range(len(deps.view.state.markets)):
                await update_market(deps, market)
            await trio.sleep(deps.interval)
    finally:
        # A source that holds connections (the HTTP source's client) has `aclose`; the walk holds none.
        aclose = getattr(deps.source, "aclose", None)
        if aclose is not None:
            with trio.CancelScope(shield=True, deadline=trio.current_time() + 2.0):  # closing never hangs the shutdown
                await aclose()
