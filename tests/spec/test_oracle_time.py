"""Issue 7, findings 4, 5, 6 (fee account) and 7: oracle subsets, time, fee withdrawals, nonces.

Each test is an attack or a lock-out that the review reproduced; they were written before the fixes
and failed on the main of that day. The world is the shipped devnet configuration
(`configs/devnet.toml`) with test oracle keys, so the shipped parameters are what is tested.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from optinode.config import load_genesis
from optinode.spec.constants import MAX_NONCE, PRICE_ONE
from optinode.spec.errors import ErrorCode
from optinode.spec.types import OraclePrice, Trade
from optinode.testing.world import World, test_key

DEVNET = Path(__file__).resolve().parents[2] / "configs" / "devnet.toml"
ETH = 0
STEP = 1_000_000  # 0.001 ETH on the devnet market
ETH_3000 = 3 * PRICE_ONE
USD = 10**6


def devnet_world() -> World:
    """The devnet genesis (its oracles are the test driver's oracle keys), L1 time = genesis + 60 s."""
    genesis = load_genesis(DEVNET)
    return World(genesis, l1_timestamp=genesis.time + 60)


def post_price(world: World, prices: dict[int, int], timestamps: dict[int, int] | None = None, market: int = ETH):
    timestamps = timestamps or {}
    samples = tuple(
        world.sample(i, market, price, timestamps.get(i, world.l1_timestamp)) for i, price in sorted(prices.items())
    )
    return world.apply(OraclePrice(market, samples))


# --- finding 4: the oracle --------------------------------------------------------------------------


def test_one_dishonest_oracle_cannot_pick_a_lower_price():
    """Devnet: 3 oracles. The honest two say 3000; the third says 1. Whatever subset of at least the
    quorum the sequencer includes, the price stays within the honest samples."""
    for subset in ({0: 1, 1: ETH_3000}, {0: 1, 2: ETH_3000}, {0: 1, 1: ETH_3000, 2: ETH_3000}):
        world = devnet_world()
        receipt = post_price(world, subset)
        assert not receipt.applied or world.state.markets[ETH].price == ETH_3000, (subset, receipt)


def test_genesis_rejects_a_quorum_one_faulty_oracle_can_steer():
    from optinode.spec.genesis import InvalidGenesis, check_genesis

    genesis = load_genesis(DEVNET)
    for market in range(len(genesis.markets)):
        markets = list(genesis.markets)
        markets[market] = msgspec.structs.replace(markets[market], quorum=2)
        with pytest.raises(InvalidGenesis):
            check_genesis(msgspec.structs.replace(genesis, markets=tuple(markets)))


def test_a_sample_is_never_used_twice():
    world = devnet_world()
    t = world.l1_timestamp
    assert post_price(world, {0: ETH_3000, 1: ETH_3000, 2: ETH_3000}, {0: t - 20, 1: t - 10, 2: t}).ok
    # The next update reuses oracle 2's sample (newer than the median time of the first update).
    world.l1_timestamp += 30
    old = world.sample(2, ETH, ETH_3000, t)
    fresh = [world.sample(i, ETH, 2 * PRICE_ONE, world.l1_timestamp) for i in (0, 1)]
    receipt = world.apply(OraclePrice(ETH, (fresh[0], fresh[1], old)))
    assert not receipt.applied and receipt.code == ErrorCode.STALE_TIMESTAMP


def test_samples_older_than_the_maximum_age_are_rejected():
    world = devnet_world()
    world.l1_timestamp += 10 * 86_400  # the sequencer posts ten-day-old samples
    old = world.genesis.time + 30
    receipt = post_price(world, {0: ETH_3000, 1: ETH_3000, 2: ETH_3000}, {0: old, 1: old, 2: old})
    assert not receipt.applied and receipt.code == ErrorCode.SAMPLE_TOO_OLD


# --- finding 5: time ---------------------------------------------------------------------------------


def funded(world: World) -> None:
    for name in ("alice", "bob"):
        world.deposit(name, 10_000 * USD)


def test_an_expired_order_is_not_filled_when_the_sequencer_withholds_prices():
    """The review's reproduction: L1 time is two days past the order's expiry, no oracle update since."""
    world = devnet_world()
    funded(world)
    expiry = world.l1_timestamp + 60
    maker = world.order("alice", is_buy=False, size=STEP, limit_price=ETH_3000, expiry=expiry)
    taker = world.order("bob", is_buy=True, size=STEP, limit_price=ETH_3000)
    world.l1_timestamp = expiry + 172_740
    receipt = world.apply(Trade(maker, taker, STEP))
    assert not receipt.applied
    # With fresh prices the order is still expired: expiry is measured against the L1 clock.
    assert post_price(world, {0: ETH_3000, 1: ETH_3000, 2: ETH_3000}).ok
    assert world.apply(Trade(maker, taker, STEP)).code == ErrorCode.EXPIRED


def test_an_expired_withdrawal_is_not_executed():
    world = devnet_world()
    funded(world)
    request = world.withdraw("alice", USD, expiry=world.l1_timestamp + 60)
    world.l1_timestamp += 3_600
    assert world.apply(request).code == ErrorCode.EXPIRED


def test_a_trade_never_uses_a_stale_price():
    world = devnet_world()
    funded(world)
    world.l1_timestamp += 86_400  # no price for a day
    maker = world.order("alice", is_buy=False, size=STEP, limit_price=ETH_3000)
    taker = world.order("bob", is_buy=True, size=STEP, limit_price=ETH_3000)
    receipt = world.apply(Trade(maker, taker, STEP))
    assert not receipt.applied and receipt.code == ErrorCode.STALE_PRICE
    assert post_price(world, {0: ETH_3000, 1: ETH_3000, 2: ETH_3000}).ok
    receipt = world.apply(Trade(maker, taker, STEP))
    assert not receipt.applied and receipt.code == ErrorCode.STALE_FUNDING  # no funding tick for a day


# --- finding 6: the fee account ----------------------------------------------------------------------


def test_the_fee_account_withdraws_like_any_account():
    from optinode.spec.types import CollectFees

    world = devnet_world()
    funded(world)
    maker = world.order("alice", is_buy=False, size=STEP, limit_price=ETH_3000, fee_rate=1_000)
    taker = world.order("bob", is_buy=True, size=STEP, limit_price=ETH_3000, fee_rate=1_000)
    assert world.apply(Trade(maker, taker, STEP)).ok
    fees = world.state.fees
    assert fees > 0
    # The fee owner named in genesis opens an account (any deposit) and collects into it.
    assert test_key("fees").address == world.genesis.fee_owner, "the devnet fee owner is the test key 'fees'"
    fee_account = world.deposit("fees", 1)
    assert world.apply(CollectFees(fee_account)).ok
    assert world.state.fees == 0
    assert world.apply(world.withdraw("fees", fees + 1)).ok
    assert world.state.accounts[fee_account].withdrawn == fees + 1


# --- finding 7: nonces -------------------------------------------------------------------------------


def test_no_nonce_value_bricks_an_account():
    world = devnet_world()
    funded(world)
    world.apply(world.withdraw("alice", 1, nonce=MAX_NONCE))  # applied or rejected, the account lives on
    nonce = world.state.accounts[world.ids["alice"]].nonce_base
    for _ in range(300):
        nonce += 1
        assert world.apply(world.withdraw("alice", 1, nonce=nonce)).ok


# --- property: no coalition of f oracles plus the sequencer moves the price outside the honest samples --

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from optinode.spec.genesis import InvalidGenesis, check_oracle_rule  # noqa: E402
from optinode.spec.transition import lower_median  # noqa: E402
from optinode.testing.world import make_genesis  # noqa: E402

PRICES = st.integers(1, 10**12)
GENESIS = load_genesis(DEVNET).time
# 300 examples by default; HYPOTHESIS_PROFILE=thorough (2,000) scales them up.
ORACLE_PROPERTY = settings(max_examples=max(300, settings.default.max_examples), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def oracle_attacks(draw):
    """A genesis (N, f, quorum) that check_oracle_rule accepts, honest prices, up to f lies (any values,
    chosen after seeing the honest ones) and the subset of at least a quorum the sequencer includes."""
    faults = draw(st.integers(0, 3))
    quorum = draw(st.integers(2 * faults + 1, 2 * faults + 3))
    n = draw(st.integers(quorum, min(quorum + 3, 10)))
    liars = draw(st.sets(st.integers(0, n - 1), max_size=faults))
    honest = {i: draw(PRICES) for i in range(n) if i not in liars}
    low, high = min(honest.values(), default=1), max(honest.values(), default=1)
    lie = st.one_of(st.integers(1, max(1, low - 1)), st.integers(high + 1, 2 * 10**12), PRICES)
    prices = {**honest, **{i: draw(lie) for i in liars}}
    included = draw(st.sets(st.sampled_from(range(n)), min_size=quorum, max_size=n))
    # the sequencer keeps every lie it can (it picks the subset; the lies are its coalition's)
    if draw(st.booleans()):
        extra = sorted(liars - included)
        included = included | set(extra)
    return n, faults, quorum, liars, prices, sorted(included)


@ORACLE_PROPERTY
@given(oracle_attacks())
def test_no_coalition_of_f_oracles_and_the_sequencer_moves_the_price_outside_the_honest_samples(attack):
    n, faults, quorum, liars, prices, included = attack
    check_oracle_rule(n, quorum, faults)  # the generated genesis is valid
    w = World(make_genesis(oracle_count=n, quorum=quorum, oracle_faults=faults), l1_timestamp=GENESIS + 60)
    t = w.l1_timestamp
    receipt = w.apply(OraclePrice(ETH, tuple(w.sample(i, ETH, prices[i], t - i) for i in included)))
    assert receipt.ok, receipt
    honest = [prices[i] for i in included if i not in liars]
    assert min(honest) <= w.state.markets[ETH].price <= max(honest)


@ORACLE_PROPERTY
@given(st.integers(1, 4), st.data())
def test_every_quorum_the_genesis_refuses_has_a_winning_attack(faults, data):
    """The oracle rule is tight: with quorum <= 2f the sequencer includes f lies and quorum - f honest
    samples, and the lower median is a lie below every honest sample."""
    quorum = data.draw(st.integers(1, 2 * faults))
    with pytest.raises(InvalidGenesis):
        check_oracle_rule(max(quorum, 2 * faults + 1), quorum, faults)
    lies, honest = [1] * min(faults, quorum), [3 * PRICE_ONE] * (quorum - min(faults, quorum))
    assert lower_median(lies + honest) < min(honest, default=2)
