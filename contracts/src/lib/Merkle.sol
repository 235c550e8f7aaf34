// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Merkle — mirrors optinode/spec/merkle.py
/// @notice Fixed-depth binary trees: node(l+1, i) = keccak(node(l, 2i) ‖ node(l, 2i+1)); an empty leaf
///         is bytes32(0). Proofs list siblings from the leaf level up.
library Merkle {
    /// spec: compute_root_from_proof
    function computeRootFromProof(bytes32 leaf, uint256 index, bytes32[] memory siblings)
        internal
        pure
        returns (bytes32 node)
    {
        node = leaf;
        for (uint256 h = 0; h < siblings.length; ++h) {
            bytes32 sibling = siblings[h];
            if ((index >> h) & 1 == 1) {
                node = _hashPair(sibling, node);
            } else {
                node = _hashPair(node, sibling);
            }
        }
    }

    /// spec: compute_root_after_updates — each update's siblings are under the old root; the path of
    /// an earlier update patches the sibling of a later one at the height where their paths meet.
    function computeRootAfterUpdates(uint256[] memory indices, bytes32[] memory leaves, bytes32[][] memory siblings)
        internal
        pure
        returns (bytes32 root)
    {
        uint256 n = indices.length;
        for (uint256 u = 0; u < n; ++u) {
            uint256 index = indices[u];
            bytes32[] memory sib = siblings[u];
            bytes32 node = leaves[u];
            // path[h] is the node at height h on this leaf's path
            bytes32[] memory path = new bytes32[](sib.length + 1);
            path[0] = node;
            for (uint256 h = 0; h < sib.length; ++h) {
                node = ((index >> h) & 1 == 1) ? _hashPair(sib[h], node) : _hashPair(node, sib[h]);
                path[h + 1] = node;
            }
            root = node;
            for (uint256 later = u + 1; later < n; ++later) {
                uint256 height = _highestBit(index ^ indices[later]);
                siblings[later][height] = path[height];
            }
        }
    }

    /// Root of a tree of `depth` over `leaves` (absent leaves zero), as spec.codec.compute_tx_root.
    function computeRoot(bytes32[] memory leaves, uint256 depth) internal pure returns (bytes32) {
        uint256 width = leaves.length;
        bytes32 zero = bytes32(0);
        for (uint256 h = 0; h < depth; ++h) {
            uint256 parents = (width + 1) / 2;
            for (uint256 i = 0; i < parents; ++i) {
                bytes32 left = leaves[2 * i];
                bytes32 right = 2 * i + 1 < width ? leaves[2 * i + 1] : zero;
                leaves[i] = _hashPair(left, right);
            }
            width = parents;
            zero = _hashPair(zero, zero);
            if (width == 0) {
                leaves = new bytes32[](1);
                leaves[0] = zero;
                width = 1;
            }
        }
        return width == 0 ? zero : leaves[0];
    }

    function _highestBit(uint256 x) private pure returns (uint256 bit) {
        while (x > 1) {
            x >>= 1;
            ++bit;
        }
    }

    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 value) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            value := keccak256(0x00, 0x40)
        }
    }
}
