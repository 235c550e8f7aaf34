"""Verifier benchmark: can a verifier that was down catch up with the sequencer, and how fast does
it challenge a bad batch?

    .venv/bin/python bench/verifier.py                 # ~1-2 min; --orders N --batch N --skip-devnet

In one run, on one workload:
1. **intake** — the sequencer's in-process intake from bench/sequencer.py (`measure_intake`: signed
   orders from many accounts through the mempool, its recovery workers and the matcher, every fill
   applied by the spec); every spec Trade the engine emitted is kept. `intake_tx_per_s` = those
   transactions per second of intake (what the sequencer produces for L1);
2. **replay** — the same transactions (after the deposits that funded the accounts), cut into
   batches of `--batch` records and framed as they are posted, replayed by the verifier's own code
   (`replayer.verify_batch`: decode, every signature recovered by worker threads on all cores, the
   spec's replay, the root compared, the verdict, the checkpoint, the decoded batch and its signers
   written to a real LevelDB store in one synced write batch per batch) from the genesis checkpoint
   in LevelDB, with the spec's signer and digest memos emptied first (the verifier is another
   process: it has recovered nothing). `replay_tx_per_s` uses worker threads (what
   `optinode verifier` runs); `replay_processes_tx_per_s` the same with the read-ahead pool's worker
   processes (their answers remembered in the memo), so the choice is measured;
   `replay_pipelined_tx_per_s` the pipelined replay `optinode verifier` runs in a catch-up
   (`replayer.prepare_batch` in worker processes recovers batch n + 1 while this thread replays
   batch n);
3. `ratio` = replay_tx_per_s / intake_tx_per_s (target >= 1.5), and `ratio_catch_up` the same with
   the pipelined replay a verifier behind the head runs;
4. `trades_per_s` — the spec's apply rate as bench/stf.py measures it (one core, signatures
   pre-verified), and `trades_per_cpu_s` over its CPU time;
5. `detect_blocks` — on an anvil devnet with 1-second blocks: `optinode sequencer --fault
   corrupt:1:0` posts a batch with a wrong root, `optinode verifier run` challenges it; L1 blocks
   from the append to the mined `GameOpened` (target <= 2).

CPU figures sit next to the wall-clock ones: on a shared machine they are what the code costs.
`replay_cpu_us_per_tx` is this process's CPU (all threads) per replayed transaction;
`intake_cpu_us_per_tx` is the intake's CPU, its process (`intake_cpu_us_per_order`) and its recovery
worker processes (`intake_workers_cpu_us_per_order`, as bench/sequencer.py measures them), per
transaction produced; `ratio_cpu` = the second / the first. Per replay mode (`threads`, `processes`,
`pipelined`): `replay_main_cpu_us_per_tx` (the node's thread: decode, replay, store),
`replay_workers_cpu_us_per_tx` (the recovery threads or worker processes), and
`replay_two_idle_cores_us_per_tx`, the time per transaction those CPU figures give on two idle
cores: main + workers / 2 when recovery runs before the replay, max(main, (main + workers) / 2)
when it overlaps the replay — what pipelining is judged by on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sequencer import OrderFlow, measure_intake, with_workers  # noqa: E402
from bench.stf import measure_apply  # noqa: E402
from bench.workload import Workload  # noqa: E402
from optinode.exchange.mempool import Limits  # noqa: E402
from optinode.exchange.worker_pool import open_worker_pool  # noqa: E402
from optinode.l1 import events  # noqa: E402
from optinode.services.replayer import VALID, Replayer, prepare_batch, verify_batch  # noqa: E402
from optinode.services.verifier import READ_AHEAD_JOBS, READ_AHEAD_PRELOAD  # noqa: E402
from optinode.spec.batch_framing import frame_records  # noqa: E402
from optinode.spec.commitment import Commitment  # noqa: E402
from optinode.spec.crypto import recover_signer  # noqa: E402
from optinode.spec.eip712 import compute_order_digest  # noqa: E402
from optinode.spec.genesis import create_genesis_state  # noqa: E402
from optinode.spec.record_codec import encode_transaction  # noqa: E402
from optinode.spec.state import copy_state  # noqa: E402
from optinode.spec.transition import state_transition  # noqa: E402
from optinode.spec.types import L1Context, Transaction  # noqa: E402
from optinode.store.db import open_store  # noqa: E402


def intake_transactions(orders: int, accounts: int, request: int, clients: int, chunk: int) -> tuple[OrderFlow, list[Transaction], float, dict]:
    """The intake benchmark as the sequencer runs it (recovery in two trio-parallel worker processes),
    keeping the transactions it produced: (flow, txs, seconds, outcome)."""
    flow = OrderFlow(accounts)
    genesis_txs = list(flow.world.txs)  # the deposits that funded the accounts
    flow_orders = flow.orders(orders)
    trades: list = []
    (orders_per_s, outcome), workers_cpu_s = trio.run(with_workers, partial(measure_intake, trades=trades), flow.world.state, flow.world.ctx,
                                                      flow_orders, request, clients, chunk)
    outcome["workers_cpu_us_per_order"] = workers_cpu_s / len(flow_orders) * 1e6
    return flow, genesis_txs + trades, len(flow_orders) / orders_per_s, outcome


def appended_batches(flow: OrderFlow, txs: list[Transaction], batch_size: int) -> list[tuple[Any, bytes]]:
    """The transactions as posted batches: (a BatchAppended with the honest root, the framed data)."""
    state = create_genesis_state(flow.world.genesis)
    commitment = Commitment.from_state(state)
    ctx = flow.world.ctx
    out = []
    for n, start in enumerate(range(0, len(txs), batch_size), start=1):
        part = txs[start:start + batch_size]
        for tx in part:
            state_transition(state, tx, ctx)
        records = [encode_transaction(tx) for tx in part]
        appended = events.BatchAppended(
            block_number=n, block_hash=n.to_bytes(32, "big"), log_index=0, tx_hash=n.to_bytes(16, "big") * 2, address=bytes(20),
            index=n, id=n, proposer=bytes(20), state_root=commitment.update(state), tx_root=bytes(32), tx_count=len(records),
            deposit_queue_length=len(ctx.deposits), forced_queue_length=0, l1_timestamp=ctx.l1_timestamp, appended_at=ctx.l1_timestamp)
        out.append((appended, frame_records(records)))
    return out


def forget_signatures() -> None:
    """A verifier is another process: nothing the intake recovered or hashed is in its memos."""
    recover_signer.memo.clear()
    compute_order_digest.cache_clear()


async def replay_all(flow: OrderFlow, batches: list[tuple[Any, bytes]], db: Path, mode: str) -> dict[str, float]:
    """Replay every batch from the genesis checkpoint in a fresh LevelDB store; ``mode``: ``threads``
    (recovery on worker threads, then the replay: what `optinode verifier` ran before pipelining),
    ``processes`` (the same with trio-parallel worker processes) or ``pipelined`` (worker processes
    recover batch n + 1 while this thread replays batch n: `prepare_batch` one batch ahead).
    Returns wall seconds, this process's CPU, its main thread's CPU and the worker processes' CPU."""
    genesis = create_genesis_state(flow.world.genesis)
    store = open_store(db)
    try:
        Replayer(store, genesis)  # writes the genesis checkpoint
        replayer = Replayer(store, genesis)  # and a node started on it reads it back
        replayer.deposits.update(flow.world.deposit_queue)  # the Bridge's Deposited events
        timestamp = flow.world.ctx.l1_timestamp
        forget_signatures()
        if mode == "threads":
            start, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            for appended, data in batches:
                assert (await verify_batch(replayer, appended, data, timestamp)).verdict == VALID
            return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu, "main": time.thread_time() - main, "workers": 0.0}
        count = os.cpu_count() or 2
        # The verifier's read-ahead pool, opened as `optinode verifier run` opens it.
        async with open_worker_pool(count, max_jobs=READ_AHEAD_JOBS, preload=READ_AHEAD_PRELOAD) as workers:
            before = {stats.pid: stats.cpu for stats in await workers.stats()}
            start, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
            if mode == "processes":
                for appended, data in batches:
                    assert (await verify_batch(replayer, appended, data, timestamp, run_sync=workers.run_sync)).verdict == VALID
            else:
                await _pipelined(replayer, batches, timestamp, workers.run_sync)
            out = {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu, "main": time.thread_time() - main}
            after = {stats.pid: stats.cpu for stats in await workers.stats()}
        assert set(before) == set(after), "the same workers throughout"
        out["workers"] = sum(after[pid] - before[pid] for pid in after)
        return out
    finally:
        store.close()


