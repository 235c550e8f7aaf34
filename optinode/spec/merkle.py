"""Fixed-depth binary Merkle trees over dense indices (accounts, order slots).

Level 0 holds leaf hashes; node(l + 1, i) = keccak(node(l, 2i) ‖ node(l, 2i + 1)). An absent leaf
is 32 zero bytes, so an empty subtree of height l hashes to ZERO_HASHES[l]. Only non-empty nodes
are stored; `update` rehashes just the paths above the changed leaves, which for densely allocated
ids costs about two hashes per changed leaf.
"""

from __future__ import annotations

from .crypto import keccak

EMPTY_LEAF = bytes(32)
MAX_DEPTH = 64


def _zero_hashes(depth: int) -> list[bytes]:
    hashes = [EMPTY_LEAF]
    for _ in range(depth):
        hashes.append(keccak(hashes[-1] + hashes[-1]))
    return hashes


ZERO_HASHES: list[bytes] = _zero_hashes(MAX_DEPTH)


class MerkleTree:
    __slots__ = ("depth", "levels")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.levels: list[dict[int, bytes]] = [{} for _ in range(depth + 1)]

    def root(self) -> bytes:
        return self.levels[self.depth].get(0, ZERO_HASHES[self.depth])

    def leaf(self, index: int) -> bytes:
        return self.levels[0].get(index, EMPTY_LEAF)

    def update(self, leaves: dict[int, bytes]) -> bytes:
        """Set leaf hashes (EMPTY_LEAF clears one) and return the new root."""
        level = self.levels[0]
        for index, value in leaves.items():
            if value == EMPTY_LEAF:
                level.pop(index, None)
            else:
                level[index] = value
        dirty = leaves.keys()
        for height in range(self.depth):
            nodes = self.levels[height]
            parents = self.levels[height + 1]
            zero = ZERO_HASHES[height]
            empty_parent = ZERO_HASHES[height + 1]
            next_dirty = {index >> 1 for index in dirty}
            for parent in next_dirty:
                value = keccak(nodes.get(2 * parent, zero) + nodes.get(2 * parent + 1, zero))
                if value == empty_parent:
                    parents.pop(parent, None)
                else:
                    parents[parent] = value
            dirty = next_dirty
        return self.root()

    def proof(self, index: int) -> tuple[bytes, ...]:
        """The siblings of leaf `index`, from the leaf level up."""
        return tuple(self.levels[h].get((index >> h) ^ 1, ZERO_HASHES[h]) for h in range(self.depth))


def compute_root_from_proof(leaf: bytes, index: int, siblings: tuple[bytes, ...]) -> bytes:
    node = leaf
    for height, sibling in enumerate(siblings):
        node = keccak(sibling + node) if (index >> height) & 1 else keccak(node + sibling)
    return node


def compute_path(leaf: bytes, index: int, siblings: tuple[bytes, ...]) -> list[bytes]:
    """Node hashes on the path from the leaf (height 0) to the root (height depth)."""
    path = [leaf]
    node = leaf
    for height, sibling in enumerate(siblings):
        node = keccak(sibling + node) if (index >> height) & 1 else keccak(node + sibling)
        path.append(node)
    return path


def compute_root_after_updates(updates: list[tuple[int, bytes, tuple[bytes, ...]]]) -> bytes:
    """The root after replacing several leaves, each given as (index, new leaf, siblings under the
    old root), with distinct indices. Each update's path feeds the siblings of the later ones:
    two leaves i and j are siblings' descendants at the height where i >> h and j >> h differ only
    in the lowest bit."""
    pending = [(index, leaf, list(siblings)) for index, leaf, siblings in updates]
    root = b""
    for position, (index, leaf, siblings) in enumerate(pending):
        path = compute_path(leaf, index, tuple(siblings))
        root = path[-1]
        for later_index, _, later_siblings in pending[position + 1 :]:
            height = (index ^ later_index).bit_length() - 1
            later_siblings[height] = path[height]
    return root
