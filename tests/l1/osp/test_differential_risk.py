"""Differential on the risk engine's extremes: the Solidity one-step prover and the spec agree on
random worlds with 1-16 markets, prices from 1 to ~2^62 units per base unit, balances up to 2^64 per
deposit, and sequences aimed at trades near and below maintenance, crashes and gaps, funding at the
rate bound, liquidations (with the insurance fund) and deleverages (insurance first, the last
resort, the socialized loss), forced deleverage requests, withdrawals and deposits after a
socialized loss: `tests/spec/risk_worlds.py`. Each transaction runs on both sides from the same witness (see
test_differential.py; record mutants are that test's job, and drawing them here would overrun
hypothesis's buffer on these long worlds)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.spec.risk_worlds import risk_worlds

from .test_differential import TOTALS, run_scenario

EXAMPLES = 150


def test_differential_risk_worlds(w3, osp) -> None:
    before = dict(TOTALS["types"])
    calls = TOTALS["calls"]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(scenario=risk_worlds(min_steps=25, max_steps=50))
    def check(scenario) -> None:
        run_scenario(w3, osp, scenario, lambda strategy: [])  # no mutants

    check()
    types = {k: v - before.get(k, 0) for k, v in TOTALS["types"].items() if v - before.get(k, 0)}
    print(f"\nrisk worlds: {TOTALS['calls'] - calls} transactions; per type {dict(sorted(types.items()))}")
    assert TOTALS["calls"] - calls >= 3_000
    assert {"Trade", "Liquidate", "Deleverage", "OraclePrice", "FundingTick", "ForcedWithdraw", "Withdraw", "Deposit"} <= set(types)
