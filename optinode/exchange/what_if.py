"""What-if execution by the spec itself: would this transaction apply, without touching the state?

The market services (docs/market-services.md) never decide validity on their own: before the oracle
feed, the funding service or the liquidator emits a transaction it asks `what_if`, which runs
`spec.transition.state_transition` on a small copy of the state that holds only the accounts and slots
the transaction reads (copied: the spec writes into `Account` objects), the market states and the
globals. The receipt is the spec's answer; the real state is untouched.

Reading an account or slot that was not copied raises the spec's `WitnessError` (the state is
partial, as in a one-step proof), so a caller that names too few leaves gets an error, never a wrong
answer. Cost: one copy of a few accounts plus the transaction's own work (signature recovery), not
a copy of the whole state (`copy_state` is linear in the number of accounts).
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from optinode.spec.state import Account, State
from optinode.spec.transition import state_transition
from optinode.spec.types import L1Context, Receipt, Transaction


def copy_account(account: Account) -> Account:
    """An account the spec may write into (positions are frozen structs; the dict is replaced, never mutated)."""
    return msgspec.structs.replace(account, positions=dict(account.positions))


def partial_state(state: State, account_ids: Iterable[int], slot_ids: Iterable[int] = ()) -> State:
    """A copy of `state` holding only the named accounts and slots (those that exist)."""
    accounts = {i: copy_account(state.accounts[i]) for i in account_ids if i in state.accounts}
    slots = {i: state.slots[i] for i in slot_ids if i in state.slots}  # frozen: the spec replaces slots
    return msgspec.structs.replace(
        state,
        markets=[msgspec.structs.replace(m) for m in state.markets],
        accounts=accounts,
        slots=slots,
        dirty_accounts=set(),
        dirty_slots=set(),
    )


def what_if(state: State, tx: Transaction, ctx: L1Context, account_ids: Iterable[int] = (), slot_ids: Iterable[int] = ()) -> Receipt:
    """The spec's receipt for `tx` at `ctx`, computed on a partial copy (the real state is not touched).
    Raises `WitnessError` if the transaction reads a leaf that was not named."""
    return state_transition(partial_state(state, account_ids, slot_ids), tx, ctx)
