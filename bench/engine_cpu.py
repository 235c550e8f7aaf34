"""The engine's own cost per order, by CPU time (robust on a shared machine): the real `Engine` on
LevelDB (group commits synced) takes `BookSubmission`s in groups of `--group`, as the JSON-RPC
front's feed hands them over, with the signatures already recovered (the mempool's workers do that
in the node). No HTTP, no mempool: what is left is the engine's thread — matching, the spec's
trades, log records, the order history, the group commit, batch cuts.

Prints the engine thread's CPU per order, each batch cut's wall / engine-thread CPU time and its
parts (capturing the checkpoint's changed rows, the batch boundary's synced write, the root's slices
computed between groups, the checkpoint write on the lane's thread),
the longest engine-thread stalls (a group's `process` call: what every request in flight waits
out), the garbage collector's pauses, then one JSON object (docs/benchmarks.md, "The batch cut").

    PYTHONPATH=$PWD .venv/bin/python bench/engine_cpu.py --orders 100000 --group 10 [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sequencer import OrderFlow  # noqa: E402
from optinode.config import BatchSection  # noqa: E402
from optinode.exchange.orders import Placement, TimeInForce  # noqa: E402
from optinode.services import engine as engine_mod  # noqa: E402
from optinode.services.batcher import BatchPolicy  # noqa: E402
from optinode.services.journal import Journal  # noqa: E402
from optinode.runtime import freeze_heap, tune_interpreter  # noqa: E402
from optinode.spec.commitment import Commitment  # noqa: E402
from optinode.spec.crypto import recover_signer  # noqa: E402
from optinode.spec.eip712 import compute_order_digest  # noqa: E402
from optinode.spec.state import copy_state  # noqa: E402
from optinode.store.db import open_store  # noqa: E402


class _Reply:
    def send_nowait(self, answer: object) -> None:
        pass


def timed(owner: object, name: str, parts: dict[str, list[float]], label: str) -> None:
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            parts.setdefault(label, []).append(time.perf_counter() - started)

    setattr(owner, name, wrapper)


async def run(args) -> dict:
    tune_interpreter()  # as `optinode sequencer` runs (the checkpoint lane's thread shares the GIL)
    flow = OrderFlow(args.accounts)
    genesis = copy_state(flow.world.state)
    orders = flow.orders(args.warm + args.orders)
    domain = genesis.config.domain_separator
    for order in orders:  # the workers' answers, remembered in the engine's process (SignerMemo)
        recover_signer(compute_order_digest(domain, order), order.signature)
    parts: dict[str, list[float]] = {}
    timed(Commitment, "update", parts, "state root (synchronous: restart, rebuild, optinode_status)")
    timed(engine_mod.CheckpointedCommitment, "step", parts, "root slice (behind the engine, between groups)")
    timed(engine_mod.Engine, "_checkpoint", parts, "checkpoint rows captured")
    timed(Journal, "append_batch", parts, "batch record write (thread, synced)")
    timed(Journal, "write_checkpoint", parts, "checkpoint write (lane, behind the engine)")
    cuts: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="optinode-engine-") as data_dir:
        store = open_store(Path(data_dir) / "db", identity="bench")
        try:
            policy = BatchPolicy.from_config(BatchSection(max_age=3600.0), challenge_window=3600, clock=60)
            engine = engine_mod.Engine(store, genesis, policy=policy, confirmations=0, deadlines=engine_mod.Deadlines(3600, 3600))
            inner_cut = engine.cut

            async def cut(batches, reason):
                wall, cpu = time.perf_counter(), time.thread_time()
                record = await inner_cut(batches, reason)
                cuts.append((time.perf_counter() - wall, time.thread_time() - cpu))
                return record

            engine.cut = cut  # type: ignore[method-assign]
            batches_send, batches_receive = trio.open_memory_channel(1024)
            messages = [engine_mod.BookSubmission(Placement(o, TimeInForce.GTC), _Reply()) for o in orders]
            warm, timed_part = messages[:args.warm], messages[args.warm:]
            async with trio.open_nursery() as nursery:

                async def drain() -> None:
                    async for _ in batches_receive:
                        pass

                nursery.start_soon(drain)
                await nursery.start(engine.background, batches_send)  # the checkpoint lane and the roots' slices, as engine.run does
                for i in range(0, len(warm), args.group):
                    await engine.process(warm[i:i + args.group], batches_send)
                freeze_heap()  # as `optinode sequencer` does once it is up
                cuts.clear()
                for values in parts.values():
                    values.clear()
                pauses: list[tuple[int, float, float]] = []  # generation, wall, CPU of the collecting thread
                gc_start = [0.0, 0.0]

                def on_gc(phase: str, info: dict) -> None:
                    if phase == "start":
                        gc_start[:] = time.perf_counter(), time.thread_time()
                    else:
                        pauses.append((info["generation"], time.perf_counter() - gc_start[0], time.thread_time() - gc_start[1]))

                gc.callbacks.append(on_gc)
                profile = cProfile.Profile() if args.profile else None
                cpu, wall = time.thread_time(), time.perf_counter()
                if profile:
                    profile.enable()
                stalls: list[tuple[float, float]] = []  # per group: wall, engine-thread CPU
                for i in range(0, len(timed_part), args.group):
                    group_wall, group_cpu = time.perf_counter(), time.thread_time()
                    await engine.process(timed_part[i:i + args.group], batches_send)
                    stalls.append((time.perf_counter() - group_wall, time.thread_time() - group_cpu))
                if profile:
                    profile.disable()
                cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                gc.callbacks.remove(on_gc)
                resting = sum(1 for book in engine.matcher.books for _ in book)
                seen = len(engine.matcher.seen)
                nursery.cancel_scope.cancel()
        finally:
            store.close()
    if profile:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumtime").print_stats(50)
        print(out.getvalue())
    n = len(timed_part)
    cut_cpu = sum(c for _, c in cuts)

    def tail(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else 0.0  # noqa: E731
        return {"p50": round(pick(0.5), 2), "p99": round(pick(0.99), 2), "max": round(pick(1.0), 2)}

    return {
        "engine_cpu_us_per_order": round(cpu / n * 1e6, 1),
        "engine_cpu_us_per_order_without_cuts": round((cpu - cut_cpu) / n * 1e6, 1),
        "wall_us_per_order": round(wall / n * 1e6, 1),
        "orders": n, "group": args.group, "cuts": len(cuts),
        "cut_wall_ms": [round(w * 1e3, 1) for w, _ in cuts], "cut_cpu_ms": [round(c * 1e3, 1) for _, c in cuts],
        "cut_parts_ms": {k: [round(x * 1e3, 1) for x in v] for k, v in parts.items()},
        "cut_engine_cpu_ms": tail([c for _, c in cuts]), "cut_wall_ms_tail": tail([w for w, _ in cuts]),
        "cut_parts_tail_ms": {k: tail(v) for k, v in parts.items()},
        # a group's process() call, cut or not: the engine takes no other message meanwhile
        "group_wall_ms": tail([w for w, _ in stalls]), "group_engine_cpu_ms": tail([c for _, c in stalls]),
        # wall (on a shared machine: includes the thread being descheduled) and CPU of each collection
        "gc_pauses_ms": {f"gen{g}": {"count": sum(1 for gen, _, _ in pauses if gen == g),
                                     "max": round(max((p for gen, p, _ in pauses if gen == g), default=0.0) * 1e3, 2),
                                     "cpu_max": round(max((c for gen, _, c in pauses if gen == g), default=0.0) * 1e3, 2)} for g in range(3)},
        "gc_tracked_objects_at_end": len(gc.get_objects()),
        "resting_orders_at_end": resting, "seen_orders_at_end": seen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--warm", type=int, default=2_000, help="orders before the timed part (the code paths warm)")
    parser.add_argument("--group", type=int, default=10, help="orders per group commit (the feed hands over what waits)")
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--profile", action="store_true", help="cProfile the timed part (its CPU figures are then inflated)")
    args = parser.parse_args()
    figures = trio.run(run, args)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
