"""Sequencer intake benchmark: signed orders through mempool and engine, in process and over JSON-RPC.

Prints, last, one JSON object (docs/benchmarks.md, "Sequencer intake", says how to read it):
- recoveries_per_s / recovery_cpu_us — bare secp256k1 recoveries on one core (uncached), measured
  in this run: the unit the targets are stated in;
- inprocess_orders_per_s — fresh signed orders from many accounts submitted in requests of
  `--request` orders by several concurrent clients to `Mempool.submit` (stateless checks,
  recovery in the intake's 2 worker processes as the sequencer opens them,
  `mempool.open_intake_pool`; replay checks, fair queue), taken by an engine loop
  (`Mempool.next_batch`) and placed on the `Matcher` (spec margin pre-check, matching, every fill
  applied by the spec), the interpreter set up and the heap frozen as the node does
  (`optinode.runtime`); intake_vs_recovery = it / recoveries_per_s (target >= 1.0);
  intake_worker_busy — each worker's time inside jobs over the run's wall time, measured in the
  worker; inprocess_threads_orders_per_s — the same with recovery on 2 worker threads;
- rpc_orders_per_s — the engine on LevelDB (every acknowledgement after its synced group commit),
  its JSON-RPC service on 127.0.0.1 and client processes (`bench/rpc_load.py`, `--rpc-processes`
  × `--rpc-connections` keep-alive connections) posting batches of `--rpc-batch` sendOrder
  requests as fast as answered; rpc_vs_recovery (target >= 0.5);
- ack_p50_ms / ack_p99_ms — then at half that peak, open loop, batches of `--latency-batch`: each
  request's time from its scheduled send to its answer (target p99 <= 5 ms);
- *_cpu_us_per_order — CPU time per order of the engine's thread, the engine's process, the worker
  processes and the clients; *_cpu_capacity_per_s — what that CPU gives on two cores of our own
  (the engine's thread is serial; everything shares two cores): on a shared machine the
  wall-clock figures measure the load, these the code.

    .venv/bin/python bench/sequencer.py            # ~1-2 min; --orders N, --rpc-orders N, ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rpc_load import run_clients, worker_cpu_sample  # noqa: E402
from bench.stf import measure_recoveries  # noqa: E402
from optinode.config import BatchSection  # noqa: E402
from optinode.exchange.matching import Matcher  # noqa: E402
from optinode.exchange.mempool import Limits, Mempool, compute_chunk, open_intake_pool  # noqa: E402
from optinode.exchange.worker_pool import WorkerPool  # noqa: E402
from optinode.services import engine as engine_mod  # noqa: E402
from optinode.services import rpc  # noqa: E402
from optinode.services import heap_freezer  # noqa: E402
from optinode.services.batcher import BatchPolicy  # noqa: E402
from optinode.runtime import SWITCH_INTERVAL, freeze_heap, tune_interpreter  # noqa: E402
from optinode.spec.state import State, copy_state  # noqa: E402
from optinode.store.db import open_store  # noqa: E402
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
    """Bare recoveries (`compute_chunk`) on the intake's worker pool, started first (a one-off cost a
    node pays before it serves), every chunk queued at once (the pool bounds what is in flight)."""
    async with open_intake_pool(Limits(workers=workers)) as pool:
        start = time.perf_counter()
        results = await pool.map(compute_chunk, [pairs[i:i + chunk] for i in range(0, len(pairs), chunk)])
        elapsed = time.perf_counter() - start
    assert sum(len(r) for r in results) == len(pairs) and all(None not in r for r in results)
    return len(pairs) / elapsed


async def measure_intake(state: State, ctx, orders: list[Order], request: int, clients: int, chunk: int,
                         workers=None, engine_batch: int = 64, trades: list | None = None) -> tuple[float, dict]:
    """Orders through `Mempool.submit` and the `Matcher` on `state` (threads, or `workers` processes);
    `trades` (if given) gets every spec Trade the engine applied, in order (bench/verifier.py replays them)."""
    limits = Limits(max_request_items=request, items_per_second=1e9, burst=10**9, max_pending_per_account=10**6, recovery_chunk=chunk)
    pool = Mempool(state, limits, workers=workers)
    matcher = Matcher(state, max_open_orders=10**6)
    requests = [[Placement(o, TimeInForce.GTC) for o in orders[i:i + request]] for i in range(0, len(orders), request)]
    statuses: dict[str, int] = {}
    fills = 0
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
                batch = await pool.next_batch(engine_batch)
                for placement, _ in batch:
                    result = matcher.place(placement, ctx)
                    statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
                    fills += len(result.fills)
                    if trades is not None:
                        trades.extend(fill.trade for fill in result.fills)
                placed += len(batch)
                await trio.lowlevel.checkpoint()  # let the clients' workers hand over their results

    start, cpu, main_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine)
        for c in range(clients):
            nursery.start_soon(client, requests[c::clients])
    elapsed, cpu, main_cpu = time.perf_counter() - start, time.process_time() - cpu, time.thread_time() - main_cpu
    assert rejected_at_intake == 0 and statuses.get(Status.REJECTED.value, 0) == 0, (rejected_at_intake, statuses)
    n = max(1, len(orders))  # (none: intake_profile.py's baseline of the pipeline, its start-up alone)
    return len(orders) / elapsed, {"fills": fills, "cpu_us_per_order": cpu / n * 1e6, "main_cpu_us_per_order": main_cpu / n * 1e6, **statuses}


async def workers_cpu(ctx, count: int) -> dict[int, float]:
    """CPU seconds so far of each of the `count` worker processes, by pid (a `WorkerPool` reports its
    own, measured in each worker; a trio-parallel context is sampled with a job per worker)."""
    if isinstance(ctx, WorkerPool):
        stats = await ctx.stats()
        assert len(stats) == count, "every worker sampled once"
        return {s.pid: s.cpu for s in stats}
    samples: dict[int, float] = {}

    async def one() -> None:
        pid, cpu = await ctx.run_sync(worker_cpu_sample, 0.3)
        samples[pid] = cpu

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    assert len(samples) == count, "every worker sampled once"
    return samples


async def with_pool(fn, *args, limits: Limits = Limits()):
    """`fn(*args, workers=pool)` on the intake's worker pool as the sequencer opens it
    (`mempool.open_intake_pool`), already started. Returns (its result, the workers' usage: CPU
    seconds of all of them, and each one's busy fraction — time inside jobs over the wall time —
    measured in the worker)."""
    async with open_intake_pool(limits) as pool:
        before = {s.pid: s for s in await pool.stats()}
        start = time.perf_counter()
        result = await fn(*args, workers=pool)
        wall = time.perf_counter() - start
        after = {s.pid: s for s in await pool.stats()}
    assert set(before) == set(after) and len(after) == limits.workers, "the same workers throughout"
    return result, {"cpu": sum(after[pid].cpu - before[pid].cpu for pid in after),
                    "busy": [round((after[pid].busy - before[pid].busy) / wall, 3) for pid in sorted(after)],
                    "jobs": sum(after[pid].jobs - before[pid].jobs for pid in after)}


async def with_workers(fn, *args, count: int = 2):
    """`fn(*args, workers=pool)` with `count` intake workers already started (`with_pool`).
    Returns (its result, the CPU seconds the workers spent on it)."""
    result, usage = await with_pool(fn, *args, limits=Limits(workers=count))
    return result, usage["cpu"]


def rpc_bodies(orders: list[Order], per_request: int, first_id: int = 1) -> list[bytes]:
    """JSON-RPC batch bodies of `optinode_sendOrder` requests, the order JSON as docs/eip712.md has it."""
    bodies, rid = [], first_id
    for i in range(0, len(orders), per_request):
        batch = []
        for o in orders[i:i + per_request]:
            message = {"accountId": o.account_id, "market": o.market, "isBuy": o.is_buy, "size": str(o.size),
                       "limitPrice": str(o.limit_price), "feeRate": o.fee_rate, "expiry": str(o.expiry), "nonce": str(o.nonce)}
            batch.append({"jsonrpc": "2.0", "id": rid, "method": "optinode_sendOrder", "params": [message, "0x" + o.signature.hex()]})
            rid += 1
        bodies.append(json.dumps(batch).encode())
    return bodies


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def latency_figures(run: dict, prefix: str) -> dict:
    """p50 / p99 / p99.9 / max (ms) of an open-loop run's request latencies, its rate and requests."""
    lat = run["latencies"]
    figures = {f"{prefix}_{name}_ms": round(percentile(lat, q) * 1e3, 2) for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))}
    return {**figures, f"{prefix}_max_ms": round(lat[-1] * 1e3, 2), f"{prefix}_orders_per_s": round(run["acked"] / run["elapsed"]),
            f"{prefix}_requests": len(lat)}


