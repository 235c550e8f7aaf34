"""Where the in-process intake's CPU goes, stage by stage, on the workload of bench/sequencer.py.

Prints, last, one JSON object with the cost per order of each stage, run alone on one thread:
- worker — what a recovery worker runs per order (`mempool.check_orders`: the spec's field table,
  the EIP-712 digest, the signer); the bare recovery (`compute_signer`) beside it;
- intake_main — the engine thread's side of `Mempool.submit` and `next_batch` (rate, hand-over
  form, remembered answers, replay checks, fair queue), the workers' answers computed beforehand;
- place — `Matcher.place` of the same orders (the spec's order rules, matching with every fill
  applied by `state_transition`, the rest check), signatures remembered as the mempool leaves them;
- pipeline (with `--instructions` only) — the engine process's whole side of bench/sequencer.py's
  in-process run (`measure_intake` on the intake's worker pool, `with_pool`): placement, intake,
  the hand-over to the workers and the event loop, under the collector policy of `--gc`
  (the workers run outside valgrind, so only the engine process is counted);
  pipeline_trio_parallel — the same on trio-parallel's workers (one job per worker at a time), what
  the intake ran before its own pool.

`*_us` are CPU microseconds (`time.thread_time`, the least of `--repeat` runs: the machine is
shared, and a run that lost its core's caches to a neighbour is slower, never faster).
`--instructions` also counts each stage's instructions per order under valgrind's callgrind (a
stage run with and without its loop, the difference divided by the orders): the same on a loaded
machine as on an idle one, so a change of a few percent shows, which CPU time on a shared machine
cannot show (docs/benchmarks.md, "Sequencer intake").

    .venv/bin/python bench/intake_profile.py                  # ~30 s
    .venv/bin/python bench/intake_profile.py --instructions   # + ~3 min (valgrind)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from msgspec.structs import astuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sequencer import OrderFlow  # noqa: E402
from optinode.exchange import mempool  # noqa: E402
from optinode.exchange.matching import Matcher  # noqa: E402
from optinode.exchange.mempool import Limits, Mempool  # noqa: E402
from optinode.exchange.orders import Placement  # noqa: E402
from optinode.spec.crypto import compute_signer, recover_signer  # noqa: E402
from optinode.spec.eip712 import compute_order_digest  # noqa: E402
from optinode.runtime import freeze_heap, tune_interpreter  # noqa: E402
from optinode.spec.state import copy_state  # noqa: E402

STAGES = ("worker", "recovery", "intake_main", "place")  # timed; with --instructions, also "pipeline"


class Inline:
    """A stand-in for the worker context: runs the job here (the intake stage counts its own side only)."""

    async def run_sync(self, fn, *args, limiter=None):
        async with limiter:
            await trio.lowlevel.checkpoint()
            return fn(*args)


def prepare(workload: tuple, stage: str):
    """Everything a stage needs, made before its clock starts; returns the stage's loop."""
    state0, ctx, orders = workload
    state = copy_state(state0)
    domain = state.config.domain_separator
    fields = [astuple(o) for o in orders]
    if stage == "worker":
        return lambda: mempool.check_orders(domain, fields)
    if stage == "recovery":
        pairs = [(compute_order_digest.__wrapped__(domain, o), o.signature) for o in orders]
        return lambda: [compute_signer(d, s) for d, s in pairs]
    answers = dict(zip(fields, mempool.check_orders(domain, fields)))
    if stage == "intake_main":
        real = mempool.check_orders

        def answered(domain_separator, part):
            return [answers[f] for f in part]

        limits = Limits(max_request_items=200, items_per_second=1e9, burst=10**9, max_pending_per_account=10**6)
        requests = [[Placement(o) for o in orders[i:i + 200]] for i in range(0, len(orders), 200)]

        def run(requests=requests) -> None:
            async def go() -> None:
                pool = Mempool(state, limits, workers=Inline())
                for request in requests:
                    await pool.submit(request)
                    while len(pool.queue):
                        await pool.next_batch(64)
            mempool.check_orders = answered
            try:
                trio.run(go)
            finally:
                mempool.check_orders = real
        return run
    if stage in ("pipeline", "pipeline_trio_parallel"):
        from functools import partial

        from bench.sequencer import measure_intake, with_pool

        async def on_trio_parallel(*args, workers=None):  # the hand-over before the intake's own pool
            import trio_parallel

            async with trio_parallel.open_worker_context() as context:
                async with trio.open_nursery() as nursery:  # both started before the clock
                    for _ in range(2):
                        nursery.start_soon(context.run_sync, mempool.compute_chunk, [])
                return await measure_intake(*args, workers=context)

        def pipeline(orders=orders) -> None:
            if stage == "pipeline":
                trio.run(partial(with_pool, limits=Limits()), measure_intake, state, ctx, orders, 200, 4, 128)
            else:
                trio.run(on_trio_parallel, state, ctx, orders, 200, 4, 128)
        return pipeline
    # place: the answers remembered as the mempool leaves them
    for order, (digest, signer) in zip(orders, (answers[f] for f in fields)):
        compute_order_digest.remember_key((domain, order), digest)
        recover_signer.remember(digest, order.signature, signer)
    placements = [Placement(o) for o in orders]
    matcher = Matcher(state, max_open_orders=10**6)
    return lambda: [matcher.place(p, ctx) for p in placements]


