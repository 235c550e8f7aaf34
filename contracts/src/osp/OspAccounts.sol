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
        int256 collateral = int256(account.collateral) + int256(l1.depositAmount);
        OspRules.checkBalance(collateral);
        if (isNew) {
            account.owner = l1.depositOwner;
            s.g.nextAccountId += 1;
        }
        account.collateral = int128(collateral);
        OspState.setAccount(s, t.accountId, account);
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

    /// spec: process_forced_withdraw — the next L1 forced request: a withdrawal, or a cancel-all
    /// (FORCED_CANCEL_ALL in the amount word).
    function processForcedWithdraw(OspState.State memory s, L1Inputs calldata l1) internal pure returns (uint8) {
        // 1. An L1 forced request is waiting (otherwise the transaction is invalid).
        OspRules.requireValid(l1.hasForced, ErrorCode.NO_PENDING_FORCED);
        (StateCodec.Account memory account, bool found) = OspState.getAccount(s, l1.forcedAccountId);
        bool cancelAll = l1.forcedAmount >= OspConstants.FORCED_CANCEL_ALL;
        // 2-3. A withdrawal reads fresh prices and funding for the account's positions (time rules 1-2);
        //      otherwise the transaction is invalid and the request stays queued.
        if (!cancelAll && found) {
            OspRules.checkFresh(s, l1.l1Timestamp, OspRules.readMarkets(type(uint256).max, account, account));
        }
        // From here on the request is consumed whatever happens; a failed rule rejects it with a reason.
        uint8 rejected = executeForcedRequest(s, l1, account, found, cancelAll);
        s.forcedDone += 1;
        return rejected;
    }

    /// spec: process_forced_withdraw, rules 4-11 (the spec's inner try block): the code of the rule that
    /// rejects the request, or OK after writing it.
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

    /// Locals of process_deleverage (a struct, to stay clear of the EVM's stack limit).
    struct DeleverageFill {
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
    }

    /// spec: process_deleverage rule 8 (inline there).
    function isDeleveragerMarginOk(
        OspState.State memory s,
        DeleverageFill memory f,
        OspRules.Party memory deleverager,
        uint256 market
    ) private pure returns (bool) {
        return OspMargin.isMarginOkAfterFill(
            s, deleverager.collateral, deleverager.positions, f.deleveragerCollateral, f.deleveragerPositions, market
        ) || (f.insurance == 0 && OspMargin.getTotalValue(s, f.deleveragerCollateral, f.deleveragerPositions) >= 0);
    }

    /// spec: process_deleverage
    function processDeleverage(OspState.State memory s, L1Inputs calldata l1, Deleverage memory t)
        internal
        pure
        returns (uint8)
    {
        // 1. The market exists.
        OspRules.requireValid(t.market < s.g.markets.length, ErrorCode.MARKET_NOT_FOUND);
        (StateCodec.Account memory deleveragedAccount, bool found1) = OspState.getAccount(s, t.deleveragedId);
        (StateCodec.Account memory deleveragerAccount, bool found2) = OspState.getAccount(s, t.deleveragerId);
        // 2. Both accounts exist.
        OspRules.requireValid(found1 && found2, ErrorCode.ACCOUNT_NOT_FOUND);
        // 3. Two different accounts.
        OspRules.requireValid(t.deleveragedId != t.deleveragerId, ErrorCode.SELF_TRADE);
        DeleverageFill memory f;
        f.size = int256(uint256(t.size));
        // 4. The size is a positive multiple of the market's step (what remains stays tradeable).
        OspRules.requireValid(
            f.size > 0 && uint256(f.size) % s.g.configs[t.market].stepSize == 0, ErrorCode.INVALID_AMOUNT
        );
        // 4a. The prices and funding the deleverage reads are fresh (time rules 1-2).
        OspRules.checkFresh(s, l1.l1Timestamp, OspRules.readMarkets(t.market, deleveragedAccount, deleveragerAccount));
        OspRules.Party memory deleveraged = OspRules.newParty(s, t.deleveragedId, deleveragedAccount);
        OspRules.Party memory deleverager = OspRules.newParty(s, t.deleveragerId, deleveragerAccount);
        (f.value, f.risk) = OspMargin.getValueAndRisk(s, deleveraged.collateral, deleveraged.positions);
        // 5. The deleveraged account's total value is negative.
        OspRules.requireValid(f.value < 0, ErrorCode.NOT_DELEVERAGEABLE);
        f.held = OspMargin.positionSize(deleveraged.positions, t.market);
        f.other = OspMargin.positionSize(deleverager.positions, t.market);
        // 6. Opposite positions, and the size closes at most each of them.
        OspRules.requireValid(
            f.held * f.other < 0 && f.size <= OspMargin.abs(f.held) && f.size <= OspMargin.abs(f.other),
            ErrorCode.NOT_REDUCING
        );
        f.signedSize = f.held > 0 ? -f.size : f.size; // the deleveraged side's change
        // At the market's bankruptcy price: the deleveraged account keeps its value/risk ratio, so the part
        // of its deficit that moves is this position's share of its risk (all of it when nothing stays
        // open). Rounded for the deleveraged (it must end healthier), i.e. against the deleverager.
        StateCodec.Position[] memory remaining = OspMargin.withPosition(
            deleveraged.positions, t.market, f.held + f.signedSize, s.g.markets[t.market].fundingIndex
        );
        int256 riskAfter = OspMargin.getTotalRisk(s, remaining, false);
        // 6a. The closure lowers the deleveraged account's risk (rounding can leave a tiny step's risk
        //     unchanged: then nothing would move and the account would not be healthier).
        OspRules.requireValid(riskAfter < f.risk, ErrorCode.NOT_REDUCING);
        f.target = OspMargin.computeRatioValue(f.value, f.risk, riskAfter);
        f.deleveragedDelta = f.target - OspMargin.getTotalValue(s, deleveraged.collateral, remaining);
        // What that pays beyond the oracle price is bad debt: the insurance fund pays it first, the
        // deleverager only the rest.
        f.atOracle = OspRules.computeCloseAtOracle(s, t.market, uint256(f.size), f.held > 0);
        f.cover = f.deleveragedDelta - f.atOracle;
        if (s.g.insurance < f.cover) f.cover = s.g.insurance;
        if (f.cover < 0) f.cover = 0;
        (f.deleveragedSize, f.deleveragedCollateral, f.deleveragedPositions) =
            OspRules.computePartyAfter(s, deleveraged, t.market, f.signedSize, f.deleveragedDelta);
        (f.deleveragerSize, f.deleveragerCollateral, f.deleveragerPositions) =
            OspRules.computePartyAfter(s, deleverager, t.market, -f.signedSize, f.cover - f.deleveragedDelta);
        f.pool = OspRules.computeFundingPool(s, deleveraged, deleverager);
        // 7. The deleveraged account's collateral stays in range (positions only shrink: no limit check).
        OspRules.checkBalance(f.deleveragedCollateral);
        // 7a. The deleverager's collateral stays in range.
        OspRules.checkBalance(f.deleveragerCollateral);
        // 7b. The funding pool stays in range.
        OspRules.checkBalance(f.pool);
        f.insurance = s.g.insurance - f.cover;
        // 8. The deleverager ends healthy or healthier (its share is bounded by its position in this
        //    market at this market's bankruptcy price); or, the last resort once the insurance fund is
        //    spent, with a non-negative value: the socialized loss never takes more than it has.
        OspRules.requireValid(isDeleveragerMarginOk(s, f, deleverager, t.market), ErrorCode.INSUFFICIENT_MARGIN);
        OspRules.writeParty(s, deleveraged, f.deleveragedCollateral, f.deleveragedPositions);
        OspRules.writeParty(s, deleverager, f.deleveragerCollateral, f.deleveragerPositions);
        s.g.insurance = int128(f.insurance);
        s.g.fundingPool = int128(f.pool);
        return ErrorCode.OK;
    }
}
