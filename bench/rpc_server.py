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
import contextlib
import cProfile
import json
import os
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sequencer import OrderFlow, bench_node, rpc_bodies, with_workers, workers_cpu  # noqa: E402
from optinode.exchange.mempool import Limits, Mempool  # noqa: E402
from optinode.exchange.orders import PlaceResult, Status  # noqa: E402
from optinode.metrics import SequencerMetrics  # noqa: E402
from optinode.services import engine as engine_mod  # noqa: E402
from optinode.services import rpc  # noqa: E402
from optinode.services.sequencer import SWITCH_INTERVAL, freeze_heap  # noqa: E402
from optinode.spec.state import copy_state  # noqa: E402


@contextlib.asynccontextmanager
async def stub_node(genesis, limits: Limits, workers):
    """`bench_node` with the engine replaced by a stub that answers every order "resting" at once
    (no matching, no log, no fsync), in groups as the engine takes its inbox: what is left on the
    main thread is the HTTP server, the JSON-RPC layer, the mempool's side of intake and the feed,
    the part `services/rpc.py` owns, measured without the engine's cost and its noise."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    engine = SimpleNamespace(metrics=SequencerMetrics(), state=genesis)
    inbox_send, inbox_receive = trio.open_memory_channel(1024)
    seq = [0]

    async def answer() -> None:
        async for first in inbox_receive:
            group = [first]
            while True:
                try:
                    group.append(inbox_receive.receive_nowait())
                except trio.WouldBlock:
                    break
            await trio.lowlevel.checkpoint()  # (the engine answers after its group commit)
            for message in group:
                order = message.command.order
                seq[0] += 1
                message.reply.send_nowait(engine_mod.BookAccepted(seq[0], PlaceResult(b"\x00" * 32, Status.RESTING, remaining=order.size)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer)
        deps = rpc.RpcDeps(engine, engine_mod.Submitter(inbox_send), Mempool(genesis, limits, workers=workers))
        port = await nursery.start(rpc.run, deps)
        freeze_heap()
        yield engine, port
        nursery.cancel_scope.cancel()


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


CALLGRIND_HELPER = r"""
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT; }
void cg_stop(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION; }
"""


class Instructions:
    """Instructions the node process executes while the clients run, counted by valgrind's callgrind
    (this script re-runs itself under it, instrumentation off until `start`): on a shared machine
    the one figure that does not move with the load. Only the node process is instrumented (the
    clients and the worker processes are not); its main thread is counted apart from the others
    (the journal's, and the bench's own client-launching thread)."""

    def __init__(self, out: str) -> None:
        import ctypes
        import subprocess
        helper = Path(out).with_suffix(".so")
        source = helper.with_suffix(".c")
        source.write_text(CALLGRIND_HELPER)
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(helper), str(source)], check=True)
        self.lib, self.out, self.dumps = ctypes.CDLL(str(helper)), out, 0

    def start(self) -> None:
        self.lib.cg_start()

    def stop(self) -> dict[str, int]:
        """Instructions since `start`: ``main`` (the node's main thread, valgrind's thread 1) and ``other`` threads."""
        import glob
        self.lib.cg_stop()
        self.dumps += 1
        counts = {"main": 0, "other": 0}
        for path in glob.glob(f"{self.out}.{self.dumps}-*"):
            with open(path) as f:
                total = next(int(line.split()[1]) for line in f if line.startswith(("summary:", "totals:")))
            counts["main" if path.endswith("-01") else "other"] += total
        return counts


def rerun_under_callgrind(out_dir: str) -> None:
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no", "--separate-threads=yes", f"--callgrind-out-file={out_dir}/cg.out",
               sys.executable, *sys.argv]
    env = {**os.environ, "RPC_SERVER_CALLGRIND": f"{out_dir}/cg.out"}
    raise SystemExit(subprocess_run(command, env))


def subprocess_run(command: list[str], env: dict[str, str]) -> int:
    import subprocess
    return subprocess.run(command, env=env).returncode


def _own_times() -> tuple[float, float]:
    """User and system CPU seconds of the calling thread so far (Linux /proc; clock ticks)."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/self/task/{threading.get_native_id()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def single_bodies(bodies: list[bytes]) -> list[bytes]:
    """Batches of one as single request objects."""
    return [json.dumps(json.loads(b)[0]).encode() for b in bodies]


async def measure(genesis, runs: list[tuple[str, int, list]], args, *, workers) -> list[dict]:
    out: list[dict] = []
    limits = Limits(max_request_items=100, items_per_second=1e9, burst=10**9)
    node = stub_node if args.stub_engine else bench_node
    instructions = Instructions(os.environ["RPC_SERVER_CALLGRIND"]) if os.environ.get("RPC_SERVER_CALLGRIND") else None
    async with node(genesis, limits, workers) as (_, port):
        for transport, batch, orders in runs:
            bodies = rpc_bodies(orders, batch)
            if batch == 1:
                bodies = single_bodies(bodies)
            before, threads = await workers_cpu(workers, 2), thread_cpu()
            profiler = cProfile.Profile(time.thread_time if os.environ.get("PROFILE_CLOCK") != "wall" else time.perf_counter) if args.profile else None  # (CPU, not the wall time in epoll)
            cpu, main_cpu, main_times = time.process_time(), time.thread_time(), _own_times()
            if profiler:
                profiler.enable()
            if instructions:
                instructions.start()
            got = await trio.to_thread.run_sync(lambda: run_clients(transport, port, bodies, args.processes, args.connections))
            counted = instructions.stop() if instructions else None
            if profiler:
                profiler.disable()
                profiler.dump_stats(f"{args.profile}.{transport}{batch}")
            cpu, main_cpu = time.process_time() - cpu, time.thread_time() - main_cpu
            main_user, main_system = (after - before for after, before in zip(_own_times(), main_times))
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
                "server_main_user_us_per_order": round(main_user / n * 1e6, 1),
                "server_main_system_us_per_order": round(main_system / n * 1e6, 1),
                "server_cpu_us_per_request": round(cpu / requests * 1e6, 1),
                "server_main_cpu_us_per_request": round(main_cpu / requests * 1e6, 1),
                "worker_cpu_us_per_order": round(sum(after[pid] - before[pid] for pid in before) / n * 1e6, 1),
                "client_cpu_us_per_order": round(got["client_cpu"] / n * 1e6, 1),
                "orders_per_s": round(n / got["elapsed"]),
                **({"server_main_instructions_per_order": round(counted["main"] / n),
                    "server_other_threads_instructions_per_order": round(counted["other"] / n)} if counted is not None else {}),
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
    parser.add_argument("--stub-engine", action="store_true",
                        help="answer every order at once (no matching, no log): the front's own CPU, without the engine's")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the node process's instructions per order under valgrind's callgrind (~50x slower: use --orders 3000)")
    parser.add_argument("--profile", help="cProfile the node's main thread; stats to PROFILE.<transport><batch>")
    args = parser.parse_args()
    if args.instructions and not os.environ.get("RPC_SERVER_CALLGRIND"):
        import tempfile
        with tempfile.TemporaryDirectory(prefix="rpc-server-cg-") as out_dir:
            rerun_under_callgrind(out_dir)
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
