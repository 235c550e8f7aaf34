// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "../lib/StateCodec.sol";
import {L1Inputs} from "../interfaces/IOneStepProver.sol";
import {OspConstants, ErrorCode, InvalidTransaction, Deposit, Withdraw, Deleverage} from "./OspTypes.sol";
import {OspCodec} from "./OspCodec.sol";
import {OspState} from "./OspState.sol";
import {OspProver} from "./OspProver.sol";
import {OspMargin} from "./OspMargin.sol";
import {OspEip712} from "./OspEip712.sol";
import {OspRules} from "./OspRules.sol";

/// @title OspAccounts — the one-step prover of Deposit, Withdraw, ForcedWithdraw and Deleverage records
///        (spec: process_deposit, process_withdraw, process_forced_withdraw, process_deleverage); the
///        witness half is OspProver's.
contract OspAccounts is OspProver {

    /// spec: state_transition (Deposit, Withdraw, ForcedWithdraw and Deleverage records)
    function stateTransition(OspState.State memory s, bytes calldata record, L1Inputs calldata l1)
        internal
        pure
        override
        returns (uint8)
    {
        (uint256 kind, uint256 flags) = OspCodec.readTag(record);
        uint256 end;
        if (kind == OspCodec.TYPE_DEPOSIT) {
            Deposit memory t;
            (t, end) = OspCodec.decodeDeposit(record, 1, flags);
            if (end == record.length) return processDeposit(s, l1, t);
        } else if (kind == OspCodec.TYPE_WITHDRAW) {
            Withdraw memory t;
            (t, end) = OspCodec.decodeWithdraw(record, 1, flags);
            if (end == record.length) return processWithdraw(s, l1, t);
        } else if (kind == OspCodec.TYPE_FORCED_WITHDRAW) {
            end = OspCodec.decodeForcedWithdraw(record, 1, flags);
            if (end == record.length) return processForcedWithdraw(s, l1);
        } else if (kind == OspCodec.TYPE_DELEVERAGE) {
            Deleverage memory t;
            (t, end) = OspCodec.decodeDeleverage(record, 1, flags);
            if (end == record.length) return processDeleverage(s, l1, t);
        }
        // spec: decode_transaction -> Malformed; process_malformed. (Every field of a decoded record of
        // these types is within its range, so check_well_formed holds: see OspMarket.)
        revert InvalidTransaction(ErrorCode.MALFORMED);
    }

    /// spec: process_deposit
    function processDeposit(OspState.State memory s, L1Inputs calldata l1, Deposit memory t) internal pure returns (uint8) {
        // 1. An L1 deposit is waiting in the queue.
        OspRules.requireValid(l1.hasDeposit, ErrorCode.NO_PENDING_DEPOSIT);
        StateCodec.Account memory account;
        bool isNew = t.accountId == s.g.nextAccountId; // a new account for the depositor
        if (!isNew) {
            bool found;
            (account, found) = OspState.getAccount(s, t.accountId);
            // 2. The account exists, or the id is the next free one.
            OspRules.requireValid(found, ErrorCode.ACCOUNT_NOT_FOUND);
            // 3. An existing account belongs to the depositor.
            OspRules.requireValid(account.owner == l1.depositOwner, ErrorCode.OWNER_MISMATCH);
        }
        // 4. The amount is in range and the balance does not overflow. (The spec adds the amount first;
        //    the range test comes first here because L1's amount is a uint256. Nothing fails in between.)
        OspRules.requireValid(l1.depositAmount <= OspConstants.MAX_AMOUNT, ErrorCode.INVALID_AMOUNT);
        // Once a loss is socialized, a deposit buys collateral units at their token value (1 - L/T).
        int256 credit = OspMargin.computeDepositCredit(int256(l1.depositAmount), s.g.socializedLoss, s.g.totalCollateral);
        int256 collateral = int256(account.collateral) + credit;
        OspRules.checkBalance(collateral);
        // 4a. The state's total collateral stays in range (and so does the socialized loss, below it).
        OspRules.checkBalance(int256(s.g.totalCollateral) + credit);
        if (isNew) {
            account.owner = l1.depositOwner;
            s.g.nextAccountId += 1;
        }
        account.collateral = int128(collateral);
        OspState.setAccount(s, t.accountId, account);
        s.g.socializedLoss = int128(s.g.socializedLoss + credit - int256(l1.depositAmount));
        s.g.totalCollateral = int128(s.g.totalCollateral + credit);
        s.depositsDone += 1;
        return ErrorCode.OK;
    }

    /// spec: process_withdraw
    function processWithdraw(OspState.State memory s, L1Inputs calldata l1, Withdraw memory t) internal pure returns (uint8) {
        (StateCodec.Account memory account, bool found) = OspState.getAccount(s, t.accountId);
        // 1. The account exists.
        OspRules.requireValid(found, ErrorCode.ACCOUNT_NOT_FOUND);
        // 2-3. Signed by the owner.
        OspRules.checkSigner(
            OspEip712.computeTypedDigest(s.g.domainSeparator, OspEip712.hashWithdraw(t)), t.signature, account.owner
        );
        // 4. Not expired (against the batch's L1 timestamp).
        OspRules.requireValid(l1.l1Timestamp <= t.expiry, ErrorCode.EXPIRED);
        // 5-7. A fresh nonce (nonce rules 1-3).
        (uint64 nonceBase, uint256 nonceBits) = OspRules.checkNonce(account, t.nonce);
        // 8-9. The prices and funding of the account's positions are fresh (time rules 1-2).
        OspRules.checkFresh(s, l1.l1Timestamp, OspRules.readMarkets(type(uint256).max, account, account));
        // 10-14. Amount, ranges, margin (withdrawal rules 1-5).
        (uint8 code, OspRules.Party memory party, int256 collateral, int256 pool) =
            OspRules.checkWithdrawal(s, t.accountId, account, t.amount);
        OspRules.requireValid(code == ErrorCode.OK, code);
        account.nonceBase = nonceBase;
        account.nonceBits = nonceBits;
        OspRules.writeWithdrawal(s, party, collateral, pool, t.amount);
        return ErrorCode.OK;
    }

    /// spec: process_forced_withdraw — the next L1 forced request: a withdrawal, a cancel-all
    /// (FORCED_CANCEL_ALL in the amount word) or a deleverage of a bankrupt account (FORCED_DELEVERAGE).
    function processForcedWithdraw(OspState.State memory s, L1Inputs calldata l1) internal pure returns (uint8) {
        // 1. An L1 forced request is waiting (otherwise the transaction is invalid).
        OspRules.requireValid(l1.hasForced, ErrorCode.NO_PENDING_FORCED);
        (StateCodec.Account memory account, bool found) = OspState.getAccount(s, l1.forcedAccountId);
        bool cancelAll = l1.forcedAmount >= OspConstants.FORCED_CANCEL_ALL;
        bool deleverage = !cancelAll && l1.forcedAmount >= OspConstants.FORCED_DELEVERAGE;
        // 2-3. A withdrawal or a deleverage reads fresh prices and funding for the accounts' positions
        //      (time rules 1-2); otherwise the transaction is invalid and the request stays queued.
        //      (spec: require_forced_read_markets)
        if (!cancelAll && found) {
            StateCodec.Account memory other = account;
            if (deleverage) {
                (bool inRange, uint256 deleveragerId,,) = forcedDeleverage(l1.forcedAmount);
                bool otherFound;
                if (inRange) (other, otherFound) = OspState.getAccount(s, deleveragerId);
                if (!otherFound) other = account;
            }
            OspRules.checkFresh(s, l1.l1Timestamp, OspRules.readMarkets(type(uint256).max, account, other));
        }
        // From here on the request is consumed whatever happens; a failed rule rejects it with a reason.
        uint8 rejected = deleverage
            ? executeForcedDeleverage(s, l1, found)
            : executeForcedRequest(s, l1, account, found, cancelAll);
        s.forcedDone += 1;
        return rejected;
    }

    /// spec: get_forced_deleverage — (in range, deleverager id, market, size) of the amount word.
    function forcedDeleverage(uint256 amount)
        private
        pure
        returns (bool inRange, uint256 deleveragerId, uint256 market, uint256 size)
    {
        uint256 word = amount - OspConstants.FORCED_DELEVERAGE;
        inRange = word >> OspConstants.FORCED_DELEVERAGE_BITS == 0;
        deleveragerId = (word >> 72) & OspConstants.MAX_U32;
        market = (word >> 64) & OspConstants.MAX_U8;
        size = word & OspConstants.MAX_U64;
    }

    /// spec: process_forced_withdraw, rules 4-13 for a deleverage request (anyone may ask: no owner check).
    function executeForcedDeleverage(OspState.State memory s, L1Inputs calldata l1, bool found)
        private
        pure
        returns (uint8)
    {
        // 4. The account exists.
        if (!found) return ErrorCode.ACCOUNT_NOT_FOUND;
        (bool inRange, uint256 deleveragerId, uint256 market, uint256 size) = forcedDeleverage(l1.forcedAmount);
        // 5. The amount word packs nothing beyond (deleverager, market, size).
        if (!inRange) return ErrorCode.INVALID_AMOUNT;
        // 6-13. The deleverage rules 1-8 (check_deleverage).
        (uint8 code, DeleverageFill memory f) =
            checkDeleverage(s, l1.l1Timestamp, l1.forcedAccountId, deleveragerId, market, size);
        if (code != ErrorCode.OK) return code;
        writeDeleverage(s, f);
        return ErrorCode.OK;
    }

    /// spec: process_forced_withdraw, rules 4-11 (the spec's inner try block) for a withdrawal or a
    /// cancel-all: the code of the rule that rejects the request, or OK after writing it.
    function executeForcedRequest(
        OspState.State memory s,
        L1Inputs calldata l1,
        StateCodec.Account memory account,
        bool found,
        bool cancelAll
    ) private pure returns (uint8) {
        // 4. The account exists.
        if (!found) return ErrorCode.ACCOUNT_NOT_FOUND;
        // 5. The requester owns it.
        if (account.owner != l1.forcedRequester) return ErrorCode.OWNER_MISMATCH;
        if (cancelAll) {
            // 6-7. The new nonce floor rises by at most NONCE_HORIZON (floor rules 1-2).
            (uint8 floorCode, uint64 base, uint256 bits) =
                OspRules.checkNonceFloor(account, l1.forcedAmount - OspConstants.FORCED_CANCEL_ALL);
            if (floorCode != ErrorCode.OK) return floorCode;
            account.nonceBase = base;
            account.nonceBits = bits;
            OspState.setAccount(s, l1.forcedAccountId, account);
            return ErrorCode.OK;
        }
        // 6. The amount is in range.
        if (l1.forcedAmount > OspConstants.MAX_AMOUNT) return ErrorCode.INVALID_AMOUNT;
        // 7-11. Amount positive, ranges, margin (withdrawal rules 1-5).
        (uint8 code, OspRules.Party memory party, int256 collateral, int256 pool) =
            OspRules.checkWithdrawal(s, l1.forcedAccountId, account, l1.forcedAmount);
        if (code != ErrorCode.OK) return code;
        OspRules.writeWithdrawal(s, party, collateral, pool, l1.forcedAmount);
        return ErrorCode.OK;
    }

    /// spec: DeleverageFill — what a valid deleverage writes, with the locals of check_deleverage (a
    /// struct, to stay clear of the EVM's stack limit).
    struct DeleverageFill {
        uint256 market;
        OspRules.Party deleveraged;
        OspRules.Party deleverager;
        int256 value;
        int256 risk;
        int256 held;
        int256 other;
        int256 size;
        int256 signedSize;
        int256 target;
        int256 deleveragedDelta;
        int256 atOracle;
        int256 cover;
        int256 deleveragedSize;
        int256 deleveragedCollateral;
        StateCodec.Position[] deleveragedPositions;
        int256 deleveragerSize;
        int256 deleveragerCollateral;
        StateCodec.Position[] deleveragerPositions;
        int256 pool;
        int256 insurance;
        int256 shortfall;
        int256 socialized;
    }

    /// spec: process_deleverage
    function processDeleverage(OspState.State memory s, L1Inputs calldata l1, Deleverage memory t)
        internal
        pure
        returns (uint8)
    {
        // 1-8. The deleverage rules (check_deleverage).
        (uint8 code, DeleverageFill memory f) =
            checkDeleverage(s, l1.l1Timestamp, t.deleveragedId, t.deleveragerId, t.market, t.size);
        OspRules.requireValid(code == ErrorCode.OK, code);
        writeDeleverage(s, f);
        return ErrorCode.OK;
    }

    /// spec: check_deleverage — deleverage rules 1-8; returns the failed rule's code instead of raising,
    /// so that a forced deleverage request can record it.
    function checkDeleverage(
        OspState.State memory s,
        uint256 now_,
        uint256 deleveragedId,
        uint256 deleveragerId,
        uint256 market,
        uint256 size
    ) internal pure returns (uint8 code, DeleverageFill memory f) {
        f.market = market;
        f.size = int256(size);
        code = checkDeleverageParties(s, now_, f, deleveragedId, deleveragerId);
        if (code == ErrorCode.OK) code = computeDeleverageFill(s, f);
    }

    /// spec: check_deleverage, rules 1-5.
    function checkDeleverageParties(
        OspState.State memory s,
        uint256 now_,
        DeleverageFill memory f,
        uint256 deleveragedId,
        uint256 deleveragerId
    ) private pure returns (uint8) {
        uint256 market = f.market;
        // 1. The market exists.
        if (market >= s.g.markets.length) return ErrorCode.MARKET_NOT_FOUND;
        (StateCodec.Account memory deleveragedAccount, bool found1) = OspState.getAccount(s, deleveragedId);
        (StateCodec.Account memory deleveragerAccount, bool found2) = OspState.getAccount(s, deleveragerId);
        // 2. Both accounts exist.
        if (!(found1 && found2)) return ErrorCode.ACCOUNT_NOT_FOUND;
        // 3. Two different accounts.
        if (deleveragedId == deleveragerId) return ErrorCode.SELF_TRADE;
        // 4. The size is a positive multiple of the market's step (what remains stays tradeable).
        if (!(f.size > 0 && uint256(f.size) % s.g.configs[market].stepSize == 0)) return ErrorCode.INVALID_AMOUNT;
        // 4a. The prices and funding the deleverage reads are fresh (time rules 1-2).
        uint8 fresh = OspRules.freshness(s, now_, OspRules.readMarkets(market, deleveragedAccount, deleveragerAccount));
        if (fresh != ErrorCode.OK) return fresh;
        f.deleveraged = OspRules.newParty(s, deleveragedId, deleveragedAccount);
        f.deleverager = OspRules.newParty(s, deleveragerId, deleveragerAccount);
        (f.value, f.risk) = OspMargin.getValueAndRisk(s, f.deleveraged.collateral, f.deleveraged.positions);
        // 5. The deleveraged account's total value is negative.
        if (f.value >= 0) return ErrorCode.NOT_DELEVERAGEABLE;
        return ErrorCode.OK;
    }

    /// spec: check_deleverage, rules 6-8 and the fill at the bankruptcy price.
    function computeDeleverageFill(OspState.State memory s, DeleverageFill memory f) private pure returns (uint8) {
        uint256 market = f.market;
        f.held = OspMargin.positionSize(f.deleveraged.positions, market);
        f.other = OspMargin.positionSize(f.deleverager.positions, market);
        // 6. Opposite positions, and the size closes at most each of them.
        if (!(f.held * f.other < 0 && f.size <= OspMargin.abs(f.held) && f.size <= OspMargin.abs(f.other))) {
            return ErrorCode.NOT_REDUCING;
        }
        f.signedSize = f.held > 0 ? -f.size : f.size; // the deleveraged side's change
        // At the market's bankruptcy price: the deleveraged account keeps its value/risk ratio, so the part
        // of its deficit that moves is this position's share of its risk (all of it when nothing stays
        // open). Rounded for the deleveraged (it must end healthier), i.e. against the deleverager.
        StateCodec.Position[] memory remaining = OspMargin.withPosition(
            f.deleveraged.positions, market, f.held + f.signedSize, s.g.markets[market].fundingIndex
        );
        int256 riskAfter = OspMargin.getTotalRisk(s, remaining, false);
        // 6a. The closure lowers the deleveraged account's risk (rounding can leave a tiny step's risk
        //     unchanged: then nothing would move and the account would not be healthier), or it closes the
        //     deleverager's whole opposite position (a holder too small to lower the rounded risk still
        //     takes its part; the deficit moves when the last part closes).
        if (riskAfter >= f.risk && f.size != OspMargin.abs(f.other)) return ErrorCode.NOT_REDUCING;
        f.target = OspMargin.computeRatioValue(f.value, f.risk, riskAfter);
        f.deleveragedDelta = f.target - OspMargin.getTotalValue(s, f.deleveraged.collateral, remaining);
        // What that pays beyond the oracle price is bad debt: the insurance fund pays it first, the
        // deleverager only the rest.
        f.atOracle = OspRules.computeCloseAtOracle(s, market, uint256(f.size), f.held > 0);
        f.cover = f.deleveragedDelta - f.atOracle;
        if (s.g.insurance < f.cover) f.cover = s.g.insurance;
        if (f.cover < 0) f.cover = 0;
        (f.deleveragedSize, f.deleveragedCollateral, f.deleveragedPositions) =
            OspRules.computePartyAfter(s, f.deleveraged, market, f.signedSize, f.deleveragedDelta);
        (f.deleveragerSize, f.deleveragerCollateral, f.deleveragerPositions) =
            OspRules.computePartyAfter(s, f.deleverager, market, -f.signedSize, f.cover - f.deleveragedDelta);
        f.insurance = s.g.insurance - f.cover;
        // The deleverager ends healthy or healthier; if it cannot, it ends at its floor, and what it
        // cannot pay comes from what is left of the fund, then from the socialized loss.
        computeDeleveragerShortfall(s, f, market);
        int256 fundShare = f.insurance < f.shortfall ? f.insurance : f.shortfall;
        f.socialized = f.shortfall - fundShare;
        f.insurance -= fundShare;
        f.deleveragerCollateral += f.shortfall;
        f.pool = OspRules.computeFundingPool(s, f.deleveraged, f.deleverager);
        // 7. The deleveraged account's collateral stays in range (positions only shrink: no limit check).
        if (!OspRules.isBalanceInRange(f.deleveragedCollateral)) return ErrorCode.BALANCE_OVERFLOW;
        // 7a. The deleverager's collateral stays in range.
        if (!OspRules.isBalanceInRange(f.deleveragerCollateral)) return ErrorCode.BALANCE_OVERFLOW;
        // 7b. The funding pool stays in range.
        if (!OspRules.isBalanceInRange(f.pool)) return ErrorCode.BALANCE_OVERFLOW;
        // 8. The total collateral stays in range with the socialized part (and so does the loss, below it).
        if (!OspRules.isBalanceInRange(int256(s.g.totalCollateral) + f.socialized)) return ErrorCode.BALANCE_OVERFLOW;
        return ErrorCode.OK;
    }

    /// spec: check_deleverage (the shortfall) — what the deleverager lacks to end at its floor when it
    /// does not end healthy or healthier; 0 otherwise.
    function computeDeleveragerShortfall(OspState.State memory s, DeleverageFill memory f, uint256 market)
        private
        pure
    {
        OspRules.Party memory b = f.deleverager;
        if (OspMargin.isMarginOkAfterFill(s, b.collateral, b.positions, f.deleveragerCollateral, f.deleveragerPositions, market)) {
            return;
        }
        (int256 valueBefore, int256 riskBefore) = OspMargin.getValueAndRisk(s, b.collateral, b.positions);
        int256 floor = OspMargin.computeDeleveragerFloor(
            valueBefore, riskBefore, OspMargin.getTotalRisk(s, f.deleveragerPositions, false)
        );
        int256 shortfall = floor - OspMargin.getTotalValue(s, f.deleveragerCollateral, f.deleveragerPositions);
        if (shortfall > 0) f.shortfall = shortfall;
    }

    /// spec: write_deleverage
    function writeDeleverage(OspState.State memory s, DeleverageFill memory f) internal pure {
        OspRules.writeParty(s, f.deleveraged, f.deleveragedCollateral, f.deleveragedPositions);
        OspRules.writeParty(s, f.deleverager, f.deleveragerCollateral, f.deleveragerPositions);
        s.g.insurance = int128(f.insurance);
        s.g.fundingPool = int128(f.pool);
        // The socialized part is new collateral units that no token backs: every unit's token value falls.
        s.g.socializedLoss = int128(s.g.socializedLoss + f.socialized);
        s.g.totalCollateral = int128(s.g.totalCollateral + f.socialized);
    }
}
