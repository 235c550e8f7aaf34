"""Sequencer intake benchmark, first half: signed orders through the mempool and the matcher in one
process, no network.

Prints, last, one JSON object:
- recoveries_per_s — bare secp256k1 recoveries on one core (uncached), measured in this run: the unit
  the target is stated in;
- recoveries_threads_per_s / recoveries_processes_per_s — the same recoveries spread over the
  machine's cores by the mempool's worker threads (coincurve releases the GIL) and by trio-parallel
  worker processes, so the choice in optinode/exchange/mempool.py is measured, not assumed;
- coincurve_two_thread_speedup — bare coincurve recoveries on two threads over one: ~2 if the
  library releases the GIL around libsecp256k1 (it does: cffi), ~1 if it does not;
- inprocess_orders_per_s — fresh signed orders from many accounts submitted in requests of
  `--request` orders by several concurrent clients to `Mempool.submit` (stateless checks, recovery
  on worker threads, replay checks, fair queue), taken by an engine loop (`Mempool.next_batch`) and
  placed on the `Matcher` (spec margin probe, matching, every fill applied by the spec);
- intake_vs_recovery — inprocess_orders_per_s / recoveries_per_s (target >= 1.0);
- intake_cpu_us_per_order / recovery_cpu_us — CPU time (all threads) per order through the whole
  intake, and per bare recovery: what the wall-clock figures are made of on a shared machine, where
  this process may get much less than two cores.

    .venv/bin/python bench/sequencer.py            # ~20 s; --orders N, --accounts N
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.stf import measure_recoveries  # noqa: E402
from optinode.exchange.matching import Matcher  # noqa: E402
from optinode.exchange.mempool import Limits, Mempool, recover_chunk  # noqa: E402
from optinode.exchange.orders import Placement, Status, TimeInForce  # noqa: E402
from optinode.spec.eip712 import compute_order_digest  # noqa: E402
from optinode.spec.types import Order  # noqa: E402
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK, GENESIS_TIME, World  # noqa: E402

EXPIRY = GENESIS_TIME + 30 * 86_400


class OrderFlow:
    """Funded accounts and a pre-signed random order flow around the genesis price (one market)."""

    def __init__(self, accounts: int, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.world = World(l1_timestamp=GENESIS_TIME + 3600)
        self.names = [f"bench-{i}" for i in range(accounts)]
        for name in self.names:
            self.world.deposit(name, 10**13)  # 10 M USD each: margin passes, but is checked every time

    def orders(self, count: int) -> list[Order]:
        rng, w = self.rng, self.world
        out = []
        for _ in range(count):
            is_buy = rng.random() < 0.5
            ticks = rng.randrange(0, 6) * (1 if is_buy else -1) + (-3 if is_buy else 3)  # about half cross
            out.append(w.order(rng.choice(self.names), is_buy=is_buy, size=rng.randrange(1, 6) * ETH_STEP,
                               limit_price=ETH_PRICE + ticks * ETH_TICK, expiry=EXPIRY))
        return out


def pairs_of(flow: OrderFlow, orders: list[Order]) -> list[tuple[bytes, bytes]]:
    domain = flow.world.domain
    return [(compute_order_digest(domain, o), o.signature) for o in orders]


def measure_gil_release(pairs: list[tuple[bytes, bytes]]) -> float:
    """Bare coincurve recoveries on two threads / on one (the same signatures, halves in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    from coincurve import PublicKey

    def recover_all(part: list[tuple[bytes, bytes]]) -> None:
        for digest, signature in part:
            PublicKey.from_signature_and_message(signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None)

    start = time.perf_counter()
    recover_all(pairs)
    one = time.perf_counter() - start
    half = len(pairs) // 2
    with ThreadPoolExecutor(2) as pool:
        start = time.perf_counter()
        list(pool.map(recover_all, [pairs[:half], pairs[half:]]))
        two = time.perf_counter() - start
    return one / two


async def measure_threads(pool: Mempool, pairs: list[tuple[bytes, bytes]]) -> float:
    start = time.perf_counter()
    signers = await pool.recover(pairs)
    elapsed = time.perf_counter() - start
    assert None not in signers
    return len(pairs) / elapsed


async def measure_processes(pairs: list[tuple[bytes, bytes]], chunk: int, workers: int) -> float:
    import trio_parallel

    # Start the workers first (their start-up is a one-off cost a node pays once).
    async with trio_parallel.open_worker_context(idle_timeout=60) as ctx:
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(ctx.run_sync, recover_chunk, pairs[:1])
        limiter = trio.CapacityLimiter(workers)
        results: list = []

        async def one(part: list) -> None:
            async with limiter:
                results.append(await ctx.run_sync(recover_chunk, part))

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i in range(0, len(pairs), chunk):
                nursery.start_soon(one, pairs[i:i + chunk])
        elapsed = time.perf_counter() - start
    assert sum(len(r) for r in results) == len(pairs) and all(None not in r for r in results)
    return len(pairs) / elapsed


async def measure_intake(flow: OrderFlow, orders: list[Order], request: int, clients: int,
                         trades: list | None = None) -> tuple[float, dict]:
    """Orders per second through the intake, and what happened to them; `trades` (if given) gets
    every spec Trade the engine applied, in order (bench/verifier.py replays them)."""
    limits = Limits(max_request_items=request, items_per_second=1e9, burst=10**9, max_pending_per_account=10**6)
    pool = Mempool(flow.world.state, limits)
    matcher = Matcher(flow.world.state, max_open_orders=10**6)
    requests = [[Placement(o, TimeInForce.GTC) for o in orders[i:i + request]] for i in range(0, len(orders), request)]
    statuses: dict[str, int] = {}
    fills = 0
    done = trio.Event()
    rejected_at_intake = 0

    async def client(mine: list) -> None:
        nonlocal rejected_at_intake
        for req in mine:
            outcomes = await pool.submit(req)
            rejected_at_intake += sum(1 for o in outcomes if not isinstance(o, bytes))

    async def engine() -> None:
        nonlocal fills
        placed = 0
        while placed + rejected_at_intake < len(orders):
            with trio.move_on_after(0.5):
                batch = await pool.next_batch(256)
                for placement, _ in batch:
                    result = matcher.place(placement, flow.world.ctx)
                    statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
                    fills += len(result.fills)
                    if trades is not None:
                        trades.extend(fill.trade for fill in result.fills)
                placed += len(batch)
                await trio.lowlevel.checkpoint()  # let the clients' threads hand over their results
        done.set()

    start, cpu = time.perf_counter(), time.process_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine)
        for c in range(clients):
            nursery.start_soon(client, requests[c::clients])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert rejected_at_intake == 0 and statuses.get(Status.REJECTED.value, 0) == 0, (rejected_at_intake, statuses)
    return len(orders) / elapsed, {"fills": fills, "cpu_us_per_order": cpu / len(orders) * 1e6, **statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--request", type=int, default=200, help="orders per request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent submitting clients")
    parser.add_argument("--chunk", type=int, default=64, help="signatures per worker call")
    args = parser.parse_args()

    flow = OrderFlow(args.accounts)
    single = flow.orders(3_000)
    for_threads = pairs_of(flow, flow.orders(8_000))
    for_processes = pairs_of(flow, flow.orders(8_000))
    intake_orders = flow.orders(args.orders)
    print(f"signed {3_000 + 16_000 + args.orders} orders", flush=True)

    cpu = time.process_time()
    recoveries_per_s = measure_recoveries(SimpleNamespace(state=flow.world.state, signed_orders=single), count=3_000)
    recovery_cpu_us = (time.process_time() - cpu) / 3_000 * 1e6
    print(f"secp256k1 recoveries, one core:      {recoveries_per_s:,.0f}/s")
    speedup = measure_gil_release(pairs_of(flow, single))
    print(f"coincurve, 2 threads over 1:         {speedup:.2f}x")
    pool = Mempool(flow.world.state, Limits(recovery_chunk=args.chunk))
    threads_per_s = trio.run(measure_threads, pool, for_threads)
    print(f"recoveries, 2 worker threads:        {threads_per_s:,.0f}/s")
    processes_per_s = trio.run(measure_processes, for_processes, args.chunk, 2)
    print(f"recoveries, 2 trio-parallel workers: {processes_per_s:,.0f}/s")
    intake_per_s, outcome = trio.run(measure_intake, flow, intake_orders, args.request, args.clients)
    print(f"in-process intake:                   {intake_per_s:,.0f} orders/s ({outcome})")
    print(json.dumps({
        "inprocess_orders_per_s": round(intake_per_s),
        "recoveries_per_s": round(recoveries_per_s),
        "intake_vs_recovery": round(intake_per_s / recoveries_per_s, 3),
        "coincurve_two_thread_speedup": round(speedup, 2),
        "recoveries_threads_per_s": round(threads_per_s),
        "recoveries_processes_per_s": round(processes_per_s),
        "intake_cpu_us_per_order": round(outcome["cpu_us_per_order"], 1),
        "recovery_cpu_us": round(recovery_cpu_us, 1),
        "orders": args.orders,
        "fills": outcome["fills"],
    }))


if __name__ == "__main__":
    main()
