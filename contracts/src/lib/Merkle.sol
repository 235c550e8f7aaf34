// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Merkle — the one Merkle-path library: mirrors optinode/spec/merkle.py
/// @notice node(l+1, i) = keccak(node(l, 2i) ‖ node(l, 2i+1)); siblings from the leaf level up. Used by the
///         one-step prover (account and slot trees), BatchFraming (the transaction tree) and the Bridge
///         (account proofs of withdrawals and escapes). A one-step proof would hash ~200 tree nodes, so
///         the loops are in assembly, read siblings straight from calldata, and skip the hashes that
///         proofs of nearby leaves share (see `joinsPath` and computeRootAfterUpdates): the results are
///         exactly the spec's. There are two loops, one over calldata siblings (`computePath`, which
///         `computeRoot` calls) and one over memory siblings that later updates patch in place
///         (`computeRootAfterUpdates`).
library Merkle {
    /// spec: compute_root_from_proof — the root a leaf's proof hashes to (every sibling is used, so the
    /// tree's depth is siblings.length: callers check it).
    function computeRoot(bytes32 leaf, uint256 index, bytes32[] calldata siblings) internal pure returns (bytes32) {
        bytes32[] memory path = new bytes32[](siblings.length + 1);
        return computePath(leaf, index, siblings, siblings.length, path);
    }

    /// The nodes on a leaf's path: path[0] = leaf, path[h + 1] = hash of path[h] with siblings[h], for
    /// h < top (path must hold top + 1 words). Returns path[top]. (spec: compute_path, up to `top`)
    function computePath(bytes32 leaf, uint256 index, bytes32[] calldata siblings, uint256 top, bytes32[] memory path)
        internal
        pure
        returns (bytes32 node)
    {
        assembly ("memory-safe") {
            node := leaf
            let out := add(path, 0x20)
            mstore(out, node)
            let p := siblings.offset
            for { let end := add(p, shl(5, top)) } lt(p, end) {} {
                // bit 0: node ‖ sibling; bit 1: sibling ‖ node
                let left := shl(5, and(index, 1))
                mstore(left, node)
                mstore(xor(left, 0x20), calldataload(p))
                node := keccak256(0x00, 0x40)
                index := shr(1, index)
                p := add(p, 0x20)
                out := add(out, 0x20)
                mstore(out, node)
            }
        }
    }

    /// Whether a proof whose path reaches `node` at height `h` hashes to the same root as another proof
    /// whose path `otherPath` hashes to it, where h is the height at which the two leaves' paths meet
    /// (the highest bit in which their indices differ): exactly when the two are each other's siblings at
    /// h and their siblings agree above h (short of a keccak collision, which is assumed away throughout).
    /// The siblings above h are compared through the keccak of each range. Then the rest of the path is
    /// the other's, copied into `path`. For the two accounts of a trade h is usually 0-2, so this replaces
    /// ~30 hashes of a full path.
    function joinsPath(
        bytes32 node,
        bytes32[] calldata siblings,
        bytes32[] calldata otherSiblings,
        bytes32[] memory otherPath,
        uint256 h,
        bytes32[] memory path
    ) internal pure returns (bool ok) {
        uint256 depth = siblings.length;
        assembly ("memory-safe") {
            let at := shl(5, h)
            ok := and(
                eq(node, calldataload(add(otherSiblings.offset, at))),
                eq(calldataload(add(siblings.offset, at)), mload(add(add(otherPath, 0x20), at)))
            )
            // siblings[h+1:] == otherSiblings[h+1:] (both have `depth` entries)
            let free := mload(0x40)
            let above := sub(shl(5, depth), add(at, 0x20))
            calldatacopy(free, add(siblings.offset, add(at, 0x20)), above)
            let mine := keccak256(free, above)
            calldatacopy(free, add(otherSiblings.offset, add(at, 0x20)), above)
            ok := and(ok, eq(mine, keccak256(free, above)))
            // path[h+1:] = otherPath[h+1:]
            mcopy(add(path, add(at, 0x40)), add(otherPath, add(at, 0x40)), sub(shl(5, depth), at))
        }
    }

    /// spec: compute_root_after_updates — the root after replacing several leaves (distinct indices), each
    /// given with its siblings under the old root. Each update's path patches the sibling of every later
    /// update at the height where their paths meet (the highest bit in which the indices differ).
    /// `siblings` is modified in place. An update's path is only computed as high as a later update
    /// needs it; the last one's, which gives the root, in full.
    function computeRootAfterUpdates(uint256[] memory indices, bytes32[] memory leaves, bytes32[][] memory siblings)
        internal
        pure
        returns (bytes32 root)
    {
        uint256 n = indices.length;
        for (uint256 u = 0; u < n; ++u) {
            uint256 index = indices[u];
            bytes32[] memory sib = siblings[u];
            uint256 top = sib.length; // the height to compute up to
            if (u + 1 < n) {
                top = 0;
                for (uint256 later = u + 1; later < n; ++later) {
                    uint256 height = highestBit(index ^ indices[later]);
                    if (height > top) top = height;
                }
            }
            bytes32[] memory path = new bytes32[](top + 1); // path[h]: the node at height h
            bytes32 node = leaves[u];
            assembly ("memory-safe") {
                let p := add(sib, 0x20)
                let out := add(path, 0x20)
                mstore(out, node)
                let i := index
                for { let end := add(p, shl(5, top)) } lt(p, end) {} {
                    let left := shl(5, and(i, 1))
                    mstore(left, node)
                    mstore(xor(left, 0x20), mload(p))
                    node := keccak256(0x00, 0x40)
                    i := shr(1, i)
                    p := add(p, 0x20)
                    out := add(out, 0x20)
                    mstore(out, node)
                }
            }
            root = node;
            for (uint256 later = u + 1; later < n; ++later) {
                uint256 height = highestBit(index ^ indices[later]);
                siblings[later][height] = path[height];
            }
        }
    }

    /// The index of the highest set bit of x > 0 (Python's x.bit_length() - 1).
    function highestBit(uint256 x) internal pure returns (uint256 bit) {
        while (x > 1) {
            x >>= 1;
            ++bit;
        }
    }
}
