"""The sender under SIGKILL, on LevelDB: a child submits items 0..N-1 and is killed at a random
point (sometimes between the synced write and the broadcast); a restarted sender re-submits every
item. Each item ends up mined exactly once, and the nonces stay gapless."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio
from eth_account import Account

from optinode.l1.rpc import RpcClient
from optinode.l1.sender import Sender
from optinode.store.db import open_store

REPO = Path(__file__).resolve().parents[3]
SINK = bytes.fromhex("00000000000000000000000000000000000000fe")
ITEMS = 12

CHILD = textwrap.dedent(
    """
    import sys, trio
    from eth_account import Account
    from optinode.l1.rpc import RpcClient
    from optinode.l1.sender import Sender
    from optinode.store.db import open_store

    url, path, key, chain_id, tag, items = sys.argv[1:7]
    SINK = bytes.fromhex("00000000000000000000000000000000000000fe")

    async def main():
        store = open_store(path)
        sender = Sender(RpcClient(url, retry_for=30), store, Account.from_key(key), chain_id=int(chain_id))
        await sender.start()
        for item in range(int(items)):
            await sender.submit(item=item, to=SINK, data=tag.encode() + bytes([item]), gas=30000)
            print(item, flush=True)
        await trio.sleep(60)

    trio.run(main)
    """
)


def mined_items(w3, address: str, first_block: int, tag: bytes) -> list[tuple[int, int]]:
    """(item, nonce) of every canonical transaction from ``address`` carrying ``tag``."""
    found = []
    for n in range(first_block, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            data = bytes(tx["input"])
            if tx["from"] == address and data.startswith(tag):
                found.append((data[len(tag)], tx["nonce"]))
    return found


@pytest.mark.parametrize("trial", range(3))
def test_sigkill_anywhere_in_submit_never_duplicates_or_loses(trial, anvil, w3, snapshot, tmp_path) -> None:
    rng = random.Random(trial)
    account = Account.from_key(anvil.private_keys[7])
    tag = f"crash{trial}:".encode()
    path = tmp_path / "db"
    first_block = w3.eth.block_number + 1
    start_nonce = w3.eth.get_transaction_count(account.address)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, anvil.url, str(path), anvil.private_keys[7], str(anvil.chain_id), tag.decode(), str(ITEMS)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        text=True,
    )
    kill_after = rng.randrange(0, ITEMS - 2)
    done = -1
    while done < kill_after:
        line = child.stdout.readline()
        assert line, "the sender child died on its own"
        done = int(line)
    time.sleep(rng.random() * 0.05)  # land somewhere inside a later submit
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    async def restart() -> None:
        store = open_store(path)
        try:
            sender = Sender(RpcClient(anvil.url, retry_for=30), store, account, chain_id=anvil.chain_id)
            await sender.start()
            for item in range(ITEMS):
                await sender.submit(item=item, to=SINK, data=tag + bytes([item]), gas=30000)
            with trio.fail_after(60):
                for item in range(ITEMS):
                    assert (await sender.wait(item, poll_interval=0.05)).status == "mined"
        finally:
            store.close()

    trio.run(restart)
    found = mined_items(w3, account.address, first_block, tag)
    assert sorted(item for item, _ in found) == list(range(ITEMS)), found  # each item once: none lost, none twice
    assert sorted(nonce for _, nonce in found) == list(range(start_nonce, start_nonce + ITEMS))  # no gap, no reuse
