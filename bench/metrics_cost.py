"""What the metrics cost on the order path, against the per-order budget.

    .venv/bin/python bench/metrics_cost.py [--n 200000]

Times exactly what `services/rpc.send_order` adds per order (two perf_counter reads, the accepted
counter by status, the fills counter, the ack-latency histogram), what the engine adds per group
commit (fsync histogram + entries counter), and one scrape of a SequencerMetrics whose book holds
1,000 resting orders. Best of 5 runs (the machine is shared). Last line, one JSON object:
``per_order_us``, ``per_rejected_us``, ``per_group_commit_us``, ``scrape_ms``, ``recoveries_per_s``
(single-core secp256k1 in the same run) and ``order_budget_fraction`` (per_order_us as a fraction of one
recovery's time: the intake target is >= 1 recovery rate, so this is the share of the budget spent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stf import measure_recoveries  # noqa: E402
from bench.workload import Workload  # noqa: E402
from optinode.exchange.book import MarketBook, RestingOrder  # noqa: E402
from optinode.metrics import SequencerMetrics  # noqa: E402


def _book(orders: int) -> MarketBook:
    """A book of `orders` resting orders, one per price, half a side each."""
    book = MarketBook()
    for i in range(orders):
        is_buy = i % 2 == 0
        book.add(RestingOrder(bytes(32), 0, bytes(20), 0, is_buy, 10**8 - i if is_buy else 10**8 + i, 10**6, i, None, False, 0, i))  # type: ignore[arg-type]
    return book


def best(fn, n: int) -> float:
    return min(timeit.timeit(fn, number=n) for _ in range(5)) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    m = SequencerMetrics()
    book = _book(1_000)
    m.watch_book(lambda: [book])

    def per_order() -> None:
        started = time.perf_counter()
        m.accepted("filled")
        m.fills.inc(1)
        m.ack_latency.observe(time.perf_counter() - started)

    def per_group() -> None:
        started = time.perf_counter()
        m.fsync.observe(time.perf_counter() - started)
        m.group_entries.inc(64)

    order_s = best(per_order, args.n)
    rejected_s = best(lambda: m.rejected("NONCE_USED"), args.n)
    group_s = best(per_group, args.n)
    scrape_s = best(m.expose, 200)
    recoveries = measure_recoveries(Workload(trades=2_000, seed=1))
    print(json.dumps({"per_order_us": round(order_s * 1e6, 3), "per_rejected_us": round(rejected_s * 1e6, 3),
                      "per_group_commit_us": round(group_s * 1e6, 3), "scrape_ms": round(scrape_s * 1e3, 3),
                      "recoveries_per_s": round(recoveries), "order_budget_fraction": round(order_s * recoveries, 4)}))


if __name__ == "__main__":
    main()
