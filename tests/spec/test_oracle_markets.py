"""Issue 7, the oracle per market: each market's own oracle set, fault tolerance f and quorum, and the
optional maximum price move per second.

Written before the change, against the genesis it introduces; on the main of that day a market could
not have an f, a quorum or an oracle set of its own (one global quorum and oracle list served every
market), and a price could jump any distance in one update.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optinode.spec.constants import FRACTION_ONE, PRICE_ONE
from optinode.spec.errors import ErrorCode
from optinode.spec.genesis import InvalidGenesis, check_genesis
from optinode.spec.transition import is_price_move_allowed
from optinode.spec.types import OraclePrice
from optinode.testing.world import BTC_MARKET, ETH_MARKET, GENESIS_TIME, WINDOW, World, make_genesis

ETH, BTC = 0, 1
ETH_3000 = 3 * PRICE_ONE
PROPERTY = settings(max_examples=max(300, settings.default.max_examples), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def world_of(*markets, oracle_count: int = 6, **overrides) -> World:
    genesis = make_genesis(oracle_count=oracle_count, markets=markets, **overrides)
    return World(genesis, l1_timestamp=GENESIS_TIME + 60)


def update(w: World, market: int, prices: dict[int, int], at: int | None = None):
    t = w.l1_timestamp if at is None else at
    return w.apply(OraclePrice(market, tuple(w.sample(i, market, p, t) for i, p in sorted(prices.items()))))


# --- fault tolerance f, quorum and oracle set per market -------------------------------------------


def test_each_market_counts_its_own_quorum():
    """ETH tolerates no lying oracle (quorum 2 of 3); BTC tolerates one (quorum 3 of 3). Two samples
    were enough for every market under the one global quorum; now BTC needs three."""
    eth = msgspec.structs.replace(ETH_MARKET, oracles=(0, 1, 2), oracle_faults=0, quorum=2)
    btc = msgspec.structs.replace(BTC_MARKET, oracles=(0, 1, 2), oracle_faults=1, quorum=3)
    w = world_of(eth, btc, oracle_count=3)
    assert update(w, ETH, {0: ETH_3000, 1: ETH_3000}).ok
    btc_price = BTC_MARKET.price
    receipt = update(w, BTC, {0: btc_price, 1: btc_price})
    assert not receipt.applied and receipt.code == ErrorCode.QUORUM_NOT_MET
    assert update(w, BTC, {0: btc_price, 1: btc_price, 2: btc_price}).ok


def test_a_market_accepts_only_its_own_oracles():
    """Six oracle keys: ETH is signed by 0-2, BTC by 3-5. A genuine ETH oracle's sample (correctly
    signed for the BTC market) does not count toward BTC's quorum."""
    eth = msgspec.structs.replace(ETH_MARKET, oracles=(0, 1, 2), quorum=2)
    btc = msgspec.structs.replace(BTC_MARKET, oracles=(3, 4, 5), quorum=2)
    w = world_of(eth, btc)
    p = BTC_MARKET.price
    receipt = update(w, BTC, {0: 1, 3: p})
    assert not receipt.applied and receipt.code == ErrorCode.INVALID_ORACLE
    receipt = update(w, ETH, {1: ETH_3000, 4: ETH_3000})
    assert not receipt.applied and receipt.code == ErrorCode.INVALID_ORACLE
    assert update(w, BTC, {3: p, 5: p}).ok and update(w, ETH, {0: ETH_3000, 2: ETH_3000}).ok


@pytest.mark.parametrize(
    "market, message",
    [
        (dict(oracles=(0, 1), oracle_faults=1, quorum=3), "ETH-USD: need 1 <= quorum <= number of oracles"),  # N < 2f + 1
        (dict(oracles=(0, 1, 2), oracle_faults=1, quorum=2), "ETH-USD: quorum 2 < 2 * oracle_faults + 1 = 3"),
        (dict(oracles=(0, 0, 1), oracle_faults=0, quorum=2), "ETH-USD: oracles must be distinct"),
        (dict(oracles=(0, 1, 6), oracle_faults=0, quorum=2), "ETH-USD: oracles must be distinct indices into the 6"),
        (dict(oracles=(), oracle_faults=0, quorum=1), "ETH-USD: need 1 <= quorum"),
    ],
)
def test_genesis_checks_the_oracle_rule_per_market(market, message):
    genesis = make_genesis(oracle_count=6, markets=(msgspec.structs.replace(ETH_MARKET, **market), BTC_MARKET))
    with pytest.raises(InvalidGenesis, match=message.replace("+", r"\+").replace("*", r"\*")):
        check_genesis(genesis)


