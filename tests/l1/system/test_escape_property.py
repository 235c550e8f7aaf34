"""The escape rule on anvil over random finalized states and random escape orders (issue 8, findings
3 and 4; DESIGN safety property 3).

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

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .escape_world import random_world

EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@EXAMPLES
@given(seed=st.integers(0, 2**32 - 1))
def test_every_account_is_paid_its_rule_amount_in_any_order(make_system, proposer, users, seed) -> None:
    rng = random.Random(seed)
    world = random_world(rng, seed)
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
