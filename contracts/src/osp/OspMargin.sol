// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "../lib/StateCodec.sol";
import {OspConstants} from "./OspTypes.sol";
import {OspState} from "./OspState.sol";

/// @title OspMargin — mirrors optinode/spec/margin.py
/// @notice Integer margin arithmetic: funding settlement, total value and total risk. Rounding always
///         goes against the account: value rounds down (floor), risk and payments round up (ceil).
///         Everything is computed in int256, where no product of the committed widths can overflow.
///         Positions are kept sorted by market and are never mutated in place (like the spec's frozen
///         Position), so arrays may share them.
library OspMargin {
    int256 private constant PRICE_ONE = OspConstants.PRICE_ONE;
    int256 private constant FRACTION_ONE = OspConstants.FRACTION_ONE;

    /// Python's `numerator // denominator` for denominator > 0 (Solidity's `/` truncates toward zero).
    function floorDiv(int256 numerator, int256 denominator) internal pure returns (int256 q) {
        q = numerator / denominator;
        if (numerator % denominator != 0 && numerator < 0) q -= 1;
    }

    /// spec: ceil_div — ceiling of numerator / denominator for denominator > 0 (any sign of numerator).
    function ceilDiv(int256 numerator, int256 denominator) internal pure returns (int256) {
        return -floorDiv(-numerator, denominator);
    }

    function abs(int256 x) internal pure returns (int256) {
        return x < 0 ? -x : x;
    }

    /// spec: `positions.get(market)` — the position's size, 0 when there is none.
    function positionSize(StateCodec.Position[] memory positions, uint256 market) internal pure returns (int256) {
        for (uint256 i = 0; i < positions.length; ++i) {
            if (positions[i].market == market) return positions[i].size;
        }
        return 0;
    }

    /// spec: compute_settled_funding — the account's collateral and positions after settling funding, and
    /// the amount it paid (negative: received). Nothing is written.
    function computeSettledFunding(OspState.State memory s, StateCodec.Account memory account)
        internal
        pure
        returns (int256 collateral, StateCodec.Position[] memory positions, int256 paid)
    {
        uint256 n = account.positions.length;
        positions = new StateCodec.Position[](n);
        for (uint256 i = 0; i < n; ++i) {
            StateCodec.Position memory position = account.positions[i];
            int256 index = s.g.markets[position.market].fundingIndex;
            if (position.fundingIndex != index) {
                // longs pay when the index rises; ceil rounds every payment up and every receipt down
                paid += ceilDiv(int256(position.size) * (index - position.fundingIndex), PRICE_ONE);
                position = StateCodec.Position(position.market, position.size, int128(index));
            }
            positions[i] = position;
        }
        collateral = int256(account.collateral) - paid;
    }

    /// spec: get_total_value — collateral plus every position marked at the oracle price (floor).
    function getTotalValue(OspState.State memory s, int256 collateral, StateCodec.Position[] memory positions)
        internal
        pure
        returns (int256 value)
    {
        value = collateral;
        for (uint256 i = 0; i < positions.length; ++i) {
            StateCodec.Position memory position = positions[i];
            value += floorDiv(int256(position.size) * int256(uint256(s.g.markets[position.market].price)), PRICE_ONE);
        }
    }

    /// spec: get_total_risk — sum over positions of |size| * price * margin fraction (ceil).
    function getTotalRisk(OspState.State memory s, StateCodec.Position[] memory positions, bool initial)
        internal
        pure
        returns (int256 risk)
    {
        for (uint256 i = 0; i < positions.length; ++i) {
            StateCodec.Position memory position = positions[i];
            StateCodec.MarketConfig memory config = s.g.configs[position.market];
            int256 fraction = int256(uint256(initial ? config.initialMargin : config.maintenanceMargin));
            risk += ceilDiv(
                abs(position.size) * int256(uint256(s.g.markets[position.market].price)) * fraction, PRICE_ONE * FRACTION_ONE
            );
        }
    }

    /// spec: is_exposure_increase — growing |size|, or flipping from long to short or back.
    function isExposureIncrease(int256 oldSize, int256 newSize) internal pure returns (bool) {
        return abs(newSize) > abs(oldSize) || oldSize * newSize < 0;
    }

    // --- health: the StarkEx / Starknet Perpetual rule (see margin.py) ---------------------------------

    /// spec: get_value_and_risk — (total value, maintenance total risk).
    function getValueAndRisk(OspState.State memory s, int256 collateral, StateCodec.Position[] memory positions)
        internal
        pure
        returns (int256 value, int256 risk)
    {
        value = getTotalValue(s, collateral, positions);
        risk = getTotalRisk(s, positions, false);
    }

    /// spec: is_healthy
    function isHealthy(int256 value, int256 risk) internal pure returns (bool) {
        return value >= risk;
    }

    /// spec: is_healthier — strictly lower risk, and TV_after / TR_after >= TV_before / TR_before.
    function isHealthier(int256 valueBefore, int256 riskBefore, int256 valueAfter, int256 riskAfter)
        internal
        pure
        returns (bool)
    {
        return riskAfter < riskBefore && valueAfter * riskBefore >= valueBefore * riskAfter;
    }

    /// spec: is_healthy_or_healthier
    function isHealthyOrHealthier(int256 valueBefore, int256 riskBefore, int256 valueAfter, int256 riskAfter)
        internal
        pure
        returns (bool)
    {
        return isHealthy(valueAfter, riskAfter) || isHealthier(valueBefore, riskBefore, valueAfter, riskAfter);
    }

    /// spec: is_margin_ok_after_fill — the margin rule for a party to a fill (old = after funding
    /// settlement, before the fill). A fill that increases exposure in `market` needs total value >=
    /// initial-margin risk afterwards; any other fill must leave the account healthy or healthier.
    function isMarginOkAfterFill(
        OspState.State memory s,
        int256 oldCollateral,
        StateCodec.Position[] memory oldPositions,
        int256 newCollateral,
        StateCodec.Position[] memory newPositions,
        uint256 market
    ) internal pure returns (bool) {
        int256 valueAfter = getTotalValue(s, newCollateral, newPositions);
        if (isExposureIncrease(positionSize(oldPositions, market), positionSize(newPositions, market))) {
            return valueAfter >= getTotalRisk(s, newPositions, true);
        }
        int256 riskAfter = getTotalRisk(s, newPositions, false);
        if (isHealthy(valueAfter, riskAfter)) return true; // (the common case: the state before need not be valued)
        (int256 valueBefore, int256 riskBefore) = getValueAndRisk(s, oldCollateral, oldPositions);
        return isHealthier(valueBefore, riskBefore, valueAfter, riskAfter);
    }

    /// spec: compute_ratio_value — ceil(TV_before * TR_after / TR_before) (riskBefore > 0).
    function computeRatioValue(int256 valueBefore, int256 riskBefore, int256 riskAfter) internal pure returns (int256) {
        return ceilDiv(valueBefore * riskAfter, riskBefore);
    }

    /// spec: compute_liquidation_room — the most a liquidation may take after its fill while the
    /// account stays healthy or healthier, never more than its value; 0 if none.
    function computeLiquidationRoom(int256 valueBefore, int256 riskBefore, int256 valueAfter, int256 riskAfter)
        internal
        pure
        returns (int256 room)
    {
        room = valueAfter - riskAfter; // stays healthy
        if (riskAfter < riskBefore) {
            // or stays healthier
            int256 ratioRoom = valueAfter - computeRatioValue(valueBefore, riskBefore, riskAfter);
            if (ratioRoom > room) room = ratioRoom;
        }
        if (room > valueAfter) room = valueAfter;
        if (room < 0) room = 0;
    }

    /// spec: compute_bad_debt_cover — what the insurance fund pays into a bankrupt account whose risk
    /// shrinks: the shortfall below the ratio-keeping value, as far as the fund reaches.
    function computeBadDebtCover(
        int256 valueBefore,
        int256 riskBefore,
        int256 valueAfter,
        int256 riskAfter,
        int256 insurance
    ) internal pure returns (int256 cover) {
        if (valueBefore >= 0 || riskAfter >= riskBefore) return 0;
        cover = computeRatioValue(valueBefore, riskBefore, riskAfter) - valueAfter;
        if (insurance < cover) cover = insurance;
        if (cover < 0) cover = 0;
    }

    // --- the socialized loss (spec: margin.py, docs/risk.md §4.4) --------------------------------------

    /// spec: compute_haircut — ceil(amount * L / T), never more than L or the amount; 0 with no loss.
    function computeHaircut(int256 amount, int256 loss, int256 total) internal pure returns (int256 haircut) {
        if (loss <= 0) return 0;
        if (total <= loss) return amount < loss ? amount : loss;
        if (amount >= total) return loss; // ceil(amount * L / T) >= L; and below, amount * L < 2^254
        haircut = ceilDiv(amount * loss, total);
        if (haircut > loss) haircut = loss;
    }

    /// spec: compute_deposit_credit — floor(amount * T / (T - L)); the amount itself with no loss.
    function computeDepositCredit(int256 amount, int256 loss, int256 total) internal pure returns (int256) {
        if (loss <= 0 || total <= loss) return amount;
        return floorDiv(amount * total, total - loss);
    }

    /// spec: compute_deleverager_floor — 0 for a solvent deleverager, its ratio-keeping value for a
    /// bankrupt one (riskBefore > 0: it holds a position).
    function computeDeleveragerFloor(int256 valueBefore, int256 riskBefore, int256 riskAfter)
        internal
        pure
        returns (int256)
    {
        if (valueBefore >= 0) return 0;
        return computeRatioValue(valueBefore, riskBefore, riskAfter);
    }

    /// spec: with_position — a copy of `positions` with market's size replaced (removed when zero),
    /// kept sorted by market (the spec's encode_account sorts).
    function withPosition(StateCodec.Position[] memory positions, uint256 market, int256 size, int128 fundingIndex)
        internal
        pure
        returns (StateCodec.Position[] memory updated)
    {
        uint256 n = positions.length;
        uint256 pos = 0; // index of `market`, or where it would be inserted
        while (pos < n && positions[pos].market < market) ++pos;
        bool found = pos < n && positions[pos].market == market;
        if (size == 0) {
            if (!found) return copy(positions, n);
            updated = new StateCodec.Position[](n - 1);
            for (uint256 i = 0; i < pos; ++i) updated[i] = positions[i];
            for (uint256 i = pos + 1; i < n; ++i) updated[i - 1] = positions[i];
            return updated;
        }
        StateCodec.Position memory position = StateCodec.Position(uint8(market), OspState.toInt64(size), fundingIndex);
        if (found) {
            updated = copy(positions, n);
            updated[pos] = position;
            return updated;
        }
        updated = new StateCodec.Position[](n + 1);
        for (uint256 i = 0; i < pos; ++i) updated[i] = positions[i];
        updated[pos] = position;
        for (uint256 i = pos; i < n; ++i) updated[i + 1] = positions[i];
    }

    function copy(StateCodec.Position[] memory positions, uint256 n)
        private
        pure
        returns (StateCodec.Position[] memory out)
    {
        out = new StateCodec.Position[](n);
        for (uint256 i = 0; i < n; ++i) out[i] = positions[i];
    }
}
