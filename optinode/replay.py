"""A posted batch replayed with the spec (the verifier, the defender, the dispute tests and bench/gas.py): the root after
every transaction, the root's preimage the L1 contracts take, and the one-step witness of any index.

    honest = Replay(w.state, records, ctx)                  # w: a World (or any pre-state)
    bad = Replay(w.state, records, ctx, tamper_after=2)     # a sequencer that mints 1 unit after tx 2
    honest.roots[k]                                         # the root after k transactions
    witness, pre_state = honest.witness(k)                  # the one-step proof input for tx k
"""

from __future__ import annotations

from collections.abc import Sequence

from optinode.l1.contracts import StateParts
from optinode.spec.commitment import Commitment, encode_account, encode_globals
from optinode.spec.crypto import keccak
from optinode.spec.record_codec import decode_transaction
from optinode.spec.state import State, copy_state, set_account
from optinode.spec.transition import state_transition
from optinode.spec.types import L1Context, Transaction
from optinode.spec.witness import Witness, build_witness


def state_parts(state: State, commitment: Commitment) -> StateParts:
    """The preimage of the state root, as the Rollup and Bridge take it (the commitment up to date)."""
    return StateParts(
        commitment.accounts.root(), commitment.slots.root(), keccak(encode_globals(state)), state.deposits_done, state.forced_done
    )


def account_proof(state: State, commitment: Commitment, account_id: int) -> tuple[int, bytes, list[bytes]]:
    """(account id, leaf, siblings): what the Bridge's claimWithdrawal / registerClaim take to prove an
    account under the state's root (the commitment up to date)."""
    return (account_id, encode_account(state.accounts[account_id]), list(commitment.accounts.proof(account_id)))


def mint_one(state: State) -> None:
    account = state.accounts[0]
    account.collateral += 1
    set_account(state, 0, account)


def _fresh(state: State) -> tuple[State, Commitment]:
    state = copy_state(state)
    state.dirty_accounts.clear()
    state.dirty_slots.clear()
    return state, Commitment.from_state(state)


class Replay:
    """Roots after each transaction of a batch, replayed with the spec from `pre_state` (left untouched).
    `tamper_after=k`: after transaction k the first account gains one unit of collateral, as a buggy or
    malicious sequencer's state would, so every root from index k + 1 on is wrong. If account 0 does not
    exist yet after transaction k (the batch opens it later, with a deposit), the unit is minted after
    the first transaction from k on that leaves it existing (`minted_at`; None: never)."""

    def __init__(self, pre_state: State, records: Sequence[bytes], ctx: L1Context, *, tamper_after: int | None = None,
                 txs: Sequence[Transaction] | None = None) -> None:
        self.pre_state = pre_state
        self.records = list(records)
        self.txs = list(txs) if txs is not None else [decode_transaction(r) for r in self.records]  # `txs`: decoded already
        assert len(self.txs) == len(self.records)
        self.ctx = ctx
        self.tamper_after = tamper_after
        self.minted_at: int | None = None
        state, commitment = _fresh(pre_state)
        self.roots = [commitment.update(state)]
        for k, tx in enumerate(self.txs):
            receipt = state_transition(state, tx, ctx)
            if tamper_after is not None and k >= tamper_after and self.minted_at is None and 0 in state.accounts:
                mint_one(state)
                self.minted_at = k
            elif not receipt.applied:  # an invalid transaction changes nothing: the root stays (and is not rehashed)
                self.roots.append(self.roots[-1])
                continue
            self.roots.append(commitment.update(state))
        self.final_state = state
        self.commitment = commitment

    def parts(self) -> StateParts:
        """The preimage of the final root."""
        parts = state_parts(self.final_state, self.commitment)
        assert parts.root() == self.roots[-1]
        return parts

    def witness(self, k: int) -> tuple[Witness, State]:
        """The witness of transaction k against this replay's state before it, and that state
        (replayed again from the pre-state, so a long batch keeps no copies)."""
        state, _ = _fresh(self.pre_state)
        for index, tx in enumerate(self.txs[:k]):
            state_transition(state, tx, self.ctx)
            if self.minted_at == index:
                mint_one(state)
        state, commitment = _fresh(state)
        return build_witness(state, commitment, self.txs[k], self.ctx), state
