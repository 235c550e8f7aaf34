"""The liquidation engine: re-checks accounts when prices or funding move, emits `Liquidate` and `Deleverage`.

    await nursery.start(liquidator.run, LiquidatorDeps(view, submitter, key, nudges=receive))

It wakes when the oracle feed or the funding service nudges it (a bounded channel of one) and at
least every `interval` seconds otherwise (a price may also arrive through another client). Each
round:

1. the risk index (`exchange.risk_index`) re-values the accounts the engine changed since the last
   round (the engine's account listener marks them) and returns those a move since their last
   valuation could have pushed below maintenance — a prefix of a sorted list, not a scan;
2. for each, closest to its line first, `exchange.liquidation.plan` picks the next transaction —
   a liquidation by the configured liquidator account at the oracle price, or, for an account
   whose value is negative and whose shortfall the insurance fund cannot cover, a deleverage
   against opposite holders in ADL order — and the spec runs it on a copy first (`what_if`): only a
   transaction the spec applies is ever submitted;
3. it submits it, waits for the durable acknowledgement (bounded by `submit_timeout`), and plans
   the same account again until it is healthy or nothing valid is left; at most `max_actions`
   transactions per round, so one cascade cannot monopolise the engine's inbox;
4. an account still below maintenance for which nothing valid exists is parked until prices,
   funding, the insurance fund, the liquidator's account or the account itself change.

The liquidator account is the lowest account owned by the configured key (deposit to it first);
while it does not exist only deleverages are emitted. Its own account is indexed like any other:
below maintenance it is alerted (`liquidator_below_maintenance`, once per episode), bankrupt it is
deleveraged; the spec's margin rule, run first by `plan`, keeps it from taking over more than its
margin carries. It keeps what it takes over: unwinding that
inventory on the book is an operator's job (docs/market-services.md, "What is left").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from optinode.exchange.liquidation import LiquidatorAccount, is_below_maintenance, plan
from optinode.exchange.risk_index import RiskIndex
from optinode.logs import alert
from optinode.services.engine import Rejected, Submitter
from optinode.services.market_view import EngineView
from optinode.spec.margin import compute_settled_funding, get_value_and_risk
from optinode.spec.state import State
from optinode.spec.types import Deleverage, L1Context, Liquidate
from optinode.wallet import Key

log = logging.getLogger("optinode.services.liquidator")


@dataclass
class LiquidatorDeps:
    view: EngineView
    submitter: Submitter
    key: Key | None  # the liquidator account's owner; None: deleverage only
    nudges: trio.MemoryReceiveChannel[None] | None = None
    interval: float = 1.0
    submit_timeout: float = 10.0
    order_expiry: int = 300
    max_actions: int = 256
    rebase_ppm: int = 50_000
    index: RiskIndex | None = None
    emitted: dict[str, int] = field(default_factory=lambda: {"Liquidate": 0, "Deleverage": 0})
    refused: dict[str, int] = field(default_factory=dict)
    rounds: int = 0
    own_alerted: bool = False  # liquidator_below_maintenance sent and not yet cleared


def _liquidator_account(deps: LiquidatorDeps) -> LiquidatorAccount | None:
    if deps.key is None:
        return None
    account_id = deps.view.account_of(deps.key.address)
    if account_id is None:
        return None
    # Its own account is indexed like any other (it is never excluded): the positions it takes over
    # can push it below maintenance too. It cannot liquidate itself (the spec's SELF_TRADE), but a
    # bankrupt liquidator account is deleveraged like any bankrupt account, and the operator is alerted.
    return LiquidatorAccount(account_id, deps.key, deps.order_expiry)


def check_own_account(deps: LiquidatorDeps, liquidator: LiquidatorAccount | None) -> None:
    """Alert once per episode while the liquidator's own account is below maintenance: only the
    operator (a deposit) or another liquidator can restore it, and until then it cannot take over
    more exposure (the spec's margin rule 9 refuses it, and `plan` runs the spec first)."""
    state = deps.view.state
    if liquidator is None:
        return
    below = _is_below(state, liquidator.account_id)
    if below and not deps.own_alerted:
        account = state.accounts[liquidator.account_id]
        collateral, positions, _ = compute_settled_funding(state, account)
        value, risk = get_value_and_risk(state, collateral, positions)
        alert(log, "liquidator_below_maintenance", account=liquidator.account_id, value=value, maintenance=risk,
              action="deposit to the liquidator account; it is deleveraged if its value turns negative")
    elif not below and deps.own_alerted:
        alert(log, "liquidator_healthy", level=logging.INFO, account=liquidator.account_id)
    deps.own_alerted = below


def get_options_token(state: State, liquidator: LiquidatorAccount | None) -> tuple:
    """What the options for an account below maintenance depend on besides the account itself:
    prices, funding, the insurance fund and the liquidator's own account (its margin)."""
    me = state.accounts.get(liquidator.account_id) if liquidator is not None else None
    mine = (me.collateral, tuple(sorted((m, p.size) for m, p in me.positions.items()))) if me is not None else None
    return (tuple((m.price, m.funding_index) for m in state.markets), state.insurance, mine)


async def check_round(deps: LiquidatorDeps) -> int:
    """One round; returns how many transactions the engine accepted."""
    index = deps.index
    assert index is not None
    deps.rounds += 1
    liquidator = _liquidator_account(deps)
    view = deps.view
    index.unpark(get_options_token(view.state, liquidator))
    check_own_account(deps, liquidator)
    accepted = 0
    for account_id in index.due():
        acted = False
        while accepted < deps.max_actions:
            ctx = L1Context(view.tx_time())
            taken = view.nonce_reserved(liquidator.account_id) if liquidator is not None else (lambda nonce: False)
            tx = plan(view.state, account_id, ctx, liquidator, index.holders, taken)
            if tx is None:
                break
            if not await _submit(deps, tx):
                acted = True  # refused or late: plan it again next round
                break
            accepted += 1
            acted = True
            # the engine's listener marks what changed; re-value them before planning again
            index.refresh()
        if not acted and _is_below(view.state, account_id):
            index.park(account_id, get_options_token(view.state, liquidator))  # nothing valid can be done now
        if accepted >= deps.max_actions:
            break
    return accepted


def _is_below(state: State, account_id: int) -> bool:
    account = state.accounts.get(account_id)
    return account is not None and bool(account.positions) and is_below_maintenance(state, account)[0]


async def _submit(deps: LiquidatorDeps, tx: Liquidate | Deleverage) -> bool:
    kind = type(tx).__name__
    with trio.move_on_after(deps.submit_timeout) as scope:
        try:
            await deps.submitter.submit(tx)
        except Rejected as rejected:  # the state moved between the check and the engine
            deps.refused[rejected.code.name] = deps.refused.get(rejected.code.name, 0) + 1
            log.info("%s refused by the engine: %s", kind, rejected.code.name)
            return False
    if scope.cancelled_caught:
        deps.refused["TIMEOUT"] = deps.refused.get("TIMEOUT", 0) + 1
        return False
    deps.emitted[kind] += 1
    target = tx.liquidated_id if isinstance(tx, Liquidate) else tx.deleveraged_id
    log.info("%s of account %d accepted (size %d)", kind, target, tx.size)
    return True


async def run(deps: LiquidatorDeps, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    view = deps.view
    deps.index = RiskIndex(view.state, rebase_ppm=deps.rebase_ppm)
    view.on_accounts_changed(deps.index.mark)
    task_status.started()
    while True:
        if await check_round(deps):
            # what it did may have pushed others below (a last-resort deleverage leaves its counterparty
            # below maintenance): look again at once, after letting the other tasks run
            await trio.sleep(0)
            continue
        with trio.move_on_after(deps.interval):
            if deps.nudges is None:
                await trio.sleep_forever()
            try:
                await deps.nudges.receive()
            except trio.EndOfChannel:  # no service nudges: the interval alone paces the rounds
                deps.nudges = None
