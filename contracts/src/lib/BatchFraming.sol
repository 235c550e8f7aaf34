// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Merkle} from "./Merkle.sol";

/// @title BatchFraming — mirrors optinode/spec/batch_framing.py split_records and
///        optinode/spec/tx_tree.py compute_tx_root
/// @notice A batch is a sequence of length-prefixed records. The prefix is one byte L < 0x80, or two
///         bytes 0x80 | L >> 8, L & 0xff. Framing never fails: a two-byte prefix cut off at the end
///         reads as L = 0 and a record running past the end is truncated (it decodes Malformed).
///         The transaction tree has depth TX_TREE_DEPTH; leaf k = keccak(record k) (the payload,
///         without its prefix), absent leaves are zero, node = keccak(left ‖ right).
library BatchFraming {
    uint256 internal constant TX_TREE_DEPTH = 16;
    uint256 internal constant MAX_BATCH_TXS = 65536; // 2^TX_TREE_DEPTH

    /// More than MAX_BATCH_TXS records in one batch.
    error TooManyTransactions();

    /// @notice The root of the transaction tree over the records of `data` and how many there are.
    /// @dev One pass over the calldata. Leaf hashes go into a 256-word chunk buffer; a full chunk is
    ///      reduced in place to its subtree root (height 8: keccak over adjacent memory words, no
    ///      copying) and merged into a frontier of completed subtrees (heights 8..16). Memory stays
    ///      O(chunk + longest record), so a batch of 2^16 records costs linear gas rather than the
    ///      quadratic memory expansion of materialising all 2^16 leaves.
    function txRoot(bytes calldata data) internal pure returns (bytes32 root, uint256 count) {
        bytes4 tooMany = TooManyTransactions.selector;
        assembly {
            // Memory (not allocated: nothing else is allocated before we return):
            //   zeros    17 words, zeros[h] = root of an empty subtree of height h
            //   frontier 17 words, frontier[h] = left sibling subtree of height h (h >= 8)
            //   chunk    257 words of leaf hashes (one spare for zero padding)
            //   buf      the record being hashed (up to 0x7fff bytes)
            let zeros := mload(0x40)
            let frontier := add(zeros, 0x220)
            let chunk := add(frontier, 0x220)
            let buf := add(chunk, 0x2020)
            let z := 0
            mstore(zeros, z)
            for { let h := 1 } lt(h, 17) { h := add(h, 1) } {
                mstore(0x00, z)
                mstore(0x20, z)
                z := keccak256(0x00, 0x40)
                mstore(add(zeros, shl(5, h)), z)
            }

            let i := data.offset
            let end := add(i, data.length)
            let leaf := chunk
            let chunkEnd := add(chunk, 0x2000)
            for {} lt(i, end) {} {
                let len := byte(0, calldataload(i))
                i := add(i, 1)
                if gt(len, 0x7f) {
                    // two-byte prefix; cut off at the end of the data it reads as length 0
                    switch lt(i, end)
                    case 1 {
                        len := or(shl(8, and(len, 0x7f)), byte(0, calldataload(i)))
                        i := add(i, 1)
                    }
                    default { len := 0 }
                }
                let avail := sub(end, i)
                if gt(len, avail) { len := avail }
                calldatacopy(buf, i, len)
                mstore(leaf, keccak256(buf, len))
                i := add(i, len)
                leaf := add(leaf, 0x20)
                if eq(leaf, chunkEnd) {
                    leaf := chunk
                    count := add(count, 256)
                    // A full chunk: reduce its 256 leaves in place to one node of height 8 ...
                    for { let w := 128 } gt(w, 1) { w := shr(1, w) } {
                        let p := chunk
                        let last := add(chunk, shl(5, w))
                        for { let q := chunk } lt(q, last) { q := add(q, 0x40) } {
                            mstore(q, keccak256(p, 0x40))
                            mstore(add(q, 0x20), keccak256(add(p, 0x40), 0x40))
                            p := add(p, 0x80)
                        }
                    }
                    let node := keccak256(chunk, 0x40)
                    // ... and insert it as subtree number (count >> 8) - 1 of height 8.
                    let c := sub(shr(8, count), 1)
                    let slot := add(frontier, 0x100)
                    for {} and(c, 1) {} {
                        mstore(0x00, mload(slot))
                        mstore(0x20, node)
                        node := keccak256(0x00, 0x40)
                        c := shr(1, c)
                        slot := add(slot, 0x20)
                    }
                    mstore(slot, node)
                    if eq(count, MAX_BATCH_TXS) {
                        if lt(i, end) {
                            mstore(0x00, tooMany)
                            revert(0x00, 0x04)
                        }
                    }
                }
            }
            count := add(count, shr(5, sub(leaf, chunk)))
            switch eq(count, MAX_BATCH_TXS)
            case 1 { root := mload(add(frontier, 0x200)) }
            default {
                // The partial chunk's subtree (height 8), padded with empty subtrees ...
                let w := and(count, 0xff)
                let node := mload(add(zeros, 0x100))
                if w {
                    for { let h := 0 } lt(h, 8) { h := add(h, 1) } {
                        if and(w, 1) {
                            mstore(add(chunk, shl(5, w)), mload(add(zeros, shl(5, h))))
                            w := add(w, 1)
                        }
                        w := shr(1, w)
                        for { let j := 0 } lt(j, w) { j := add(j, 1) } {
                            mstore(add(chunk, shl(5, j)), keccak256(add(chunk, shl(6, j)), 0x40))
                        }
                    }
                    node := mload(chunk)
                }
                // ... then up to the root: completed subtrees on the left, empty ones on the right.
                for { let h := 8 } lt(h, TX_TREE_DEPTH) { h := add(h, 1) } {
                    switch and(shr(h, count), 1)
                    case 1 {
                        mstore(0x00, mload(add(frontier, shl(5, h))))
                        mstore(0x20, node)
                    }
                    default {
                        mstore(0x00, node)
                        mstore(0x20, mload(add(zeros, shl(5, h))))
                    }
                    node := keccak256(0x00, 0x40)
                }
                root := node
            }
        }
    }

    /// @notice Whether `record` is transaction `index` of the batch whose tx root is `root`
    ///         (spec: verify_tx_proof). `siblings` are the TX_TREE_DEPTH siblings, leaf level first.
    function isTxAt(bytes32 root, uint256 index, bytes calldata record, bytes32[] calldata siblings)
        internal
        pure
        returns (bool)
    {
        if (index >= MAX_BATCH_TXS || siblings.length != TX_TREE_DEPTH) return false;
        bytes32 node = Merkle.computeRoot(keccak256(record), index, siblings);
        return node == root;
    }
}
