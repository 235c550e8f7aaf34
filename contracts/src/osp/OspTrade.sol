// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "../lib/StateCodec.sol";
import {L1Inputs} from "../interfaces/IOneStepProver.sol";
import {OspConstants, ErrorCode, InvalidTransaction, Trade, Liquidate} from "./OspTypes.sol";
import {OspCodec} from "./OspCodec.sol";
import {OspState} from "./OspState.sol";
import {OspProver} from "./OspProver.sol";
import {OspMargin} from "./OspMargin.sol";
import {OspRules} from "./OspRules.sol";

/// @title OspTrade — the one-step prover of Trade and Liquidate records (spec: process_trade,
///        process_liquidate); the witness half is OspProver's.
contract OspTrade is OspProver {
    int256 private constant PRICE_ONE = OspConstants.PRICE_ONE;
    int256 private constant FRACTION_ONE = OspConstants.FRACTION_ONE;

    /// Locals of process_trade (a struct, to stay clear of the EVM's stack limit).
    struct TradeFill {
        uint256 size;
        uint256 price;
        uint8 market;
        int256 paid;
        int256 received;
        int256 buyerFee;
        int256 sellerFee;
        int256 fees;
        int256 buyerCollateral;
        StateCodec.Position[] buyerPositions;
        int256 sellerCollateral;
        StateCodec.Position[] sellerPositions;
        int256 buyerSize;
        int256 sellerSize;
    }

    /// spec: state_transition (Trade and Liquidate records)
    function stateTransition(OspState.State memory s, bytes calldata record, L1Inputs calldata l1)
        internal
        pure
        override
        returns (uint8)
    {
        (uint256 kind, uint256 flags) = OspCodec.readTag(record);
        uint256 end;
        if (kind == OspCodec.TYPE_TRADE) {
            Trade memory t;
            (t, end) = OspCodec.decodeTrade(record, 1, flags);
            if (end == record.length) return processTrade(s, l1, t);
        } else if (kind == OspCodec.TYPE_LIQUIDATE) {
            Liquidate memory t;
            (t, end) = OspCodec.decodeLiquidate(record, 1, flags);
            if (end == record.length) return processLiquidate(s, l1, t);
        }
        // spec: decode_transaction -> Malformed; process_malformed. (Every field of a decoded Trade or
        // Liquidate is within its range, so check_well_formed holds: see OneStepProver.)
        revert InvalidTransaction(ErrorCode.MALFORMED);
    }

    /// spec: process_trade
    function processTrade(OspState.State memory s, L1Inputs calldata l1, Trade memory t) internal pure returns (uint8) {
        // 1-2. Each order is a valid new signed order or a live slot (rules in resolveOrder).
        OspRules.OrderSide memory maker = OspRules.resolveOrder(s, t.maker, l1.l1Timestamp);
        OspRules.OrderSide memory taker = OspRules.resolveOrder(s, t.taker, l1.l1Timestamp);
        // 3. Two different accounts.
        OspRules.requireValid(maker.accountId != taker.accountId, ErrorCode.SELF_TRADE);
        // 4. The same market.
        OspRules.requireValid(maker.market == taker.market, ErrorCode.MARKET_MISMATCH);
        // 5. Opposite sides.
        OspRules.requireValid(maker.isBuy != taker.isBuy, ErrorCode.SAME_SIDE);
        TradeFill memory f;
        // 6. A valid fill size for both orders.
        f.size = t.size;
        OspRules.checkFillSize(s, f.size, maker, taker);
        // 7. The trade executes at the maker's price, which must satisfy the taker's limit.
        f.price = maker.limitPrice;
        OspRules.requireValid(
            taker.isBuy ? f.price <= taker.limitPrice : f.price >= taker.limitPrice, ErrorCode.PRICE_LIMIT
        );
        f.market = maker.market;
        (OspRules.OrderSide memory buyer, OspRules.OrderSide memory seller) = maker.isBuy ? (maker, taker) : (taker, maker);
        // 7a. The prices and funding the fill reads are fresh (time rules 1-2).
        OspRules.checkFresh(s, l1.l1Timestamp, OspRules.readMarkets(f.market, buyer.account, seller.account));
        OspRules.Party memory buyerParty = OspRules.newParty(s, buyer.accountId, buyer.account);
        OspRules.Party memory sellerParty = OspRules.newParty(s, seller.accountId, seller.account);
        // The buyer pays the notional rounded up, the seller receives it rounded down: the dust is a fee.
        f.paid = OspMargin.ceilDiv(int256(f.size * f.price), PRICE_ONE);
        f.received = int256(f.size * f.price) / PRICE_ONE;
        f.buyerFee = OspRules.computeFee(f.size, f.price, buyer.feeRate);
        f.sellerFee = OspRules.computeFee(f.size, f.price, seller.feeRate);
        (f.buyerSize, f.buyerCollateral, f.buyerPositions) =
            OspRules.computePartyAfter(s, buyerParty, f.market, int256(f.size), -f.paid - f.buyerFee);
        (f.sellerSize, f.sellerCollateral, f.sellerPositions) =
            OspRules.computePartyAfter(s, sellerParty, f.market, -int256(f.size), f.received - f.sellerFee);
        // 8-9. Positions within the risk limit and balances in range (buyer, then seller).
        OspRules.checkPartyAfter(s, f.market, f.buyerSize, f.buyerCollateral);
        OspRules.checkPartyAfter(s, f.market, f.sellerSize, f.sellerCollateral);
        f.fees = s.g.fees + f.buyerFee + f.sellerFee + (f.paid - f.received);
        // 9a. The fee account stays in range.
        OspRules.checkBalance(f.fees);
        int256 pool = OspRules.computeFundingPool(s, buyerParty, sellerParty);
        // 9b. The funding pool stays in range.
        OspRules.checkBalance(pool);
        // 10. Margin: initial margin after an exposure increase, otherwise healthy or healthier (buyer,
        //     then seller).
        OspRules.checkMargin(s, buyerParty, f.buyerCollateral, f.buyerPositions, f.market);
        OspRules.checkMargin(s, sellerParty, f.sellerCollateral, f.sellerPositions, f.market);
        // 11. Room in the slot tree for partial remainders.
        OspRules.checkSlotCapacity(s, OspRules.needsNewSlot(maker, f.size) + OspRules.needsNewSlot(taker, f.size));
        // Write.
        OspRules.writeParty(s, buyerParty, f.buyerCollateral, f.buyerPositions);
        OspRules.writeParty(s, sellerParty, f.sellerCollateral, f.sellerPositions);
        OspRules.writeOrderSide(s, maker, f.size);
        OspRules.writeOrderSide(s, taker, f.size);
        s.g.fees = int128(f.fees);
        s.g.fundingPool = int128(pool);
        return ErrorCode.OK;
    }

    /// Locals of process_liquidate.
    struct LiquidationFill {
        uint256 size;
        uint8 market;
        int256 held;
        uint256 price;
        uint256 oracle;
        int256 maintenance;
        int256 paid;
        int256 received;
        int256 liquidatorFee;
        int256 liquidatorDelta;
        int256 liquidatedDelta;
        int256 signedSize;
        int256 liquidatorSize;
        int256 liquidatorCollateral;
        StateCodec.Position[] liquidatorPositions;
        int256 liquidatedSize;
        int256 liquidatedCollateral;
        StateCodec.Position[] liquidatedPositions;
        int256 valueBefore;
        int256 riskBefore;
        int256 valueFilled;
        int256 riskAfter;
        int256 cover;
        int256 penalty;
        int256 insurance;
        int256 fees;
        int256 pool;
    }

    /// spec: process_liquidate
    function processLiquidate(OspState.State memory s, L1Inputs calldata l1, Liquidate memory t)
        internal
        pure
        returns (uint8)
    {
        // 1. The liquidator's order is a valid new signed order or a live slot.
        OspRules.OrderSide memory liquidator = OspRules.resolveOrder(s, t.liquidator, l1.l1Timestamp);
        (StateCodec.Account memory liquidatedAccount, bool found) = OspState.getAccount(s, t.liquidatedId);
        // 2. The liquidated account exists.
        OspRules.requireValid(found, ErrorCode.ACCOUNT_NOT_FOUND);
        // 3. Two different accounts.
        OspRules.requireValid(liquidator.accountId != t.liquidatedId, ErrorCode.SELF_TRADE);
        LiquidationFill memory f;
        // 4. A valid fill size for the liquidator's order.
        f.size = t.size;
        OspRules.checkFillSize(s, f.size, liquidator);
        f.market = liquidator.market;
        // 4a. The prices and funding the liquidation reads are fresh (time rules 1-2).
        OspRules.checkFresh(s, l1.l1Timestamp, OspRules.readMarkets(f.market, liquidator.account, liquidatedAccount));
        OspRules.Party memory liquidated = OspRules.newParty(s, t.liquidatedId, liquidatedAccount);
        (f.valueBefore, f.riskBefore) = OspMargin.getValueAndRisk(s, liquidated.collateral, liquidated.positions);
        // 5. The liquidated account is below maintenance margin.
        OspRules.requireValid(f.valueBefore < f.riskBefore, ErrorCode.NOT_LIQUIDATABLE);
        f.held = OspMargin.positionSize(liquidated.positions, f.market);
        // 6. The fill only shrinks the liquidated position: it takes the other side, at most all of it.
        OspRules.requireValid(
            f.held != 0 && (f.held > 0) == liquidator.isBuy && int256(f.size) <= OspMargin.abs(f.held),
            ErrorCode.NOT_REDUCING
        );
        f.price = liquidator.limitPrice;
        f.oracle = s.g.markets[f.market].price;
        f.maintenance = int256(uint256(s.g.configs[f.market].maintenanceMargin));
        // 7. The price is within the maintenance band around the oracle price (rule 10 bounds it further).
        if (f.held > 0) {
            OspRules.requireValid(
                int256(f.price) * FRACTION_ONE >= int256(f.oracle) * (FRACTION_ONE - f.maintenance),
                ErrorCode.LIQUIDATION_PRICE
            );
        } else {
            OspRules.requireValid(
                int256(f.price) * FRACTION_ONE <= int256(f.oracle) * (FRACTION_ONE + f.maintenance),
                ErrorCode.LIQUIDATION_PRICE
            );
        }
        OspRules.Party memory liquidatorParty = OspRules.newParty(s, liquidator.accountId, liquidator.account);
        f.paid = OspMargin.ceilDiv(int256(f.size * f.price), PRICE_ONE);
        f.received = int256(f.size * f.price) / PRICE_ONE;
        f.liquidatorFee = OspRules.computeFee(f.size, f.price, liquidator.feeRate);
        if (liquidator.isBuy) {
            (f.liquidatorDelta, f.liquidatedDelta) = (-f.paid - f.liquidatorFee, f.received);
        } else {
            (f.liquidatorDelta, f.liquidatedDelta) = (f.received - f.liquidatorFee, -f.paid);
        }
        f.signedSize = liquidator.isBuy ? int256(f.size) : -int256(f.size);
        (f.liquidatorSize, f.liquidatorCollateral, f.liquidatorPositions) =
            OspRules.computePartyAfter(s, liquidatorParty, f.market, f.signedSize, f.liquidatorDelta);
        (f.liquidatedSize, f.liquidatedCollateral, f.liquidatedPositions) =
            OspRules.computePartyAfter(s, liquidated, f.market, -f.signedSize, f.liquidatedDelta);
        // 8. Positions within limits and balances in range (liquidator, then liquidated).
        OspRules.checkPartyAfter(s, f.market, f.liquidatorSize, f.liquidatorCollateral);
        OspRules.checkPartyAfter(s, f.market, f.liquidatedSize, f.liquidatedCollateral);
        // Bad debt: a bankrupt account's shortfall on what closes is paid by the insurance fund first,
        // valued at the oracle price (the fund never pays a liquidator's discount).
        (f.valueFilled, f.riskAfter) = OspMargin.getValueAndRisk(s, f.liquidatedCollateral, f.liquidatedPositions);
        int256 valueAtOracle =
            f.valueFilled - f.liquidatedDelta + OspRules.computeCloseAtOracle(s, f.market, f.size, f.held > 0);
        f.cover = OspMargin.computeBadDebtCover(
            f.valueBefore, f.riskBefore, valueAtOracle > f.valueFilled ? valueAtOracle : f.valueFilled, f.riskAfter, s.g.insurance
        );
        // The penalty is a fraction of the oracle notional, capped so that the account stays healthy or
        // healthier and never pays more than the value it has left.
        f.penalty = OspRules.computeFee(f.size, f.oracle, s.g.configs[f.market].liquidationFee);
        int256 room = OspMargin.computeLiquidationRoom(f.valueBefore, f.riskBefore, f.valueFilled + f.cover, f.riskAfter);
        if (room < f.penalty) f.penalty = room;
        f.liquidatedCollateral += f.cover - f.penalty;
        f.insurance = s.g.insurance + f.penalty - f.cover;
        f.fees = s.g.fees + f.liquidatorFee + (f.paid - f.received);
        f.pool = OspRules.computeFundingPool(s, liquidatorParty, liquidated);
        // 8a. The liquidated account's collateral stays in range.
        OspRules.checkBalance(f.liquidatedCollateral);
        // 8b. The insurance fund stays in range.
        OspRules.checkBalance(f.insurance);
        // 8c. The fee account stays in range.
        OspRules.checkBalance(f.fees);
        // 8d. The funding pool stays in range.
        OspRules.checkBalance(f.pool);
        // 9. The liquidator meets the margin rule.
        OspRules.checkMargin(s, liquidatorParty, f.liquidatorCollateral, f.liquidatorPositions, f.market);
        // 10. The liquidated account ends healthy or healthier (after the fund's cover and the penalty):
        //     a solvent account is never left in debt, and no discount deepens a bankrupt one's.
        OspRules.requireValid(
            OspMargin.isHealthyOrHealthier(f.valueBefore, f.riskBefore, f.valueFilled + f.cover - f.penalty, f.riskAfter),
            ErrorCode.INSUFFICIENT_MARGIN
        );
        // 11. Room in the slot tree for the liquidator order's remainder.
        OspRules.checkSlotCapacity(s, OspRules.needsNewSlot(liquidator, f.size));
        OspRules.writeParty(s, liquidatorParty, f.liquidatorCollateral, f.liquidatorPositions);
        OspRules.writeParty(s, liquidated, f.liquidatedCollateral, f.liquidatedPositions);
        OspRules.writeOrderSide(s, liquidator, f.size);
        s.g.insurance = int128(f.insurance);
        s.g.fees = int128(f.fees);
        s.g.fundingPool = int128(f.pool);
        return ErrorCode.OK;
    }
}
