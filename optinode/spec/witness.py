"""One-step witnesses: everything needed to execute transaction k of a batch without the state.

A witness holds the pre-state root's preimage (the two tree roots, the globals blob, the queue
counters) and every account and slot leaf the transaction reads or writes, each with its Merkle
proof under the pre-state trees (an empty leaf is b""). `execute_witness` checks all of it against
the agreed pre-state root, runs the ordinary `state_transition` on a state holding only those
leaves, and recomputes the post-state root from the witness alone. The Solidity one-step prover is
the same procedure.
"""

from __future__ import annotations

import msgspec

from .commitment import (
    Commitment,
    compute_state_root_from_parts,
    decode_account,
    decode_globals,
    decode_slot,
    encode_account,
    encode_globals,
    encode_slot,
    hash_account,
    hash_slot,
)
from .constants import ACCOUNT_TREE_DEPTH, HASH_LEN, MAX_SLOT_ID, MAX_U64, SLOT_TREE_DEPTH
from .crypto import keccak
from .errors import WitnessError
from .fields import Hash32
from .merkle import EMPTY_LEAF, compute_root_after_updates, compute_root_from_proof
from .state import State
from .transition import get_forced_deleverage, is_deleverage_request, state_transition
from .types import (
    CancelAll,
    CollectFees,
    Deleverage,
    Deposit,
    ForcedWithdraw,
    L1Context,
    Liquidate,
    Order,
    Receipt,
    SlotRef,
    Trade,
    Transaction,
    Withdraw,
)


