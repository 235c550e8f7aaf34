// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Rollup} from "../Rollup.sol";

/// @title BatchRelay — TESTS ONLY: a proposer that keeps its batch out of the L1 transaction's input
/// @notice Builds the batch in memory from a short seed and appends it from inside its own code, so
///         the bytes the Rollup hashes are in an internal call's calldata, never in the transaction's
///         input (the only place a verifier with a standard node can read them). Used both as a relay
///         contract and as the code an EIP-7702-delegated proposer EOA runs (issue 8, finding 1).
contract BatchRelay {
    uint256 internal constant COUNT = 5; // records per relayed batch
    uint256 internal constant LEN = 20; // bytes per record (< 128: one framing byte)

    /// A state-root preimage (Rollup.appendBatch's arguments after the data).
    struct Parts {
        bytes32 accountsRoot;
        bytes32 slotsRoot;
        bytes32 globalsHash;
        uint64 depositsDone;
        uint64 forcedDone;
    }

    /// COUNT records, record i = keccak(seed, i) truncated to LEN bytes, framed, on top of the tip.
    function relay(Rollup rollup, bytes32 seed, Parts calldata p) external payable returns (uint256) {
        return rollup.appendBatch{value: msg.value}(
            _records(seed, COUNT, LEN), p.accountsRoot, p.slotsRoot, p.globalsHash, p.depositsDone, p.forcedDone,
            uint64(block.timestamp), _tipRoot(rollup)
        );
    }

    function _records(bytes32 seed, uint256 count, uint256 len) private pure returns (bytes memory data) {
        data = new bytes(count * (len + 1));
        for (uint256 i = 0; i < count; ++i) {
            bytes32 word = keccak256(abi.encodePacked(seed, i));
            uint256 at = i * (len + 1);
            data[at] = bytes1(uint8(len));
            for (uint256 j = 0; j < len; ++j) {
                data[at + 1 + j] = word[j % 32];
            }
        }
    }

    /// The tip's state root (the parent every append names).
    function _tipRoot(Rollup rollup) private view returns (bytes32) {
        return rollup.getBatch(rollup.batchCount() - 1).stateRoot;
    }
}
