"""The market services against a real engine (in-memory store, hand-made L1 heads), on trio's
autojump clock: the devnet oracle feed, funding ticks, the liquidator (liquidation, then deleverage
once the insurance fund cannot cover), their wiring from config and their clean cancellation."""

from __future__ import annotations

import math

import msgspec
import pytest
import trio

from optinode.config import CrashSection, load_config
from optinode.exchange.orders import Placement
from optinode.exchange.price_walk import Crash, PriceWalk, WalkParams
from optinode.services import funding, liquidator, market_services, oracle_feed
from optinode.services.market_view import EngineView
from optinode.spec.constants import FUNDING_RATE_ONE, PRICE_ONE
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import compute_typed_digest, hash_oracle_price
from optinode.spec.margin import compute_settled_funding, get_value_and_risk
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import Deleverage, FundingTick, Liquidate, OraclePrice
from optinode.store.memory import open_memory
from optinode.testing.world import ETH, ETH_UNIT, USD, oracle_key, price_of, test_key
from optinode.wallet import sign_price

from tests.services.conftest import FakeL1
from tests.services.test_engine import Harness, funded

REPO_CONFIG = "configs/devnet.toml"
# The autojump clock jumps to the next deadline whenever every task is blocked, including while the
# engine's log write runs in a thread: any finite submit timeout can fire in virtual time while the
# engine is merely writing (seen on a loaded machine with 10**6 s). An infinite one is never jumped
# to. The services' own timeouts are tested with a source that never answers.
NO_TIMEOUT = math.inf


def signers(n: int = 3):
    return [(i, oracle_key(i)) for i in range(n)]


def walk_for(engine, **params) -> PriceWalk:
    state = engine.state
    return PriceWalk(WalkParams(**params), [m.price for m in state.markets], [c.tick_size for c in state.config.markets], None)


def logged(engine, kind):
    return [tx for entry in engine.journal.entries(0) for tx in map(decode_transaction, entry.records) if isinstance(tx, kind)]


async def heads(h: Harness, l1: FakeL1, count: int, every: float = 1.0) -> None:
    """`count` L1 blocks (12 s of L1 time each), one per `every` seconds of the (autojump) clock, then
    two seconds for the services to act on the last one."""
    for _ in range(count):
        await h.send(l1.head())
        await trio.sleep(every)
    await idle(h, 2)


async def running_engine(store, world, nursery) -> tuple[Harness, FakeL1]:
    """An engine service with one L1 head seen."""
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await h.send(l1.head())
    return h, l1


def feed(h: Harness, oracles: int = 3, **walk) -> oracle_feed.OracleDeps:
    source = oracle_feed.DevnetWalkSource(walk_for(h.engine, **walk), signers(oracles))
    return oracle_feed.OracleDeps(EngineView(h.engine), h.submitter, source, interval=1.0, submit_timeout=NO_TIMEOUT)


async def idle(h: Harness, seconds: float) -> None:
    """Let the services run for `seconds`, then wait for the engine to be idle (it applies a group
    before its log write returns: the state and the log agree only once it is idle)."""
    await trio.sleep(seconds)
    await h.settle()


async def until(h: Harness, condition, seconds: float = 60.0) -> None:
    """Let the services run until `condition()` holds (at most `seconds` of the autojump clock, which
    also jumps while the engine's log write runs in a thread), then wait for the engine to be idle."""
    with trio.move_on_after(seconds):
        while not condition():
            await trio.sleep(0.1)
    await h.settle()


@pytest.fixture
def store():
    return open_memory()


# --- the oracle feed ------------------------------------------------------------------------------


@pytest.mark.trio
async def test_oracle_feed_each_oracle_signs_its_own_sample_and_the_engine_includes_the_update(store, world, nursery, autojump_clock) -> None:
    h, l1 = await running_engine(store, world, nursery)
    deps = feed(h, seed=3)
    await nursery.start(oracle_feed.run, deps)
    await heads(h, l1, 5)
    updates = logged(h.engine, OraclePrice)
    assert deps.accepted == len(updates) >= 8  # both markets, once per L1 block
    domain = h.engine.state.config.domain_separator
    for update in updates:
        assert [s.oracle_index for s in update.samples] == [0, 1, 2]  # every oracle, in the spec's order
        assert len({s.price for s in update.samples}) > 1  # each its own sample (the spread)
        for s in update.samples:
            digest = compute_typed_digest(domain, hash_oracle_price(update.market, s))
            assert recover_signer(digest, s.signature) == oracle_key(s.oracle_index).address
    eth = h.engine.state.markets[ETH]
    last = [u for u in updates if u.market == ETH][-1]
    assert eth.price == sorted(s.price for s in last.samples)[1]  # the spec's median of what was signed
    assert eth.sample_time == l1.time  # fresh against the newest L1 time