class LeafProof(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    index: int
    leaf: bytes  # encoded leaf; b"" for an empty one
    siblings: tuple[Hash32, ...]


class Witness(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    accounts_root: Hash32
    slots_root: Hash32
    globals: bytes
    deposits_done: int
    forced_done: int
    accounts: tuple[LeafProof, ...]
    slots: tuple[LeafProof, ...]


def get_touched_leaves(state: State, tx: Transaction, ctx: L1Context) -> tuple[list[int], list[int]]:
    """Account ids and slot ids a transaction may read or write (a superset; sorted)."""
    accounts: set[int] = set()
    slots: set[int] = set()
    new_orders = 0

    def add_order(order: object) -> None:
        nonlocal new_orders
        if type(order) is SlotRef:
            if 0 <= order.slot < state.next_slot:
                slots.add(order.slot)
                # the full state (the one a witness is built from) holds every existing slot: a
                # missing one is a bug here, not a witness error (get_* never rejects)
                accounts.add(state.slots[order.slot].account_id)
        elif type(order) is Order:
            accounts.add(order.account_id)
            new_orders += 1

    kind = type(tx)
    if kind is Deposit:
        accounts.add(tx.account_id)
    elif kind is Trade:
        add_order(tx.maker)
        add_order(tx.taker)
    elif kind is Liquidate:
        add_order(tx.liquidator)
        accounts.add(tx.liquidated_id)
    elif kind is Withdraw or kind is CancelAll or kind is CollectFees:
        accounts.add(tx.account_id)
    elif kind is Deleverage:
        accounts.update((tx.deleveraged_id, tx.deleverager_id))
    elif kind is ForcedWithdraw:
        entry = ctx.forced.get(state.forced_done)
        if entry is not None:
            accounts.add(entry.account_id)
            if is_deleverage_request(entry) and (fields := get_forced_deleverage(entry)) is not None:
                accounts.add(fields[0])  # the deleverager
    # where new slots would go (none past the tree: such a trade fails TREE_FULL before writing)
    slots.update(i for i in range(state.next_slot, state.next_slot + new_orders) if i <= MAX_SLOT_ID)
    account_ids = sorted(i for i in accounts if isinstance(i, int) and 0 <= i <= state.next_account_id)
    return account_ids, sorted(slots)


def build_witness(state: State, commitment: Commitment, tx: Transaction, ctx: L1Context) -> Witness:
    """The witness for `tx` against `state`; `commitment` must be up to date with the state."""
    if state.dirty_accounts or state.dirty_slots:
        raise ValueError("update the commitment before building a witness")
    account_ids, slot_ids = get_touched_leaves(state, tx, ctx)
    return Witness(
        accounts_root=commitment.accounts.root(),
        slots_root=commitment.slots.root(),
        globals=encode_globals(state),
        deposits_done=state.deposits_done,
        forced_done=state.forced_done,
        accounts=tuple(
            LeafProof(i, encode_account(state.accounts[i]) if i in state.accounts else b"", commitment.accounts.proof(i))
            for i in account_ids
        ),
        slots=tuple(
            LeafProof(i, encode_slot(state.slots[i]) if i in state.slots else b"", commitment.slots.proof(i)) for i in slot_ids
        ),
    )


def _leaf_hash(leaf: bytes) -> bytes:
    return keccak(leaf) if leaf else EMPTY_LEAF


def _check_proofs(root: bytes, proofs: tuple[LeafProof, ...], depth: int, what: str) -> None:
    seen: set[int] = set()
    for proof in proofs:
        if proof.index in seen or len(proof.siblings) != depth or not 0 <= proof.index < 2**depth:
            raise WitnessError(f"{what} {proof.index}: duplicate or malformed proof")
        seen.add(proof.index)
        if compute_root_from_proof(_leaf_hash(proof.leaf), proof.index, proof.siblings) != root:
            raise WitnessError(f"{what} {proof.index}: proof does not match the root")


def _updated_root(root: bytes, proofs: tuple[LeafProof, ...], new_hashes: dict[int, bytes], dirty: set[int], what: str) -> bytes:
    witnessed = {p.index for p in proofs}
    if not dirty <= witnessed:
        raise WitnessError(f"{what} {sorted(dirty - witnessed)} written but not in the witness")
    updates = [(p.index, new_hashes[p.index], p.siblings) for p in proofs if p.index in dirty]
    return compute_root_after_updates(updates) if updates else root


def execute_witness(pre_root: bytes, witness: Witness, tx: Transaction, ctx: L1Context) -> tuple[bytes, Receipt]:
    """The post-state root and receipt of `tx`, from the witness alone.

    Raises WitnessError when the witness does not authenticate against `pre_root` or lacks a leaf
    the transaction needs."""
    # 0. The witness has the shape the prover's ABI allows: 32-byte roots, uint64 counters (one
    #    below the top, so consuming a queue entry cannot overflow them).
    if len(witness.accounts_root) != HASH_LEN or len(witness.slots_root) != HASH_LEN:
        raise WitnessError(f"tree roots are {HASH_LEN} bytes")
    if not (0 <= witness.deposits_done < MAX_U64 and 0 <= witness.forced_done < MAX_U64):
        raise WitnessError("queue counters out of range")
    globals_hash = keccak(witness.globals)
    # 1. The witness is the preimage of the agreed pre-state root.
    root = compute_state_root_from_parts(
        witness.accounts_root, witness.slots_root, globals_hash, witness.deposits_done, witness.forced_done
    )
    if root != pre_root:
        raise WitnessError("witness does not match the pre-state root")
    # 2. Every leaf is proven under its tree root.
    _check_proofs(witness.accounts_root, witness.accounts, ACCOUNT_TREE_DEPTH, "account")
    _check_proofs(witness.slots_root, witness.slots, SLOT_TREE_DEPTH, "slot")
    # 3. A state made of the proven leaves only.
    try:
        state = decode_globals(witness.globals)
        state.accounts = {p.index: decode_account(p.leaf) for p in witness.accounts if p.leaf}
        state.slots = {p.index: decode_slot(p.leaf) for p in witness.slots if p.leaf}
    except ValueError as malformed:
        raise WitnessError(f"undecodable leaf or globals: {malformed}") from malformed
    markets = len(state.markets)
    if any(m >= markets for a in state.accounts.values() for m in a.positions) or any(
        s.market >= markets for s in state.slots.values()
    ):
        raise WitnessError("a leaf refers to a market that does not exist")
    state.deposits_done, state.forced_done = witness.deposits_done, witness.forced_done
    # 4. The ordinary state transition.
    receipt = state_transition(state, tx, ctx)
    if not receipt.applied:
        return pre_root, receipt
    # 5. The post-state root from the written leaves' proofs.
    accounts_root = _updated_root(
        witness.accounts_root,
        witness.accounts,
        {i: hash_account(state.accounts.get(i)) for i in state.dirty_accounts},
        state.dirty_accounts,
        "account",
    )
    slots_root = _updated_root(
        witness.slots_root, witness.slots, {i: hash_slot(state.slots.get(i)) for i in state.dirty_slots}, state.dirty_slots, "slot"
    )
    post_root = compute_state_root_from_parts(
        accounts_root, slots_root, keccak(encode_globals(state)), state.deposits_done, state.forced_done
    )
    return post_root, receipt
