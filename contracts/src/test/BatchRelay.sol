// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Rollup} from "../Rollup.sol";

/// @title BatchRelay — TESTS ONLY: a proposer that keeps its batch out of the L1 transaction's input
/// @notice Builds the batch in memory from a short seed and appends it from inside its own code, so
///         the bytes the Rollup hashes are in an internal call's calldata, never in the transaction's
///         input (the only place a verifier with a standard node can read them). Used both as a relay
///         contract and as the code an EIP-7702-delegated proposer EOA runs (issue 8, finding 1).
contract BatchRelay {
    /// `count` records, record i = keccak(seed, i) truncated to `len` (< 128) bytes, framed.
    function relay(
        Rollup rollup,
        bytes32 seed,
        uint256 count,
        uint256 len,
        bytes32 accountsRoot,
        bytes32 slotsRoot,
        bytes32 globalsHash,
        uint64 depositsDone,
        uint64 forcedDone
    ) external payable returns (uint256) {
        bytes memory data = new bytes(count * (len + 1));
        for (uint256 i = 0; i < count; ++i) {
            bytes32 word = keccak256(abi.encodePacked(seed, i));
            uint256 at = i * (len + 1);
            data[at] = bytes1(uint8(len));
            for (uint256 j = 0; j < len; ++j) {
                data[at + 1 + j] = word[j % 32];
            }
        }
        return rollup.appendBatch{value: msg.value}(
            data, accountsRoot, slotsRoot, globalsHash, depositsDone, forcedDone, uint64(block.timestamp)
        );
    }
}
