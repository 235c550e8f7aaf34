"""Withdrawal claims: the proof a user sends to `Bridge.claimWithdrawal`, built from the sequencer's store.

    claim = build_withdrawal_claim(store, account_id)          # under the last batch known final
    bridge.functions.claimWithdrawal(*claim.as_args()).transact(...)

A signed `Withdraw` applied on L2 raises the account's cumulative ``withdrawn``; once a batch at or
after it is final, the Bridge pays ``withdrawn - paid`` to the account's owner against the account
leaf proven under that batch's root. The store can read back the state checkpoint of the last final
batch and every later one (docs/sequencer.md, "Checkpoints"), so the proof is the account leaf and its siblings in the accounts tree of that checkpoint, plus the root's
preimage (`StateParts`), checked here against the batch's recorded root before it is handed out.
"""

from __future__ import annotations

from typing import Any

import msgspec

from optinode.errors import InvalidInput
from optinode.services.journal import Journal
from optinode.spec.commitment import Commitment, encode_account, encode_globals
from optinode.spec.commitment import compute_state_root_from_parts
from optinode.spec.crypto import keccak
from optinode.store.kv import Reader

__all__ = ["ClaimUnavailable", "WithdrawalClaim", "build_withdrawal_claim"]


class ClaimUnavailable(InvalidInput):
    """No final batch, no checkpoint for it, or no such account in it."""


class WithdrawalClaim(msgspec.Struct, frozen=True, kw_only=True):
    batch_index: int
    accounts_root: bytes
    slots_root: bytes
    globals_hash: bytes
    deposits_done: int
    forced_done: int
    account_id: int
    leaf: bytes
    siblings: tuple[bytes, ...]
    withdrawn: int  # the cumulative amount the leaf carries

    def as_args(self) -> tuple[Any, ...]:
        """``claimWithdrawal(batchIndex, StateParts, AccountProof)`` arguments for web3 / eth-abi."""
        parts = (self.accounts_root, self.slots_root, self.globals_hash, self.deposits_done, self.forced_done)
        return self.batch_index, parts, (self.account_id, self.leaf, list(self.siblings))


def build_withdrawal_claim(store: Reader, account_id: int, batch_index: int | None = None) -> WithdrawalClaim:
    journal = Journal(store)  # type: ignore[arg-type]  # reads only
    index = journal.last_final() if batch_index is None else batch_index
    state = journal.state_at(index)
    if state is None:
        raise ClaimUnavailable(f"no state checkpoint for batch {index} (a claim is under the last final batch or a later one)")
    account = state.accounts.get(account_id)
    if account is None:
        raise ClaimUnavailable(f"account {account_id} does not exist in batch {index}")
    commitment = Commitment.from_state(state)
    claim = WithdrawalClaim(
        batch_index=index,
        accounts_root=commitment.accounts.root(),
        slots_root=commitment.slots.root(),
        globals_hash=keccak(encode_globals(state)),
        deposits_done=state.deposits_done,
        forced_done=state.forced_done,
        account_id=account_id,
        leaf=encode_account(account),
        siblings=commitment.accounts.proof(account_id),
        withdrawn=account.withdrawn,
    )
    batch = journal.batch(index)
    root = compute_state_root_from_parts(claim.accounts_root, claim.slots_root, claim.globals_hash, claim.deposits_done, claim.forced_done)
    if batch is not None and batch.state_root != root:
        raise RuntimeError(f"checkpoint {index} does not give batch {index}'s root: the store is damaged")
    return claim
