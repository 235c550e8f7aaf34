// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice What one transaction may read from L1 (spec: L1Context restricted to the next entries).
///         The dispute game fills it from Rollup/Bridge storage, never from the caller's word:
///         l1Timestamp is the batch's declared L1 timestamp (Rollup.appendBatch bounds it); the deposit (forced) entry is the queue
///         entry at index depositsDone (forcedDone) of the pre-state, present only if that index is
///         below the queue length the Rollup snapshotted when the batch was appended.
struct L1Inputs {
    uint64 l1Timestamp;
    bool hasDeposit;
    address depositOwner;
    uint256 depositAmount;
    bool hasForced;
    address forcedRequester;
    uint256 forcedAccountId;
    uint256 forcedAmount;
}

/// @notice One-step prover: executes exactly one spec transaction (spec.witness.execute_witness).
interface IOneStepProver {
    /// @param preRoot   the agreed state root before the transaction
    /// @param record    the transaction's batch record (payload without its length prefix)
    /// @param l1        the L1 inputs (see L1Inputs)
    /// @param witness   abi.encode(Witness) with
    ///                  struct Witness { bytes32 accountsRoot; bytes32 slotsRoot; bytes globals;
    ///                                   uint64 depositsDone; uint64 forcedDone;
    ///                                   LeafProof[] accounts; LeafProof[] slots; }
    ///                  struct LeafProof { uint64 index; bytes leaf; bytes32[] siblings; }
    /// @return postRoot the state root after the transaction (preRoot when it is invalid)
    /// @return code     the spec ErrorCode (0 = OK)
    /// @return applied  false exactly when the state is unchanged
    /// Reverts (with a named error) only when the witness does not authenticate against preRoot or
    /// lacks a leaf the transaction needs: a witness problem, never a transaction outcome.
    function executeOneStep(bytes32 preRoot, bytes calldata record, L1Inputs calldata l1, bytes calldata witness)
        external
        view
        returns (bytes32 postRoot, uint8 code, bool applied);
}
