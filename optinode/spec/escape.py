"""The escape hatch's terminal rule: what every account is paid after a freeze, whatever the order.

sol: Bridge.registerClaim, Bridge.escape (and lib/Valuation.sol for the value). docs/contracts.md
explains why the rule holds; DESIGN safety property 3 is what it is for.

Once the rollup is frozen (an L1 queue entry went unconsumed past its deadline), the last finalized
state is the final word and the bridge winds down in two phases:

1. **Claims** (from the freeze until `claimPeriod` has passed): anyone may register any account's
   claim, proven under the last finalized root, once per account:
       claim = max(0, total value) + unpaid withdrawals
   where the total value is the collateral after settling funding plus every position marked at the
   committed price (`compute_settled_funding`, `get_total_value`: rounding against the account), in
   tokens: less the socialized loss's haircut ceil(value * L / T) that a withdrawal of it would pay
   (docs/risk.md §4.4),
   and the unpaid withdrawals are `withdrawn - paid` (withdrawn is cumulative in the state, paid is
   what the bridge paid before the freeze; withdrawal claims stop at the freeze, so `paid` is fixed).
2. **Payouts** (after the claim phase, each registered account once, by anyone):
       payout     = claim                         if total_claims <= pool
                  = claim * pool // total_claims  otherwise (pro rata, rounded down)
       bond_share = claim * bonds // total_claims (0 when nothing is claimed)
   `pool` is the collateral the bridge holds for the accounts when the payouts begin: its token
   balance less the deposits it still owes (queued deposits the final state did not consume, which
   are refunded in full: they never entered the state). `bonds` is the ETH of the bonds of the
   batches still pending at the freeze, which go to the escaping users (a frozen sequencer censored
   or stopped; its unfinalized batches will never finalize). Both are fixed before the first payout,
   so no payout depends on who escaped first; the sum of payouts never exceeds `pool` (each is
   rounded down) and the dust stays in the bridge.

The insurance fund and the fee balance are not claims: they are collateral the bridge holds that no
account owns, so they stay in the pool and absorb the accounts' negative equity first. Only when the
negative equity of bankrupt accounts exceeds them (plus rounding dust) is `total_claims > pool`, and
then every claim takes the same haircut.

Everything here is pure arithmetic over the frozen state and two L1 numbers (the pool and the bonds).
"""

from __future__ import annotations

from collections.abc import Mapping

from .margin import compute_haircut, compute_settled_funding, get_total_value
from .state import Account, State

__all__ = [
    "compute_bond_share",
    "compute_escape_claim",
    "compute_escape_payout",
    "compute_escape_pool",
    "compute_escape_value",
    "get_escape_claims",
]


def compute_escape_value(state: State, account: Account) -> int:
    """The account's total value under the frozen state, floored at zero (an account's debt is not
    collected from its owner). # sol: Valuation.escapeValue"""
    collateral, positions, _ = compute_settled_funding(state, account)
    value = get_total_value(state, collateral, positions)
    if value <= 0:
        return 0
    # In tokens: less the socialized loss's haircut, as a withdrawal of it would pay (docs/risk.md §4.4).
    return value - compute_haircut(value, state.socialized_loss, state.total_collateral)


def compute_escape_claim(state: State, account: Account, paid: int) -> int:
    """What an account's claim registers: its escape value plus its withdrawals the bridge has not
    paid (`paid` = Bridge.paid[accountId] at the freeze). # sol: Bridge.registerClaim"""
    unpaid = account.withdrawn - paid if account.withdrawn > paid else 0
    return compute_escape_value(state, account) + unpaid


def compute_escape_pool(token_balance: int, deposits_owed: int) -> int:
    """The collateral the accounts share: the bridge's token balance less the deposits it must still
    refund, when the payouts begin. # sol: Bridge._startPayouts"""
    return token_balance - deposits_owed if token_balance > deposits_owed else 0


def compute_escape_payout(claim: int, total_claims: int, pool: int) -> int:
    """One account's collateral payout: in full when the pool covers every claim, else pro rata
    (rounded down, so the payouts never sum above the pool). # sol: Bridge.escape"""
    if total_claims <= pool:
        return claim
    return claim * pool // total_claims


def compute_bond_share(claim: int, total_claims: int, bonds: int) -> int:
    """One account's share of the bonds of the batches pending at the freeze (rounded down).
    # sol: Bridge.escape"""
    if total_claims == 0:
        return 0
    return claim * bonds // total_claims


def get_escape_claims(state: State, paid: Mapping[int, int]) -> dict[int, int]:
    """Every account's claim (what a watchtower registers for all of them): `paid[i]` is what the
    bridge paid account i before the freeze (absent: 0)."""
    return {i: compute_escape_claim(state, a, paid.get(i, 0)) for i, a in sorted(state.accounts.items())}
