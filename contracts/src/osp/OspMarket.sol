// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "../lib/StateCodec.sol";
import {L1Inputs} from "../interfaces/IOneStepProver.sol";
import {OspConstants, ErrorCode, InvalidTransaction, OraclePrice, PriceSample, FundingTick} from "./OspTypes.sol";
import {OspCodec} from "./OspCodec.sol";
import {OspState} from "./OspState.sol";
import {OspProver} from "./OspProver.sol";
import {OspEip712} from "./OspEip712.sol";
import {OspRules} from "./OspRules.sol";

/// @title OspMarket — the one-step prover of OraclePrice and FundingTick records (spec:
///        process_oracle_price, process_funding_tick), and of records of no defined type (spec:
///        process_malformed); the witness half is OspProver's.
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

    /// spec: process_oracle_price
    function processOraclePrice(OspState.State memory s, L1Inputs calldata l1, OraclePrice memory t)
        internal
        pure
        returns (uint8)
    {
        // 1. The market exists.
        OspRules.requireValid(t.market < s.g.markets.length, ErrorCode.MARKET_NOT_FOUND);
        StateCodec.MarketState memory market = s.g.markets[t.market];
        address[] memory oracles = s.g.oracles;
        uint256 n = t.samples.length;
        // 2. At least a quorum of samples.
        OspRules.requireValid(n >= s.g.quorum, ErrorCode.QUORUM_NOT_MET);
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
            // 4. The price is positive.
            OspRules.requireValid(sample.price > 0, ErrorCode.INVALID_PRICE);
            // 5. Not later than the batch's L1 timestamp.
            OspRules.requireValid(sample.timestamp <= l1.l1Timestamp, ErrorCode.FUTURE_TIMESTAMP);
            // 6. Newer than the market's current price.
            OspRules.requireValid(sample.timestamp > market.priceTime, ErrorCode.STALE_TIMESTAMP);
            // 7-8. Signed by that oracle.
            bytes32 digest =
                OspEip712.computeTypedDigest(s.g.domainSeparator, OspEip712.hashOraclePrice(t.market, sample));
            OspRules.checkSigner(digest, sample.signature, oracles[sample.oracleIndex]);
            prices[k] = sample.price;
            timestamps[k] = sample.timestamp;
        }
        // The new price and its time are the lower medians: a minority of oracles moves neither.
        market.price = uint64(lowerMedian(prices));
        market.priceTime = uint64(lowerMedian(timestamps));
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
}
