// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "../lib/StateCodec.sol";
import {L1Inputs} from "../interfaces/IOneStepProver.sol";
import {
    OspConstants,
    ErrorCode,
    InvalidTransaction,
    OraclePrice,
    PriceSample,
    FundingTick,
    CancelAll,
    CollectFees
} from "./OspTypes.sol";
import {OspCodec} from "./OspCodec.sol";
import {OspState} from "./OspState.sol";
import {OspProver} from "./OspProver.sol";
import {OspEip712} from "./OspEip712.sol";
import {OspRules} from "./OspRules.sol";

/// @title OspMarket — the one-step prover of OraclePrice, FundingTick, CancelAll and CollectFees records
///        (spec: process_oracle_price, process_funding_tick, process_cancel_all, process_collect_fees),
///        and of records of no defined type (spec: process_malformed); the witness half is OspProver's.
///        (CancelAll and CollectFees touch one account and no prices; they live here because this
///        contract has the most room under EIP-170.)
contract OspMarket is OspProver {
    /// spec: state_transition (OraclePrice and FundingTick records; anything else OneStepProver sends
    /// here is Malformed)
    function stateTransition(OspState.State memory s, bytes calldata record, L1Inputs calldata l1)
        internal
        pure
        override
        returns (uint8)
    {
        (uint256 kind, uint256 flags) = OspCodec.readTag(record);
        uint256 end;
        if (kind == OspCodec.TYPE_ORACLE_PRICE) {
            OraclePrice memory t;
            (t, end) = OspCodec.decodeOraclePrice(record, 1, flags);
            if (end == record.length && isWellFormedOraclePrice(t)) return processOraclePrice(s, l1, t);
        } else if (kind == OspCodec.TYPE_FUNDING_TICK) {
            FundingTick memory t;
            (t, end) = OspCodec.decodeFundingTick(record, 1, flags);
            if (end == record.length && isWellFormedFundingTick(t)) return processFundingTick(s, l1, t);
        } else if (kind == OspCodec.TYPE_CANCEL_ALL) {
            CancelAll memory t;
            (t, end) = OspCodec.decodeCancelAll(record, 1, flags);
            if (end == record.length) return processCancelAll(s, t);
        } else if (kind == OspCodec.TYPE_COLLECT_FEES) {
            CollectFees memory t;
            (t, end) = OspCodec.decodeCollectFees(record, 1, flags);
            if (end == record.length) return processCollectFees(s, t);
        }
        // spec: decode_transaction -> Malformed (an undefined type, an empty record, a record that does
        // not decode exactly), check_well_formed, process_malformed
        revert InvalidTransaction(ErrorCode.MALFORMED);
    }

    // spec: is_well_formed. A decoded record's fields already fit their ranges (ids, sizes, prices,
    // timestamps and nonces are varints bounded to their maxima and held in types of that width; markets
    // and oracle indices are bytes), which is all is_well_formed asks of Deposit, Trade, Withdraw,
    // ForcedWithdraw, Liquidate and Deleverage. Left: the list lengths and the funding-index bound (which
    // the codec enforces as well, so these never fail after a successful decode).

    /// spec: is_well_formed (OraclePrice): at most MAX_ORACLES samples.
    function isWellFormedOraclePrice(OraclePrice memory t) internal pure returns (bool) {
        return t.samples.length <= OspConstants.MAX_ORACLES;
    }

    /// spec: is_well_formed (FundingTick): at most MAX_MARKETS indices, each |index| <= MAX_FUNDING_INDEX.
    function isWellFormedFundingTick(FundingTick memory t) internal pure returns (bool) {
        if (t.indices.length > OspConstants.MAX_MARKETS) return false;
        for (uint256 i = 0; i < t.indices.length; ++i) {
            if (t.indices[i] < -OspConstants.MAX_FUNDING_INDEX) return false;
        }
        return true;
    }

    /// spec: lower_median — sorted(values)[(len - 1) // 2] (sorts `values` in place).
    function lowerMedian(uint256[] memory values) internal pure returns (uint256) {
        uint256 n = values.length;
        for (uint256 i = 1; i < n; ++i) {
            uint256 v = values[i];
            uint256 j = i;
            while (j > 0 && values[j - 1] > v) {
                values[j] = values[j - 1];
                --j;
            }
            values[j] = v;
        }
        return values[(n - 1) / 2];
    }

    /// spec: is_price_move_allowed — |new - old| * FRACTION_ONE <= maxPriceMove * old * elapsed, exactly; 0 = no
    /// limit. `elapsed` is signed as in the spec (a hostile pre-state could have it negative: then only
    /// no limit allows the update). Every term is below 2^160.
    function isPriceMoveAllowed(uint256 maxPriceMove, uint256 oldPrice, uint256 newPrice, int256 elapsed)
        internal
        pure
        returns (bool)
    {
        if (maxPriceMove == 0) return true;
        int256 change = int256(newPrice > oldPrice ? newPrice - oldPrice : oldPrice - newPrice);
        return change * OspConstants.FRACTION_ONE <= int256(maxPriceMove * oldPrice) * elapsed;
    }

    /// spec: process_oracle_price
    function processOraclePrice(OspState.State memory s, L1Inputs calldata l1, OraclePrice memory t)
        internal
        pure
        returns (uint8)
    {
        // 1. The market exists.
        OspRules.requireValid(t.market < s.g.markets.length, ErrorCode.MARKET_NOT_FOUND);
        StateCodec.MarketState memory market = s.g.markets[t.market];
        StateCodec.MarketConfig memory config = s.g.configs[t.market];
        address[] memory oracles = s.g.oracles;
        uint256 n = t.samples.length;
        // 2. At least the market's quorum of samples. Genesis makes quorum >= 2f + 1 for the market's own f
        //    (genesis.check_market_oracles), so the lower median of any subset the sequencer includes lies
        //    between two honest samples.
        OspRules.requireValid(n >= config.quorum, ErrorCode.QUORUM_NOT_MET);
        uint256 newest;
        uint256[] memory prices = new uint256[](n);
        uint256[] memory timestamps = new uint256[](n);
        int256 previousIndex = -1;
        for (uint256 k = 0; k < n; ++k) {
            PriceSample memory sample = t.samples[k];
            // 3. Oracle indices are known and strictly increasing (each oracle counts once).
            OspRules.requireValid(
                previousIndex < int256(uint256(sample.oracleIndex)) && sample.oracleIndex < oracles.length,
                ErrorCode.INVALID_ORACLE
            );
            previousIndex = int256(uint256(sample.oracleIndex));
            // 3a. The oracle is one of this market's (its bit is in the market's oracle set).
            OspRules.requireValid((config.oracleSet >> sample.oracleIndex) & 1 == 1, ErrorCode.INVALID_ORACLE);
            // 4. The price is positive.
            OspRules.requireValid(sample.price > 0, ErrorCode.INVALID_PRICE);
            // 5. Not later than the batch's L1 timestamp.
            OspRules.requireValid(sample.timestamp <= l1.l1Timestamp, ErrorCode.FUTURE_TIMESTAMP);
            // 6. Not older than max_sample_age before it.
            OspRules.requireValid(
                uint256(sample.timestamp) + s.g.maxSampleAge >= l1.l1Timestamp, ErrorCode.SAMPLE_TOO_OLD
            );
            // 7. Newer than every sample of the market's last update, so no sample is ever used twice.
            OspRules.requireValid(sample.timestamp > market.sampleTime, ErrorCode.STALE_TIMESTAMP);
            // 8-9. Signed by that oracle.
            bytes32 digest =
                OspEip712.computeTypedDigest(s.g.domainSeparator, OspEip712.hashOraclePrice(t.market, sample));
            OspRules.checkSigner(digest, sample.signature, oracles[sample.oracleIndex]);
            prices[k] = sample.price;
            timestamps[k] = sample.timestamp;
            if (sample.timestamp > newest) newest = sample.timestamp;
        }
        // The new price and its time are the lower medians: f oracles move neither outside the honest
        // samples. The newest sample time is the bar every later sample must clear.
        uint256 price = lowerMedian(prices);
        uint256 priceTime = lowerMedian(timestamps);
        // 10. The price moves no faster than the market's max_price_move per second since the last price's
        //     time (rule 7 makes priceTime later than it). Rejected, never clamped: a stored price is always
        //     one a quorum signed; the bound grows with the time elapsed, so a real move gets through late
        //     but never stays out (genesis.check_price_move_liveness, docs/risk.md).
        OspRules.requireValid(
            isPriceMoveAllowed(config.maxPriceMove, market.price, price, int256(priceTime) - int256(uint256(market.priceTime))),
            ErrorCode.PRICE_MOVE_TOO_FAST
        );
        market.price = uint64(price);
        market.priceTime = uint64(priceTime);
        market.sampleTime = uint64(newest);
        if (market.priceTime > s.g.time) s.g.time = market.priceTime;
        return ErrorCode.OK;
    }

    /// spec: process_funding_tick
    function processFundingTick(OspState.State memory s, L1Inputs calldata l1, FundingTick memory t)
        internal
        pure
        returns (uint8)
    {
        StateCodec.MarketState[] memory markets = s.g.markets;
        // 1. One index per market.
        OspRules.requireValid(t.indices.length == markets.length, ErrorCode.WRONG_MARKET_COUNT);
        // 2. Time moves forward: after the last funding tick and not before the system time.
        OspRules.requireValid(t.timestamp > s.g.fundingTime && t.timestamp >= s.g.time, ErrorCode.STALE_TIMESTAMP);
        // 3. Not later than the batch's L1 timestamp.
        OspRules.requireValid(t.timestamp <= l1.l1Timestamp, ErrorCode.FUTURE_TIMESTAMP);
        uint256 elapsed = t.timestamp - s.g.fundingTime;
        for (uint256 i = 0; i < markets.length; ++i) {
            int256 delta = int256(t.indices[i]) - int256(markets[i].fundingIndex);
            uint256 change = uint256(delta < 0 ? -delta : delta);
            // 4. |index change| <= max rate * price * elapsed, exactly (no rounding).
            OspRules.requireValid(
                change * uint256(OspConstants.FUNDING_RATE_ONE)
                    <= uint256(s.g.configs[i].maxFundingRate) * uint256(markets[i].price) * elapsed,
                ErrorCode.FUNDING_RATE_EXCEEDED
            );
        }
        for (uint256 i = 0; i < markets.length; ++i) {
            markets[i].fundingIndex = t.indices[i];
        }
        s.g.fundingTime = t.timestamp;
        s.g.time = t.timestamp;
        return ErrorCode.OK;
    }

    /// spec: process_cancel_all
    function processCancelAll(OspState.State memory s, CancelAll memory t) internal pure returns (uint8) {
        (StateCodec.Account memory account, bool found) = OspState.getAccount(s, t.accountId);
        // 1. The account exists.
        OspRules.requireValid(found, ErrorCode.ACCOUNT_NOT_FOUND);
        // 2-3. Signed by the owner.
        OspRules.checkSigner(
            OspEip712.computeTypedDigest(s.g.domainSeparator, OspEip712.hashCancelAll(t)), t.signature, account.owner
        );
        // 4-5. The floor rises by at most NONCE_HORIZON (floor rules 1-2).
        (uint8 code, uint64 base, uint256 bits) = OspRules.checkNonceFloor(account, t.nonceFloor);
        OspRules.requireValid(code == ErrorCode.OK, code);
        account.nonceBase = base;
        account.nonceBits = bits;
        OspState.setAccount(s, t.accountId, account);
        return ErrorCode.OK;
    }

    /// spec: process_collect_fees
    function processCollectFees(OspState.State memory s, CollectFees memory t) internal pure returns (uint8) {
        (StateCodec.Account memory account, bool found) = OspState.getAccount(s, t.accountId);
        // 1. The account exists.
        OspRules.requireValid(found, ErrorCode.ACCOUNT_NOT_FOUND);
        // 2. It belongs to the genesis fee owner.
        OspRules.requireValid(account.owner == s.g.feeOwner, ErrorCode.OWNER_MISMATCH);
        // 3. There are fees to collect.
        OspRules.requireValid(s.g.fees > 0, ErrorCode.INVALID_AMOUNT);
        int256 collateral = int256(account.collateral) + int256(s.g.fees);
        // 4. The balance stays in range.
        OspRules.checkBalance(collateral);
        account.collateral = int128(collateral);
        OspState.setAccount(s, t.accountId, account);
        s.g.fees = 0;
        return ErrorCode.OK;
    }
}
