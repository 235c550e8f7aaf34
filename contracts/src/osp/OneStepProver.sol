// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IOneStepProver, L1Inputs} from "../interfaces/IOneStepProver.sol";
import {InvalidTransaction} from "./OspTypes.sol";
import {OspCodec} from "./OspCodec.sol";
import {OspProver} from "./OspProver.sol";
import {OspTrade} from "./OspTrade.sol";
import {OspAccounts} from "./OspAccounts.sol";
import {OspMarket} from "./OspMarket.sol";

/// @title OneStepProver — the IOneStepProver entry point (spec: witness.execute_witness)
/// @notice The prover is split by transaction type to fit EIP-170. This entry reads the record's type
///         nibble and forwards its own calldata, with the selector of OspProver.proveOneStep, to the
///         contract that owns the type:
///             OspTrade     Trade, Liquidate
///             OspAccounts  Deposit, Withdraw, ForcedWithdraw, Deleverage
///             OspMarket    OraclePrice, FundingTick, CancelAll, CollectFees, and every record of no
///                          defined type (Malformed)
///         Each of them (an OspProver) authenticates the witness, decodes the record, applies the
///         transaction and recomputes the root; see OspProver. An invalid transaction comes back as the
///         revert InvalidTransaction(code) and becomes (preRoot, code, false) here; a witness error
///         (a named Witness* error) or anything else is re-raised unchanged, so that a caller can never
///         turn a lack of gas into a verdict.
contract OneStepProver is IOneStepProver {
    OspTrade public immutable trade;
    OspAccounts public immutable accounts;
    OspMarket public immutable market;

    constructor(OspTrade trade_, OspAccounts accounts_, OspMarket market_) {
        trade = trade_;
        accounts = accounts_;
        market = market_;
    }

    /// spec: execute_witness
    function executeOneStep(bytes32 preRoot, bytes calldata record, L1Inputs calldata, bytes calldata)
        external
        view
        returns (bytes32 postRoot, uint8 code, bool applied)
    {
        address prover = proverOf(record);
        bytes memory data = msg.data; // the same arguments, ABI-encoded the same way
        bytes4 selector = OspProver.proveOneStep.selector;
        assembly ("memory-safe") {
            mstore(add(data, 0x20), or(and(mload(add(data, 0x20)), not(shl(224, 0xffffffff))), selector))
        }
        (bool ok, bytes memory ret) = prover.staticcall(data);
        if (ok) {
            (postRoot, code) = abi.decode(ret, (bytes32, uint8));
            return (postRoot, code, true);
        }
        if (ret.length == 36 && bytes4(ret) == InvalidTransaction.selector) {
            uint256 reason;
            assembly ("memory-safe") {
                reason := mload(add(ret, 36))
            }
            if (reason <= type(uint8).max) return (preRoot, uint8(reason), false);
        }
        assembly ("memory-safe") {
            revert(add(ret, 0x20), mload(ret))
        }
    }

    /// The contract that proves records of this type (spec: the PROCESSORS table). An empty record and
    /// the undefined types go to OspMarket, which finds them Malformed.
    function proverOf(bytes calldata record) public view returns (address) {
        (uint256 kind,) = OspCodec.readTag(record);
        if (kind == OspCodec.TYPE_TRADE || kind == OspCodec.TYPE_LIQUIDATE) return address(trade);
        if (
            kind == OspCodec.TYPE_DEPOSIT || kind == OspCodec.TYPE_WITHDRAW || kind == OspCodec.TYPE_FORCED_WITHDRAW
                || kind == OspCodec.TYPE_DELEVERAGE
        ) return address(accounts);
        return address(market);
    }
}