async def _pipelined(replayer: Replayer, batches: list[tuple[Any, bytes]], timestamp: int, run_sync: Any) -> None:
    prepared: list[Any] = [None] * len(batches)
    ready = [trio.Event() for _ in batches]
    limiter = trio.CapacityLimiter(os.cpu_count() or 2)  # one per node: batch n + 1's chunks queue behind batch n's

    async def prepare(i: int) -> None:
        appended, data = batches[i]
        prepared[i] = await prepare_batch(replayer, appended, data, run_sync=run_sync, limiter=limiter)
        ready[i].set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(prepare, 0)
        for i, (appended, data) in enumerate(batches):
            if i + 1 < len(batches):
                nursery.start_soon(prepare, i + 1)
            await ready[i].wait()
            assert (await verify_batch(replayer, appended, data, timestamp, prepared=prepared[i])).verdict == VALID
            prepared[i] = None


def measure_detect_blocks(tmp: Path) -> int:
    """Blocks from a bad batch's append to the mined challenge, on anvil with 1-second blocks."""
    from eth_account import Account

    from optinode.l1.anvil import DEFAULT_PRIVATE_KEYS, run_anvil
    from optinode.testing.seqnode import DevChain, optinode_command, optinode_env
    from optinode.testing.world import USD

    with run_anvil(block_time=1, log_dir=str(tmp)) as anvil:
        chain = DevChain.deploy(anvil.url, tmp / "chain")
        node = chain.start_sequencer(tmp / "seq", fault="corrupt:1:0", log_path=tmp / "seq.log")
        args = ["verifier", "run", "--config", str(chain.config_path), "--deployment", str(chain.deployment_path),
                "--data-dir", str(tmp / "ver"), "--rpc", chain.url]
        with open(tmp / "ver.log", "ab") as log:
            verifier = subprocess.Popen(optinode_command(*args), env={**optinode_env(), "OPTINODE_CHALLENGER_KEY": DEFAULT_PRIVATE_KEYS[5]},
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (tmp / "ver" / "status.json").exists():  # following L1
                if time.monotonic() > deadline or verifier.poll() is not None:
                    raise RuntimeError(f"the verifier did not start:\n{(tmp / 'ver.log').read_text()[-3000:]}")
                time.sleep(0.2)
            chain.deposit(Account.from_key(DEFAULT_PRIVATE_KEYS[2]).address, 1_000 * USD)
            game = chain.w3.eth.contract(address=chain.deployment.contracts.game, abi=_game_abi())
            first = chain.deployment.deployment_block
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                opened = game.events.GameOpened().get_logs(from_block=first, to_block="latest")
                if opened:
                    (appended, *_) = chain.rollup.events.BatchAppended().get_logs(from_block=first, to_block="latest")
                    return opened[0]["blockNumber"] - appended["blockNumber"]
                if verifier.poll() is not None:
                    raise RuntimeError(f"the verifier exited:\n{(tmp / 'ver.log').read_text()[-3000:]}")
                time.sleep(0.2)
            raise TimeoutError(f"no challenge within 120 s:\n{(tmp / 'ver.log').read_text()[-3000:]}")
        finally:
            verifier.terminate()
            verifier.wait(30)
            node.stop()


def _game_abi() -> list:
    from optinode.l1.artifacts import load_artifact

    return load_artifact("DisputeGame")["abi"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=20_000, help="signed orders through the intake")
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--request", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=Limits().recovery_chunk, help="signatures per intake worker call")
    parser.add_argument("--batch", type=int, default=1_000, help="records per replayed batch")
    parser.add_argument("--trades", type=int, default=10_000, help="bench/stf.py's workload size")
    parser.add_argument("--skip-devnet", action="store_true", help="no anvil: detect_blocks is null")
    args = parser.parse_args()

    flow, txs, intake_s, outcome = intake_transactions(args.orders, args.accounts, args.request, args.clients, args.chunk)
    trades = len(txs) - len(flow.world.txs)
    intake_tx_per_s = trades / intake_s
    print(f"intake: {args.orders} orders -> {trades} trades in {intake_s:.2f} s ({intake_tx_per_s:,.0f} tx/s; {outcome})", flush=True)

    batches = appended_batches(flow, txs, args.batch)
    replayed = len(txs)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="optinode-bench-verifier-") as tmp:
        for mode in ("threads", "processes", "pipelined"):
            runs[mode] = trio.run(replay_all, flow, batches, Path(tmp) / mode, mode)
    threads, processes, pipelined = runs["threads"], runs["processes"], runs["pipelined"]
    replay_tx_per_s, replay_processes_tx_per_s = replayed / threads["wall"], replayed / processes["wall"]
    cpu_s = threads["cpu"]
    replay_cpu_us = cpu_s / replayed * 1e6
    # The intake's CPU per transaction it produced: its process's and its recovery workers' CPU.
    intake_cpu_us = (outcome["cpu_us_per_order"] + outcome["workers_cpu_us_per_order"]) * args.orders / trades
    # What each mode costs and how long it would take on two idle cores, from CPU time alone (the
    # machine is shared): recovery on threads runs on both cores after the replay's main-thread work;
    # pipelined, the main thread replays on one core while the workers recover on what is left.
    us = {mode: {k: v / replayed * 1e6 for k, v in run.items()} for mode, run in runs.items()}
    model = {
        "threads": us["threads"]["main"] + (us["threads"]["cpu"] - us["threads"]["main"]) / 2,
        "processes": us["processes"]["main"] + us["processes"]["workers"] / 2,
        "pipelined": max(us["pipelined"]["main"], (us["pipelined"]["main"] + us["pipelined"]["workers"]) / 2),
    }
    print(f"replay, {len(batches)} batches of <= {args.batch}: threads {replay_tx_per_s:,.0f} tx/s "
          f"({cpu_s / replayed * 1e6:.1f} us CPU/tx), processes {replay_processes_tx_per_s:,.0f} tx/s, "
          f"pipelined {replayed / pipelined['wall']:,.0f} tx/s; CPU per tx {us}; two idle cores, us/tx {model}", flush=True)

    workload = Workload(trades=args.trades)
    workload.preverify()
    receipts, apply_s, apply_cpu_s = measure_apply(copy_state(workload.state), workload.trades, workload.ctx)
    assert all(r.ok for r in receipts)
    print(f"spec apply: {args.trades / apply_s:,.0f} trades/s ({args.trades / apply_cpu_s:,.0f} per CPU second)", flush=True)

    detect_blocks = None
    if not args.skip_devnet:
        with tempfile.TemporaryDirectory(prefix="optinode-bench-detect-") as tmp:
            detect_blocks = measure_detect_blocks(Path(tmp))
        print(f"detection: the challenge mined {detect_blocks} L1 blocks after the bad batch", flush=True)

    print(json.dumps({
        "replay_tx_per_s": round(replay_tx_per_s),
        "intake_tx_per_s": round(intake_tx_per_s),
        "ratio": round(replay_tx_per_s / intake_tx_per_s, 2),
        # a verifier behind the head catches up pipelined (`[node.verifier] read_ahead`, the default)
        "ratio_catch_up": round(replayed / pipelined["wall"] / intake_tx_per_s, 2),
        "detect_blocks": detect_blocks,
        "trades_per_s": round(args.trades / apply_s),
        "trades_per_cpu_s": round(args.trades / apply_cpu_s),
        "replay_processes_tx_per_s": round(replay_processes_tx_per_s),
        "replay_pipelined_tx_per_s": round(replayed / pipelined["wall"]),
        "replay_main_cpu_us_per_tx": {mode: round(u["main"], 1) for mode, u in us.items()},
        "replay_workers_cpu_us_per_tx": {mode: round(u["workers"] if mode != "threads" else u["cpu"] - u["main"], 1) for mode, u in us.items()},
        "replay_two_idle_cores_us_per_tx": {mode: round(v, 1) for mode, v in model.items()},
        "replay_cpu_us_per_tx": round(replay_cpu_us, 1),
        "intake_cpu_us_per_tx": round(intake_cpu_us, 1),
        "ratio_cpu": round(intake_cpu_us / replay_cpu_us, 2),
        "intake_cpu_us_per_order": round(outcome["cpu_us_per_order"], 1),
        "intake_workers_cpu_us_per_order": round(outcome["workers_cpu_us_per_order"], 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "intake_orders_per_s": round(args.orders / intake_s),
        "replayed_txs": replayed,
        "batches": len(batches),
    }))


if __name__ == "__main__":
    main()
