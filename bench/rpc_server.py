"""The JSON-RPC server's own CPU per order and per request, by transport and batch size.

The real node as `bench/sequencer.py` runs it (the engine on LevelDB, every answer after its synced
group commit, the mempool on 2 trio-parallel worker processes, `services/rpc.py` on 127.0.0.1), and
client processes (`--processes` x `--connections`, plain `http.client` or `websockets`' sync
client, no optinode code) that post pre-encoded JSON-RPC batches of `optinode_sendOrder` as fast as
they are answered. For each transport and batch size it measures the CPU time the server spent
(`process_time` of the node process minus its worker processes, and `thread_time` of its main
thread, the one the ASGI app, the JSON-RPC layer and the engine share) per order and per request:
on a shared machine these, not the wall-clock rates, say what the code costs.

    PYTHONPATH=$PWD .venv/bin/python bench/rpc_server.py                      # http and ws, batches 1/10/50/100
    PYTHONPATH=$PWD .venv/bin/python bench/rpc_server.py --transports http --batches 50 --profile main.prof

A batch of 1 is sent as a single request object (not an array of one), as a bot sending one order
would. Prints one JSON object per run, then one JSON object with all of them last.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sequencer import OrderFlow, bench_node, rpc_bodies, with_workers, workers_cpu  # noqa: E402
from optinode.exchange.mempool import Limits  # noqa: E402
from optinode.spec.state import copy_state  # noqa: E402


def _answered(raw: bytes | str) -> int:
    answers = json.loads(raw)
    answers = answers if isinstance(answers, list) else [answers]
    errors = [a["error"] for a in answers if "error" in a]
    assert not errors, errors[:3]
    return len(answers)


def _client(transport: str, port: int, lanes: list[list[bytes]], start_at: float, out) -> None:
    """One client process: a thread per connection, each posting its bodies one after the other."""
    import http.client
    import threading

    from websockets.sync.client import connect

    acked = [0] * len(lanes)

    def http_lane(k: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()
        while time.time() < start_at:
            time.sleep(0.0005)
        for body in lanes[k]:
            connection.request("POST", "/", body=body, headers={"content-type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200
            acked[k] += _answered(response.read())
        connection.close()

    def ws_lane(k: int) -> None:
        with connect(f"ws://127.0.0.1:{port}/", max_size=2**22, compression=None) as ws:
            while time.time() < start_at:
                time.sleep(0.0005)
            for body in lanes[k]:
                ws.send(body.decode())
                acked[k] += _answered(ws.recv())

    cpu = time.process_time()
    threads = [threading.Thread(target=http_lane if transport == "http" else ws_lane, args=(k,)) for k in range(len(lanes))]
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((sum(acked), time.process_time() - cpu, time.time() - max(began, start_at)))


def run_clients(transport: str, port: int, bodies: list[bytes], processes: int, connections: int) -> dict:
    ctx = get_context("spawn")
    queue = ctx.Queue()
    lanes = processes * connections
    per_lane = [bodies[i::lanes] for i in range(lanes)]
    start_at = time.time() + 1.5
    procs = [ctx.Process(target=_client, args=(transport, port, per_lane[p * connections:(p + 1) * connections], start_at, queue))
             for p in range(processes)]
    for p in procs:
        p.start()
    reports = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return {"acked": sum(r[0] for r in reports), "client_cpu": sum(r[1] for r in reports), "elapsed": max(r[2] for r in reports)}


def thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process so far, by thread id and name (Linux /proc)."""
    ticks, out = os.sysconf("SC_CLK_TCK"), {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        out[f"{tid} {name}"] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def single_bodies(bodies: list[bytes]) -> list[bytes]:
    """Batches of one as single request objects."""
    return [json.dumps(json.loads(b)[0]).encode() for b in bodies]


async def measure(genesis, runs: list[tuple[str, int, list]], args, *, workers) -> list[dict]:
    out: list[dict] = []
    limits = Limits(max_request_items=100, items_per_second=1e9, burst=10**9)
    async with bench_node(genesis, limits, workers) as (_, port):
        for transport, batch, orders in runs:
            bodies = rpc_bodies(orders, batch)
            if batch == 1:
                bodies = single_bodies(bodies)
            before, threads = await workers_cpu(workers, 2), thread_cpu()
            profiler = cProfile.Profile(time.thread_time) if args.profile else None  # (CPU, not the wall time in epoll)
            cpu, main_cpu = time.process_time(), time.thread_time()
            if profiler:
                profiler.enable()
            got = await trio.to_thread.run_sync(lambda: run_clients(transport, port, bodies, args.processes, args.connections))
            if profiler:
                profiler.disable()
                profiler.dump_stats(f"{args.profile}.{transport}{batch}")
            cpu, main_cpu = time.process_time() - cpu, time.thread_time() - main_cpu
            after, threads_after = await workers_cpu(workers, 2), thread_cpu()
            others: dict[str, float] = {}  # the other threads of the node process, by name
            for key, spent in threads_after.items():
                tid, name = key.split(" ", 1)
                if int(tid) != threading.get_native_id():
                    others[name] = others.get(name, 0.0) + spent - threads.get(key, 0.0)
            assert got["acked"] == len(orders), (got["acked"], len(orders))
            n, requests = len(orders), len(bodies)
            figures = {
                "transport": transport, "batch": batch, "orders": n, "requests": requests,
                "server_cpu_us_per_order": round(cpu / n * 1e6, 1),
                "server_main_cpu_us_per_order": round(main_cpu / n * 1e6, 1),
                "server_cpu_us_per_request": round(cpu / requests * 1e6, 1),
                "server_main_cpu_us_per_request": round(main_cpu / requests * 1e6, 1),
                "worker_cpu_us_per_order": round(sum(after[pid] - before[pid] for pid in before) / n * 1e6, 1),
                "client_cpu_us_per_order": round(got["client_cpu"] / n * 1e6, 1),
                "orders_per_s": round(n / got["elapsed"]),
                "other_threads_cpu_us_per_order": {name: round(spent / n * 1e6, 1) for name, spent in sorted(others.items()) if spent > 0},
            }
            print(json.dumps(figures), flush=True)
            out.append(figures)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transports", default="http,ws")
    parser.add_argument("--batches", default="1,10,50,100")
    parser.add_argument("--orders", type=int, default=6_000, help="orders per run (a third of it for batches of 1)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=2, help="per client process")
    parser.add_argument("--profile", help="cProfile the node's main thread; stats to PROFILE.<transport><batch>")
    args = parser.parse_args()
    flow = OrderFlow(400)
    genesis = copy_state(flow.world.state)
    runs = []
    for transport in args.transports.split(","):
        for batch in map(int, args.batches.split(",")):
            runs.append((transport, batch, flow.orders(args.orders // 3 if batch == 1 else args.orders)))
    print(f"signed {sum(len(r[2]) for r in runs)} orders", flush=True)
    results, _ = trio.run(with_workers, measure, genesis, runs, args)
    print(json.dumps({"runs": results}))


if __name__ == "__main__":
    main()
