"""Benchmark of the liquidator's risk index against a full scan of every account per price tick.

    .venv/bin/python bench/liquidator.py [--accounts 20000] [--ticks 200]

The state holds `--accounts` traders, each long 1 ETH at 3000 against one market maker, with
leverage from 1x to 19x skewed low (1 + 18 u^3, median 3.2x; the tail past the 10x an account may
open at stands for accounts the market has moved towards their line). The oracle price walks in
steps of up to 0.05% (a busy market's tick-to-tick move). Per tick it measures

- `scan_ms`: valuing every account (settled funding, total value, maintenance risk) — what a
  liquidator without an index does on every tick;
- `index_ms`: `RiskIndex.due()` — re-anchoring when the move since the reference exceeds 5%,
  otherwise the prefix of accounts whose key the move reached — and the exact re-check of those;
- `checked_per_tick`: accounts the index valued per tick (on average), `rebases`, and
  `below_after_ticks` (accounts below maintenance at the end: the bench liquidates nobody, so those
  are due on every tick, as they would be for a liquidator without a valid action).

Then `plans_per_s`: liquidation plans per second (sign the liquidator's order, run the Liquidate on
a partial copy with the spec) for up to 300 accounts due after a 6% drop (`planned` of them found a
valid liquidation; a bankrupt one the empty fund cannot cover tries every size first, so the rate
depends on the mix). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optinode.exchange.liquidation import LiquidatorAccount, plan_liquidation  # noqa: E402
from optinode.exchange.risk_index import RiskIndex  # noqa: E402
from optinode.spec.genesis import create_genesis_state  # noqa: E402
from optinode.spec.margin import compute_settled_funding, is_liquidatable  # noqa: E402
from optinode.spec.state import Account, Position  # noqa: E402
from optinode.testing.world import ETH, ETH_UNIT, GENESIS, L1_DELAY, USD, test_key  # noqa: E402
from optinode.spec.types import L1Context  # noqa: E402


def build_state(accounts: int):
    state = create_genesis_state(GENESIS)
    rng = random.Random(1)
    maker = Account(owner=test_key("maker").address, collateral=10**9 * USD + 3_000 * USD * accounts,
                    positions={ETH: Position(-ETH_UNIT * accounts, 0)})
    state.accounts[0] = maker
    liquidator = Account(owner=test_key("liquidator").address, collateral=10**9 * USD, positions={})
    state.accounts[1] = liquidator
    for i in range(2, accounts + 2):
        leverage = 1.0 + 18.0 * rng.random() ** 3  # mostly low, a tail past the 10x an account may open at (moved towards its line)
        state.accounts[i] = Account(owner=test_key(f"t{i}").address, collateral=int(3_000 * USD / leverage) - 3_000 * USD,
                                    positions={ETH: Position(ETH_UNIT, 0)})
    state.next_account_id = accounts + 2
    return state


def scan(state) -> int:
    below = 0
    for account in state.accounts.values():
        if account.positions:
            collateral, positions, _ = compute_settled_funding(state, account)
            below += is_liquidatable(state, collateral, positions)
    return below


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    state = build_state(args.accounts)
    index = RiskIndex(state, exclude={0, 1})
    index.due()
    rng = random.Random(2)
    tick = state.config.markets[ETH].tick_size
    scan_s = index_s = 0.0
    start_evaluations = index.evaluations
    for _ in range(args.ticks):
        market = state.markets[ETH]
        market.price = max(tick, market.price * (10_000 + rng.randint(-5, 5)) // 10_000 // tick * tick)
        t0 = time.perf_counter()
        scan(state)
        t1 = time.perf_counter()
        for account_id in index.due():  # the liquidator's exact re-check of each candidate
            account = state.accounts[account_id]
            collateral, positions, _ = compute_settled_funding(state, account)
            is_liquidatable(state, collateral, positions)
            index.mark([account_id])
        t2 = time.perf_counter()
        scan_s += t1 - t0
        index_s += t2 - t1
    tick_evaluations, tick_rebases = index.evaluations - start_evaluations, index.rebases
    below_after_ticks = scan(state)  # never liquidated here, so they are re-checked on every tick
    # liquidation plans for accounts below maintenance after a 6% drop
    state.markets[ETH].price = state.markets[ETH].price * 94 // 100 // tick * tick
    state.markets[ETH].price_time = state.time = GENESIS.time + L1_DELAY
    below = [i for i in index.due() if i > 1][:300]
    ctx = L1Context(GENESIS.time + L1_DELAY)
    liquidator = LiquidatorAccount(1, test_key("liquidator"))
    t0 = time.perf_counter()
    planned = sum(plan_liquidation(state, i, ctx, liquidator) is not None for i in below)
    plan_s = time.perf_counter() - t0
    print(json.dumps({
        "accounts": args.accounts,
        "ticks": args.ticks,
        "scan_ms": round(scan_s / args.ticks * 1000, 3),
        "index_ms": round(index_s / args.ticks * 1000, 3),
        "checked_per_tick": round(tick_evaluations / args.ticks, 1),
        "rebases": tick_rebases,
        "below_after_ticks": below_after_ticks,
        "plans_per_s": round(planned / plan_s, 1) if planned else 0.0,
        "planned": planned,
    }))


if __name__ == "__main__":
    main()
