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


# --- health: the StarkEx / Starknet Perpetual rule -------------------------------------------------
#
# An account's *total value* TV is its collateral plus its positions marked at the oracle; its *total
# risk* TR is the maintenance requirement of those positions. It is healthy when TV >= TR,
# liquidatable when TV < TR and deleverageable (bankrupt) when TV < 0. A transaction may leave an
# account unhealthy only if it made the account *healthier*: strictly lower risk and a value-to-risk
# ratio that is not worse. Ratios are compared cross-multiplied (TR > 0 on both sides of a healthier
# change: TR_before > TR_after >= 0), so negative values compare correctly and TR_after = 0 demands
# TV_after >= 0: no transaction ever leaves an account in debt with nothing open.


def get_value_and_risk(state: State, collateral: int, positions: dict[int, Position]) -> tuple[int, int]:
    """(total value, maintenance total risk)."""
    return get_total_value(state, collateral, positions), get_total_risk(state, positions, initial=False)


def is_healthy(value: int, risk: int) -> bool:
    return value >= risk


def is_healthier(value_before: int, risk_before: int, value_after: int, risk_after: int) -> bool:
    """Strictly lower risk, and TV_after / TR_after >= TV_before / TR_before."""
    return risk_after < risk_before and value_after * risk_before >= value_before * risk_after


def is_healthy_or_healthier(value_before: int, risk_before: int, value_after: int, risk_after: int) -> bool:
    return is_healthy(value_after, risk_after) or is_healthier(value_before, risk_before, value_after, risk_after)


def is_margin_ok_after_fill(
    state: State,
    old_collateral: int,
    old_positions: dict[int, Position],
    new_collateral: int,
    new_positions: dict[int, Position],
    market: int,
) -> bool:
    """The margin rule for a party to a fill (old = after funding settlement, before the fill).

    A fill that increases exposure in `market` needs total value >= initial-margin risk afterwards.
    Any other fill must leave the account healthy or healthier (maintenance risk)."""
    old = old_positions.get(market)
    new = new_positions.get(market)
    value_after = get_total_value(state, new_collateral, new_positions)
    if is_exposure_increase(old.size if old else 0, new.size if new else 0):
        return value_after >= get_total_risk(state, new_positions, initial=True)
    risk_after = get_total_risk(state, new_positions, initial=False)
    if is_healthy(value_after, risk_after):
        return True  # (the common case: the state before need not be valued)
    value_before, risk_before = get_value_and_risk(state, old_collateral, old_positions)
    return is_healthier(value_before, risk_before, value_after, risk_after)


def is_liquidatable(state: State, collateral: int, positions: dict[int, Position]) -> bool:
    return get_total_value(state, collateral, positions) < get_total_risk(state, positions, initial=False)


def compute_ratio_value(value_before: int, risk_before: int, risk_after: int) -> int:
    """The least total value at `risk_after` whose value/risk ratio is not below the one before
    (risk_before > 0): ceil(TV_before * TR_after / TR_before); 0 when nothing stays open."""
    return ceil_div(value_before * risk_after, risk_before)


def compute_liquidation_room(value_before: int, risk_before: int, value_after: int, risk_after: int) -> int:
    """The most a liquidation may take from the liquidated account after its fill (the penalty)
    while it stays healthy or healthier, and never more than the value it has left; 0 if none."""
    room = value_after - risk_after  # stays healthy
    if risk_after < risk_before:  # or stays healthier
        room = max(room, value_after - compute_ratio_value(value_before, risk_before, risk_after))
    return max(0, min(room, value_after))


def compute_bad_debt_cover(value_before: int, risk_before: int, value_after: int, risk_after: int, insurance: int) -> int:
    """What the insurance fund pays into a bankrupt account (TV < 0) whose positions shrink from
    risk_before to risk_after: the shortfall below the value that keeps its value/risk ratio (all of
    its debt when nothing stays open), as far as the fund reaches. Nothing for a solvent account."""
    if value_before >= 0 or risk_after >= risk_before:
        return 0
    shortfall = compute_ratio_value(value_before, risk_before, risk_after) - value_after
    return max(0, min(insurance, shortfall))


def with_position(positions: dict[int, Position], market: int, size: int, funding_index: int) -> dict[int, Position]:
    """A copy of `positions` with market's size replaced (removed when zero)."""
    updated = dict(positions)
    if size == 0:
        updated.pop(market, None)
    else:
        updated[market] = Position(size, funding_index)
    return updated


# --- the socialized loss (docs/risk.md §4.4) --------------------------------------------------------
#
# The state holds `total_collateral` T collateral units (accounts, insurance fund, fees, funding pool)
# and owes `socialized_loss` L of them beyond the tokens the bridge holds (T - L). Every unit is worth
# (1 - L/T) of a token: a withdrawal of `amount` units pays amount - haircut tokens and a deposit of
# `amount` tokens credits amount * T / (T - L) units, both rounded against the user, so that the rate
# L/T never rises (it only falls by rounding) and every holder bears the same share of the loss.


def compute_haircut(amount: int, loss: int, total: int) -> int:
    """The part of a withdrawal of `amount` units that the socialized loss keeps: ceil(amount * L / T),
    never more than L or the amount; 0 while there is no loss. (T <= L only if a sequencer let profits
    out before it deleveraged a bankrupt account: then no unit is worth anything.)"""
    if loss <= 0:
        return 0
    if total <= loss:
        return min(amount, loss)
    if amount >= total:
        return loss  # ceil(amount * L / T) >= L (and the prover's int256 product stays small below it)
    return min(loss, ceil_div(amount * loss, total))


def compute_deposit_credit(amount: int, loss: int, total: int) -> int:
    """The collateral units a deposit of `amount` tokens credits: floor(amount * T / (T - L)), so that
    it withdraws as `amount` tokens again. (With T <= L no unit is worth anything: see compute_haircut;
    the deposit is credited one for one.)"""
    if loss <= 0 or total <= loss:
        return amount
    return amount * total // (total - loss)


def compute_deleverager_floor(value_before: int, risk_before: int, risk_after: int) -> int:
    """The least total value a deleverager ends with when it cannot pay its share: 0 for a solvent one
    (it gives up all its value, never more); for a bankrupt one (TV < 0, so it holds positions and
    risk_before > 0), the value that keeps its own value/risk ratio — its own bankruptcy price, so that
    it too ends healthier and never in debt with nothing open."""
    if value_before >= 0:
        return 0
    return compute_ratio_value(value_before, risk_before, risk_after)
