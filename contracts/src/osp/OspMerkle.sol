// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title OspMerkle — mirrors optinode/spec/merkle.py (the same algorithms as lib/Merkle.sol)
/// @notice node(l+1, i) = keccak(node(l, 2i) ‖ node(l, 2i+1)); siblings from the leaf level up. The hot
///         loops are in assembly and read a proof's siblings straight from calldata: a one-step proof
///         hashes ~200 tree nodes, and Solidity's bounds-checked loops cost three times the hashing.
library OspMerkle {
    /// spec: compute_root_from_proof
    function computeRootFromProof(bytes32 leaf, uint256 index, bytes32[] calldata siblings)
        internal
        pure
        returns (bytes32 node)
    {
        assembly ("memory-safe") {
            node := leaf
            let p := siblings.offset
            for { let end := add(p, shl(5, siblings.length)) } lt(p, end) { p := add(p, 0x20) } {
                // bit 0: node ‖ sibling; bit 1: sibling ‖ node
                let bit := and(index, 1)
                mstore(shl(5, bit), node)
                mstore(shl(5, xor(bit, 1)), calldataload(p))
                node := keccak256(0x00, 0x40)
                index := shr(1, index)
            }
        }
    }

    /// spec: compute_root_after_updates — the root after replacing several leaves (distinct indices), each
    /// given with its siblings under the old root. Each update's path patches the sibling of every later
    /// update at the height where their paths meet (the highest bit in which the indices differ).
    /// `siblings` is modified in place.
    function computeRootAfterUpdates(uint256[] memory indices, bytes32[] memory leaves, bytes32[][] memory siblings)
        internal
        pure
        returns (bytes32 root)
    {
        uint256 n = indices.length;
        for (uint256 u = 0; u < n; ++u) {
            uint256 index = indices[u];
            bytes32[] memory sib = siblings[u];
            bytes32[] memory path = new bytes32[](sib.length + 1); // path[h]: the node at height h
            bytes32 leaf = leaves[u];
            assembly ("memory-safe") {
                let node := leaf
                let s := add(sib, 0x20)
                let out := add(path, 0x20)
                mstore(out, node)
                for {
                    let h := 0
                    let depth := mload(sib)
                } lt(h, depth) { h := add(h, 1) } {
                    let bit := and(shr(h, index), 1)
                    mstore(shl(5, bit), node)
                    mstore(shl(5, xor(bit, 1)), mload(add(s, shl(5, h))))
                    node := keccak256(0x00, 0x40)
                    mstore(add(out, shl(5, add(h, 1))), node)
                }
                root := node
            }
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
