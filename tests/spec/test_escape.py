"""The escape rule (optinode.spec.escape): payouts never exceed the pool, are in full when the pool
covers the claims, leave less than one unit of dust per account, and do not depend on the order;
claims floor the value at zero and add the unpaid withdrawals."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from optinode.spec.escape import (
    compute_bond_share,
    compute_escape_claim,
    compute_escape_payout,
    compute_escape_pool,
    get_escape_claims,
)
from optinode.spec.state import Account, Position
from optinode.testing.world import World

claims_lists = st.lists(st.integers(0, 2**130), min_size=1, max_size=30)


@settings(max_examples=500, deadline=None)
@given(claims=claims_lists, pool=st.integers(0, 2**131), bonds=st.integers(0, 2**100), data=st.data())
def test_payouts_never_exceed_the_pool_and_ignore_the_order(claims, pool, bonds, data) -> None:
    total = sum(claims)
    paid = [compute_escape_payout(c, total, pool) for c in claims]
    assert sum(paid) <= pool and all(0 <= p <= c for p, c in zip(paid, claims))
    if total <= pool:
        assert paid == claims
    else:
        assert pool - sum(paid) < len(claims)  # the dust: under one unit per account
    order = data.draw(st.permutations(range(len(claims))))
    assert [compute_escape_payout(claims[i], total, pool) for i in order] == [paid[i] for i in order]
    shares = [compute_bond_share(c, total, bonds) for c in claims]
    assert sum(shares) <= bonds
    if total:
        assert bonds - sum(shares) < len(claims)
    else:
        assert shares == [0] * len(claims)


def test_the_pool_keeps_the_deposits_owed() -> None:
    assert compute_escape_pool(100, 30) == 70
    assert compute_escape_pool(30, 30) == compute_escape_pool(10, 30) == 0


def test_claims_floor_the_value_and_add_unpaid_withdrawals() -> None:
    w = World()
    state = w.state
    price = state.markets[0].price
    owner = b"\x11" * 20
    rich = Account(owner=owner, collateral=500, withdrawn=70)
    broke = Account(owner=owner, collateral=-10**9, withdrawn=40)
    long = Account(owner=owner, collateral=-price * 2 // 10**8 + 7, positions={0: Position(2, state.markets[0].funding_index)})
    assert compute_escape_claim(state, rich, paid=0) == 570
    assert compute_escape_claim(state, rich, paid=70) == 500
    assert compute_escape_claim(state, rich, paid=100) == 500  # never negative unpaid
    assert compute_escape_claim(state, broke, paid=0) == 40  # the debt is not collected
    assert compute_escape_claim(state, long, paid=0) == 7  # marked at the committed price
    state.accounts = {0: rich, 1: broke}
    assert get_escape_claims(state, {0: 70}) == {0: 500, 1: 40}


def test_escape_after_a_socialized_loss_pays_every_claim_from_what_is_held() -> None:
    """After the last resort socialized alice's debt (tests/spec/test_risk.py::stuck_world), escape
    claims are in tokens: they never exceed the tokens held, whoever escapes first."""
    from optinode.spec.types import Deleverage
    from tests.spec.test_risk import stuck_world
    from optinode.testing.world import ETH, ETH_UNIT

    w = stuck_world()
    w.must(Deleverage(w.ids["alice"], w.ids["bob"], ETH, ETH_UNIT))
    claims = get_escape_claims(w.state, {})
    held = w.state.total_collateral - w.state.socialized_loss
    assert sum(claims.values()) <= held
    assert claims[w.ids["carol"]] == 1_600 * 10**6  # carol owns everything held
