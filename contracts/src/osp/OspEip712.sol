// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {OspConstants, Signature, Order, Withdraw, PriceSample, CancelAll} from "./OspTypes.sol";

/// @title OspEip712 — mirrors optinode/spec/eip712.py and optinode/spec/crypto.py (docs/eip712.md)
library OspEip712 {
    bytes32 internal constant ORDER_TYPEHASH = keccak256(
        "Order(uint32 accountId,uint8 market,bool isBuy,uint64 size,uint64 limitPrice,uint32 feeRate,uint64 expiry,uint64 nonce)"
    );
    bytes32 internal constant WITHDRAW_TYPEHASH =
        keccak256("Withdraw(uint32 accountId,uint64 amount,uint64 expiry,uint64 nonce)");
    bytes32 internal constant ORACLE_PRICE_TYPEHASH = keccak256("OraclePrice(uint8 market,uint64 price,uint64 timestamp)");
    bytes32 internal constant CANCEL_ALL_TYPEHASH = keccak256("CancelAll(uint32 accountId,uint64 nonceFloor)");

    /// spec: compute_typed_digest
    function computeTypedDigest(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32 digest) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, 0x1901000000000000000000000000000000000000000000000000000000000000)
            mstore(add(ptr, 2), domainSeparator)
            mstore(add(ptr, 34), structHash)
            digest := keccak256(ptr, 66)
        }
    }

    /// spec: hash_order
    function hashOrder(Order memory o) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(ORDER_TYPEHASH, o.accountId, o.market, o.isBuy, o.size, o.limitPrice, o.feeRate, o.expiry, o.nonce)
        );
    }

    /// spec: compute_order_digest
    function computeOrderDigest(bytes32 domainSeparator, Order memory o) internal pure returns (bytes32) {
        return computeTypedDigest(domainSeparator, hashOrder(o));
    }

    /// spec: hash_withdraw
    function hashWithdraw(Withdraw memory t) internal pure returns (bytes32) {
        return keccak256(abi.encode(WITHDRAW_TYPEHASH, t.accountId, t.amount, t.expiry, t.nonce));
    }

    /// spec: hash_cancel_all
    function hashCancelAll(CancelAll memory t) internal pure returns (bytes32) {
        return keccak256(abi.encode(CANCEL_ALL_TYPEHASH, t.accountId, t.nonceFloor));
    }

    /// spec: hash_oracle_price
    function hashOraclePrice(uint8 market, PriceSample memory sample) internal pure returns (bytes32) {
        return keccak256(abi.encode(ORACLE_PRICE_TYPEHASH, market, sample.price, sample.timestamp));
    }

    /// spec: crypto.is_valid_signature_form — v in {27, 28}, 0 < r < n and 0 < s <= n/2 (low s, EIP-2).
    /// (The 65-byte length is structural here: the codec always expands 64 compact bytes to r, s, v.)
    function isValidSignatureForm(Signature memory sig) internal pure returns (bool) {
        uint256 r = uint256(sig.r);
        uint256 s = uint256(sig.s);
        return (sig.v == 27 || sig.v == 28) && 0 < r && r < OspConstants.SECP256K1_N && 0 < s
            && s <= OspConstants.SECP256K1_HALF_N;
    }

    /// spec: crypto.recover_signer — the signer, or address(0) for a malformed or unrecoverable signature
    /// (ecrecover returns 0 exactly when no point recovers).
    function recoverSigner(bytes32 digest, Signature memory sig) internal pure returns (address) {
        if (!isValidSignatureForm(sig)) return address(0);
        return ecrecover(digest, sig.v, sig.r, sig.s);
    }
}
