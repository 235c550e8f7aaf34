"""The market services' wiring: `[market_services]` config → the oracle feed, funding and liquidator tasks.

    keys = load_market_keys(config.market_services, genesis.oracles, devnet=True)   # before trio.run
    await start(nursery, engine, submitter, config.market_services, keys)

Off unless ``enabled``. Each enabled service is started with `nursery.start` (ready when it returns); the oracle feed and
the funding service share one nudge channel of capacity 1 to the liquidator (a nudge already
waiting is enough: the liquidator looks at everything that moved). Keys are loaded and checked here
by `load_market_keys` before the node starts (the CLI does it next to the proposer key), so that a
wrong key stops the node with a one-line error, not at the first price.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import trio

from optinode.config import ConfigError, MarketServicesSection, load_signer
from optinode.exchange.price_walk import Crash, PriceWalk, WalkParams
from optinode.services import funding, http_price, liquidator, oracle_feed
from optinode.services.engine import Engine, Submitter
from optinode.services.market_view import EngineView
from optinode.spec.state import State
from optinode.wallet import Key

log = logging.getLogger("optinode.services.market_services")


@dataclass(frozen=True)
class MarketKeys:
    """The market services' keys, loaded before the node starts (a wrong key stops it at start-up)."""

    oracle_signers: tuple[tuple[int, Key], ...] = ()  # (genesis oracle index, key), by index
    liquidator: Key | None = None


def load_market_keys(section: MarketServicesSection, oracles: tuple[bytes, ...], *, devnet: bool, base_dir: Path | None = None) -> MarketKeys:
    """Load the configured keys; an oracle signer that is no genesis oracle (or is listed twice) is an error."""
    if not section.enabled:
        return MarketKeys()
    index_of = {address: i for i, address in enumerate(oracles)}
    signers: dict[int, Key] = {}
    for i, source in enumerate(section.oracle.signers if section.oracle else ()):
        where = f"market_services.oracle.signers[{i}]"
        key = load_signer(source, where, devnet=devnet, base_dir=base_dir).signing_key()
        if key.address not in index_of:
            raise ConfigError(f"{where}: 0x{key.address.hex()} is not an oracle of the genesis")
        if index_of[key.address] in signers:
            raise ConfigError(f"{where}: oracle {index_of[key.address]} is listed twice")
        signers[index_of[key.address]] = key
    liquidator_key = None
    if section.liquidator is not None:
        liquidator_key = load_signer(section.liquidator.key, "market_services.liquidator.key", devnet=devnet, base_dir=base_dir).signing_key()
    return MarketKeys(tuple(sorted(signers.items())), liquidator_key)


def make_walk(section: MarketServicesSection, state: State) -> PriceWalk:
    assert section.oracle is not None
    o = section.oracle
    params = WalkParams(o.seed, o.volatility_ppm, o.spread_ppm, o.max_move_ppm_per_s,
                        tuple(Crash(c.market, c.after_updates, c.drop_ppm) for c in o.crash))
    return PriceWalk(params, [m.price for m in state.markets], [c.tick_size for c in state.config.markets], None)


def make_source(section: MarketServicesSection, state: State, keys: MarketKeys) -> oracle_feed.PriceSource:
    """The configured price source: the devnet walk, or the HTTP JSON source (services/http_price.py)."""
    o = section.oracle
    assert o is not None
    if o.source == "walk":
        return oracle_feed.DevnetWalkSource(make_walk(section, state), list(keys.oracle_signers))
    assert o.http is not None  # config.check_http_source
    h = o.http
    endpoints = {m.market: http_price.HttpEndpoint(m.market, m.url, http_price.parse_path(m.price_path), m.base_decimals,
                                                   None if m.time_path is None else http_price.parse_path(m.time_path),
                                                   1000 if m.time_unit == "ms" else 1,
                                                   None if m.oracles is None else frozenset(m.oracles))
                 for m in h.markets}
    policy = http_price.HttpPolicy(timeout=h.timeout, retries=h.retries, backoff=h.backoff, max_staleness=h.max_staleness,
                                   max_body_bytes=h.max_body_bytes)
    return http_price.HttpPriceSource(endpoints, list(keys.oracle_signers), policy)


async def start(nursery: trio.Nursery, engine: Engine, submitter: Submitter, section: MarketServicesSection, keys: MarketKeys) -> list[str]:
    """Start the enabled services; returns their names."""
    if not section.enabled:
        return []
    view = EngineView(engine)
    nudge_send, nudge_receive = trio.open_memory_channel[None](1)
    started = []
    if section.liquidator is not None:
        c = section.liquidator
        deps = liquidator.LiquidatorDeps(view, submitter, keys.liquidator, nudges=nudge_receive, interval=c.interval,
                                         submit_timeout=c.submit_timeout, order_expiry=c.order_expiry, max_actions=c.max_actions,
                                         rebase_ppm=c.rebase_ppm)
        await nursery.start(liquidator.run, deps)
        started.append("liquidator")
    if section.oracle is not None:
        o = section.oracle
        source = make_source(section, engine.state, keys)
        await nursery.start(oracle_feed.run, oracle_feed.OracleDeps(view, submitter, source, interval=o.interval, collect_timeout=o.collect_timeout,
                                                                    submit_timeout=o.submit_timeout, nudge=nudge_send.clone()))
        started.append("oracle_feed")
    if section.funding is not None:
        f = section.funding
        policy = funding.FundingPolicy(interval=f.interval, sample_interval=f.sample_interval, submit_timeout=f.submit_timeout,
                                       period=f.period, interest_ppm=f.interest_ppm, interest_band_ppm=f.interest_band_ppm)
        await nursery.start(funding.run, funding.FundingDeps(view, submitter, policy, nudge=nudge_send.clone()))
        started.append("funding")
    await nudge_send.aclose()
    log.info("market services running: %s", ", ".join(started) or "none")
    return started
