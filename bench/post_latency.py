"""How soon a batch is posted after its first command, on a devnet with 1-second L1 blocks.

    .venv/bin/python bench/post_latency.py [--samples 8]

anvil with ``--block-time 1``, `optinode l1 deploy`, `optinode sequencer` (configs/devnet.toml:
``max_age`` 2 s). One user deposits; then, one at a time, a signed 1-USD withdrawal is submitted
through the admin method (it is the first command of a new batch: the previous one is posted) and
the bench waits for the batch that carries it on L1. Latency in L1 blocks = the append's block −
the L1 head when the command was acknowledged; the target (issue 9) is ``max_age`` + 2 blocks.

Last line: one JSON object (``blocks_p50``, ``blocks_max``, ``seconds_p50``, ``seconds_max``,
``target_blocks``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account  # noqa: E402

from optinode.l1.anvil import DEFAULT_PRIVATE_KEYS, run_anvil  # noqa: E402
from optinode.spec.record_codec import encode_transaction  # noqa: E402
from optinode.testing.seqnode import DevChain  # noqa: E402
from optinode.testing.world import USD, World  # noqa: E402
from optinode.wallet import Key  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="optinode-latency-") as tmp, run_anvil(block_time=1, log_dir=tmp) as anvil:
        chain = DevChain.deploy(anvil.url, Path(tmp) / "chain")
        node = chain.start_sequencer(Path(tmp) / "seq", log_path=Path(tmp) / "seq.log")
        try:
            user = Account.from_key(DEFAULT_PRIVATE_KEYS[2]).address
            world = World(chain.genesis, keys={"u": Key(bytes.fromhex(DEFAULT_PRIVATE_KEYS[2][2:]))})
            world.ids["u"] = 0
            chain.deposit(user, 1_000 * USD)
            node.wait_for(lambda: node.status()["deposits_done"] == 1 and node.status()["pending_entries"] == 0, "the deposit posted")
            blocks, seconds = [], []
            for _ in range(args.samples):
                node.wait_for(lambda: node.status()["pending_entries"] == 0, "an empty pending batch")
                tx = world.withdraw("u", USD, expiry=chain.genesis.time + 86_400)
                record = encode_transaction(tx)
                node.submit(tx)
                head, acked = chain.w3.eth.block_number, time.monotonic()
                batch = node.wait_for(lambda: next((b for b in chain.l1_batches() if record in b.records), None), "its batch on L1")
                appended = chain.w3.eth.get_transaction_receipt(batch.tx_hash)["blockNumber"]
                blocks.append(appended - head)
                seconds.append(time.monotonic() - acked)
                print(f"batch {batch.index}: {appended - head} blocks, {seconds[-1]:.2f} s after the acknowledgement", flush=True)
        finally:
            node.stop()
    max_age = chain.config.node.batch.max_age
    print(json.dumps({
        "samples": len(blocks),
        "blocks_p50": statistics.median(blocks),
        "blocks_max": max(blocks),
        "seconds_p50": round(statistics.median(seconds), 2),
        "seconds_max": round(max(seconds), 2),
        "target_blocks": max_age + 2,
    }))


if __name__ == "__main__":
    main()
