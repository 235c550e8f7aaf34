// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "../lib/StateCodec.sol";
import {OspConstants, ErrorCode, InvalidTransaction, Signature, Order, OrderOrRef} from "./OspTypes.sol";
import {OspState} from "./OspState.sol";
import {OspMargin} from "./OspMargin.sol";
import {OspEip712} from "./OspEip712.sol";

/// @title OspRules — mirrors the shared checks of optinode/spec/transition.py
/// @notice `requireValid` is the spec's `require`: it reverts InvalidTransaction(code), which unwinds the
///         whole per-type call before any write lands (the spec raises before writing, too), and
///         OneStepProver turns it into (preRoot, code, false).
library OspRules {
    int256 private constant PRICE_ONE = OspConstants.PRICE_ONE;
    int256 private constant FRACTION_ONE = OspConstants.FRACTION_ONE;

    /// spec: require
    function requireValid(bool condition, uint8 code) internal pure {
        if (!condition) revert InvalidTransaction(code);
    }

    // --- shared checks -----------------------------------------------------------------------------

    function isBalanceInRange(int256 value) internal pure returns (bool) {
        return -OspConstants.MAX_BALANCE <= value && value <= OspConstants.MAX_BALANCE;
    }

    /// spec: check_balance
    function checkBalance(int256 value) internal pure {
        requireValid(isBalanceInRange(value), ErrorCode.BALANCE_OVERFLOW);
    }

    /// spec: check_signer
    function checkSigner(bytes32 digest, Signature memory signature, address expected) internal pure {
        address signer = OspEip712.recoverSigner(digest, signature);
        // The signature is r ‖ s ‖ v, v in {27, 28}, low s, and recovers a key.
        requireValid(signer != address(0), ErrorCode.BAD_SIGNATURE);
        // The recovered address is the expected signer.
        requireValid(signer == expected, ErrorCode.WRONG_SIGNER);
    }

    /// spec: compute_raised_window — the window moved up to start at `floor` >= base.
    function computeRaisedWindow(uint256 base, uint256 bits, uint256 floor) internal pure returns (uint64, uint256) {
        uint256 shift = floor - base;
        return (uint64(floor), shift < OspConstants.NONCE_WINDOW ? bits >> shift : 0);
    }

    /// spec: check_nonce — the account's (nonce_base, nonce_bits) after using `nonce` (nonce rules 1-3).
    function checkNonce(StateCodec.Account memory account, uint256 nonce) internal pure returns (uint64, uint256) {
        uint256 base = account.nonceBase;
        uint256 bits = account.nonceBits;
        // (nonce 1) The nonce is not below the window.
        requireValid(nonce >= base, ErrorCode.NONCE_TOO_LOW);
        // (nonce 2) The nonce is less than NONCE_HORIZON above the window.
        requireValid(nonce - base < OspConstants.NONCE_HORIZON, ErrorCode.NONCE_TOO_HIGH);
        if (nonce - base >= OspConstants.NONCE_WINDOW) {
            // slide the window up so that nonce is its top entry
            uint64 raised;
            (raised, bits) = computeRaisedWindow(base, bits, nonce - OspConstants.NONCE_WINDOW + 1);
            base = raised;
        }
        uint256 offset = nonce - base;
        // (nonce 3) The nonce has not been used.
        requireValid((bits >> offset) & 1 == 0, ErrorCode.NONCE_USED);
        return (uint64(base), bits | (1 << offset));
    }

    /// spec: check_nonce_floor — the window after a cancel-all raises the floor (floor rules 1-2).
    /// Returns the failed rule's code instead of raising, so that a forced cancel-all can record it.
    function checkNonceFloor(StateCodec.Account memory account, uint256 floor)
        internal
        pure
        returns (uint8 code, uint64 base, uint256 bits)
    {
        // (floor 1) The floor rises (so a cancel-all is never replayed).
        if (floor <= account.nonceBase) return (ErrorCode.NONCE_TOO_LOW, 0, 0);
        // (floor 2) By at most NONCE_HORIZON, and within the nonce range.
        if (floor - account.nonceBase > OspConstants.NONCE_HORIZON || floor > OspConstants.MAX_NONCE) {
            return (ErrorCode.NONCE_TOO_HIGH, 0, 0);
        }
        (base, bits) = computeRaisedWindow(account.nonceBase, account.nonceBits, floor);
        return (ErrorCode.OK, base, bits);
    }

    // --- time ----------------------------------------------------------------------------------------

    /// spec: get_read_markets — a bitmap of the markets whose prices a fill or withdrawal reads: `market`
    /// (unless >= MAX_MARKETS: none) and every position's of the given accounts.
    function readMarkets(uint256 market, StateCodec.Account memory a, StateCodec.Account memory b)
        internal
        pure
        returns (uint256 markets)
    {
        if (market < OspConstants.MAX_MARKETS) markets = 1 << market;
        for (uint256 i = 0; i < a.positions.length; ++i) {
            markets |= 1 << a.positions[i].market;
        }
        for (uint256 i = 0; i < b.positions.length; ++i) {
            markets |= 1 << b.positions[i].market;
        }
    }

    /// spec: check_fresh (time rules 1-2) — the prices of the markets in the bitmap, and the funding if
    /// any is read, are recent against the batch's L1 timestamp. Returns the failed rule's code.
    function freshness(OspState.State memory s, uint256 now_, uint256 markets) internal pure returns (uint8) {
        if (markets == 0) return ErrorCode.OK;
        for (uint256 m = 0; markets >> m != 0; ++m) {
            // (time 1) Each price read was set no more than price_validity before the batch's L1 time.
            if ((markets >> m) & 1 == 1 && uint256(s.g.markets[m].priceTime) + s.g.priceValidity < now_) {
                return ErrorCode.STALE_PRICE;
            }
        }
        // (time 2) The funding indices were set no more than funding_validity before it.
        if (uint256(s.g.fundingTime) + s.g.fundingValidity < now_) return ErrorCode.STALE_FUNDING;
        return ErrorCode.OK;
    }

    /// spec: check_fresh
    function checkFresh(OspState.State memory s, uint256 now_, uint256 markets) internal pure {
        uint8 code = freshness(s, now_, markets);
        requireValid(code == ErrorCode.OK, code);
    }

    // --- order sides -------------------------------------------------------------------------------

    /// spec: OrderSide — one side of a fill, resolved from a new signed order or a slot reference.
    struct OrderSide {
        uint256 accountId;
        StateCodec.Account account;
        uint8 market;
        bool isBuy;
        uint256 limitPrice;
        uint256 remaining;
        uint32 feeRate;
        uint64 expiry;
        bool hasSlot; // spec: slot_id is not None
        uint256 slotId;
        bool hasNonce; // spec: nonce_state is not None
        uint64 nonceBase;
        uint256 nonceBits;
    }

    /// spec: resolve_order — `now_` is the batch's L1 timestamp: orders expire against it.
    function resolveOrder(OspState.State memory s, OrderOrRef memory order, uint256 now_)
        internal
        pure
        returns (OrderSide memory side)
    {
        if (order.isRef) {
            (StateCodec.Slot memory slot, bool exists) = OspState.getSlot(s, order.slot);
            // (ref 1) The slot exists.
            requireValid(exists, ErrorCode.SLOT_NOT_FOUND);
            // (ref 2) The order still has something to fill.
            requireValid(slot.remaining > 0, ErrorCode.ORDER_FILLED);
            // (ref 3) The order has not expired.
            requireValid(now_ <= slot.expiry, ErrorCode.EXPIRED);
            (StateCodec.Account memory owner,) = OspState.getAccount(s, slot.accountId);
            side.accountId = slot.accountId;
            side.account = owner;
            side.market = slot.market;
            side.isBuy = slot.isBuy;
            side.limitPrice = slot.limitPrice;
            side.remaining = slot.remaining;
            side.feeRate = slot.feeRate;
            side.expiry = slot.expiry;
            side.hasSlot = true;
            side.slotId = order.slot;
            return side;
        }
        Order memory o = order.order;
        // (new 1) The market exists.
        requireValid(o.market < s.g.configs.length, ErrorCode.MARKET_NOT_FOUND);
        StateCodec.MarketConfig memory config = s.g.configs[o.market];
        // (new 2) Size and limit price are positive multiples of the market's step and tick; fee rate <= 100%.
        requireValid(
            o.size > 0 && o.size % config.stepSize == 0 && o.limitPrice > 0 && o.limitPrice % config.tickSize == 0
                && int256(uint256(o.feeRate)) <= FRACTION_ONE,
            ErrorCode.INVALID_ORDER
        );
        (StateCodec.Account memory account, bool found) = OspState.getAccount(s, o.accountId);
        // (new 3) The account exists.
        requireValid(found, ErrorCode.ACCOUNT_NOT_FOUND);
        // (new 4, 5) The order is signed by the account owner.
        checkSigner(OspEip712.computeOrderDigest(s.g.domainSeparator, o), o.signature, account.owner);
        // (new 6) The order has not expired.
        requireValid(now_ <= o.expiry, ErrorCode.EXPIRED);
        // (new 7-9) The nonce is fresh (nonce rules 1-3).
        (side.nonceBase, side.nonceBits) = checkNonce(account, o.nonce);
        side.hasNonce = true;
        side.accountId = o.accountId;
        side.account = account;
        side.market = o.market;
        side.isBuy = o.isBuy;
        side.limitPrice = o.limitPrice;
        side.remaining = o.size;
        side.feeRate = o.feeRate;
        side.expiry = o.expiry;
    }

    /// spec: check_fill_size (one side) — a positive multiple of the step, no larger than what is left.
    function checkFillSize(OspState.State memory s, uint256 size, OrderSide memory a) internal pure {
        uint256 step = s.g.configs[a.market].stepSize;
        requireValid(size > 0 && size % step == 0 && size <= a.remaining, ErrorCode.INVALID_AMOUNT);
    }

    /// spec: check_fill_size (two sides; the step is the first side's market's)
    function checkFillSize(OspState.State memory s, uint256 size, OrderSide memory a, OrderSide memory b) internal pure {
        uint256 step = s.g.configs[a.market].stepSize;
        requireValid(size > 0 && size % step == 0 && size <= a.remaining && size <= b.remaining, ErrorCode.INVALID_AMOUNT);
    }

    /// spec: check_slot_capacity — whether a side needs a new slot id for its remainder.
    function needsNewSlot(OrderSide memory side, uint256 size) internal pure returns (uint256) {
        return !side.hasSlot && side.remaining > size ? 1 : 0;
    }

    /// spec: check_slot_capacity — the rest of each partially filled new order gets an id in the tree.
    function checkSlotCapacity(OspState.State memory s, uint256 newSlots) internal pure {
        requireValid(uint256(s.g.nextSlot) + newSlots <= OspConstants.MAX_SLOT_ID + 1, ErrorCode.TREE_FULL);
    }

    /// spec: compute_fee — ceil(size * price * fee_rate / (PRICE_ONE * FRACTION_ONE)).
    function computeFee(uint256 size, uint256 price, uint256 feeRate) internal pure returns (int256) {
        return OspMargin.ceilDiv(int256(size * price * feeRate), PRICE_ONE * FRACTION_ONE);
    }

    /// spec: compute_close_at_oracle — the collateral change of closing `size` at the oracle price: a
    /// long sells and receives the notional rounded down, a short buys back and pays it rounded up.
    function computeCloseAtOracle(OspState.State memory s, uint256 market, uint256 size, bool closingLong)
        internal
        pure
        returns (int256)
    {
        int256 notional = int256(uint256(s.g.markets[market].price) * size);
        return closingLong ? notional / PRICE_ONE : -OspMargin.ceilDiv(notional, PRICE_ONE);
    }

    /// spec: write_order_side — record the nonce of a new order and what remains of the order (a new
    /// slot if partial).
    function writeOrderSide(OspState.State memory s, OrderSide memory side, uint256 filled) internal pure {
        if (side.hasNonce) {
            side.account.nonceBase = side.nonceBase;
            side.account.nonceBits = side.nonceBits;
        }
        uint64 remaining = uint64(side.remaining - filled);
        if (side.hasSlot) {
            (StateCodec.Slot memory slot,) = OspState.getSlot(s, side.slotId);
            OspState.setSlot(
                s,
                side.slotId,
                StateCodec.Slot(slot.accountId, slot.market, slot.isBuy, slot.limitPrice, remaining, slot.feeRate, slot.expiry)
            );
        } else if (remaining > 0) {
            OspState.setSlot(
                s,
                s.g.nextSlot,
                StateCodec.Slot(
                    uint32(side.accountId),
                    side.market,
                    side.isBuy,
                    uint64(side.limitPrice),
                    remaining,
                    side.feeRate,
                    side.expiry
                )
            );
            s.g.nextSlot += 1;
        }
    }

    // --- parties -----------------------------------------------------------------------------------

    /// spec: Party — an account taking part in a fill, with funding settled (nothing written yet).
    struct Party {
        uint256 accountId;
        StateCodec.Account account;
        int256 collateral;
        StateCodec.Position[] positions;
        int256 fundingPaid;
    }

    /// spec: Party.__init__
    function newParty(OspState.State memory s, uint256 accountId, StateCodec.Account memory account)
        internal
        pure
        returns (Party memory party)
    {
        party.accountId = accountId;
        party.account = account;
        (party.collateral, party.positions, party.fundingPaid) = OspMargin.computeSettledFunding(s, account);
    }

    /// spec: compute_party_after — the party's new size in `market`, collateral and positions after a
    /// fill (nothing checked).
    function computePartyAfter(
        OspState.State memory s,
        Party memory party,
        uint256 market,
        int256 sizeDelta,
        int256 collateralDelta
    ) internal pure returns (int256 newSize, int256 collateral, StateCodec.Position[] memory positions) {
        newSize = OspMargin.positionSize(party.positions, market) + sizeDelta;
        collateral = party.collateral + collateralDelta;
        positions = OspMargin.withPosition(party.positions, market, newSize, s.g.markets[market].fundingIndex);
    }

    /// spec: check_party_after
    function checkPartyAfter(OspState.State memory s, uint256 market, int256 newSize, int256 collateral)
        internal
        pure
    {
        // The new position is within the market's risk limit.
        requireValid(
            OspMargin.abs(newSize) <= int256(uint256(s.g.configs[market].maxPosition)), ErrorCode.POSITION_LIMIT
        );
        // The collateral stays in range.
        checkBalance(collateral);
    }

    /// spec: check_margin — the margin rule holds after the fill: initial margin after an exposure
    /// increase, otherwise healthy or healthier (see OspMargin.isMarginOkAfterFill).
    function checkMargin(
        OspState.State memory s,
        Party memory party,
        int256 collateral,
        StateCodec.Position[] memory positions,
        uint256 market
    ) internal pure {
        requireValid(
            OspMargin.isMarginOkAfterFill(s, party.collateral, party.positions, collateral, positions, market),
            ErrorCode.INSUFFICIENT_MARGIN
        );
    }

    /// spec: compute_funding_pool — the funding pool after the parties' settlements (checked by the
    /// caller with checkBalance). (compute_withdrawal's one-party case is inline there.)
    function computeFundingPool(OspState.State memory s, Party memory a, Party memory b)
        internal
        pure
        returns (int256)
    {
        return s.g.fundingPool + a.fundingPaid + b.fundingPaid;
    }

    /// spec: write_party
    function writeParty(
        OspState.State memory s,
        Party memory party,
        int256 collateral,
        StateCodec.Position[] memory positions
    ) internal pure {
        StateCodec.Account memory account = party.account;
        account.collateral = OspState.toInt128(collateral);
        account.positions = positions;
        OspState.setAccount(s, party.accountId, account);
    }

    // --- withdrawals -------------------------------------------------------------------------------

    /// spec: check_withdrawal (withdrawal rules 1-5) — the settled party, its collateral after
    /// withdrawing `amount` and the funding pool. Returns the failed rule's code instead of raising, so
    /// that a forced withdrawal can record it (process_withdraw raises it with requireValid).
    /// `amount` <= MAX_AMOUNT.
    function checkWithdrawal(
        OspState.State memory s,
        uint256 accountId,
        StateCodec.Account memory account,
        uint256 amount
    ) internal pure returns (uint8 code, Party memory party, int256 collateral, int256 pool) {
        // (withdrawal 1) The amount is positive.
        if (amount == 0) return (ErrorCode.INVALID_AMOUNT, party, 0, 0);
        party = newParty(s, accountId, account);
        collateral = party.collateral - int256(amount);
        // (withdrawal 2) The settled collateral stays in range.
        if (!isBalanceInRange(collateral)) return (ErrorCode.BALANCE_OVERFLOW, party, collateral, 0);
        // (withdrawal 3) The funding pool stays in range.
        pool = s.g.fundingPool + party.fundingPaid;
        if (!isBalanceInRange(pool)) return (ErrorCode.BALANCE_OVERFLOW, party, collateral, pool);
        // (withdrawal 4) What remains covers the initial margin of the open positions (with none: collateral >= 0).
        if (OspMargin.getTotalValue(s, collateral, party.positions) < OspMargin.getTotalRisk(s, party.positions, true)) {
            return (ErrorCode.INSUFFICIENT_MARGIN, party, collateral, pool);
        }
        // (withdrawal 5) The cumulative withdrawn amount stays in range.
        if (!isBalanceInRange(int256(uint256(account.withdrawn)) + int256(amount))) {
            return (ErrorCode.BALANCE_OVERFLOW, party, collateral, pool);
        }
        return (ErrorCode.OK, party, collateral, pool);
    }

    /// spec: write_withdrawal — `amount` units leave the state; the bridge pays them less the socialized
    /// loss's haircut, which also leaves the loss.
    function writeWithdrawal(OspState.State memory s, Party memory party, int256 collateral, int256 pool, uint256 amount)
        internal
        pure
    {
        int256 haircut = OspMargin.computeHaircut(int256(amount), s.g.socializedLoss, s.g.totalCollateral);
        party.account.withdrawn += uint128(amount - uint256(haircut));
        writeParty(s, party, collateral, party.positions);
        s.g.fundingPool = int128(pool);
        s.g.socializedLoss = OspState.toInt128(s.g.socializedLoss - haircut);
        s.g.totalCollateral = OspState.toInt128(s.g.totalCollateral - int256(amount));
    }
}
