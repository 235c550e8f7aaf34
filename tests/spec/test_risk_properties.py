"""Property tests of the risk engine (docs/risk.md) over random transaction sequences.

The sequences come from `tests/spec/strategies.py`: funded traders (some owning several accounts),
trades near the margin limit, price shocks and gaps that jump straight into bad debt, funding over
long times, liquidations across the whole band, deleverages. After every transaction:

- conservation: collateral in the state == deposits consumed - withdrawn;
- no account holds negative collateral with nothing open (no rule here needs the last resort);
- healthy or healthier: every party to an applied trade, liquidation or deleverage ends healthy, or
  with strictly lower risk and a value/risk ratio not worse (an exposure increase: initial margin);
  the one exception is the last resort: a deleverager, once the insurance fund is spent, ends with a
  non-negative value;
- a liquidation never leaves a solvent account insolvent, and its penalty never exceeds what is left;
- deleverage fairness: the deleverager pays, beyond the oracle price, at most the deleveraged
  account's deficit in proportion to the risk closed (its share at that market's bankruptcy price),
  and the insurance fund pays first.

The same over `tests/spec/risk_worlds.py` (1-16 markets, prices from 1 to ~2^62 per base unit, huge
balances). And after each price update and at the end, on a copy: the bad-debt waterfall (`run_waterfall`:
deleverage every bankrupt account against the opposite holders, insurance first) and then the sum
of what every account could withdraw at once <= the collateral the state holds.

Default profile: fast (the settings below); HYPOTHESIS_PROFILE=thorough runs 2,000 examples each.
"""

from __future__ import annotations

from hypothesis import event, given, settings

from optinode.spec.margin import (
    compute_settled_funding,
    get_total_risk,
    get_total_value,
    get_value_and_risk,
    is_exposure_increase,
    is_healthy_or_healthier,
)
from optinode.spec.state import State, copy_state, get_total_collateral
from optinode.spec.transition import state_transition
from optinode.spec.types import Deleverage, L1Context, Liquidate, OraclePrice, SlotRef, Trade, Transaction

from .risk_worlds import risk_worlds
from .strategies import Scenario, consumed_deposits, scenarios

RISK = settings(max_examples=max(60, settings.default.max_examples), deadline=None)


def health(state: State, account_id: int) -> tuple[int, int, int, dict]:
    """(value, maintenance risk, initial risk, settled positions) of an account, funding settled."""
    collateral, positions, _ = compute_settled_funding(state, state.accounts[account_id])
    value, risk = get_value_and_risk(state, collateral, positions)
    return value, risk, get_total_risk(state, positions, initial=True), positions


def order_account(state: State, order: object) -> int | None:
    if type(order) is SlotRef:
        slot = state.slots.get(order.slot)
        return slot.account_id if slot is not None else None
    return order.account_id  # type: ignore[attr-defined]


def parties(state: State, tx: Transaction) -> tuple[list[int], int | None]:
    """The accounts a trade/liquidation/deleverage changes, and the market it fills."""
    if type(tx) is Trade:
        ids = [order_account(state, tx.maker), order_account(state, tx.taker)]
        slot_or_order = tx.maker
    elif type(tx) is Liquidate:
        ids = [order_account(state, tx.liquidator), tx.liquidated_id]
        slot_or_order = tx.liquidator
    elif type(tx) is Deleverage:
        return [tx.deleveraged_id, tx.deleverager_id], tx.market
    else:
        return [], None
    if type(slot_or_order) is SlotRef:
        slot = state.slots.get(slot_or_order.slot)
        market = slot.market if slot is not None else None
    else:
        market = slot_or_order.market  # type: ignore[union-attr]
    return [a for a in ids if a is not None and a in state.accounts], market


def withdrawable(state: State) -> int:
    """What all accounts could withdraw at once: each one down to its initial margin (spec withdraw)."""
    total = 0
    for account_id in state.accounts:
        value, _, initial, _ = health(state, account_id)
        total += max(0, value - initial)
    return total


def run_waterfall(state: State, ctx: L1Context) -> list[int]:
    """Deleverage every bankrupt account against opposite holders (the richest first; the whole
    overlap, else halves of it down to 1/64) until none is left or no deleverage applies. Returns the bankrupt
    accounts that remain (no opposite holder has value left to absorb them)."""
    for _ in range(64):
        progressed = False
        for victim in sorted(state.accounts):
            value, _, _, positions = health(state, victim)
            if value >= 0 or not positions:
                continue
            for market, position in sorted(positions.items()):
                step = state.config.markets[market].step_size
                others = [
                    a for a in state.accounts
                    if a != victim and (p := state.accounts[a].positions.get(market)) and p.size * position.size < 0
                ]
                others.sort(key=lambda a: -health(state, a)[0])
                for other in others:
                    overlap = min(abs(position.size), abs(state.accounts[other].positions[market].size))
                    size = overlap
                    while size > 0 and size * 64 >= overlap:  # the whole overlap, else halves of it down to 1/64
                        if state_transition(state, Deleverage(victim, other, market, size), ctx).ok:
                            progressed = True
                            break
                        size = size // 2 // step * step
                    if progressed:
                        break
                if progressed:
                    break
            if progressed:
                break
        if not progressed:
            break
    return [a for a in state.accounts if health(state, a)[0] < 0]


