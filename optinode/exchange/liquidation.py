"""What the liquidator emits for one account: a `Liquidate`, a `Deleverage`, or nothing.

Pure planning over the spec state; every candidate is run by the spec on a partial copy
(`what_if.what_if`) and only one the spec applies is returned, so the liquidator never emits an
invalid transaction (tests/services/test_liquidation_properties.py checks it over random states).

**Liquidation** (docs/risk.md §3-4.1): for an account below maintenance, the liquidator account
buys (for a long) or sells (for a short) the position at the oracle price, rounded to the tick in
the liquidated account's favour. It is a backstop liquidator run by the operator: it takes no
discount (the spec's penalty goes to the insurance fund, and the fund covers a bankrupt account's
shortfall in the same transaction). Markets are tried largest risk first, the whole position first,
then halves (in steps), so an account is brought back with as few transactions as possible and a
liquidator short of margin still takes what it can.

**Deleverage** (§4.2-4.3): when the account's value is negative and no liquidation applies (the
insurance fund cannot cover the shortfall), its position is closed against opposite holders at the
bankruptcy price. The spec's fairness rule bounds each counterparty's share by its own position in
that market at that market's bankruptcy price; which holders go first is the sequencer's choice,
and ours is the usual ADL queue order adapted to what the state holds (positions carry no entry
price, so no unrealised-profit ranking): the best-capitalised first — highest value-to-risk ratio,
then the largest position, then the lowest account id — so the loss lands on the holders most able
to absorb it and the fewest accounts are touched. A deleverage that would socialize part of the
loss (the holder cannot pay its share, docs/risk.md §4.3-4.4) is emitted only when no holder tried
can pay without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from optinode.exchange.what_if import partial_state, what_if
from optinode.spec.constants import NONCE_WINDOW
from optinode.spec.errors import WitnessError
from optinode.spec.margin import compute_settled_funding, get_total_risk, get_value_and_risk
from optinode.spec.state import Account, State
from optinode.spec.transition import state_transition
from optinode.spec.types import Deleverage, L1Context, Liquidate, Transaction
from optinode.wallet import Key, sign_order

MAX_DELEVERAGE_CANDIDATES = 64  # counterparties tried per market and round (bounded work)


@dataclass(frozen=True)
class LiquidatorAccount:
    account_id: int
    key: Key
    order_expiry: int = 300  # seconds after the batch time


def get_free_nonce(account: Account, taken: Callable[[int], bool] = lambda nonce: False) -> int | None:
    """The lowest unused nonce in the account's window that `taken` does not reserve."""
    for offset in range(NONCE_WINDOW):
        if not (account.nonce_bits >> offset) & 1 and not taken(account.nonce_base + offset):
            return account.nonce_base + offset
    return None


def candidate_sizes(held: int, step: int) -> list[int]:
    """All of `held`, then halves, each a positive multiple of `step`, largest first."""
    sizes = []
    size = held
    while size >= step:
        size = size // step * step
        if not sizes or size < sizes[-1]:
            sizes.append(size)
        size //= 2
    return sizes