def apply_gc(policy: str) -> None:
    """`default` (CPython's), `freeze` (optinode.runtime's: thresholds and the heap frozen, as the
    node and bench/sequencer.py run), `off`, or `freeze:A,B,C` (frozen, those thresholds)."""
    if policy == "off":
        gc.disable()
    elif policy.startswith("freeze"):
        tune_interpreter()
        if ":" in policy:
            gc.set_threshold(*map(int, policy.split(":", 1)[1].split(",")))
        freeze_heap()


def child(path: str, stage: str, loop: bool, policy: str) -> None:
    """Under valgrind: set up the stage and run its loop (or not: the baseline)."""
    with open(path, "rb") as f:
        workload = pickle.load(f)
    run = prepare(workload, stage)
    apply_gc(policy)
    if loop:
        run()
    elif stage in ("intake_main", "pipeline", "pipeline_trio_parallel"):
        run([])  # trio.run's own start-up (and the pool's) is not the intake's


def count_instructions(path: str, stage: str, orders: int, policy: str) -> float:
    def collected(loop: bool) -> int:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
                   "--child", path, "--stage", stage, "--gc", policy] + (["--loop"] if loop else [])
        out = subprocess.run(command, capture_output=True, text=True, check=True).stderr
        return int(next(line for line in out.splitlines() if "Collected" in line).split()[-1])
    return (collected(True) - collected(False)) / orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--instruction-orders", type=int, default=3_000)
    parser.add_argument("--gc", default="freeze", help="collector policy under --instructions: default, freeze, off, freeze:A,B,C")
    parser.add_argument("--stages", default=",".join(STAGES + ("pipeline",)), help="stages to count under --instructions")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--loop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.stage, args.loop, args.gc)

    flow = OrderFlow(args.accounts)
    orders = flow.orders(args.orders)
    workload = (flow.world.state, flow.world.ctx, orders)
    figures: dict = {}
    for stage in STAGES:
        best = float("inf")
        for _ in range(args.repeat):
            run = prepare(workload, stage)
            gc.collect()
            start = time.thread_time()
            run()
            best = min(best, time.thread_time() - start)
        figures[f"{stage}_us"] = round(best / args.orders * 1e6, 2)
        print(f"{stage:12s} {figures[f'{stage}_us']:6.2f} µs CPU per order", flush=True)
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind")
        with tempfile.TemporaryDirectory(prefix="optinode-profile-") as tmp:
            path = os.path.join(tmp, "workload.pickle")
            counted = orders[:args.instruction_orders]
            with open(path, "wb") as f:
                pickle.dump((flow.world.state, flow.world.ctx, counted), f)
            for stage in args.stages.split(","):
                figures[f"{stage}_instructions"] = round(count_instructions(path, stage, len(counted), args.gc))
                print(f"{stage:12s} {figures[f'{stage}_instructions']:9,} instructions per order", flush=True)
    figures["orders"] = args.orders
    figures["gc"] = args.gc
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