@contextlib.asynccontextmanager
async def bench_node(genesis: State, limits: Limits, workers):
    """The sequencer's engine on LevelDB (fsync on: every answer after its group commit's fsync), its
    JSON-RPC service on 127.0.0.1 and the mempool on `workers` processes, run as `optinode
    sequencer` runs them (switch interval, heap frozen once up). Yields (engine, port)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    with tempfile.TemporaryDirectory(prefix="optinode-bench-") as data_dir:
        store = open_store(Path(data_dir) / "db", identity="bench")
        try:
            policy = BatchPolicy.from_config(BatchSection(max_age=3600.0), challenge_window=3600, clock=60)
            engine = engine_mod.Engine(store, genesis, policy=policy, confirmations=0, deadlines=engine_mod.Deadlines(3600, 3600))
            inbox_send, inbox_receive = trio.open_memory_channel(1024)
            batches_send, batches_receive = trio.open_memory_channel(64)
            async with trio.open_nursery() as nursery:
                await nursery.start(engine_mod.run, engine, inbox_receive, batches_send)

                async def drain() -> None:
                    async for _ in batches_receive:
                        pass

                nursery.start_soon(drain)
                deps = rpc.RpcDeps(engine, engine_mod.Submitter(inbox_send), Mempool(engine.state, limits, workers=workers))
                port = await nursery.start(rpc.run, deps)
                freeze_heap()
                await nursery.start(heap_freezer.run)
                yield engine, port
                nursery.cancel_scope.cancel()
        finally:
            store.close()


async def measure_rpc(genesis: State, flow: OrderFlow, args, *, workers) -> dict:
    """The node of `bench_node`; client processes post batches (docs/benchmarks.md):

    1. the peak: `--rpc-orders` orders in batches of `--rpc-batch`, closed loop;
    2. the headline latency: the same requests, open loop at half that peak, `--latency-seconds`;
    3. a market maker's quote refresh: batches of `--mm-batch`, closed loop (their own peak), then
       open loop at half of it, `--latency-seconds`.
    Every latency is from the request's scheduled send (no coordinated omission)."""
    limits = Limits(max_request_items=max(args.rpc_batch, args.mm_batch), recovery_chunk=args.chunk)
    result: dict = {"orders_posted": 0, "client_cpu": 0.0}
    next_id = [1]

    def bodies_of(count: int, batch: int) -> list[bytes]:
        bodies = rpc_bodies(flow.orders(count), batch, first_id=next_id[0])
        next_id[0] += count
        result["orders_posted"] += count
        return bodies

    async with bench_node(genesis, limits, workers) as (engine, port):

        async def post(bodies: list[bytes], rate_orders: float | None, batch: int) -> dict:
            run = await trio.to_thread.run_sync(lambda: run_clients(
                port, bodies, processes=args.rpc_processes, connections=args.rpc_connections,
                rate=None if rate_orders is None else rate_orders / batch))
            assert run["acked"] == sum(len(json.loads(b)) for b in bodies), run["acked"]
            result["client_cpu"] += run["client_cpu"]
            return run

        peak_bodies = bodies_of(args.rpc_orders, args.rpc_batch)
        cpu, main_cpu = time.process_time(), time.thread_time()
        peak = await post(peak_bodies, None, args.rpc_batch)
        result["server_cpu_us_per_order"] = (time.process_time() - cpu) / peak["acked"] * 1e6
        result["server_main_cpu_us_per_order"] = (time.thread_time() - main_cpu) / peak["acked"] * 1e6
        result["rpc_orders_per_s"] = peak["acked"] / peak["elapsed"]
        result["load_at_peak"] = round(os.getloadavg()[0], 2)

        half_rate = result["rpc_orders_per_s"] / 2  # the "half the measured peak", the same requests
        half = await post(bodies_of(int(half_rate * args.latency_seconds), args.rpc_batch), half_rate, args.rpc_batch)
        result.update(latency_figures(half, "ack"), ack_scheduled_orders_per_s=round(half_rate), latency_batch=args.rpc_batch,
                      load_at_latency=round(os.getloadavg()[0], 2))

        if args.mm_batch:
            mm_peak = await post(bodies_of(args.mm_orders, args.mm_batch), None, args.mm_batch)
            result["mm_peak_orders_per_s"] = round(mm_peak["acked"] / mm_peak["elapsed"])
            mm_rate = result["mm_peak_orders_per_s"] / 2
            mm = await post(bodies_of(int(mm_rate * args.latency_seconds), args.mm_batch), mm_rate, args.mm_batch)
            result.update(latency_figures(mm, "mm_ack"), mm_ack_scheduled_orders_per_s=round(mm_rate), mm_batch=args.mm_batch,
                          load_at_mm_latency=round(os.getloadavg()[0], 2))
        result["log_entries"] = engine.next_seq
        result["client_cpu_us_per_order"] = result["client_cpu"] / result["orders_posted"] * 1e6
    return result


