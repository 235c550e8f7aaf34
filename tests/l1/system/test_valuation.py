"""Valuation.sol against spec.margin (compute_settled_funding + get_total_value) and spec.escape
(compute_escape_value, in tokens after the socialized loss's haircut) on random accounts:
signed sizes and funding indices at their extremes, so every floor and ceil sees negative operands."""

from __future__ import annotations

import random

import pytest

from optinode.l1.contracts import deploy_contract
from optinode.spec.commitment import encode_account, encode_globals
from optinode.spec.escape import compute_escape_value
from optinode.spec.margin import compute_haircut, compute_settled_funding, get_total_value
from optinode.spec.state import Account, Position
from optinode.testing.world import World

MAX_POSITION = 2**63 - 1
MAX_INDEX = 2**100


@pytest.fixture
def harness(w3, deployer, snapshot):
    return deploy_contract(w3, "ValuationHarness", sender=deployer.address)


def _case(rng: random.Random, state) -> Account:
    positions = {}
    for market in range(len(state.markets)):
        if rng.random() < 0.8:
            size = rng.choice([1, -1, rng.randrange(-10**12, 10**12) or 1, rng.choice([MAX_POSITION, -MAX_POSITION])])
            positions[market] = Position(size, rng.randrange(-MAX_INDEX, MAX_INDEX))
    return Account(owner=b"\x11" * 20, collateral=rng.randrange(-(10**20), 10**20), positions=positions)


def test_valuation_matches_spec(harness) -> None:
    rng = random.Random(2024)
    state = World().state
    for _ in range(60):
        for market in state.markets:
            market.price = rng.choice([1, 10**8 - 1, rng.randrange(1, 2**64), 2**64 - 1])
            market.funding_index = rng.randrange(-MAX_INDEX, MAX_INDEX)
        # A socialized loss (docs/risk.md §4.4) in half of the cases: escape values are in tokens.
        state.total_collateral = rng.choice([0, rng.randrange(1, 2**126)])
        state.socialized_loss = rng.choice([0, rng.randrange(0, state.total_collateral + 2)])
        account = _case(rng, state)
        collateral, positions, _ = compute_settled_funding(state, account)
        expected = get_total_value(state, collateral, positions)
        leaf, globals_ = encode_account(account), encode_globals(state)
        assert harness.functions.totalValue(leaf, globals_).call() == expected
        haircut = compute_haircut(max(0, expected), state.socialized_loss, state.total_collateral)
        assert harness.functions.escapeValue(leaf, globals_).call() == max(0, expected) - haircut == compute_escape_value(state, account)
