// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {StateCodec} from "./StateCodec.sol";
import {OspConstants} from "../osp/OspTypes.sol";
import {OspMargin} from "../osp/OspMargin.sol";

/// @title Valuation — the escape-hatch value of an account, mirroring optinode/spec/margin.py
/// @notice value = collateral - settled funding + Σ floor(size × price / PRICE_ONE), where the funding
///         a position owes is ceil(size × (index - position.fundingIndex) / PRICE_ONE)
///         (compute_settled_funding, then get_total_value). Prices and funding indices are the ones
///         committed in the globals blob. Rounding goes against the account, as in the spec.
library Valuation {
    int256 private constant PRICE_ONE = OspConstants.PRICE_ONE;

    /// A position refers to a market the globals do not have.
    error UnknownMarket(uint256 market);

    /// spec: compute_settled_funding + get_total_value (may be negative).
    function totalValue(StateCodec.Account memory account, StateCodec.Globals memory globals)
        internal
        pure
        returns (int256 value)
    {
        int256 collateral = account.collateral;
        int256 marked = 0;
        uint256 marketCount = globals.markets.length;
        for (uint256 i = 0; i < account.positions.length; ++i) {
            StateCodec.Position memory p = account.positions[i];
            if (p.market >= marketCount) revert UnknownMarket(p.market);
            StateCodec.MarketState memory m = globals.markets[p.market];
            int256 size = p.size;
            if (p.fundingIndex != m.fundingIndex) {
                // longs pay when the index rises; every payment rounds up, every receipt down
                collateral -= OspMargin.ceilDiv(size * (int256(m.fundingIndex) - int256(p.fundingIndex)), PRICE_ONE);
            }
            marked += OspMargin.floorDiv(size * int256(uint256(m.price)), PRICE_ONE);
        }
        value = collateral + marked;
    }

    /// What the escape hatch pays for the account's state: its total value, floored at zero, in tokens:
    /// less the socialized loss's haircut that a withdrawal of it would pay (spec: compute_escape_value).
    function escapeValue(StateCodec.Account memory account, StateCodec.Globals memory globals)
        internal
        pure
        returns (uint256)
    {
        int256 value = totalValue(account, globals);
        if (value <= 0) return 0;
        return uint256(value - OspMargin.computeHaircut(value, globals.socializedLoss, globals.totalCollateral));
    }
}
