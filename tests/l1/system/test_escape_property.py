"""The escape rule on anvil over random finalized states and random escape orders (issue 8, findings
3 and 4; DESIGN safety property 3). Two sources of states: written field by field (below), and
reached by the random transaction sequences of tests/spec/strategies.py, where the bridge holds
exactly what conservation says.

Each example is a random frozen rollup (tests/l1/system/escape_world.py): accounts with any
collateral, withdrawals, positions and stale funding, an insurance fund and fees, a bridge holding
anything from a fraction of the claims to more than all of them, withdrawals claimed before the
freeze, queued deposits refunded at random moments, a donation and batches pending at the freeze.
Claims are registered and paid in a random order, the pending bonds released in random pages.
Checked: every account is paid exactly its rule amount (optinode.spec.escape) in collateral and in
ETH; the payouts never sum above the pool, nor the bridge's balance; the rounding dust stays in the
bridge, which still holds every refund it owes; nothing is left in the Rollup.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from optinode.spec.state import get_total_collateral
from optinode.spec.transition import apply_transactions

from tests.spec.strategies import scenarios

from .escape_world import EscapeWorld, random_world, world_from_state

EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@EXAMPLES
@given(seed=st.integers(0, 2**32 - 1))
def test_every_account_is_paid_its_rule_amount_in_any_order(make_system, proposer, users, seed) -> None:
    rng = random.Random(seed)
    check_escape(make_system, proposer, users, rng, random_world(rng, seed))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios(min_txs=4, max_txs=30), seed=st.integers(0, 2**32 - 1))
def test_escape_from_states_reached_by_transactions(make_system, proposer, users, scenario, seed) -> None:
    # states the exchange can reach (trades, liquidations, deleverages, funding, price gaps,
    # withdrawals, accounts sharing an owner), the bridge holding what conservation says
    state = scenario.genesis_state()
    apply_transactions(state, list(scenario.txs), scenario.ctx)
    assume(state.deposits_done >= 1 and state.accounts)
    state.dirty_accounts.clear()
    state.dirty_slots.clear()
    rng = random.Random(seed)
    world = world_from_state(state, rng)
    assert world.held == get_total_collateral(state) + sum(a.withdrawn for a in state.accounts.values()) - sum(world.prepaid.values())
    check_escape(make_system, proposer, users, rng, world)


def check_escape(make_system, proposer, users, rng: random.Random, world: EscapeWorld) -> None:
    system = world.deploy(make_system, proposer, users[0])
    credits = system.rollup.functions.credits(proposer).call()  # the finalized batch's returned bond
    rollup_eth = system.w3.eth.get_balance(system.rollup.address)
    assert rollup_eth == world.pending * system.params.proposer_bond + credits
    order = world.names
    rng.shuffle(order)
    paid = world.escape(system, order, users[1], page=rng.choice([1, 2, None]))
    total = sum(paid.values())
    assert total <= world.held
    if world.total_claims <= world.held:
        assert paid == world.claims  # solvent: everyone in full
    # the bridge keeps the dust and whatever refunds are still owed
    token = system.token.functions
    owed = sum(a for k, a in enumerate(world.queued) if k not in world.reclaim_at)
    assert token.balanceOf(system.bridge.address).call() == world.held - total + owed
    assert system.bridge.functions.depositsOwed().call() == owed
    eth_dust = system.w3.eth.get_balance(system.bridge.address)
    assert 0 <= eth_dust <= len(order) if world.total_claims else eth_dust == world.pending * system.params.proposer_bond
    assert system.w3.eth.get_balance(system.rollup.address) == credits  # no bond is left behind