def round_to_tick(price: int, tick: int, up: bool) -> int:
    return -((-price) // tick) * tick if up else max(tick, price // tick * tick)


def markets_by_risk(state: State, account: Account) -> list[int]:
    """The account's markets, largest maintenance risk first (then market id)."""
    _, positions, _ = compute_settled_funding(state, account)
    risks = [(-get_total_risk(state, {m: p}, initial=False), m) for m, p in positions.items()]
    return [m for _, m in sorted(risks)]


def is_below_maintenance(state: State, account: Account) -> tuple[bool, int]:
    """(TV < TR, TV)."""
    collateral, positions, _ = compute_settled_funding(state, account)
    value, risk = get_value_and_risk(state, collateral, positions)
    return value < risk, value


def plan_liquidation(state: State, account_id: int, ctx: L1Context, liquidator: LiquidatorAccount,
                     taken: Callable[[int], bool] = lambda nonce: False) -> Liquidate | None:
    account = state.accounts.get(account_id)
    me = state.accounts.get(liquidator.account_id)
    if account is None or me is None or account_id == liquidator.account_id:
        return None
    nonce = get_free_nonce(me, taken)
    if nonce is None:
        return None
    configs = state.config.markets
    for market in markets_by_risk(state, account):
        held = account.positions[market].size
        config = configs[market]
        is_buy = held > 0  # the liquidator takes the other side
        price = round_to_tick(state.markets[market].price, config.tick_size, up=is_buy)
        for size in candidate_sizes(abs(held), config.step_size):
            order = sign_order(liquidator.key, state.config.domain_separator, account_id=liquidator.account_id, market=market,
                               is_buy=is_buy, size=size, limit_price=price, fee_rate=0,
                               expiry=ctx.l1_timestamp + liquidator.order_expiry, nonce=nonce)
            tx = Liquidate(order, account_id, size)
            if is_valid(state, tx, ctx, (liquidator.account_id, account_id)):
                return tx
    return None


def rank_counterparties(state: State, holders: dict[int, int], held: int, exclude: int) -> list[int]:
    """Opposite holders of a position of size `held`, in ADL order (see the module docstring)."""
    ranked = []
    for holder, size in holders.items():
        if holder == exclude or size * held >= 0:
            continue
        account = state.accounts.get(holder)
        if account is None:
            continue
        collateral, positions, _ = compute_settled_funding(state, account)
        value, risk = get_value_and_risk(state, collateral, positions)
        # value/risk descending, compared as fractions (risk > 0: it holds a position)
        ranked.append((_Ratio(value, max(risk, 1)), -abs(size), holder))
    ranked.sort()
    return [holder for *_, holder in ranked]


class _Ratio:
    """Sorts by value/risk descending."""

    __slots__ = ("value", "risk")

    def __init__(self, value: int, risk: int) -> None:
        self.value, self.risk = value, risk

    def __lt__(self, other: "_Ratio") -> bool:
        return self.value * other.risk > other.value * self.risk

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ratio) and self.value * other.risk == other.value * self.risk


def plan_deleverage(state: State, account_id: int, ctx: L1Context, holders: list[dict[int, int]]) -> Deleverage | None:
    account = state.accounts.get(account_id)
    if account is None:
        return None
    _, value = is_below_maintenance(state, account)
    if value >= 0:
        return None
    configs = state.config.markets
    fallback = None  # the first valid deleverage that socializes a loss (docs/risk.md §4.3-4.4)
    for market in markets_by_risk(state, account):
        held = account.positions[market].size
        for holder in rank_counterparties(state, holders[market], held, account_id)[:MAX_DELEVERAGE_CANDIDATES]:
            other = state.accounts[holder].positions.get(market)
            if other is None:
                continue
            for size in candidate_sizes(min(abs(held), abs(other.size)), configs[market].step_size)[:4]:
                tx = Deleverage(account_id, holder, market, size)
                socialized = get_socialized(state, tx, ctx, (account_id, holder))
                if socialized == 0:
                    return tx  # a holder that can pay its share: nothing is socialized
                if socialized is not None and fallback is None:
                    fallback = tx
    # Only when no holder tried can pay its share does the last resort spread the rest over everyone.
    return fallback


def get_socialized(state: State, tx: Transaction, ctx: L1Context, account_ids: Iterable[int]) -> int | None:
    """How much of a loss `tx` would socialize, or None if the spec would not apply it."""
    try:
        copy = partial_state(state, account_ids, ())
        receipt = state_transition(copy, tx, ctx)
    except WitnessError:
        return None
    return copy.socialized_loss - state.socialized_loss if receipt.ok else None


def plan(state: State, account_id: int, ctx: L1Context, liquidator: LiquidatorAccount | None, holders: list[dict[int, int]],
         taken: Callable[[int], bool] = lambda nonce: False) -> Transaction | None:
    """The next transaction for an account: a liquidation if one applies, else a deleverage if the
    account is bankrupt, else None (healthy, or nothing valid can be done now)."""
    account = state.accounts.get(account_id)
    if account is None or not account.positions or not is_below_maintenance(state, account)[0]:
        return None
    if liquidator is not None:
        tx = plan_liquidation(state, account_id, ctx, liquidator, taken)
        if tx is not None:
            return tx
    return plan_deleverage(state, account_id, ctx, holders)


def is_valid(state: State, tx: Transaction, ctx: L1Context, account_ids: Iterable[int]) -> bool:
    """The spec's verdict on a partial copy; a transaction that reads more than it was given is not emitted."""
    try:
        return what_if(state, tx, ctx, account_ids).ok
    except WitnessError:
        return False

