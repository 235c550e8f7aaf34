// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {
    OspConstants,
    Signature,
    Order,
    OrderOrRef,
    PriceSample,
    Deposit,
    Trade,
    Withdraw,
    OraclePrice,
    FundingTick,
    Liquidate,
    Deleverage,
    CancelAll,
    CollectFees
} from "./OspTypes.sol";

/// @title OspCodec — mirrors the decoding half of optinode/spec/record_codec.py
/// @notice A record is a tag byte (low nibble: type, high nibble: flags) followed by the type's fields;
///         integers are minimal unsigned LEB128 varints; signatures are EIP-2098 compact (64 bytes).
///         Every function returns the position after what it read. Where the spec raises DecodeError
///         or IndexError, these functions return BAD instead: every later read from BAD fails as well,
///         so the record's end position is never its length and OneStepProver classifies it Malformed
///         (spec: decode_transaction's `end == len(record)` test). Nothing here reverts.
library OspCodec {
    // Record types (low nibble of the tag byte). 0x0 and 0xb-0xf are undefined and decode Malformed.
    uint256 internal constant TYPE_DEPOSIT = 0x1;
    uint256 internal constant TYPE_TRADE = 0x2;
    uint256 internal constant TYPE_WITHDRAW = 0x3;
    uint256 internal constant TYPE_FORCED_WITHDRAW = 0x4;
    uint256 internal constant TYPE_ORACLE_PRICE = 0x5;
    uint256 internal constant TYPE_FUNDING_TICK = 0x6;
    uint256 internal constant TYPE_LIQUIDATE = 0x7;
    uint256 internal constant TYPE_DELEVERAGE = 0x8;
    uint256 internal constant TYPE_CANCEL_ALL = 0x9;
    uint256 internal constant TYPE_COLLECT_FEES = 0xA;

    // Flags (high nibble of the tag byte); a flag not defined for the record's type must be 0.
    uint256 internal constant FLAG_MAKER_REF = 0x10;
    uint256 internal constant FLAG_TAKER_REF = 0x20;
    uint256 internal constant FLAG_SIZE_OMITTED = 0x40;
    uint256 internal constant FLAG_LIQUIDATOR_REF = 0x10;

    uint256 internal constant COMPACT_SIGNATURE_LEN = 64;
    uint256 internal constant MAX_ZIGZAG_FUNDING = 2 * uint256(OspConstants.MAX_FUNDING_INDEX);

    // Bytes each bounded field may take: ceil(bits / 7).
    uint256 private constant LEN_ACCOUNT = 5;
    uint256 private constant LEN_SLOT = 5;
    uint256 private constant LEN_AMOUNT = 10;
    uint256 private constant LEN_PRICE = 10;
    uint256 private constant LEN_TIMESTAMP = 10;
    uint256 private constant LEN_NONCE = 10;
    uint256 private constant LEN_U32 = 5;
    uint256 private constant LEN_ZIGZAG = 19;

    /// The position a failed read returns (far beyond any calldata, and small enough never to overflow).
    uint256 internal constant BAD = 2 ** 128;

    uint256 private constant S_MASK = (1 << 255) - 1;

    /// spec: decode_transaction's `tag = record[0]` — (type nibble, flags). An empty record has type 0,
    /// which is undefined (Malformed).
    function readTag(bytes calldata record) internal pure returns (uint256 kind, uint256 flags) {
        if (record.length == 0) return (0, 0);
        uint256 tag = uint8(record[0]);
        return (tag & 0x0F, tag & 0xF0);
    }

    /// `data[i]`; BAD when it does not exist (spec: IndexError).
    function readByte(bytes calldata data, uint256 i) internal pure returns (uint256 b, uint256 next) {
        assembly ("memory-safe") {
            next := BAD
            if lt(i, data.length) {
                b := byte(0, calldataload(add(data.offset, i)))
                next := add(i, 1)
            }
        }
    }

    /// spec: _varint — minimal unsigned LEB128 at data[i], at most `maxLen` bytes and <= `high` (every
    /// field's maximum is >= 0x7f, so a single byte never needs the range check). BAD when the varint is
    /// truncated, longer than its field allows, non-minimal (a trailing zero group) or above `high`.
    function readVarint(bytes calldata data, uint256 i, uint256 high, uint256 maxLen)
        internal
        pure
        returns (uint256 value, uint256 next)
    {
        assembly ("memory-safe") {
            next := BAD
            let len := data.length
            if lt(i, len) {
                let b := byte(0, calldataload(add(data.offset, i)))
                switch lt(b, 0x80)
                case 1 {
                    value := b
                    next := add(i, 1)
                }
                default {
                    let acc := and(b, 0x7f)
                    let shift := 7
                    let end := add(i, maxLen)
                    if gt(end, len) { end := len }
                    for { i := add(i, 1) } lt(i, end) { i := add(i, 1) } {
                        b := byte(0, calldataload(add(data.offset, i)))
                        acc := or(acc, shl(shift, and(b, 0x7f)))
                        if lt(b, 0x80) {
                            // the last group: not zero (minimal) and the value within the field
                            if and(gt(b, 0), iszero(gt(acc, high))) {
                                value := acc
                                next := add(i, 1)
                            }
                            break
                        }
                        shift := add(shift, 7)
                    }
                }
            }
        }
    }

    /// spec: _signature — EIP-2098 compact: r (32 bytes), then yParity << 255 | s (32 bytes), expanded to
    /// r, s, v = 27 + yParity. Any 64 bytes decode; whether the signature is usable is the state
    /// transition's business.
    function readSignature(bytes calldata data, uint256 i) internal pure returns (Signature memory sig, uint256) {
        uint256 end = i + COMPACT_SIGNATURE_LEN;
        if (end > data.length) return (sig, BAD); // truncated signature
        sig.r = bytes32(data[i:i + 32]);
        uint256 high = uint256(bytes32(data[i + 32:end]));
        sig.s = bytes32(high & S_MASK);
        sig.v = high >> 255 == 0 ? 27 : 28;
        return (sig, end);
    }

    /// spec: _order — a new signed order; the market and side share a byte (market << 1 | is_buy).
    function readOrder(bytes calldata data, uint256 i) internal pure returns (Order memory o, uint256) {
        uint256 v;
        (v, i) = readVarint(data, i, OspConstants.MAX_ACCOUNT_ID, LEN_ACCOUNT);
        o.accountId = uint32(v);
        (v, i) = readByte(data, i);
        o.market = uint8(v >> 1);
        o.isBuy = v & 1 == 1;
        (v, i) = readVarint(data, i, OspConstants.MAX_AMOUNT, LEN_AMOUNT);
        o.size = uint64(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_PRICE, LEN_PRICE);
        o.limitPrice = uint64(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_U32, LEN_U32);
        o.feeRate = uint32(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_TIMESTAMP, LEN_TIMESTAMP);
        o.expiry = uint64(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_NONCE, LEN_NONCE);
        o.nonce = uint64(v);
        (o.signature, i) = readSignature(data, i);
        return (o, i);
    }

    /// spec: _slot_ref (isRef) or _order, as the record's flag says.
    function readOrderOrRef(bytes calldata data, uint256 i, bool isRef)
        internal
        pure
        returns (OrderOrRef memory side, uint256)
    {
        if (isRef) {
            uint256 slot;
            (slot, i) = readVarint(data, i, OspConstants.MAX_SLOT_ID, LEN_SLOT);
            side.isRef = true;
            side.slot = uint32(slot);
            return (side, i);
        }
        (side.order, i) = readOrder(data, i);
        return (side, i);
    }

    /// spec: _decode_deposit
    function decodeDeposit(bytes calldata data, uint256 i, uint256 flags) internal pure returns (Deposit memory t, uint256) {
        if (flags != 0) return (t, BAD); // undefined flag
        uint256 v;
        (v, i) = readVarint(data, i, OspConstants.MAX_ACCOUNT_ID, LEN_ACCOUNT);
        t.accountId = uint32(v);
        return (t, i);
    }

    /// spec: _decode_trade — flags pick SlotRef vs new order per side, and let a full fill of a new
    /// taker omit the size (which is then forced: an explicit size equal to the taker's is malformed).
    function decodeTrade(bytes calldata data, uint256 i, uint256 flags) internal pure returns (Trade memory t, uint256) {
        if (flags & 0x80 != 0) return (t, BAD); // undefined flag
        uint256 v;
        (t.maker, i) = readOrderOrRef(data, i, flags & FLAG_MAKER_REF != 0);
        if (flags & FLAG_TAKER_REF != 0) {
            if (flags & FLAG_SIZE_OMITTED != 0) return (t, BAD); // size omitted, but the taker is a slot reference
            (t.taker, i) = readOrderOrRef(data, i, true);
            (v, i) = readVarint(data, i, OspConstants.MAX_AMOUNT, LEN_AMOUNT);
            t.size = uint64(v);
        } else {
            (t.taker, i) = readOrderOrRef(data, i, false);
            if (flags & FLAG_SIZE_OMITTED != 0) {
                t.size = t.taker.order.size;
            } else {
                (v, i) = readVarint(data, i, OspConstants.MAX_AMOUNT, LEN_AMOUNT);
                t.size = uint64(v);
                // explicit size equal to the new taker's size (must use the omitted-size flag)
                if (v == t.taker.order.size) return (t, BAD);
            }
        }
        return (t, i);
    }

    /// spec: _decode_withdraw
    function decodeWithdraw(bytes calldata data, uint256 i, uint256 flags) internal pure returns (Withdraw memory t, uint256) {
        if (flags != 0) return (t, BAD); // undefined flag
        uint256 v;
        (v, i) = readVarint(data, i, OspConstants.MAX_ACCOUNT_ID, LEN_ACCOUNT);
        t.accountId = uint32(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_AMOUNT, LEN_AMOUNT);
        t.amount = uint64(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_TIMESTAMP, LEN_TIMESTAMP);
        t.expiry = uint64(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_NONCE, LEN_NONCE);
        t.nonce = uint64(v);
        (t.signature, i) = readSignature(data, i);
        return (t, i);
    }

    /// spec: _decode_forced_withdraw — everything comes from the L1 forced-withdrawal queue.
    function decodeForcedWithdraw(bytes calldata, uint256 i, uint256 flags) internal pure returns (uint256) {
        if (flags != 0) return BAD; // undefined flag
        return i;
    }

    /// spec: _decode_oracle_price
    function decodeOraclePrice(bytes calldata data, uint256 i, uint256 flags)
        internal
        pure
        returns (OraclePrice memory t, uint256)
    {
        if (flags != 0) return (t, BAD); // undefined flag
        uint256 market;
        uint256 count;
        (market, i) = readByte(data, i);
        (count, i) = readByte(data, i);
        t.market = uint8(market);
        if (count > OspConstants.MAX_ORACLES) return (t, BAD); // more samples than MAX_ORACLES
        t.samples = new PriceSample[](count);
        uint256 v;
        for (uint256 k = 0; k < count; ++k) {
            PriceSample memory sample = t.samples[k];
            (v, i) = readByte(data, i);
            sample.oracleIndex = uint8(v);
            (v, i) = readVarint(data, i, OspConstants.MAX_PRICE, LEN_PRICE);
            sample.price = uint64(v);
            (v, i) = readVarint(data, i, OspConstants.MAX_TIMESTAMP, LEN_TIMESTAMP);
            sample.timestamp = uint64(v);
            (sample.signature, i) = readSignature(data, i);
        }
        return (t, i);
    }

    /// spec: _decode_funding_tick — zigzag varints: zz(x) = 2x (x >= 0), -2x - 1 (x < 0).
    function decodeFundingTick(bytes calldata data, uint256 i, uint256 flags)
        internal
        pure
        returns (FundingTick memory t, uint256)
    {
        if (flags != 0) return (t, BAD); // undefined flag
        uint256 v;
        (v, i) = readVarint(data, i, OspConstants.MAX_TIMESTAMP, LEN_TIMESTAMP);
        t.timestamp = uint64(v);
        uint256 count;
        (count, i) = readByte(data, i);
        if (count > OspConstants.MAX_MARKETS) return (t, BAD); // more indices than MAX_MARKETS
        t.indices = new int128[](count);
        for (uint256 k = 0; k < count; ++k) {
            (v, i) = readVarint(data, i, MAX_ZIGZAG_FUNDING, LEN_ZIGZAG);
            t.indices[k] = v & 1 == 1 ? -int128(int256((v + 1) >> 1)) : int128(int256(v >> 1));
        }
        return (t, i);
    }

    /// spec: _decode_liquidate
    function decodeLiquidate(bytes calldata data, uint256 i, uint256 flags)
        internal
        pure
        returns (Liquidate memory t, uint256)
    {
        if (flags & ~FLAG_LIQUIDATOR_REF != 0) return (t, BAD); // undefined flag
        uint256 v;
        (t.liquidator, i) = readOrderOrRef(data, i, flags != 0);
        (v, i) = readVarint(data, i, OspConstants.MAX_ACCOUNT_ID, LEN_ACCOUNT);
        t.liquidatedId = uint32(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_AMOUNT, LEN_AMOUNT);
        t.size = uint64(v);
        return (t, i);
    }

    /// spec: _decode_deleverage
    function decodeDeleverage(bytes calldata data, uint256 i, uint256 flags)
        internal
        pure
        returns (Deleverage memory t, uint256)
    {
        if (flags != 0) return (t, BAD); // undefined flag
        uint256 v;
        (v, i) = readVarint(data, i, OspConstants.MAX_ACCOUNT_ID, LEN_ACCOUNT);
        t.deleveragedId = uint32(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_ACCOUNT_ID, LEN_ACCOUNT);
        t.deleveragerId = uint32(v);
        (v, i) = readByte(data, i);
        t.market = uint8(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_AMOUNT, LEN_AMOUNT);
        t.size = uint64(v);
        return (t, i);
    }

    /// spec: _decode_cancel_all
    function decodeCancelAll(bytes calldata data, uint256 i, uint256 flags) internal pure returns (CancelAll memory t, uint256) {
        if (flags != 0) return (t, BAD); // undefined flag
        uint256 v;
        (v, i) = readVarint(data, i, OspConstants.MAX_ACCOUNT_ID, LEN_ACCOUNT);
        t.accountId = uint32(v);
        (v, i) = readVarint(data, i, OspConstants.MAX_NONCE, LEN_NONCE);
        t.nonceFloor = uint64(v);
        (t.signature, i) = readSignature(data, i);
        return (t, i);
    }

    /// spec: _decode_collect_fees
    function decodeCollectFees(bytes calldata data, uint256 i, uint256 flags)
        internal
        pure
        returns (CollectFees memory t, uint256)
    {
        if (flags != 0) return (t, BAD); // undefined flag
        uint256 v;
        (v, i) = readVarint(data, i, OspConstants.MAX_ACCOUNT_ID, LEN_ACCOUNT);
        t.accountId = uint32(v);
        return (t, i);
    }
}
