// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "../lib/StateCodec.sol";
import {Valuation} from "../lib/Valuation.sol";

/// @title ValuationHarness — TESTS ONLY: exposes Valuation for differential tests against spec.margin
contract ValuationHarness {
    function totalValue(bytes calldata accountLeaf, bytes calldata globals) external pure returns (int256) {
        return Valuation.totalValue(StateCodec.decodeAccount(accountLeaf), StateCodec.decodeGlobals(globals));
    }

    function escapeValue(bytes calldata accountLeaf, bytes calldata globals) external pure returns (uint256) {
        return Valuation.escapeValue(StateCodec.decodeAccount(accountLeaf), StateCodec.decodeGlobals(globals));
    }
}
