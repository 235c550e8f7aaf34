"""Integer margin arithmetic: funding settlement, total value and total risk.

Rounding always goes against the account: value rounds down, risk and payments round up.
"""

from __future__ import annotations

from .constants import FRACTION_ONE, PRICE_ONE
from .state import Account, Position, State


def ceil_div(numerator: int, denominator: int) -> int:
    """Ceiling of numerator / denominator for denominator > 0 (any sign of numerator)."""
    return -((-numerator) // denominator)


def compute_settled_funding(state: State, account: Account) -> tuple[int, dict[int, Position], int]:
    """The account's collateral and positions after settling funding, and the amount it paid
    (negative: received). Nothing is written; the positions dict returned must not be mutated."""
    markets = state.markets
    positions = account.positions
    for market, position in positions.items():
        if position.funding_index != markets[market].funding_index:
            break
    else:
        return account.collateral, positions, 0  # nothing owed: the common case within a funding period
    paid = 0
    settled: dict[int, Position] = {}
    for market, position in positions.items():
        index = markets[market].funding_index
        if position.funding_index != index:
            # longs pay when the index rises; ceil rounds every payment up and every receipt down
            paid += ceil_div(position.size * (index - position.funding_index), PRICE_ONE)
            position = Position(position.size, index)
        settled[market] = position
    return account.collateral - paid, settled, paid


def get_total_value(state: State, collateral: int, positions: dict[int, Position]) -> int:
    """Collateral plus every position marked at the oracle price (floor)."""
    value = collateral
    markets = state.markets
    for market, position in positions.items():
        value += (position.size * markets[market].price) // PRICE_ONE
    return value


def get_total_risk(state: State, positions: dict[int, Position], initial: bool) -> int:
    """Sum over positions of |size| * price * margin fraction (ceil), initial or maintenance."""
    risk = 0
    markets = state.markets
    configs = state.config.markets
    for market, position in positions.items():
        config = configs[market]
        fraction = config.initial_margin if initial else config.maintenance_margin
        risk += ceil_div(abs(position.size) * markets[market].price * fraction, PRICE_ONE * FRACTION_ONE)
    return risk


def is_exposure_increase(old_size: int, new_size: int) -> bool:
    """Growing |size|, or flipping from long to short or back."""
    return abs(new_size) > abs(old_size) or old_size * new_size < 0


def is_margin_ok_after_fill(
    state: State,
    old_collateral: int,
    old_positions: dict[int, Position],
    new_collateral: int,
    new_positions: dict[int, Position],
    market: int,
) -> bool:
    """The margin rule for a party to a fill (old = after funding settlement, before the fill).

    A fill that increases exposure needs total value >= initial-margin risk afterwards. A fill that
    only reduces exposure passes when the account is above maintenance afterwards, or when its
    maintenance excess (value - risk) did not get worse."""
    old = old_positions.get(market)
    new = new_positions.get(market)
    value_after = get_total_value(state, new_collateral, new_positions)
    if is_exposure_increase(old.size if old else 0, new.size if new else 0):
        return value_after >= get_total_risk(state, new_positions, initial=True)
    maintenance_after = get_total_risk(state, new_positions, initial=False)
    if value_after >= maintenance_after:
        return True
    value_before = get_total_value(state, old_collateral, old_positions)
    return value_after - maintenance_after >= value_before - get_total_risk(state, old_positions, initial=False)


def is_liquidatable(state: State, collateral: int, positions: dict[int, Position]) -> bool:
    return get_total_value(state, collateral, positions) < get_total_risk(state, positions, initial=False)


def with_position(positions: dict[int, Position], market: int, size: int, funding_index: int) -> dict[int, Position]:
    """A copy of `positions` with market's size replaced (removed when zero)."""
    updated = dict(positions)
    if size == 0:
        updated.pop(market, None)
    else:
        updated[market] = Position(size, funding_index)
    return updated