@st.composite
def market_oracle_attacks(draw):
    """Up to four markets over one list of oracle keys, each with its own oracle set, f and quorum that
    the genesis accepts; in one market, honest prices, up to f lying members (any values, chosen after
    the honest ones), any number of non-members claiming to sign it, and the subset of samples the
    sequencer includes (every lie it can, sometimes)."""
    registry = draw(st.integers(1, 12))
    markets = []
    for _ in range(draw(st.integers(1, 4))):
        members = draw(st.lists(st.integers(0, registry - 1), min_size=1, max_size=registry, unique=True))
        faults = draw(st.integers(0, (len(members) - 1) // 2))
        quorum = draw(st.integers(2 * faults + 1, len(members)))
        markets.append((tuple(sorted(members)), faults, quorum))
    target = draw(st.integers(0, len(markets) - 1))
    members, faults, quorum = markets[target]
    liars = draw(st.sets(st.sampled_from(members), max_size=faults))
    honest = {i: draw(st.integers(1, 10**12)) for i in members if i not in liars}
    low, high = min(honest.values(), default=1), max(honest.values(), default=1)
    lie = st.one_of(st.integers(1, max(1, low - 1)), st.integers(high + 1, 2 * 10**12))
    prices = {**honest, **{i: draw(lie) for i in liars}}
    outsiders = {i: draw(lie) for i in draw(st.sets(st.integers(0, registry - 1))) if i not in members}
    included = draw(st.sets(st.sampled_from(members), min_size=quorum, max_size=len(members)))
    if draw(st.booleans()):
        included |= liars
    return registry, markets, target, liars, prices, sorted(included), outsiders


@PROPERTY
@given(market_oracle_attacks())
def test_no_coalition_of_a_markets_f_oracles_and_the_sequencer_moves_its_price_outside_the_honest_samples(attack):
    """Per market: whatever subset of at least the market's quorum the sequencer includes, with up to
    the market's f lying members, the price stays within that market's honest samples; samples from
    oracles outside the market's set never count (the update is rejected)."""
    registry, markets, target, liars, prices, included, outsiders = attack
    base = (ETH_MARKET, BTC_MARKET)
    genesis_markets = tuple(
        msgspec.structs.replace(base[i % 2], name=f"M{i}", oracles=members, oracle_faults=faults, quorum=quorum)
        for i, (members, faults, quorum) in enumerate(markets)
    )
    w = world_of(*genesis_markets, oracle_count=registry)
    check_genesis(w.genesis)
    receipt = update(w, target, {i: prices[i] for i in included})
    assert receipt.ok, receipt
    honest = [prices[i] for i in included if i not in liars]
    assert min(honest) <= w.state.markets[target].price <= max(honest)
    if outsiders:  # the sequencer adds non-members' samples to a later update: refused
        w.l1_timestamp += 1
        receipt = update(w, target, {**{i: prices[i] for i in included}, **outsiders})
        assert not receipt.applied and receipt.code == ErrorCode.INVALID_ORACLE


# --- the maximum price move per second ----------------------------------------------------------------

RATE = 1_000  # 0.1% of the price per second: 6% a minute


def limited_world(rate: int = RATE) -> World:
    return World(make_genesis(max_price_move=rate), l1_timestamp=GENESIS_TIME + 60)


def test_a_price_jump_beyond_the_maximum_move_is_rejected():
    """60 s after the genesis price, 0.1%/s allows 6%: a 50% crash in one update was accepted before the
    rule; now it is rejected and the price stays."""
    w = limited_world()
    receipt = update(w, ETH, {0: ETH_3000 // 2, 1: ETH_3000 // 2, 2: ETH_3000 // 2})
    assert not receipt.applied and receipt.code == ErrorCode.PRICE_MOVE_TOO_FAST
    assert w.state.markets[ETH].price == ETH_3000


def test_a_move_exactly_at_the_bound_is_accepted_and_one_unit_more_is_not():
    w = limited_world()
    allowed = ETH_3000 * RATE * 60 // FRACTION_ONE  # 6% of 3000 after 60 s, exact
    assert allowed * FRACTION_ONE == ETH_3000 * RATE * 60
    w2 = limited_world()
    too_far = update(w2, ETH, {0: ETH_3000 + allowed + 1, 1: ETH_3000 + allowed + 1})
    assert too_far.code == ErrorCode.PRICE_MOVE_TOO_FAST
    assert update(w, ETH, {0: ETH_3000 - allowed, 1: ETH_3000 - allowed}).ok
    assert w.state.markets[ETH].price == ETH_3000 - allowed


def test_a_real_crash_gets_through_once_enough_time_has_passed():
    """Liveness: the bound grows with the time since the last price, so the same crash the limit refused
    at 60 s is accepted from 500 s on (50% at 0.1%/s), without any intermediate price."""
    w = limited_world()
    half = ETH_3000 // 2
    assert update(w, ETH, {0: half, 1: half, 2: half}).code == ErrorCode.PRICE_MOVE_TOO_FAST
    w.l1_timestamp = GENESIS_TIME + 499
    assert update(w, ETH, {0: half, 1: half, 2: half}).code == ErrorCode.PRICE_MOVE_TOO_FAST
    w.l1_timestamp = GENESIS_TIME + 500
    assert update(w, ETH, {0: half, 1: half, 2: half}).ok
    assert w.state.markets[ETH].price == half


def test_zero_means_no_limit():
    w = World(make_genesis(max_price_move=0), l1_timestamp=GENESIS_TIME + 1)
    assert update(w, ETH, {0: 1, 1: 1}).ok


def test_genesis_refuses_a_limit_that_could_hold_a_crash_past_the_price_validity():
    """A limit must allow a fall of 100% within price_validity, so a market never goes stale behind it."""
    with pytest.raises(InvalidGenesis, match="a crash could not get through"):
        check_genesis(make_genesis(max_price_move=FRACTION_ONE // WINDOW - 1))
    check_genesis(make_genesis(max_price_move=-(-FRACTION_ONE // WINDOW)))


@PROPERTY
@given(
    rate=st.integers(1, FRACTION_ONE),
    old=st.integers(1, 10**12),
    new=st.integers(1, 2 * 10**12),
    elapsed=st.integers(1, WINDOW),
)
def test_an_update_applies_exactly_when_the_move_is_within_the_bound(rate, old, new, elapsed):
    """The rule is exact (no rounding either way): applied iff |new - old| <= rate * old * elapsed / 1e6."""
    rate = max(rate, -(-FRACTION_ONE // WINDOW))  # a limit the genesis accepts
    markets = (msgspec.structs.replace(ETH_MARKET, price=old), BTC_MARKET)
    w = World(make_genesis(markets=markets, max_price_move=rate), l1_timestamp=GENESIS_TIME + elapsed)
    receipt = update(w, ETH, {0: new, 1: new})
    within = abs(new - old) * FRACTION_ONE <= rate * old * elapsed
    assert receipt.ok == within == is_price_move_allowed(rate, old, new, elapsed)
    assert receipt.ok or receipt.code == ErrorCode.PRICE_MOVE_TOO_FAST
    assert w.state.markets[ETH].price == (new if within else old)


@PROPERTY
@given(rate=st.integers(1, FRACTION_ONE), crash=st.integers(1, 10**12), old=st.integers(1, 10**12))
def test_any_fall_is_accepted_before_the_last_price_goes_stale(rate, crash, old):
    """Liveness, for every limit the genesis accepts: a fall to any positive price is accepted at the
    latest price_validity after the last price (when trades would start to see it as stale)."""
    rate = max(rate, -(-FRACTION_ONE // WINDOW))
    crash = min(crash, old)
    markets = (msgspec.structs.replace(ETH_MARKET, price=old), BTC_MARKET)
    w = World(make_genesis(markets=markets, max_price_move=rate), l1_timestamp=GENESIS_TIME + WINDOW)
    assert update(w, ETH, {0: crash, 1: crash}).ok
