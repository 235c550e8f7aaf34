"""Leaf encodings are canonical: a leaf that no honest state can contain is rejected, even when a
witness authenticates it, so the Python spec and the Solidity prover never have to agree on how to
read one."""

from __future__ import annotations

import json

import msgspec
import pytest

from optinode.spec.commitment import (
    compute_state_root_from_parts,
    decode_account,
    decode_slot,
    encode_account,
    encode_slot,
)
from optinode.spec.crypto import keccak
from optinode.spec.errors import WitnessError
from optinode.spec.merkle import compute_root_from_proof
from optinode.spec.serde import from_plain
from optinode.spec.state import Account, Position, Slot
from optinode.spec.types import L1Context
from optinode.spec.witness import Witness, execute_witness
from optinode.spec.record_codec import decode_transaction
from optinode.testing.vectors import VECTORS_DIR

OWNER = b"\x11" * 20


def _account(positions: list[tuple[int, int, int]]) -> bytes:
    head = encode_account(Account(owner=OWNER, collateral=5, positions={}))[:-1]
    body = b"".join(m.to_bytes(1, "big") + s.to_bytes(8, "big", signed=True) + f.to_bytes(16, "big", signed=True) for m, s, f in positions)
    return head + len(positions).to_bytes(1, "big") + body


def test_canonical_account_round_trips() -> None:
    account = Account(owner=OWNER, collateral=-7, withdrawn=3, nonce_base=9, nonce_bits=5, positions={0: Position(4, -1), 3: Position(-2, 8)})
    assert decode_account(encode_account(account)) == account
    slot = Slot(1, 2, True, 3, 4, 5, 6)
    assert decode_slot(encode_slot(slot)) == slot


@pytest.mark.parametrize(
    "positions",
    [[(3, 1, 0), (1, 1, 0)], [(2, 1, 0), (2, -1, 0)], [(1, 0, 0)]],
    ids=["unsorted", "repeated_market", "empty_position"],
)
def test_non_canonical_account_is_rejected(positions) -> None:
    with pytest.raises(ValueError):
        decode_account(_account(positions))


def test_non_canonical_slot_side_is_rejected() -> None:
    leaf = bytearray(encode_slot(Slot(1, 0, True, 3, 4, 5, 6)))
    leaf[5] = 2
    with pytest.raises(ValueError):
        decode_slot(bytes(leaf))


def _with_account_leaf(vector: str, leaf: bytes) -> tuple[bytes, Witness, object, L1Context]:
    """The vector's witness with its first account leaf replaced, and a pre-root that authenticates it."""
    v = json.loads((VECTORS_DIR / vector).read_text())
    witness = from_plain(v["witness"], Witness)
    proof = witness.accounts[0]
    accounts_root = compute_root_from_proof(keccak(leaf), proof.index, proof.siblings)
    witness = msgspec.structs.replace(
        witness, accounts_root=accounts_root, accounts=(msgspec.structs.replace(proof, leaf=leaf),) + witness.accounts[1:]
    )
    pre_root = compute_state_root_from_parts(
        accounts_root, witness.slots_root, keccak(witness.globals), witness.deposits_done, witness.forced_done
    )
    return pre_root, witness, decode_transaction(bytes.fromhex(v["record"][2:])), from_plain(v["l1"], L1Context)


@pytest.mark.parametrize(
    "positions",
    [[(1, 5, 0), (0, 5, 0)], [(0, 0, 0)], [(9, 5, 0)]],
    ids=["unsorted", "empty_position", "unknown_market"],
)
def test_witness_with_non_canonical_leaf_is_rejected(positions) -> None:
    pre_root, witness, tx, ctx = _with_account_leaf("withdraw/ok.json", _account(positions))
    with pytest.raises(WitnessError):
        execute_witness(pre_root, witness, tx, ctx)
