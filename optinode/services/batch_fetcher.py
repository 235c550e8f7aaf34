"""The batch fetcher: a batch's bytes from the input of the transaction that appended it.

    data, timestamp = await fetch_batch(rpc, rollup, appended)   # appended: a BatchAppended event

The Rollup accepts ``appendBatch`` only as the transaction's own call (no relay contract, no
delegated code), so the event's transaction input *is* ``appendBatch(data, …)``: a standard
(non-archive) node serves it with ``eth_getTransactionByHash``. The batch's L1 time is the one its
proposer declared (the event's ``l1_timestamp``, which the Rollup bounded and stored: what the
one-step proof uses), not the append block's. The transaction is checked against the event (same block, to the Rollup, the
``appendBatch`` selector), and so are the bytes: their records must have the event's ``txCount`` and
``txRoot`` (what the Rollup computed from the calldata it executed), so an endpoint serving other
bytes for the transaction never gets a verdict, let alone a challenge, on a batch that was not
posted. Anything else is `BatchUnavailable`: temporary while the chain moves (the follower's next
poll sees the reorg), alerted by the verifier when it lasts (``batch_unavailable``), never skipped.
"""

from __future__ import annotations

from typing import Any

import eth_abi

from optinode.l1.rpc import RpcClient, hexbytes
from optinode.services.proposer import _APPEND
from optinode.spec.batch_framing import split_records
from optinode.spec.tx_tree import compute_tx_root

__all__ = ["BatchUnavailable", "decode_append", "fetch_batch"]

APPEND_ARGS = ["bytes", "bytes32", "bytes32", "bytes32", "uint64", "uint64", "uint64", "bytes32"]


class BatchUnavailable(Exception):
    """The append transaction is missing or is not the event's appendBatch call (yet)."""


def decode_append(calldata: bytes) -> bytes:
    """The framed batch bytes of an ``appendBatch`` call."""
    if calldata[:4] != _APPEND:
        raise BatchUnavailable(f"not an appendBatch call (selector 0x{calldata[:4].hex()})")
    try:
        return bytes(eth_abi.decode(APPEND_ARGS, calldata[4:])[0])
    except Exception as error:  # noqa: BLE001 - the Rollup decoded it, so this is not the append
        raise BatchUnavailable(f"appendBatch arguments do not decode: {error}") from None


async def fetch_batch(rpc: RpcClient, rollup: bytes, appended: Any) -> tuple[bytes, int]:
    tx, block = await rpc.batch([
        ("eth_getTransactionByHash", [hexbytes(appended.tx_hash)]),
        ("eth_getBlockByNumber", [hex(appended.block_number), False]),
    ])
    if tx is None or block is None:
        raise BatchUnavailable(f"append transaction 0x{appended.tx_hash.hex()} of batch {appended.index} not served")
    if tx.get("blockHash") != hexbytes(appended.block_hash) or block.get("hash") != hexbytes(appended.block_hash):
        raise BatchUnavailable(f"batch {appended.index}: its transaction is not in block 0x{appended.block_hash.hex()[:16]} any more")
    if (tx.get("to") or "").lower() != hexbytes(rollup).lower():
        raise BatchUnavailable(f"batch {appended.index}: transaction 0x{appended.tx_hash.hex()} is not a call to the Rollup")
    try:
        calldata = bytes.fromhex((tx.get("input") or "0x")[2:])
    except ValueError:
        raise BatchUnavailable(f"batch {appended.index}: transaction 0x{appended.tx_hash.hex()} input is not hex") from None
    data = decode_append(calldata)
    records = split_records(data)
    if len(records) != appended.tx_count or compute_tx_root(records) != appended.tx_root:
        raise BatchUnavailable(f"batch {appended.index}: the input served for 0x{appended.tx_hash.hex()} is not the batch the Rollup "
                               f"accepted ({len(records)} records, txRoot 0x{compute_tx_root(records).hex()[:16]}; the event: "
                               f"{appended.tx_count}, 0x{appended.tx_root.hex()[:16]})")
    return data, appended.l1_timestamp