@pytest.mark.trio
async def test_oracle_feed_waits_for_l1_time_and_below_quorum_submits_nothing(store, world, nursery, autojump_clock) -> None:
    h, l1 = await running_engine(store, world, nursery)
    lonely = feed(h, oracles=1)
    await nursery.start(oracle_feed.run, lonely)
    await idle(h, 5)
    assert lonely.accepted == 0 and lonely.refused["QUORUM_NOT_MET"] >= 5  # one oracle of quorum 2
    full = feed(h)
    await nursery.start(oracle_feed.run, full)
    await idle(h, 5)
    assert full.accepted == 2  # one per market: L1 time has not moved since, so no newer sample can be valid
    await heads(h, l1, 1)
    assert full.accepted == 4


class BadSamplesFirst:
    """The devnet walk's samples, each oracle's preceded by a bad one of the same time: oracle 0's with
    another oracle's signature, oracle 1's with a price of 0 (properly signed)."""

    def __init__(self, walk_source) -> None:
        self.walk_source = walk_source

    async def collect(self, state, market, *, newer_than, now):
        good = await self.walk_source.collect(state, market, newer_than=newer_than, now=now)
        broken = msgspec.structs.replace(good[0], signature=good[1].signature)
        zero = sign_price(oracle_key(1), state.config.domain_separator, 1, market, 0, now)
        return [broken, zero] + good


@pytest.mark.trio
async def test_bad_samples_are_left_out_one_by_one_and_the_update_goes_through(store, world, nursery, autojump_clock) -> None:
    h, l1 = await running_engine(store, world, nursery)
    deps = feed(h, oracles=3)
    deps.source = BadSamplesFirst(deps.source)
    await nursery.start(oracle_feed.run, deps)
    await heads(h, l1, 2)
    updates = logged(h.engine, OraclePrice)
    assert deps.accepted == len(updates) >= 4
    assert all([s.oracle_index for s in u.samples] == [0, 1, 2] and min(s.price for s in u.samples) > 0 for u in updates)


class SlowSource:
    async def collect(self, state, market, *, newer_than, now):
        await trio.sleep_forever()


@pytest.mark.trio
async def test_a_source_that_never_answers_costs_one_update_per_timeout(store, world, nursery, autojump_clock) -> None:
    h, l1 = await running_engine(store, world, nursery)
    deps = oracle_feed.OracleDeps(EngineView(h.engine), h.submitter, SlowSource(), interval=1.0, collect_timeout=2.0)
    await nursery.start(oracle_feed.run, deps)
    await idle(h, 30)
    assert deps.accepted == 0 and deps.refused["QUORUM_NOT_MET"] >= 5  # still running, nothing sent


def test_the_walk_is_deterministic_bounded_and_its_crash_plays_out_within_the_bound() -> None:
    def run(seed, max_move=0):
        walk = PriceWalk(WalkParams(seed=seed, volatility_ppm=2_000, max_move_ppm_per_s=max_move,
                                    crashes=(Crash(ETH, 3, 300_000),)), [3 * PRICE_ONE], [10_000], 0)
        return [walk.step(ETH, 12 * (n + 1)) for n in range(20)]

    assert run(1) == run(1) and run(1) != run(2)
    free = run(1)
    assert free[3] < free[2] * 0.75  # unbounded: the crash is one step
    bounded = run(1, max_move=1_000)  # 0.1% per second: at most 1.2% per 12 s step
    for before, after in zip([3 * PRICE_ONE] + bounded, bounded):
        assert abs(after - before) <= before * 1_000 * 12 // 10**6
    assert bounded[-1] < 3 * PRICE_ONE * 0.85  # it still falls, over many steps


# --- funding ---------------------------------------------------------------------------------------


