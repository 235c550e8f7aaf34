"""Sequencer restart benchmark: what a restart reads and replays (incremental checkpoints of the state and books).

An engine on LevelDB takes `--batches` batches of `--per-batch` signed order placements each (the
random flow of bench/sequencer.py: about half cross, the rest rest on the book), cut after each
batch, plus `--tail` placements after the last cut. Then the store is reopened and timed:

- restart_s / replayed_entries — `Engine(...)` on it: the last checkpoint's rows (state and books),
  then the log after it (the tail);
- full_replay_s / log_entries — the previous restart, for comparison: the genesis state, and the
  whole log from the first entry replayed through the matcher;
- equal — both give the same books and state root (checked; the script fails otherwise).

Both start with an empty signer memo, as a restarted process does.

Prints one JSON object last (docs/benchmarks.md, "Restart").

    .venv/bin/python bench/restart.py            # ~1 min; --batches 40 --per-batch 200 --tail 50
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sequencer import OrderFlow  # noqa: E402
from optinode.config import BatchSection  # noqa: E402
from optinode.exchange.matching import Matcher  # noqa: E402
from optinode.exchange.orders import Placement  # noqa: E402
from optinode.services import engine as engine_mod  # noqa: E402
from optinode.services.batcher import BatchPolicy, CutRequest  # noqa: E402
from optinode.services.journal import Journal, replay_entry  # noqa: E402
from optinode.spec.commitment import compute_state_root  # noqa: E402
from optinode.spec.crypto import recover_signer  # noqa: E402
from optinode.spec.state import State, copy_state  # noqa: E402
from optinode.spec.types import L1Context  # noqa: E402
from optinode.store.db import open_store  # noqa: E402


def make_engine(store, genesis: State) -> engine_mod.Engine:
    policy = BatchPolicy.from_config(BatchSection(max_age=10**6), challenge_window=30, clock=60)
    return engine_mod.Engine(store, copy_state(genesis), policy=policy, confirmations=0, deadlines=engine_mod.Deadlines(3600, 3600))


async def fill(store, genesis: State, batches: list[list], tail: list) -> None:
    engine = make_engine(store, genesis)
    inbox, inbox_receive = trio.open_memory_channel(64)
    batches_send, batches_receive = trio.open_memory_channel(len(batches) + 1)
    submitter = engine_mod.Submitter(inbox)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine_mod.run, engine, inbox_receive, batches_send)
        for orders in batches:
            for order in orders:
                await submitter.submit_book(Placement(order))
            await inbox.send(CutRequest("bench"))
            await batches_receive.receive()
        for order in tail:
            await submitter.submit_book(Placement(order))
        nursery.cancel_scope.cancel()


def full_replay(store, genesis: State) -> tuple[tuple, bytes]:
    state = copy_state(genesis)
    matcher = Matcher(state)
    for entry in Journal(store).entries(0):
        if isinstance(entry.command, engine_mod.BOOK_COMMANDS):
            matcher.apply(entry.command, L1Context(entry.l1_timestamp))
        else:
            replay_entry(state, entry)
    return matcher.snapshot(), compute_state_root(state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--per-batch", type=int, default=200)
    parser.add_argument("--tail", type=int, default=50)
    parser.add_argument("--accounts", type=int, default=20)
    args = parser.parse_args()
    flow = OrderFlow(args.accounts)
    genesis = copy_state(flow.world.state)
    orders = flow.orders(args.batches * args.per_batch + args.tail)
    batches = [orders[i * args.per_batch:(i + 1) * args.per_batch] for i in range(args.batches)]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "db", identity="bench")
        trio.run(fill, store, genesis, batches, orders[args.batches * args.per_batch:])
        store.close()
        store = open_store(Path(tmp) / "db", identity="bench")
        recover_signer.memo.clear()  # a restarted process recovers every signature it replays again
        started = time.perf_counter()
        engine = make_engine(store, genesis)
        restart_s = time.perf_counter() - started
        recover_signer.memo.clear()
        started = time.perf_counter()
        snapshot, root = full_replay(store, genesis)
        full_replay_s = time.perf_counter() - started
        equal = snapshot == engine.matcher.snapshot() and root == compute_state_root(engine.state)
        log_entries = Journal(store).next_seq()
        resting = sum(1 for book in engine.matcher.books for _ in book)
        store.close()
    if not equal:
        raise SystemExit("the restarted engine's books or root differ from a full replay")
    print(json.dumps({
        "batches": args.batches, "log_entries": log_entries, "resting_orders": resting,
        "replayed_entries": len(engine.replayed_seqs), "restart_s": round(restart_s, 4),
        "full_replay_s": round(full_replay_s, 4), "speedup": round(full_replay_s / restart_s, 1), "equal": equal,
    }))


if __name__ == "__main__":
    main()
