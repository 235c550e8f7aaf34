"""Crash safety of the sequencer's posting path: SIGKILL at random points, restart, check against L1.

    .venv/bin/python bench/crash_proposer.py [--trials 20] [--seed 1]

One anvil, one deployment, one data directory for the whole run. Before the trials, eight users
(anvil accounts 2..9) deposit. Each trial then starts `optinode sequencer` with ``--crash-at
POINT:N`` (a random point of deposit consumption, logging, cutting, posting or finalizing — the
names in optinode/services/faults.py — and a random N), and while it runs deposits on L1, submits
signed trades and withdrawals through the admin method (recording every acknowledgement), mines
blocks and moves L1 time past the challenge window. The node SIGKILLs itself at the point; if it has
not after a few seconds the bench SIGKILLs it at that random moment instead. It is restarted without
a fault, driven until everything is posted (every L1 deposit consumed on L1, nothing pending), and
stopped; then, from L1 and from the stopped node's store:

- **duplicated**: appendBatch transactions on L1 beyond one per live batch, plus log records that
  appear on L1 more than once;
- **lost**: log entries whose records are not on L1 in log order, plus acknowledged submissions
  that are not in the log at the sequence number they were acknowledged with;
- **final**: after settling, L1 time moves past the window and every batch must finalize (the
  proposer must find batches appended before a restart);
- **mismatched**: L1 batches whose root differs from a clean replay of the log from genesis
  (cut at L1's batch boundaries), or from the spec's replay of L1's own calldata.

Last line: one JSON object ``{"trials", "lost", "duplicated", "mismatched", "crashes", "seconds"}``;
all but ``trials``, ``crashes`` and ``seconds`` must be 0.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from optinode.l1.anvil import DEFAULT_PRIVATE_KEYS, run_anvil  # noqa: E402
from optinode.services.faults import POINTS as ALL_POINTS  # noqa: E402
from optinode.services.journal import Journal, SubmitCommand, replay_entry  # noqa: E402
from optinode.services.sequencer import identity  # noqa: E402
from optinode.spec.commitment import Commitment  # noqa: E402
from optinode.spec.genesis import create_genesis_state  # noqa: E402
from optinode.spec.record_codec import encode_transaction  # noqa: E402

# The rebuild points are reached only after a discard or a stale batch, which this bench never
# causes (tests/l1/sequencer/test_lost_game.py and tests/services/test_rebuild_crash.py crash there).
POINTS = tuple(p for p in ALL_POINTS if not p.startswith("engine.rebuil"))
from optinode.store.db import open_store  # noqa: E402
from optinode.testing.seqnode import AdminError, DevChain, Sequencer  # noqa: E402
from optinode.testing.world import ETH_UNIT, USD, World  # noqa: E402
from optinode.wallet import Key  # noqa: E402
from eth_account import Account  # noqa: E402

USERS = range(2, 10)  # anvil accounts


class Driver:
    def __init__(self, chain: DevChain, rng: random.Random) -> None:
        self.chain = chain
        self.rng = rng
        self.names = [f"u{i}" for i in USERS]
        self.addresses = {f"u{i}": Account.from_key(DEFAULT_PRIVATE_KEYS[i]).address for i in USERS}
        keys = {f"u{i}": Key(bytes.fromhex(DEFAULT_PRIVATE_KEYS[i][2:])) for i in USERS}
        self.world = World(chain.genesis, keys=keys)
        self.world.ids.update({name: n for n, name in enumerate(self.names)})  # deposit order below
        self.expiry = chain.genesis.time + 365 * 86_400
        self.acks: list[tuple[int, bytes]] = []  # (seq, record) of every acknowledged submission

    def fund(self) -> None:
        for name in self.names:
            self.chain.deposit(self.addresses[name], 10_000 * USD)

    def step(self, node: Sequencer) -> None:
        """One random action; errors from a node that just died are expected."""
        action = self.rng.random()
        if action < 0.08:
            name = self.rng.choice(self.names)
            self.chain.deposit(self.addresses[name], self.rng.randrange(1, 100) * USD)
            return
        if action < 0.2:
            self.chain.mine(self.rng.randrange(1, 4))
            return
        if action < 0.23:
            self.chain.travel(self.chain.deployment.params.challenge_window + 1)
            return
        if action < 0.7:
            maker, taker = self.rng.sample(self.names, 2)
            tx = self.world.trade(maker, taker, ETH_UNIT // 100, expiry=self.expiry)
        else:
            tx = self.world.withdraw(self.rng.choice(self.names), USD, expiry=self.expiry)
        try:
            ack = node.submit(tx)
        except AdminError:
            return  # refused (e.g. a nonce an unacknowledged, logged command used before a crash)
        except requests.RequestException:
            return  # the node died: no acknowledgement, no promise
        self.acks.append((ack["seq"], encode_transaction(tx)))


def settle(chain: DevChain, node: Sequencer, timeout: float = 120.0) -> None:
    """Drive L1 until the node has posted everything: every L1 deposit consumed in a posted batch."""
    confirmations = chain.config.node.batch.queue_confirmations
    chain.mine(confirmations)

    def done() -> bool:
        status = node.status()
        deposits = chain.bridge.functions.depositCount().call()
        batches = chain.batch_count() - 1
        return (status["pending_entries"] == 0 and status["deposits_done"] == deposits and batches >= status["next_batch"] - 1
                and (batches == 0 or chain.l1_batches()[-1].deposits_done == deposits))

    node.wait_for(done, "everything posted", timeout=timeout, mine_every=0.5)
    # and finalized: the proposer must pick up batches appended before its restarts too
    chain.travel(chain.deployment.params.challenge_window + 1)
    node.wait_for(lambda: chain.finalized_count() == chain.batch_count(), "every batch final", timeout=timeout, mine_every=0.5)


def check(chain: DevChain, data_dir: Path, acks: list[tuple[int, bytes]]) -> dict[str, int]:
    store = open_store(data_dir / "db", identity=identity(chain.deployment), create=False)
    try:
        journal = Journal(store)
        entries = list(journal.entries())
    finally:
        store.close()
    batches = chain.l1_batches()
    l1_records = [r for b in batches for r in b.records]
    log_records = [r for e in entries for r in e.records]
    prefix = 0
    for a, b in zip(l1_records, log_records):
        if a != b:
            break
        prefix += 1
    # L1 must hold exactly the log's records, in log order: what is missing is lost, what is extra is a duplicate
    duplicated = len(chain.append_transactions()) - len(batches) + len(l1_records) - prefix
    lost = len(log_records) - prefix
    by_seq = {e.seq: e for e in entries}
    for seq, record in acks:
        entry = by_seq.get(seq)
        if entry is None or entry.command != SubmitCommand(record):
            lost += 1
    # a clean replay of the log, cut where L1's batches are cut
    state = create_genesis_state(chain.genesis)
    commitment = Commitment.from_state(state)
    mismatched = 0
    cursor = iter(entries)
    for batch in batches:
        taken = 0
        while taken < len(batch.records):
            entry = next(cursor, None)
            if entry is None:
                break
            replay_entry(state, entry)
            taken += len(entry.records)
        if taken != len(batch.records) or commitment.update(state) != batch.state_root:
            mismatched += 1
    roots, _, _ = chain.replay(batches)
    mismatched += sum(1 for root, batch in zip(roots, batches) if root != batch.state_root)
    return {"lost": lost, "duplicated": duplicated, "mismatched": mismatched}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trial-seconds", type=float, default=8.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()
    totals = Counter(lost=0, duplicated=0, mismatched=0)
    crashes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="optinode-crash-") as tmp, run_anvil(log_dir=tmp) as anvil:
        work = Path(tmp)
        chain = DevChain.deploy(anvil.url, work / "chain")
        data_dir = work / "seq"
        driver = Driver(chain, rng)
        node = chain.start_sequencer(data_dir, log_path=work / "seq.log")
        driver.fund()
        settle(chain, node)
        node.stop()
        for trial in range(args.trials):
            point = rng.choice(POINTS)
            crash_at = f"{point}:{rng.randrange(1, 4)}"
            node = Sequencer(chain, data_dir, crash_at=crash_at, log_path=work / "seq.log")
            try:
                node.wait_ready()
            except RuntimeError:
                if node.process.poll() is None:
                    raise  # alive but not answering: a real failure
                # it crashed at its point while starting up (re-handing batches to the sender): a trial too
            deadline = time.monotonic() + args.trial_seconds * rng.uniform(0.3, 1.0)
            while time.monotonic() < deadline and node.process.poll() is None:
                driver.step(node)
            if node.process.poll() is None:
                node.stop(signal.SIGKILL)  # not reached (yet): a kill at a random moment instead
                crashes["random moment"] += 1
            else:
                node.stop()
                crashes[point] += 1
            node = chain.start_sequencer(data_dir, log_path=work / "seq.log")
            settle(chain, node)
            if node.stop() != 0:
                raise RuntimeError(f"trial {trial}: the sequencer did not stop cleanly:\n{node.log_tail()}")
            result = check(chain, data_dir, driver.acks)
            totals.update(result)
            print(f"trial {trial}: crash at {crash_at}: {result}, {chain.batch_count() - 1} batches, {len(driver.acks)} acks", flush=True)
        batches = chain.batch_count() - 1
    summary = {"trials": args.trials, **dict(totals), "acked": len(driver.acks), "batches": batches,
               "crashes": dict(crashes), "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
