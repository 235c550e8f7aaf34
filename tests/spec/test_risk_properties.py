"""Property tests of the risk engine (docs/risk.md) over random transaction sequences.

The sequences come from `tests/spec/strategies.py`: funded traders (some owning several accounts),
trades near the margin limit, price shocks and gaps that jump straight into bad debt, funding over
long times, liquidations across the whole band, deleverages. After every transaction:

- conservation: the state's kept total collateral is the sum of its balances, and that total less
  the socialized loss == tokens deposited - tokens withdrawn;
- no account holds negative collateral with nothing open;
- healthy or healthier: every party to an applied trade, liquidation or deleverage ends healthy, or
  with strictly lower risk and a value/risk ratio not worse (an exposure increase: initial margin);
  the one exception is the last resort: a deleverager that cannot pay its share ends at its floor
  (a solvent one with a value >= 0, a bankrupt one with its ratio kept), and the socialized loss grows
  only once the insurance fund is spent;
- a liquidation never leaves a solvent account insolvent, and its penalty never exceeds what is left;
- deleverage fairness: the deleverager pays, beyond the oracle price, at most the deleveraged
  account's deficit in proportion to the risk closed (its share at that market's bankruptcy price),
  and the insurance fund pays first.

The same over `tests/spec/risk_worlds.py` (1-16 markets, prices from 1 to ~2^62 per base unit, huge
balances). Like an honest sequencer, the test runs the bad-debt waterfall on the state itself whenever
an account is bankrupt (`run_waterfall`: deleverage every bankrupt account against the opposite
holders, insurance first, the socialized loss last, each deleverage checked like any transaction);
after it no account is bankrupt (unless a stale price stops every deleverage of it), and the tokens
every account could withdraw at once (one after another, each down to its initial margin, each paid
less the haircut) are at most the tokens held: checked after every waterfall, every price update,
every eighth transaction and at the end.

Default profile: fast (the settings below); HYPOTHESIS_PROFILE=thorough runs 2,000 examples each.
"""

from __future__ import annotations

from typing import Callable

from hypothesis import event, given, settings

from optinode.spec.margin import (
    compute_deleverager_floor,
    compute_haircut,
    compute_settled_funding,
    get_total_risk,
    get_total_value,
    get_value_and_risk,
    is_exposure_increase,
    is_healthy_or_healthier,
)
from optinode.spec.state import State, copy_state, get_total_collateral
from optinode.spec.commitment import compute_state_root
from optinode.spec.constants import FORCED_DELEVERAGE
from optinode.spec.errors import ErrorCode, InvalidTransaction
from optinode.spec.transition import check_fresh, state_transition
from optinode.spec.types import Deleverage, ForcedEntry, ForcedWithdraw, L1Context, Liquidate, OraclePrice, Receipt, SlotRef, Trade, Transaction

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
    """The tokens all accounts could withdraw at once: one after another, each one down to its initial
    margin (spec withdraw), each paid less the socialized loss's haircut at the rate of its turn."""
    total = 0
    loss, units = state.socialized_loss, state.total_collateral
    for account_id in state.accounts:
        value, _, initial, _ = health(state, account_id)
        amount = max(0, value - initial)
        haircut = compute_haircut(amount, loss, units)
        total += amount - haircut
        loss, units = loss - haircut, units - amount
    return total


def held_tokens(state: State) -> int:
    """The tokens the bridge holds for the state: its collateral units less the socialized loss."""
    return get_total_collateral(state) - state.socialized_loss


def run_waterfall(state: State, ctx: L1Context, apply: Callable[[Transaction, str], Receipt]) -> list[int]:
    """Deleverage every bankrupt account against opposite holders (the richest first; the whole
    overlap, else halves of it down to 1/64) until none is left or no deleverage applies, each through
    `apply`. Returns the bankrupt accounts that remain (none while prices are fresh: the last resort
    socializes what neither the fund nor any holder can pay)."""
    for _ in range(256):
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
                        if apply(Deleverage(victim, other, market, size), "waterfall").ok:
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


def is_bankrupt_somewhere(state: State) -> bool:
    return any(health(state, a)[0] < 0 for a in state.accounts)


def is_stale_for(state: State, ctx: L1Context, account_id: int) -> bool:
    """Whether a deleverage of the account would read a stale price or stale funding."""
    try:
        check_fresh(state, ctx, set(state.accounts[account_id].positions))
    except InvalidTransaction:
        return True
    return False


