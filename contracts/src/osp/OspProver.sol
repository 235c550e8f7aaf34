// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {L1Inputs} from "../interfaces/IOneStepProver.sol";
import {StateCodec} from "../lib/StateCodec.sol";
import {
    OspConstants,
    ErrorCode,
    Witness,
    LeafProof,
    WitnessRootMismatch,
    WitnessDuplicateLeaf,
    WitnessMalformedProof,
    WitnessProofMismatch,
    WitnessUndecodableLeaf,
    WitnessMissingLeaf
} from "./OspTypes.sol";
import {Merkle} from "../lib/Merkle.sol";
import {OspState} from "./OspState.sol";

/// @title OspProver — spec: witness.execute_witness, for the transaction types of one contract
/// @notice The base of the per-type provers (OspTrade, OspAccounts, OspMarket). OneStepProver forwards
///         executeOneStep's calldata unchanged (selector aside) to the prover of the record's type, which
///         1. checks the witness is the preimage of the agreed pre-state root,
///         2. checks every leaf's proof under its tree root (no index twice),
///         3. decodes the proven leaves and the globals into the pre-state (OspState.load),
///         4. decodes the record and runs its process_* (`stateTransition`, per contract),
///         5. recomputes the post-state root from the written leaves and the witness's siblings.
///         An invalid transaction reverts InvalidTransaction(code) from step 4 (after steps 1-3, so a bad
///         witness always wins, as in the spec); OneStepProver turns it into (preRoot, code, false).
///         Witness problems revert with the named Witness* errors.
abstract contract OspProver {
    /// The applied transaction's post-state root and receipt code (OK, or a forced withdrawal's
    /// rejection reason). Reverts InvalidTransaction(code) when the transaction is invalid.
    function proveOneStep(bytes32 preRoot, bytes calldata record, L1Inputs calldata l1, bytes calldata witness)
        external
        pure
        returns (bytes32 postRoot, uint8 code)
    {
        Witness calldata w = witnessAt(witness);
        // 1. The witness is the preimage of the agreed pre-state root.
        bytes32 root = StateCodec.stateRoot(w.accountsRoot, w.slotsRoot, keccak256(w.globals), w.depositsDone, w.forcedDone);
        if (root != preRoot) revert WitnessRootMismatch();
        // 2. Every leaf is proven under its tree root.
        checkProofs(w.accountsRoot, w.accounts, OspConstants.ACCOUNT_TREE_DEPTH, OspConstants.TREE_ACCOUNTS);
        checkProofs(w.slotsRoot, w.slots, OspConstants.SLOT_TREE_DEPTH, OspConstants.TREE_SLOTS);
        // 3. A state made of the proven leaves only.
        OspState.State memory s = OspState.load(w);
        // 4. The ordinary state transition (reverts InvalidTransaction when the transaction is invalid).
        code = stateTransition(s, record, l1);
        // 5. The post-state root from the written leaves' proofs.
        (uint256[] memory ids, bytes32[] memory hashes) = OspState.dirtyAccounts(s);
        bytes32 accountsRoot = updatedRoot(w.accountsRoot, w.accounts, ids, hashes, OspConstants.TREE_ACCOUNTS);
        (ids, hashes) = OspState.dirtySlots(s);
        bytes32 slotsRoot = updatedRoot(w.slotsRoot, w.slots, ids, hashes, OspConstants.TREE_SLOTS);
        postRoot =
            StateCodec.stateRoot(accountsRoot, slotsRoot, keccak256(OspState.encodeGlobals(s)), s.depositsDone, s.forcedDone);
    }

    /// spec: state_transition for this contract's record types: decode the record (spec:
    /// record_codec.decode_transaction; whatever does not decode exactly is Malformed), check_well_formed, and
    /// the type's process_*. Returns the receipt code of an applied transaction; reverts
    /// InvalidTransaction(code) for an invalid one.
    function stateTransition(OspState.State memory s, bytes calldata record, L1Inputs calldata l1)
        internal
        pure
        virtual
        returns (uint8 code);

    // --- the witness -------------------------------------------------------------------------------

    /// The Witness encoded in `witness` (abi.encode of a dynamic struct: the first word is the offset of
    /// its head), read in place: Solidity checks every member access against the calldata bounds, and
    /// every value read is authenticated by the hashes of steps 1-2, so nothing is copied to memory.
    function witnessAt(bytes calldata witness) internal pure returns (Witness calldata w) {
        if (witness.length < 0xe0 || uint256(bytes32(witness[0:0x20])) > witness.length - 0xe0) {
            revert WitnessUndecodableLeaf(OspConstants.TREE_GLOBALS, 0);
        }
        assembly ("memory-safe") {
            w := add(witness.offset, calldataload(witness.offset))
        }
    }

    /// spec: _check_proofs — each proof must hash to the root. The first is hashed in full; a later one
    /// is hashed up to where its path meets the nearest earlier proof's, and compared with it from there
    /// (Merkle.joinsPath: equivalent to hashing it in full).
    function checkProofs(bytes32 root, LeafProof[] calldata proofs, uint256 depth, uint8 tree) internal pure {
        bytes32[][] memory paths = new bytes32[][](proofs.length);
        for (uint256 i = 0; i < proofs.length; ++i) {
            LeafProof calldata proof = proofs[i];
            uint256 index = proof.index;
            // the earlier proof whose path meets this one lowest
            uint256 nearest = i;
            uint256 meet = depth;
            for (uint256 j = 0; j < i; ++j) {
                uint256 other = proofs[j].index;
                if (other == index) revert WitnessDuplicateLeaf(tree, index);
                uint256 height = Merkle.highestBit(other ^ index);
                if (height < meet) (nearest, meet) = (j, height);
            }
            if (proof.siblings.length != depth || index >> depth != 0) revert WitnessMalformedProof(tree, index);
            paths[i] = new bytes32[](depth + 1);
            bytes32 node = Merkle.computePath(leafHash(proof.leaf), index, proof.siblings, meet, paths[i]);
            bool ok = nearest == i ? node == root : joins(node, proof, proofs[nearest], paths, nearest, i, meet);
            if (!ok) revert WitnessProofMismatch(tree, index);
        }
    }

    function joins(
        bytes32 node,
        LeafProof calldata proof,
        LeafProof calldata other,
        bytes32[][] memory paths,
        uint256 nearest,
        uint256 i,
        uint256 meet
    ) private pure returns (bool) {
        return Merkle.joinsPath(node, proof.siblings, other.siblings, paths[nearest], meet, paths[i]);
    }

    /// spec: _leaf_hash — keccak of the encoding, or the zero leaf for an empty one.
    function leafHash(bytes calldata leaf) internal pure returns (bytes32 hash) {
        if (leaf.length == 0) return bytes32(0);
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, leaf.offset, leaf.length)
            hash := keccak256(ptr, leaf.length)
        }
    }

    /// spec: _updated_root — every written leaf must be in the witness; the new root follows from the
    /// written leaves' siblings under the old root (spec: compute_root_after_updates).
    function updatedRoot(
        bytes32 root,
        LeafProof[] calldata proofs,
        uint256[] memory indices,
        bytes32[] memory leaves,
        uint8 tree
    ) internal pure returns (bytes32) {
        uint256 n = indices.length;
        if (n == 0) return root;
        bytes32[][] memory siblings = new bytes32[][](n);
        for (uint256 u = 0; u < n; ++u) {
            uint256 p = 0;
            while (p < proofs.length && proofs[p].index != indices[u]) ++p;
            if (p == proofs.length) revert WitnessMissingLeaf(tree, indices[u]); // written but not in the witness
            siblings[u] = proofs[p].siblings;
        }
        return Merkle.computeRootAfterUpdates(indices, leaves, siblings);
    }
}