def check_waterfall(state: State, ctx: L1Context) -> None:
    after = copy_state(state)
    stuck = run_waterfall(after, ctx)
    held = get_total_collateral(after)
    if stuck:
        # Every opposite holder is out of value: the remaining deficit stays on the bankrupt account
        # (open, marked at the oracle); what others can take out exceeds what is held by at most that
        # deficit (docs/risk.md).
        event("waterfall: a bankrupt account no opposite holder can absorb")
        deficit = sum(-health(after, a)[0] for a in stuck)
        assert withdrawable(after) <= held + deficit
    else:
        assert withdrawable(after) <= held, "after the waterfall, accounts could withdraw more than is held"


def check_party(before: State, after: State, tx: Transaction, account_id: int, market: int) -> None:
    value_b, risk_b, _, positions_b = health(before, account_id)
    value_a, risk_a, initial_a, positions_a = health(after, account_id)
    old = positions_b.get(market)
    new = positions_a.get(market)
    if type(tx) is not Deleverage and is_exposure_increase(old.size if old else 0, new.size if new else 0):
        assert value_a >= initial_a, f"account {account_id} increased exposure below initial margin"
        return
    if is_healthy_or_healthier(value_b, risk_b, value_a, risk_a):
        return
    # The only exception: the deleverager under the last resort (the fund spent, its value >= 0).
    assert type(tx) is Deleverage and account_id == tx.deleverager_id and after.insurance == 0 and value_a >= 0, (
        f"account {account_id}: ({value_b}, {risk_b}) -> ({value_a}, {risk_a}) is neither healthy nor healthier"
    )
    event("deleverage under the last resort")


@RISK
@given(scenarios(min_txs=10, max_txs=60))
def test_risk_invariants_after_every_transaction(scenario: Scenario) -> None:
    check_risk_invariants(scenario)


@RISK
@given(risk_worlds())
def test_risk_invariants_in_worlds_with_many_markets_and_extreme_prices(scenario: Scenario) -> None:
    check_risk_invariants(scenario)


def check_risk_invariants(scenario: Scenario) -> None:
    state = scenario.genesis_state()
    ctx = scenario.ctx
    for index, tx in enumerate(scenario.txs):
        ids, market = parties(state, tx)
        before = copy_state(state) if ids else None
        receipt = state_transition(state, tx, ctx)
        where = f"tx {index} {scenario.notes[index]} ({receipt.code.name})"
        withdrawn = sum(account.withdrawn for account in state.accounts.values())
        assert get_total_collateral(state) == consumed_deposits(ctx, state) - withdrawn, f"{where}: conservation"
        for account_id, account in state.accounts.items():
            assert account.collateral >= 0 or account.positions, f"{where}: account {account_id} in debt with nothing open"
        if before is None or not receipt.applied:
            continue
        event(f"applied {type(tx).__name__}")
        for account_id in ids:
            check_party(before, state, tx, account_id, market)
        if type(tx) is Liquidate:
            value_b = health(before, tx.liquidated_id)[0]
            value_a = health(state, tx.liquidated_id)[0]
            assert value_b < 0 or value_a >= 0, f"{where}: a solvent account was liquidated into debt"
            if state.insurance < before.insurance:
                event("liquidation covered by the insurance fund")
        if type(tx) is Deleverage:
            check_deleverage_share(before, state, tx, where)
        if type(tx) is OraclePrice:
            check_waterfall(state, ctx)
    check_waterfall(state, ctx)


def check_deleverage_share(before: State, after: State, tx: Deleverage, where: str) -> None:
    value_b, risk_b, _, _ = health(before, tx.deleveraged_id)
    _, risk_a, _, _ = health(after, tx.deleveraged_id)
    # The deleverager's loss against closing at the oracle price, from the changes of its value.
    loss = health(before, tx.deleverager_id)[0] - health(after, tx.deleverager_id)[0]
    share = -(value_b * (risk_b - risk_a)) // risk_b + 1  # the deficit on the risk closed (+1: rounding, floors)
    cover = before.insurance - after.insurance
    assert cover >= 0 and loss <= share - cover + 1, f"{where}: the deleverager paid {loss} for a share of {share}"
    if cover:
        event("deleverage covered by the insurance fund")
