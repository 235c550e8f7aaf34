"""Transaction tree: the Merkle root over a batch's records that lets L1 prove "transaction k of this
batch" (the one-step proof executes exactly one record). Documented in docs/codec.md; mirrored by
contracts/src/lib/BatchFraming.sol (`txRoot`, `isTxAt`).
"""

from __future__ import annotations

from typing import Sequence

from .constants import HASH_LEN
from .crypto import keccak
from .merkle import ZERO_HASHES, compute_root_from_proof

__all__ = [
    "MAX_BATCH_TXS",
    "TX_TREE_DEPTH",
    "compute_tx_root",
    "get_tx_proof",
    "verify_tx_proof",
]

TX_TREE_DEPTH = 16
MAX_BATCH_TXS = 2**TX_TREE_DEPTH  # leaves of the tree: a batch holds at most this many records


# --- transaction tree ----------------------------------------------------------------------------------
#
# Depth TX_TREE_DEPTH, leaf k = keccak(record k), absent leaves EMPTY_LEAF, node = keccak(left ‖ right):
# the same shape as optinode.spec.merkle, so its ZERO_HASHES and compute_root_from_proof apply. The
# contract can then check any one record against the batch's tx root with 16 hashes.


def _tx_levels(records: Sequence[bytes]) -> list[list[bytes]]:
    """All occupied levels, leaves first (levels[h] holds the nodes of height h that have a non-empty
    descendant; anything to their right is ZERO_HASHES[h]). levels[TX_TREE_DEPTH] is [root]."""
    if len(records) > MAX_BATCH_TXS:
        raise ValueError(f"{len(records)} records exceed MAX_BATCH_TXS ({MAX_BATCH_TXS})")
    level = [keccak(record) for record in records]
    levels = [level]
    for height in range(TX_TREE_DEPTH):
        if len(level) & 1:
            level = level + [ZERO_HASHES[height]]
        level = [keccak(level[j] + level[j + 1]) for j in range(0, len(level), 2)]
        levels.append(level)
    if not level:
        levels[TX_TREE_DEPTH] = [ZERO_HASHES[TX_TREE_DEPTH]]
    return levels


def compute_tx_root(records: Sequence[bytes]) -> bytes:
    """Root of the transaction tree over a batch's records (payloads without length prefixes)."""
    return _tx_levels(records)[TX_TREE_DEPTH][0]


def get_tx_proof(records: Sequence[bytes], k: int) -> tuple[bytes, ...]:
    """The TX_TREE_DEPTH siblings of leaf k, leaf level first (k may be an absent leaf)."""
    if not 0 <= k < MAX_BATCH_TXS:
        raise ValueError(f"tx index {k} outside [0, {MAX_BATCH_TXS})")
    levels = _tx_levels(records)
    siblings = []
    for height in range(TX_TREE_DEPTH):
        index = (k >> height) ^ 1
        level = levels[height]
        siblings.append(level[index] if index < len(level) else ZERO_HASHES[height])
    return tuple(siblings)


def verify_tx_proof(root: bytes, k: int, record: bytes, siblings: Sequence[bytes]) -> bool:
    """Whether `record` is transaction k of the batch whose tx root is `root`."""
    if not 0 <= k < MAX_BATCH_TXS or len(siblings) != TX_TREE_DEPTH:
        return False
    if any(type(s) is not bytes or len(s) != HASH_LEN for s in siblings):
        return False
    return compute_root_from_proof(keccak(bytes(record)), k, tuple(siblings)) == root
