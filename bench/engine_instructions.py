"""Instructions per order of the engine thread's work, counted by valgrind's callgrind (the same on a
loaded machine as on an idle one, so a change of a few percent shows; docs/benchmarks.md, "The
engine thread's CPU per order").

Stages, on the workload of bench/sequencer.py (signatures remembered, as the mempool leaves them):
- place  — `Matcher.place` of each order (the spec's order rules, matching with every fill applied
  by `state_transition`, the rest check);
- replay — only the spec's side of it: the Trades those placements emitted, applied again by
  `state_transition` to the state they started from (per order placed, not per Trade: ~0.57
  Trades per order);
- engine — the real `services/engine.py` on LevelDB taking the orders as `BookSubmission`s in groups
  of 10 (matching, log records, the order history, group commits; its writer thread counted too).

Each stage runs twice under callgrind, with and without its timed loop over `--orders` orders
(after 500 warm-up orders); the difference divided by the orders is printed, then one JSON object.

    PYTHONPATH=$PWD .venv/bin/python bench/engine_instructions.py [--orders 3000] [--stages place,replay,engine]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARM = 500


def child(path: str, stage: str, loop: bool) -> None:
    import trio

    from optinode.exchange.matching import Matcher
    from optinode.exchange.orders import Placement, TimeInForce
    from optinode.spec.crypto import recover_signer
    from optinode.spec.eip712 import compute_order_digest
    from optinode.spec.state import copy_state
    from optinode.spec.transition import state_transition

    with open(path, "rb") as f:
        state0, ctx, orders, answers = pickle.load(f)
    domain = state0.config.domain_separator
    for order, (digest, signer) in zip(orders, answers):
        compute_order_digest.remember_key((domain, order), digest)
        recover_signer.remember(digest, order.signature, signer)
    warm, timed = orders[:WARM], orders[WARM:]
    if stage == "place":
        matcher = Matcher(copy_state(state0), max_open_orders=10**6)
        for order in warm:
            matcher.place(Placement(order), ctx)
        if loop:
            for order in timed:
                matcher.place(Placement(order), ctx)
        return
    if stage == "replay":
        matcher = Matcher(copy_state(state0), max_open_orders=10**6)
        before = [t for order in warm for t in matcher.place(Placement(order), ctx).trades]
        trades = [t for order in timed for t in matcher.place(Placement(order), ctx).trades]
        state = copy_state(state0)
        for trade in before:
            state_transition(state, trade, ctx)
        if loop:
            for trade in trades:
                state_transition(state, trade, ctx)
        return

    from optinode.config import BatchSection
    from optinode.services import engine as engine_mod
    from optinode.services.batcher import BatchPolicy
    from optinode.store.db import open_store

    class Reply:
        def send_nowait(self, answer: object) -> None:
            pass

    async def run() -> None:
        with tempfile.TemporaryDirectory(prefix="optinode-instructions-") as data_dir:
            store = open_store(Path(data_dir) / "db", identity="bench")
            policy = BatchPolicy.from_config(BatchSection(max_age=3600.0), challenge_window=3600, clock=60)
            engine = engine_mod.Engine(store, copy_state(state0), policy=policy, confirmations=0,
                                       deadlines=engine_mod.Deadlines(3600, 3600))
            send, _receive = trio.open_memory_channel(1024)
            reply = Reply()
            for part in (warm, timed if loop else []):
                messages = [engine_mod.BookSubmission(Placement(o, TimeInForce.GTC), reply) for o in part]
                for i in range(0, len(messages), 10):
                    await engine.process(messages[i:i + 10], send)
            store.close()

    trio.run(run)


def collected(arguments: list[str]) -> int:
    """The instructions callgrind counts in a run of this script with `arguments` (the whole process)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}  # (dict and set layouts fixed)
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, *arguments],
                         capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return int(next(line for line in run.stderr.splitlines() if "Collected" in line).split()[-1])


def count(path: str, stage: str, orders: int) -> float:
    arguments = ["--child", path, "--stage", stage]
    return (collected(arguments + ["--loop"]) - collected(arguments)) / orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3_000)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--stages", default="place,replay,engine")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--loop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.stage, args.loop)
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind")

    from bench.sequencer import OrderFlow
    from optinode.spec.crypto import compute_signer
    from optinode.spec.eip712 import compute_order_digest

    flow = OrderFlow(args.accounts)
    orders = flow.orders(WARM + args.orders)
    domain = flow.world.state.config.domain_separator
    answers = []
    for order in orders:  # the workers' answers (digest, signer), computed once here
        digest = compute_order_digest.__wrapped__(domain, order)
        answers.append((digest, compute_signer(digest, order.signature)))
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="optinode-instructions-") as tmp:
        path = os.path.join(tmp, "workload.pickle")
        with open(path, "wb") as f:
            pickle.dump((flow.world.state, flow.world.ctx, orders, answers), f)
        for stage in args.stages.split(","):
            figures[f"{stage}_instructions"] = round(count(path, stage, args.orders))
            print(f"{stage:8s} {figures[f'{stage}_instructions']:9,} instructions per order", flush=True)
    figures["orders"] = args.orders
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
