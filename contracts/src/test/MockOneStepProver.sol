// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IOneStepProver, L1Inputs} from "../interfaces/IOneStepProver.sol";

/// @title MockOneStepProver — TESTS ONLY: a stand-in prover for the dispute game's mechanics
/// @notice The "true" transition is a hash: postRoot = keccak256(abi.encode(preRoot, keccak256(record), l1))
///         unless a test configured an explicit result for `preRoot` (`setResult`). Hashing the L1
///         inputs in lets tests check that the game builds them correctly. A witness whose
///         accountsRoot is all ones makes it revert (a witness that does not authenticate).
contract MockOneStepProver is IOneStepProver {
    mapping(bytes32 => bytes32) public results;
    mapping(bytes32 => bool) public hasResult;

    event ResultSet(bytes32 indexed preRoot, bytes32 postRoot);

    error BadWitness();

    function setResult(bytes32 preRoot, bytes32 postRoot) external {
        results[preRoot] = postRoot;
        hasResult[preRoot] = true;
        emit ResultSet(preRoot, postRoot);
    }

    function executeOneStep(bytes32 preRoot, bytes calldata record, L1Inputs calldata l1, bytes calldata witness)
        external
        view
        returns (bytes32 postRoot, uint8 code, bool applied)
    {
        if (witness.length >= 0x40 && bytes32(witness[0x20:0x40]) == bytes32(type(uint256).max)) revert BadWitness();
        if (hasResult[preRoot]) return (results[preRoot], 0, results[preRoot] != preRoot);
        postRoot = keccak256(abi.encode(preRoot, keccak256(record), l1));
        return (postRoot, 0, true);
    }
}