def measure_inprocess(flow: OrderFlow, single: list[Order], args, recoveries_per_s: float, recovery_cpu_us: float) -> dict:
    """The in-process intake (threads and processes) and the bare recovery rates."""
    for_threads = pairs_of(flow, flow.orders(8_000))
    for_processes = pairs_of(flow, flow.orders(8_000))
    intake_threads = flow.orders(args.orders)
    intake_processes = flow.orders(args.orders)
    speedup = max(measure_gil_release(pairs_of(flow, single)) for _ in range(3))
    print(f"coincurve, 2 threads over 1:         {speedup:.2f}x (best of 3)")
    threads_per_s = trio.run(measure_threads, Mempool(flow.world.state, Limits(recovery_chunk=args.chunk)), for_threads)
    print(f"recoveries, 2 worker threads:        {threads_per_s:,.0f}/s")
    processes_per_s = trio.run(measure_processes, for_processes, args.chunk, 2)
    print(f"recoveries, 2 worker processes:      {processes_per_s:,.0f}/s")
    state, ctx = flow.world.state, flow.world.ctx
    tune_interpreter()  # as `optinode sequencer` sets itself up: switch interval, collector thresholds,
    freeze_heap()  # and the heap frozen once it is up (here: the funded state and the pre-signed orders)
    in_threads, threads_outcome = trio.run(measure_intake, state, ctx, intake_threads, args.request, args.clients, args.chunk)
    print(f"in-process intake, threads:          {in_threads:,.0f} orders/s ({threads_outcome})")
    freeze_heap()  # what the threads' run left (its book) is not the processes' run's
    pool_limits = Limits(workers=args.workers, jobs_per_worker=args.jobs_per_worker, worker_nice=args.worker_nice)
    (in_processes, outcome), usage = trio.run(partial(with_pool, limits=pool_limits), measure_intake, state, ctx, intake_processes,
                                              args.request, args.clients, args.chunk)
    worker_us = usage["cpu"] / args.orders * 1e6
    print(f"in-process intake, processes:        {in_processes:,.0f} orders/s ({outcome}, workers {worker_us:.1f} µs CPU/order,"
          f" busy {usage['busy']}, {usage['jobs']} jobs)")
    # What two cores of our own would give (the machine is shared: wall clock undercounts): the
    # engine's thread is serial, and the engine process plus the workers share the two cores.
    capacity = min(1e6 / outcome["main_cpu_us_per_order"], 2e6 / (outcome["cpu_us_per_order"] + worker_us))
    return {
        "inprocess_orders_per_s": round(in_processes),
        "recoveries_per_s": round(recoveries_per_s),
        "intake_vs_recovery": round(in_processes / recoveries_per_s, 3),
        # CPU figures: what two cores of our own would do (1 / recovery_cpu_us is the single-core unit)
        "intake_main_cpu_us_per_order": round(outcome["main_cpu_us_per_order"], 1),
        "intake_process_cpu_us_per_order": round(outcome["cpu_us_per_order"], 1),
        "intake_worker_cpu_us_per_order": round(worker_us, 1),
        "intake_worker_busy": usage["busy"],  # per worker: time inside jobs / the run's wall time
        "intake_workers": args.workers,
        "intake_jobs_per_worker": args.jobs_per_worker,
        "intake_worker_nice": args.worker_nice,
        "intake_chunk": args.chunk,
        "recovery_cpu_us": round(recovery_cpu_us, 1),
        "inprocess_cpu_capacity_per_s": round(capacity),
        "inprocess_cpu_capacity_vs_recovery_cpu": round(capacity * recovery_cpu_us / 1e6, 3),
        # the threads alternative, and the recovery rates themselves
        "inprocess_threads_orders_per_s": round(in_threads),
        "intake_threads_main_cpu_us_per_order": round(threads_outcome["main_cpu_us_per_order"], 1),
        "intake_threads_cpu_us_per_order": round(threads_outcome["cpu_us_per_order"], 1),
        "coincurve_two_thread_speedup": round(speedup, 2),
        "recoveries_threads_per_s": round(threads_per_s),
        "recoveries_processes_per_s": round(processes_per_s),
        "orders": args.orders,
        "fills": outcome["fills"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000, help="in-process intake orders (each mode)")
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--request", type=int, default=200, help="orders per in-process request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent in-process submitting clients")
    parser.add_argument("--chunk", type=int, default=Limits().recovery_chunk, help="signatures per worker call")
    parser.add_argument("--workers", type=int, default=Limits().workers, help="intake worker processes (in process)")
    parser.add_argument("--worker-nice", type=int, default=Limits().worker_nice, help="the intake workers' niceness (in process)")
    parser.add_argument("--jobs-per-worker", type=int, default=Limits().jobs_per_worker, help="chunks queued in each worker")
    parser.add_argument("--rpc-orders", type=int, default=30_000, help="orders for the JSON-RPC peak")
    parser.add_argument("--rpc-batch", type=int, default=50, help="orders per JSON-RPC batch at the peak")
    parser.add_argument("--rpc-processes", type=int, default=2, help="client processes")
    parser.add_argument("--rpc-connections", type=int, default=2, help="HTTP connections per client process")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="length of each open-loop latency run")
    parser.add_argument("--mm-batch", type=int, default=10, help="orders per request of the market maker's run (0: skip it)")
    parser.add_argument("--mm-orders", type=int, default=15_000, help="orders for the market maker's request peak")
    parser.add_argument("--skip-inprocess", action="store_true", help="only the JSON-RPC figures (and the recovery unit)")
    parser.add_argument("--skip-rpc", action="store_true")
    args = parser.parse_args()

    flow = OrderFlow(args.accounts)
    genesis = copy_state(flow.world.state)  # the RPC node starts from the funded state
    single = flow.orders(3_000)
    cpu = time.process_time()
    recoveries_per_s = measure_recoveries(SimpleNamespace(state=flow.world.state, signed_orders=single), count=3_000)
    recovery_cpu_us = (time.process_time() - cpu) / 3_000 * 1e6
    print(f"secp256k1 recoveries, one core:      {recoveries_per_s:,.0f}/s ({recovery_cpu_us:.1f} µs CPU each)")
    figures: dict = {}
    if not args.skip_inprocess:
        figures.update(measure_inprocess(flow, single, args, recoveries_per_s, recovery_cpu_us))
    else:
        figures.update({"recoveries_per_s": round(recoveries_per_s), "recovery_cpu_us": round(recovery_cpu_us, 1)})
    rpc_cpu: dict = {}
    if not args.skip_rpc:
        rpc_figures, rpc_worker_cpu = trio.run(with_workers, measure_rpc, genesis, flow, args)
        rpc_worker_us = rpc_worker_cpu / rpc_figures["orders_posted"] * 1e6
        print(f"JSON-RPC: {rpc_figures}, workers {rpc_worker_us:.1f} µs CPU/order")
        rpc_capacity = min(1e6 / rpc_figures["server_main_cpu_us_per_order"],
                           2e6 / (rpc_figures["server_cpu_us_per_order"] + rpc_worker_us + rpc_figures["client_cpu_us_per_order"]))
        figures.update({
            "rpc_orders_per_s": round(rpc_figures["rpc_orders_per_s"]),
            "rpc_vs_recovery": round(rpc_figures["rpc_orders_per_s"] / recoveries_per_s, 3) if recoveries_per_s else None,
            # at half of rpc_orders_per_s, the same requests (batches of --rpc-batch), open loop; then the
            # market maker's batches of --mm-batch at half their own peak
            **{k: v for k, v in rpc_figures.items() if k.startswith(("ack_", "mm_", "latency_", "load_at_"))},
        })
        rpc_cpu = {
            "rpc_server_cpu_us_per_order": round(rpc_figures["server_cpu_us_per_order"], 1),
            "rpc_server_main_cpu_us_per_order": round(rpc_figures["server_main_cpu_us_per_order"], 1),
            "rpc_worker_cpu_us_per_order": round(rpc_worker_us, 1),
            "rpc_client_cpu_us_per_order": round(rpc_figures["client_cpu_us_per_order"], 1),
            "rpc_cpu_capacity_per_s": round(rpc_capacity),
            "rpc_cpu_capacity_vs_recovery_cpu": round(rpc_capacity * recovery_cpu_us / 1e6, 3),
        }
    figures.update(rpc_cpu)
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
