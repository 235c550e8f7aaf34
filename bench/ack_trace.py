"""Where an acknowledgement's time goes: one open-loop JSON-RPC run against the real engine (LevelDB,
fsync on), the real `services/rpc.py` and the mempool on 2 worker processes, as `bench/sequencer.py`
runs them, with every request's path timestamped on the machine's monotonic clock (the clients'
`perf_counter` is the same clock):

    due        the client's scheduled send (latency is measured from here: no coordinated omission)
    sent       the client began writing the request (late when its connection was still busy)
    arrive     the server's JSON-RPC dispatch got the whole body (HTTP parsing done)
    intake     `Mempool.submit` entered (JSON decoded, params parsed)
    recovered  the orders came back from the worker processes (signatures recovered)
    queued     in the mempool's fair queue
    fed        `_feed` took the request's last order from the queue into the engine's inbox
    group      the engine began the group commit holding the request's last order
    write      the journal's write began on its thread (the trio → thread hand-off before it)
    synced     write + fsync done, on that thread
    answered   the request's last answer arrived (`_Answers` complete): the engine runs again after
               the fsync (the thread → trio hand-back) and answers the group at once
    responded  the response body was encoded (dispatch returned)
    done       the client read the whole answer

The instrumentation wraps those functions in this process only (nothing of it is in the node). It
prints, for each step, the p50 / p99 / max of its duration over all requests, then the slowest
requests' steps, then one JSON object.

    PYTHONPATH=$PWD .venv/bin/python bench/ack_trace.py --rate 2000 --batch 10 --seconds 10
"""

from __future__ import annotations

import argparse
import contextvars
import functools
import gc
import json
import os
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rpc_load import run_clients  # noqa: E402
from bench.sequencer import OrderFlow, bench_node, percentile, rpc_bodies  # noqa: E402
from optinode.exchange.mempool import Limits, Mempool, open_intake_pool  # noqa: E402
from optinode.services import engine as engine_mod  # noqa: E402
from optinode.services import journal as journal_mod  # noqa: E402
from optinode.services import rpc  # noqa: E402
from optinode.spec.state import copy_state  # noqa: E402

STEPS = ["due", "sent", "arrive", "intake", "recovered", "queued", "fed", "group", "write", "synced", "answered",
         "responded", "done"]
CURRENT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("trace", default=None)
now = time.perf_counter
PAUSES: list[tuple[str, float, float]] = []  # batch cuts and garbage collections (gen 2, or over 1 ms) on the node's thread


def instrument(traces: dict[int, dict]) -> None:
    """Wrap the node's functions to stamp each request's trace (keyed by its first JSON-RPC id)."""
    by_hash: dict[bytes, dict] = {}
    # (the workers' round trip for a request's orders: `check_orders` — fields, digest and signature in
    # the worker — where the mempool has it, else `recover`)
    worker_call = "check_orders" if hasattr(Mempool, "check_orders") else "recover"
    dispatch, submit, recover, next_batch = rpc.dispatch, Mempool.submit, getattr(Mempool, worker_call), Mempool.next_batch
    process, append, send_nowait = engine_mod.Engine.process, journal_mod.Journal.append, rpc._Reply.send_nowait
    answers_init = rpc._Answers.__init__
    answer_traces: dict[int, dict] = {}  # id(an _Answers, which has __slots__) -> its request's trace

    async def traced_dispatch(deps, body, subscriber=None, methods=rpc.METHODS):
        trace = {"arrive": now()}
        try:
            first = json.loads(body)[0]["id"]
        except Exception:  # noqa: BLE001 - not the bench's body
            return await dispatch(deps, body, subscriber, methods)
        traces[first] = trace
        CURRENT.set(trace)
        out = await dispatch(deps, body, subscriber, methods)
        trace["responded"] = now()
        return out

    async def traced_submit(self, placements):
        trace = CURRENT.get()
        if trace is not None:
            trace["intake"] = now()
        outcomes = await submit(self, placements)
        if trace is not None:
            trace["queued"] = now()
            for o in outcomes:
                if isinstance(o, bytes):
                    by_hash[o] = trace
        return outcomes

    async def traced_recover(self, pairs):
        out = await recover(self, pairs)
        trace = CURRENT.get()
        if trace is not None:
            trace["recovered"] = now()
        return out

    async def traced_next_batch(self, max_items):
        batch = await next_batch(self, max_items)
        t = now()
        for _, order_hash in batch:
            trace = by_hash.pop(order_hash, None)
            if trace is not None:
                trace["fed"] = t
        return batch

    current: list[dict] = [{}]  # the group commit being processed: its times

    async def traced_process(self, group, batches):
        current[0] = times = {"group": now()}
        for m in group:
            if isinstance(m, engine_mod.BookSubmission) and isinstance(m.reply, rpc._Reply):
                trace = answer_traces.get(id(m.reply.answers))
                if trace is not None:
                    trace["_group"] = times  # (a request split over two groups keeps the later one)
        await process(self, group, batches)

    def traced_append(self, entries, views=()):
        current[0]["write"] = now()
        append(self, entries, views)
        current[0]["synced"] = now()

    def traced_init(self, answers):
        answers_init(self, answers)
        trace = CURRENT.get()
        if trace is not None:
            answer_traces[id(self)] = trace

    def traced_send_nowait(self, answer):
        send_nowait(self, answer)
        if self.answers.waiting == 0:
            trace = answer_traces.pop(id(self.answers), None)
            if trace is not None:
                trace["answered"] = now()
                group = trace.get("_group")
                if group is not None:
                    trace.update(group)

    cut = engine_mod.Engine.cut

    async def traced_cut(self, batches, reason):
        started = now()
        record = await cut(self, batches, reason)
        PAUSES.append(("cut " + reason, started, now()))
        return record

    engine_mod.Engine.cut = traced_cut
    gc_started: list[float] = [0.0]

    def on_gc(phase, info):
        if phase == "start":
            gc_started[0] = now()
        elif info["generation"] == 2 or now() - gc_started[0] > 0.001:
            PAUSES.append((f"gc gen{info['generation']}", gc_started[0], now()))

    gc.callbacks.append(on_gc)
    rpc.dispatch = traced_dispatch
    Mempool.submit, Mempool.next_batch = traced_submit, traced_next_batch
    setattr(Mempool, worker_call, traced_recover)
    engine_mod.Engine.process, journal_mod.Journal.append = traced_process, traced_append
    rpc._Answers.__init__, rpc._Reply.send_nowait = traced_init, traced_send_nowait


