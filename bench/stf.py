"""Benchmark of the state transition function, the batch root and the batch encoding.

    .venv/bin/python bench/stf.py [--trades 10000]

Last line: one JSON object with trades_per_s (signatures pre-verified, as the sequencer does at
admission; wall clock), trades_per_cpu_s (the same loop over its CPU time: what one core does when
the machine is shared), recoveries_per_s (bare secp256k1 recoveries on one core, same run),
root_update_fraction (batch root update time / apply time for the same trades) and bytes_per_trade
(encoded batch bytes per trade on the market-maker workload).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.workload import Workload  # noqa: E402
from optinode.spec import Commitment  # noqa: E402
from optinode.spec.batch_framing import encode_batch  # noqa: E402
from optinode.spec.crypto import recover_signer  # noqa: E402
from optinode.spec.eip712 import compute_order_digest  # noqa: E402
from optinode.spec.state import State  # noqa: E402
from optinode.spec.transition import state_transition  # noqa: E402
from optinode.spec.types import L1Context, Receipt, Trade  # noqa: E402


def measure_recoveries(workload: Workload, count: int = 2_000) -> float:
    ds = workload.state.config.domain_separator
    pairs = [(compute_order_digest(ds, o), o.signature) for o in workload.signed_orders[:count]]
    recover = recover_signer.__wrapped__  # uncached (compute_signer)
    start = time.perf_counter()
    for digest, signature in pairs:
        recover(digest, signature)
    return len(pairs) / (time.perf_counter() - start)


def measure_apply(state: State, trades: list[Trade], ctx: L1Context) -> tuple[list[Receipt], float, float]:
    """Apply `trades` (signatures verified beforehand): the receipts, wall-clock and CPU seconds."""
    gc.collect()
    gc.disable()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        receipts = [state_transition(state, tx, ctx) for tx in trades]
        return receipts, time.perf_counter() - start, time.process_time() - cpu
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trades", type=int, default=10_000)
    args = parser.parse_args()
    workload = Workload(trades=args.trades)
    state, ctx, trades = workload.state, workload.ctx, workload.trades
    commitment = Commitment.from_state(state)
    workload.preverify()
    recoveries_per_s = measure_recoveries(workload)

    receipts, apply_s, apply_cpu_s = measure_apply(state, trades, ctx)
    start = time.perf_counter()
    root = commitment.update(state)
    root_s = time.perf_counter() - start
    failed = [r for r in receipts if not r.ok]
    assert not failed, f"{len(failed)} trades failed, first: {failed[0]}"

    batch = encode_batch(trades)
    new_orders = len(workload.signed_orders) - len(trades)
    print(f"trades applied:        {len(trades)} in {apply_s * 1e3:.1f} ms ({len(trades) / apply_s:,.0f}/s; {apply_cpu_s * 1e3:.1f} ms CPU)")
    print(f"batch root update:     {root_s * 1e3:.1f} ms for {len(state.accounts)} accounts, {state.next_slot} slots ({root.hex()[:16]}…)")
    print(f"secp256k1 recoveries:  {recoveries_per_s:,.0f}/s (single core, uncached)")
    print(f"batch bytes:           {len(batch)} ({len(batch) / len(trades):.1f} per trade; {new_orders} new maker orders)")
    print(
        json.dumps(
            {
                "trades_per_s": round(len(trades) / apply_s),
                "trades_per_cpu_s": round(len(trades) / apply_cpu_s),
                "recoveries_per_s": round(recoveries_per_s),
                "root_update_fraction": round(root_s / apply_s, 4),
                "bytes_per_trade": round(len(batch) / len(trades), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