def check_solvency(state: State, ctx: L1Context, stuck: list[int], where: str) -> None:
    """After the waterfall: no bankrupt account is left (unless a stale price stops every deleverage
    of it), and the tokens all accounts could withdraw at once are at most the tokens held."""
    assert all(is_stale_for(state, ctx, a) for a in stuck), f"{where}: bankrupt accounts {stuck} remain after the waterfall"
    if stuck:
        event("waterfall: stopped by a stale price")
        return
    assert withdrawable(state) <= held_tokens(state), f"{where}: after the waterfall, accounts could withdraw more than is held"


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
    if type(tx) is Deleverage and account_id == tx.deleveraged_id and (value_a, risk_a) == (value_b, risk_b):
        # Deleverage rule 6a's dust step: a holder whose whole position is too small to lower the
        # rounded risk takes its part at the oracle price; the deleveraged account's health is unchanged.
        event("deleverage: a dust step against a whole small holder")
        return
    # The only exception: the deleverager under the last resort, which ends at its floor (a solvent
    # one with a value >= 0, a bankrupt one with its value/risk ratio kept).
    assert type(tx) is Deleverage and account_id == tx.deleverager_id and value_a >= compute_deleverager_floor(value_b, risk_b, risk_a), (
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
    """Replay the scenario and, like an honest sequencer, run the bad-debt waterfall on the state itself
    whenever an account is bankrupt (after any transaction); check every invariant after every
    transaction, the waterfall's own deleverages included."""
    state = scenario.genesis_state()
    ctx = scenario.ctx

    def apply(tx: Transaction, note: str) -> Receipt:
        ids, market = parties(state, tx)
        before = copy_state(state) if ids else None
        receipt = state_transition(state, tx, ctx)
        where = f"{note} ({receipt.code.name})"
        withdrawn = sum(account.withdrawn for account in state.accounts.values())
        assert state.total_collateral == get_total_collateral(state), f"{where}: the kept total collateral"
        assert held_tokens(state) == consumed_deposits(ctx, state) - withdrawn, f"{where}: conservation"
        assert state.socialized_loss >= 0, f"{where}: a negative socialized loss"
        for account_id, account in state.accounts.items():
            assert account.collateral >= 0 or account.positions, f"{where}: account {account_id} in debt with nothing open"
        if before is None or not receipt.applied:
            return receipt
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
            if state.socialized_loss > before.socialized_loss:
                assert state.insurance == 0, f"{where}: a loss was socialized while the insurance fund could pay"
                event("deleverage socialized a loss")
        return receipt

    for index, tx in enumerate(scenario.txs):
        where = f"tx {index} {scenario.notes[index]}"
        apply(tx, where)
        if is_bankrupt_somewhere(state):
            check_solvency(state, ctx, run_waterfall(state, ctx, apply), where)
        elif index % 8 == 0 or type(tx) is OraclePrice:
            check_solvency(state, ctx, [], where)
    check_solvency(state, ctx, run_waterfall(state, ctx, apply), "at the end")


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


@RISK
@given(risk_worlds())
def test_a_forced_deleverage_request_is_the_deleverage_it_names(scenario: Scenario) -> None:
    """Bridge.requestForcedDeleverage's entry, consumed by ForcedWithdraw, does exactly what the
    Deleverage it names does (the same post-state but for the consumed request), is rejected with that
    Deleverage's code when it is invalid, and stays queued only on a stale price or funding (which the
    Deleverage would fail on too): a censored user can always make the waterfall run."""
    state = scenario.genesis_state()
    ctx = scenario.ctx
    requester = b"\x42" * 20  # anyone: no owner check
    for tx in scenario.txs:
        state_transition(state, tx, ctx)
        for victim in sorted(state.accounts):
            value, _, _, positions = health(state, victim)
            if value >= 0 or not positions:
                continue
            market, position = sorted(positions.items())[0]
            for other, account in sorted(state.accounts.items()):
                held = account.positions.get(market)
                if other == victim or held is None or held.size * position.size >= 0:
                    continue
                size = min(abs(position.size), abs(held.size))
                direct = copy_state(state)
                expected = state_transition(direct, Deleverage(victim, other, market, size), ctx)
                forced = copy_state(state)
                word = FORCED_DELEVERAGE | other << 72 | market << 64 | size
                forced_ctx = L1Context(l1_timestamp=ctx.l1_timestamp, forced={state.forced_done: ForcedEntry(requester, victim, word)})
                got = state_transition(forced, ForcedWithdraw(), forced_ctx)
                if not got.applied:
                    assert got.code in (ErrorCode.STALE_PRICE, ErrorCode.STALE_FUNDING) and not expected.applied
                    event("forced deleverage: stays queued (stale)")
                    continue
                assert got.code == expected.code, (got, expected)
                forced.forced_done -= 1
                assert compute_state_root(forced) == compute_state_root(direct)
                event(f"forced deleverage: {got.code.name}")
                if forced.socialized_loss > state.socialized_loss:
                    event("forced deleverage: socialized a loss")
                break