async def serve_and_load(genesis, bodies: list[bytes], args, *, warm: list[bytes]) -> dict:
    limits = Limits(max_request_items=100, recovery_chunk=args.chunk, items_per_second=1e9, burst=10**9)
    async with open_intake_pool(limits) as workers, bench_node(genesis, limits, workers) as (engine, port):  # the node's pool
        if warm:  # the workers started, the code paths warm (not traced: ids below the traced ones)
            await trio.to_thread.run_sync(lambda: run_clients(port, warm, processes=1, connections=2))
        cpu, main = time.process_time(), time.thread_time()
        run = await trio.to_thread.run_sync(lambda: run_clients(
            port, bodies, processes=args.processes, connections=args.connections, rate=args.rate / args.batch, detail=True))
        return {"run": run, "server_cpu": time.process_time() - cpu, "server_main_cpu": time.thread_time() - main,
                "log_entries": engine.next_seq}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000, help="orders per second, open loop")
    parser.add_argument("--batch", type=int, default=10, help="orders per JSON-RPC request")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2, help="per client process")
    parser.add_argument("--chunk", type=int, default=Limits().recovery_chunk)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--slowest", type=int, default=8)
    args = parser.parse_args()

    flow = OrderFlow(args.accounts)
    genesis = copy_state(flow.world.state)
    warm = rpc_bodies(flow.orders(1_000), args.batch, first_id=1)
    orders = flow.orders(int(args.rate * args.seconds))
    bodies = rpc_bodies(orders, args.batch, first_id=10**7)
    first_ids = [10**7 + i * args.batch for i in range(len(bodies))]
    traces: dict[int, dict] = {}
    instrument(traces)
    load = os.getloadavg()
    result = trio.run(functools.partial(serve_and_load, warm=warm), genesis, bodies, args)
    run = result["run"]
    rows = []
    for body_id, (due, sent, done) in zip(first_ids, run["times"]):
        trace = traces.get(body_id, {})
        rows.append({"due": due, "sent": sent, **{k: v for k, v in trace.items() if not k.startswith("_")}, "done": done})
    steps = {}
    for a, b in zip(STEPS, STEPS[1:]):
        gaps = sorted((r[b] - r[a]) * 1e3 for r in rows if a in r and b in r)
        if gaps:
            steps[f"{a}->{b}"] = {"p50": round(percentile(gaps, 0.5), 3), "p99": round(percentile(gaps, 0.99), 3), "max": round(gaps[-1], 3),
                                  "n": len(gaps)}
    latencies = sorted((r["done"] - r["due"]) * 1e3 for r in rows)
    print(f"{len(rows)} requests of {args.batch} at {args.rate:.0f} orders/s, load average {load}")
    print(f"{'step':22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, s in steps.items():
        print(f"{name:22} {s['p50']:8.3f} {s['p99']:8.3f} {s['max']:8.3f}")
    print(f"{'due->done (latency)':22} {percentile(latencies, 0.5):8.3f} {percentile(latencies, 0.99):8.3f} {latencies[-1]:8.3f}")
    print("slowest requests (ms from due):")
    for r in sorted(rows, key=lambda r: r["done"] - r["due"])[-args.slowest:]:
        print("  " + " ".join(f"{k}={1e3 * (r[k] - r['due']):.2f}" for k in STEPS if k in r))
    start = min(r["due"] for r in rows)
    pauses = [(name, round((a - start) * 1e3, 1), round((b - a) * 1e3, 2)) for name, a, b in PAUSES if a >= start]
    print("pauses on the node's thread (what, at ms, ms):", pauses[:40])
    acked = run["acked"]
    print(json.dumps({"ack_p50_ms": round(percentile(latencies, 0.5), 2), "ack_p99_ms": round(percentile(latencies, 0.99), 2),
                      "orders_per_s": round(acked / run["elapsed"]), "requests": len(rows), "batch": args.batch,
                      "server_cpu_us_per_order": round(result["server_cpu"] / acked * 1e6, 1),
                      "server_main_cpu_us_per_order": round(result["server_main_cpu"] / acked * 1e6, 1),
                      "steps_ms": steps, "pauses": pauses, "load_average_before": [round(x, 2) for x in load],
                      "load_average": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
