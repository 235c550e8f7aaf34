"""L1 cost of posting trades: the market-maker workload of bench/workload.py appended on anvil.

    .venv/bin/python bench/l1cost.py [--trades 4000]

The workload's trades (most continue a resting order by slot reference) are encoded as batch records
and cut into batches exactly as the sequencer's batcher cuts them (`BatchPolicy` with the
``[node.batch]`` defaults: records, bytes, estimated gas); each batch is appended to a real Rollup on
anvil with ``appendBatch`` from the proposer key, and its receipt's ``gasUsed`` is summed.

- ``gas_per_trade``: total append gas / trades (intrinsic gas, calldata, the on-chain transaction
  tree, storage and events included);
- ``calldata_floor_gas_per_trade``: what the batch bytes alone cost under the chain's calldata
  pricing: 10 gas per token (EIP-7623's floor; a token is a zero byte, four per non-zero byte),
  which is above the standard 4 gas per token, so the floor is the price of bytes alone;
- ``overhead``: the first over the second (framing, ABI envelope, the 21k, the tree, storage).

The root preimage appended is the workload state's, with the queue counters at 0 (the Rollup only
checks that counters do not exceed the L1 queues, and this bench deposits nothing on L1; the gas is
the same: the counters share a storage slot with non-zero fields). ``estimate_ok``: the batcher's
`estimate_append_gas` was at least the measured gas of every batch.

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3 import Web3  # noqa: E402

from bench.workload import Workload  # noqa: E402
from optinode.config import BatchSection  # noqa: E402
from optinode.l1.anvil import run_anvil  # noqa: E402
from optinode.l1.contracts import StateParts, SystemParams, deploy_system  # noqa: E402
from optinode.services.batcher import BatchPolicy, Pending, estimate_append_gas  # noqa: E402
from optinode.spec.batch_framing import frame_records  # noqa: E402
from optinode.spec.commitment import Commitment, encode_globals  # noqa: E402
from optinode.spec.crypto import keccak  # noqa: E402
from optinode.spec.record_codec import encode_transaction  # noqa: E402

FLOOR_PER_TOKEN = 10  # EIP-7623 TOTAL_COST_FLOOR_PER_TOKEN
STANDARD_PER_TOKEN = 4


def tokens(data: bytes) -> int:
    zeros = data.count(0)
    return zeros + 4 * (len(data) - zeros)


def cut(records: list[bytes], policy: BatchPolicy) -> list[list[bytes]]:
    batches: list[list[bytes]] = []
    current: list[bytes] = []
    pending = Pending()
    for record in records:
        if not policy.fits(pending, (record,)):
            batches.append(current)
            current, pending = [], Pending()
        current.append(record)
        pending.add((record,), 0.0)
    if current:
        batches.append(current)
    return batches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=4000)
    args = parser.parse_args()
    started = time.monotonic()
    workload = Workload(trades=args.trades, makers=8, takers=400)
    records = [encode_transaction(t) for t in workload.trades]
    policy = BatchPolicy.from_config(BatchSection(), challenge_window=3600, clock=1800)
    batches = cut(records, policy)
    state = workload.state
    commitment = Commitment.from_state(state)
    parts = StateParts(commitment.accounts.root(), commitment.slots.root(), keccak(encode_globals(state)), 0, 0)
    gas_total = 0
    floor_total = 0
    estimate_ok = True
    with run_anvil() as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 120}))
        deployer, proposer = w3.eth.accounts[0], w3.eth.accounts[1]
        system = deploy_system(w3, deployer, SystemParams(genesis_root=keccak(b"l1cost"), proposers=(proposer,)))
        for batch in batches:
            data = frame_records(batch)
            system.append_batch(proposer, data, parts)
            receipt = w3.eth.get_transaction_receipt(w3.eth.get_block("latest")["transactions"][0])
            gas_total += receipt["gasUsed"]
            floor_total += FLOOR_PER_TOKEN * tokens(data)
            estimate_ok &= estimate_append_gas(len(batch), len(data)) >= receipt["gasUsed"]
        hardfork = w3.client_version
    trades = len(records)
    data_bytes = sum(len(frame_records(b)) for b in batches)
    result = {
        "trades": trades,
        "batches": len(batches),
        "bytes_per_trade": round(data_bytes / trades, 2),
        "gas_per_trade": round(gas_total / trades, 1),
        "calldata_floor_gas_per_trade": round(floor_total / trades, 1),
        "overhead": round(gas_total / floor_total, 4),
        "standard_calldata_gas_per_trade": round(STANDARD_PER_TOKEN * floor_total / FLOOR_PER_TOKEN / trades, 1),
        "estimate_ok": estimate_ok,
        "client": hardfork,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
