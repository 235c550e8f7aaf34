"""The real `optinode sequencer --api-port` recovers its orders' signatures in its own worker pool
(optinode/exchange/worker_pool.py): the workers are its child processes and are ready before the API
answers; one killed with SIGKILL is replaced and no order is refused or lost meanwhile; they are gone
once the node has stopped — cleanly, or killed itself."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from optinode.testing.world import USD

from tests.api.client import Client


def intake_workers(parent: int) -> set[int]:
    """Pids of the live intake workers whose parent is `parent` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(stat[1]) == parent and stat[0] != "Z" and b"worker_pool" in cmdline:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for whichever process reaps orphans here."""
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_sequencers_intake_runs_on_its_worker_pool(chain, users, anvil, tmp_path) -> None:
    d = chain.deployment
    node = chain.start_sequencer(tmp_path / "seq", api=True)
    try:
        first = intake_workers(node.process.pid)
        assert len(first) == 2, "two workers, started before the API answers"
        alice = Client(node.api_url, anvil.private_keys[2], chain_id=d.chain_id, verifying_contract=d.contracts.rollup)
        chain.deposit(users["alice"], 1_000 * USD)
        chain.mine(chain.config.node.batch.queue_confirmations)
        node.wait_for(lambda: alice.call("optinode_status")["queues"]["depositsDone"] == 1, "the deposit", mine_every=0.5)
        a_id = alice.call("optinode_getAccount", users["alice"])["id"]
        market = alice.call("optinode_status")["markets"][0]
        expiry = chain.genesis.time + 86_400

        def bid(nonce: int) -> dict:
            return alice.send_order(a_id, market=0, is_buy=True, size=market["stepSize"], price=market["price"] - nonce * market["tickSize"],
                                    nonce=nonce, expiry=expiry)

        assert bid(1)["status"] == "resting"
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        assert [bid(n)["status"] for n in range(2, 6)] == ["resting"] * 4  # none refused while one worker is replaced
        def replaced() -> set[int] | None:
            workers = intake_workers(node.process.pid)
            return workers if len(workers) == 2 and victim not in workers else None

        after = wait_until(replaced, "a replacement worker")
        assert after & first == first - {victim}
        assert bid(6)["status"] == "resting"
        assert len(alice.call("optinode_getAccount", a_id)["openOrders"]) == 6
    finally:
        code = node.stop()  # SIGTERM: the pool is closed after the services
    assert code == 0, node.log_tail()
    assert not any(alive(pid) for pid in after | first)

    again = chain.start_sequencer(tmp_path / "seq", api=True)
    workers = intake_workers(again.process.pid)
    assert len(workers) == 2
    again.stop(signal.SIGKILL)  # no shutdown at all: the workers see their pipes close and end
    wait_until(lambda: not any(alive(pid) for pid in workers), "the orphaned workers to end")