@pytest.mark.trio
async def test_funding_ticks_on_schedule_from_the_premium_within_the_spec_bound(store, world, nursery, autojump_clock) -> None:
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await funded(h, world, l1)
    # a book above the oracle (3000): bid 3030, ask 3090, mid 3060, premium 2%
    for name, is_buy, usd in (("alice", True, "3030"), ("bob", False, "3090")):
        await h.submitter.submit_book(Placement(world.order(name, is_buy=is_buy, size=ETH_UNIT // 10, limit_price=price_of(ETH, usd))))
    state = h.engine.state
    before = [m.funding_index for m in state.markets]
    start_time = state.funding_time
    deps = funding.FundingDeps(EngineView(h.engine), h.submitter, funding.FundingPolicy(interval=60.0, sample_interval=5.0, submit_timeout=NO_TIMEOUT))
    await nursery.start(funding.run, deps)
    for _ in range(2):
        await heads(h, l1, 5, every=12.0)
    ticks = logged(h.engine, FundingTick)
    assert deps.ticks == len(ticks) == 2 and ticks[0].timestamp > start_time
    eth = state.config.markets[ETH]
    # 2% per 8 h is far above the market's max rate (1e5 / 1e12 per second): the tick is clamped to it
    elapsed = ticks[0].timestamp - start_time
    assert ticks[0].indices[ETH] - before[ETH] == eth.max_funding_rate * state.markets[ETH].price * elapsed // FUNDING_RATE_ONE > 0
    assert ticks[0].indices[1] == before[1]  # no BTC book: no premium, a zero-rate tick (it keeps funding fresh)
    assert state.funding_time == ticks[-1].timestamp


def test_the_premium_rate_is_the_average_over_the_period_with_the_interest_band() -> None:
    from optinode.exchange.funding_rate import PremiumAverage, compute_premium, compute_rate_per_second

    premium = PremiumAverage()
    for mid in (3003, 3000, 2997, 3006):  # +0.1%, 0, -0.1%, +0.2%: mean +0.05%
        premium.add(compute_premium(mid * PRICE_ONE, 3000 * PRICE_ONE))
    assert premium.mean() == 5 * 10**8  # 0.05% of 1e12
    # + clamp(0.01% - 0.05%, ±0.05%) = 0.01% per 8 h
    rate = compute_rate_per_second(premium.mean(), period=28_800, interest_ppm=100, band_ppm=500, max_rate=10**9)
    assert rate == 10**8 // 28_800
    assert compute_rate_per_second(10**12, period=1, interest_ppm=0, band_ppm=0, max_rate=7) == 7


# --- the liquidator ----------------------------------------------------------------------------------


async def leveraged(h: Harness, world, l1: FakeL1, *, liquidator_funds: int = 10_000 * USD):
    """alice 300 USD long 1 ETH at 3000 from bob (5,000 USD): exactly at initial margin. The liquidator
    account (the devnet seed key) holds `liquidator_funds`."""
    amounts = [("alice", 300 * USD), ("bob", 5_000 * USD)] + ([("liquidator", liquidator_funds)] if liquidator_funds else [])
    await funded(h, world, l1, amounts)
    await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT))


async def set_price(h: Harness, world, l1: FakeL1, usd: str) -> None:
    await h.send(l1.head())
    samples = [(i, price_of(ETH, usd), l1.time) for i in range(2)]
    await h.submitter.submit(world.prices(ETH, samples))


def enabled_services(**oracle):
    """The devnet config's [market_services], enabled, with `oracle` overrides (and no real-time timeouts)."""
    section = load_config(REPO_CONFIG).market_services
    return msgspec.structs.replace(
        section, enabled=True,
        oracle=msgspec.structs.replace(section.oracle, submit_timeout=NO_TIMEOUT, **oracle),
        funding=msgspec.structs.replace(section.funding, submit_timeout=NO_TIMEOUT),
        liquidator=msgspec.structs.replace(section.liquidator, submit_timeout=NO_TIMEOUT),
    )


def value_and_risk(state, account_id):
    collateral, positions, _ = compute_settled_funding(state, state.accounts[account_id])
    return get_value_and_risk(state, collateral, positions)


@pytest.mark.trio
async def test_the_liquidator_liquidates_an_account_below_maintenance_after_a_price_move(store, world, nursery, autojump_clock) -> None:
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await leveraged(h, world, l1)
    deps = liquidator.LiquidatorDeps(EngineView(h.engine), h.submitter, test_key("liquidator"), interval=1.0, submit_timeout=NO_TIMEOUT)
    await nursery.start(liquidator.run, deps)
    await idle(h, 3)
    assert deps.emitted == {"Liquidate": 0, "Deleverage": 0}  # healthy: nothing to do
    await set_price(h, world, l1, "2800")  # alice: TV 100 < TR 140
    await until(h, lambda: deps.emitted["Liquidate"])
    liquidations = logged(h.engine, Liquidate)
    assert deps.emitted["Liquidate"] == len(liquidations) == 1, deps.refused
    state = h.engine.state
    assert liquidations[0].liquidated_id == 0 and liquidations[0].size == ETH_UNIT
    assert not state.accounts[0].positions and state.accounts[0].collateral >= 0
    assert state.accounts[2].positions[ETH].size == ETH_UNIT  # the liquidator took it over
    assert state.insurance > 0  # the penalty went to the fund
    await idle(h, 5)
    assert deps.emitted["Liquidate"] == 1  # nothing more to do


@pytest.mark.trio
async def test_a_bankrupt_account_the_fund_cannot_cover_is_deleveraged_against_the_opposite_holder(store, world, nursery, autojump_clock) -> None:
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await leveraged(h, world, l1)
    assert h.engine.state.insurance == 0
    deps = liquidator.LiquidatorDeps(EngineView(h.engine), h.submitter, test_key("liquidator"), interval=1.0, submit_timeout=NO_TIMEOUT)
    await nursery.start(liquidator.run, deps)
    await set_price(h, world, l1, "2600")  # alice: TV = 300 - 400 = -100, and the fund is empty
    await until(h, lambda: deps.emitted["Deleverage"])
    assert logged(h.engine, Liquidate) == []
    deleverages = logged(h.engine, Deleverage)
    assert deleverages == [Deleverage(0, 1, ETH, ETH_UNIT)]  # against bob, the only opposite holder
    state = h.engine.state
    assert not state.accounts[0].positions and state.accounts[0].collateral == 0  # the deficit moved, nothing left behind
    assert not state.accounts[1].positions and value_and_risk(state, 1)[0] == 5_300 * USD  # bob: +400 on his short, -100 deficit


@pytest.mark.trio
async def test_without_a_liquidator_account_only_deleverages_are_emitted_and_stuck_accounts_are_parked(store, world, nursery, autojump_clock) -> None:
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await leveraged(h, world, l1, liquidator_funds=0)
    deps = liquidator.LiquidatorDeps(EngineView(h.engine), h.submitter, test_key("liquidator"), interval=1.0, submit_timeout=NO_TIMEOUT)
    await nursery.start(liquidator.run, deps)
    await set_price(h, world, l1, "2800")  # liquidatable, not bankrupt: nothing valid to emit
    await idle(h, 3)
    assert deps.emitted == {"Liquidate": 0, "Deleverage": 0}
    assert 0 in deps.index.parked  # parked: not planned again on every round while nothing changes
    evaluations = deps.index.evaluations
    await idle(h, 10)
    assert deps.index.evaluations == evaluations and deps.rounds >= 10
    await set_price(h, world, l1, "2600")
    await until(h, lambda: deps.emitted["Deleverage"])
    assert deps.emitted == {"Liquidate": 0, "Deleverage": 1}


@pytest.mark.trio
async def test_a_scripted_crash_of_the_walk_liquidates_through_the_whole_chain(store, world, nursery, autojump_clock) -> None:
    """Oracle feed -> engine -> nudge -> liquidator -> engine, as the sequencer wires them."""
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    await leveraged(h, world, l1)
    section = enabled_services(crash=[CrashSection(market=ETH, after_updates=2, drop_ppm=100_000)], volatility_ppm=0, spread_ppm=0)
    keys = market_services.MarketKeys(tuple(signers()), test_key("liquidator"))
    started = await market_services.start(nursery, h.engine, h.submitter, section, keys)
    assert started == ["liquidator", "oracle_feed", "funding"]
    await heads(h, l1, 4)
    state = h.engine.state
    assert state.markets[ETH].price == price_of(ETH, "2700")  # 3000 less 10%
    assert [tx.liquidated_id for tx in logged(h.engine, Liquidate)] == [0]
    assert not state.accounts[0].positions


@pytest.mark.trio
async def test_the_services_stop_cleanly_when_cancelled(store, world, autojump_clock) -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness(store, nursery).start()
        l1 = FakeL1(store, world)
        await h.send(l1.head())
        await market_services.start(nursery, h.engine, h.submitter, enabled_services(), market_services.MarketKeys(tuple(signers()), test_key("liquidator")))
        await heads(h, l1, 3)
        nursery.cancel_scope.cancel()
    assert logged(h.engine, OraclePrice)  # they ran, and the nursery closed without an error


def test_off_by_default_and_keys_are_checked_against_the_genesis() -> None:
    from optinode.config import ConfigError
    from optinode.testing.world import GENESIS

    config = load_config(REPO_CONFIG)
    assert config.market_services.enabled is False
    assert market_services.load_market_keys(config.market_services, GENESIS.oracles, devnet=True) == market_services.MarketKeys()
    section = msgspec.structs.replace(config.market_services, enabled=True)
    keys = market_services.load_market_keys(section, GENESIS.oracles, devnet=True)
    assert [i for i, _ in keys.oracle_signers] == [0, 1, 2] and keys.liquidator.address == test_key("liquidator").address
    with pytest.raises(ConfigError, match="refused unless the chain is a devnet"):
        market_services.load_market_keys(section, GENESIS.oracles, devnet=False)
    with pytest.raises(ConfigError, match="is not an oracle of the genesis"):
        market_services.load_market_keys(section, GENESIS.oracles[:2], devnet=True)
