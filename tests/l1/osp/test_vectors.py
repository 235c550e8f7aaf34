"""The Solidity one-step prover against the shared vectors, and witness tampering.

Every file in tests/vectors/ must give exactly its expected (post_root, code, applied). A witness that
does not authenticate against the pre-state root, or lacks a leaf the transaction reads or writes,
must revert with the named error — where the spec's execute_witness raises WitnessError.
"""

from __future__ import annotations

import msgspec
import pytest

from optinode.l1.osp import OneStep, OneStepReverted, call_one_step, call_one_step_batch
from optinode.spec.commitment import compute_state_root_from_parts
from optinode.spec.record_codec import decode_transaction
from optinode.spec.crypto import keccak
from optinode.spec.errors import WitnessError
from optinode.spec.merkle import compute_root_from_proof
from optinode.spec.witness import LeafProof, Witness, execute_witness

from .conftest import Vector, load_vectors

VECTORS = load_vectors()


def test_every_vector_matches(w3, osp, vectors: list[Vector]) -> None:
    assert len(vectors) >= 70
    results = call_one_step_batch(w3, osp, [v.item for v in vectors])
    wrong = []
    for v, result in zip(vectors, results):
        expected = OneStep(v.post_root, v.code, v.applied)
        if result != expected:
            wrong.append(f"{v.name}: got {result!r}, expected {expected!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v.name)
def test_vector(w3, osp, vector: Vector) -> None:
    """One call per vector (the batch test above is the fast path; this one names the failing case)."""
    assert call_one_step(w3, osp, *vector.item) == (vector.post_root, vector.code, vector.applied)


# --- tampering -------------------------------------------------------------------------------------------


def _replace_proof(witness: Witness, field: str, position: int, proof: LeafProof | None) -> Witness:
    proofs = list(getattr(witness, field))
    if proof is None:
        del proofs[position]
    else:
        proofs[position] = proof
    return msgspec.structs.replace(witness, **{field: tuple(proofs)})


def _expect_revert(w3, osp, v: Vector, witness: Witness, error: str, pre_root: bytes | None = None) -> OneStepReverted:
    pre_root = v.pre_root if pre_root is None else pre_root
    # the spec rejects the same witness
    with pytest.raises(WitnessError):
        execute_witness(pre_root, witness, decode_transaction(v.record), v.ctx)
    with pytest.raises(OneStepReverted) as raised:
        call_one_step(w3, osp, pre_root, v.record, v.ctx, witness)
    assert raised.value.name == error, raised.value
    return raised.value


def _with_proofs(field: str) -> list[Vector]:
    return [v for v in VECTORS if getattr(v.witness, field)]


@pytest.mark.parametrize("field", ["accounts", "slots"])
def test_wrong_leaf(w3, osp, field: str) -> None:
    checked = 0
    for v in _with_proofs(field):
        proof = getattr(v.witness, field)[0]
        leaf = bytearray(proof.leaf or b"\x00")
        leaf[-1] ^= 1
        bad = _replace_proof(v.witness, field, 0, msgspec.structs.replace(proof, leaf=bytes(leaf)))
        error = _expect_revert(w3, osp, v, bad, "WitnessProofMismatch")
        assert error.error_args == (0 if field == "accounts" else 1, proof.index)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("field", ["accounts", "slots"])
@pytest.mark.parametrize("height", [0, 3, 31])
def test_wrong_sibling(w3, osp, field: str, height: int) -> None:
    checked = 0
    for v in _with_proofs(field):
        proofs = getattr(v.witness, field)
        # every proof position: later proofs are checked against earlier ones, not hashed in full
        for position, proof in enumerate(proofs):
            siblings = list(proof.siblings)
            siblings[height] = bytes(31) + bytes([siblings[height][31] ^ 1])
            bad = _replace_proof(v.witness, field, position, msgspec.structs.replace(proof, siblings=tuple(siblings)))
            _expect_revert(w3, osp, v, bad, "WitnessProofMismatch")
            checked += 1
    assert checked >= 10


def test_wrong_globals_and_counters(w3, osp) -> None:
    for v in VECTORS[::7]:
        w = v.witness
        for bad in (
            msgspec.structs.replace(w, globals=w.globals[:-1] + bytes([w.globals[-1] ^ 1])),
            msgspec.structs.replace(w, deposits_done=w.deposits_done + 1),
            msgspec.structs.replace(w, forced_done=w.forced_done + 1),
            msgspec.structs.replace(w, accounts_root=keccak(w.accounts_root)),
            msgspec.structs.replace(w, slots_root=keccak(w.slots_root)),
        ):
            _expect_revert(w3, osp, v, bad, "WitnessRootMismatch")
        with pytest.raises(OneStepReverted) as raised:
            call_one_step(w3, osp, keccak(v.pre_root), v.record, v.ctx, w)
        assert raised.value.name == "WitnessRootMismatch"


def test_missing_leaf_read(w3, osp) -> None:
    """A leaf the transaction reads is not in the witness."""
    checked = 0
    for v in VECTORS:
        if v.tx_type not in ("Trade", "Withdraw", "Liquidate", "Deleverage") or not v.witness.accounts:
            continue
        try:
            execute_witness(v.pre_root, _replace_proof(v.witness, "accounts", 0, None), decode_transaction(v.record), v.ctx)
        except WitnessError:
            pass
        else:
            continue  # this transaction fails before it reads that leaf
        error = _expect_revert(w3, osp, v, _replace_proof(v.witness, "accounts", 0, None), "WitnessMissingLeaf")
        assert error.error_args == (0, v.witness.accounts[0].index)
        checked += 1
    assert checked >= 10


def test_missing_leaf_written(w3, osp) -> None:
    """A leaf the transaction writes (a new slot, a new account) is not in the witness."""
    trade = next(v for v in VECTORS if v.name == "trade/ok_new_orders_partial")
    new_slot = max(p.index for p in trade.witness.slots) - 1  # the maker's rest goes to next_slot
    position = next(i for i, p in enumerate(trade.witness.slots) if p.index == new_slot)
    error = _expect_revert(w3, osp, trade, _replace_proof(trade.witness, "slots", position, None), "WitnessMissingLeaf")
    assert error.error_args == (1, new_slot)

    deposit = next(v for v in VECTORS if v.name == "deposit/ok_new_account")
    [position] = [i for i, p in enumerate(deposit.witness.accounts) if p.leaf == b""]
    new_id = deposit.witness.accounts[position].index
    error = _expect_revert(w3, osp, deposit, _replace_proof(deposit.witness, "accounts", position, None), "WitnessMissingLeaf")
    assert error.error_args == (0, new_id)


def test_invalid_transaction_needs_no_written_leaf(w3, osp) -> None:
    """As in the spec, a witness only has to cover the leaves an invalid transaction reads."""
    v = next(v for v in VECTORS if v.name == "trade/insufficient_margin")
    assert not v.applied
    slots_removed = msgspec.structs.replace(v.witness, slots=())
    assert call_one_step(w3, osp, v.pre_root, v.record, v.ctx, slots_removed) == (v.pre_root, v.code, False)


def test_duplicate_and_malformed_proofs(w3, osp) -> None:
    v = next(v for v in VECTORS if v.name == "trade/ok_slot_maker")
    w = v.witness
    duplicated = msgspec.structs.replace(w, accounts=w.accounts + w.accounts[:1])
    _expect_revert(w3, osp, v, duplicated, "WitnessDuplicateLeaf")
    proof = w.accounts[0]
    short = _replace_proof(w, "accounts", 0, msgspec.structs.replace(proof, siblings=proof.siblings[:-1]))
    _expect_revert(w3, osp, v, short, "WitnessMalformedProof")
    outside = _replace_proof(w, "accounts", 0, msgspec.structs.replace(proof, index=proof.index + 2**32))
    _expect_revert(w3, osp, v, outside, "WitnessMalformedProof")


def test_undecodable_leaf(w3, osp) -> None:
    """A proven leaf that does not decode (a root built over garbage) is a witness error."""
    v = next(v for v in VECTORS if v.name == "withdraw/ok")
    w = v.witness
    [proof] = w.accounts
    for garbage in (proof.leaf[:-1], proof.leaf + b"\x00", b"\x01" * 40):
        accounts_root = compute_root_from_proof(keccak(garbage), proof.index, proof.siblings)
        bad = msgspec.structs.replace(
            w, accounts_root=accounts_root, accounts=(msgspec.structs.replace(proof, leaf=garbage),)
        )
        pre_root = compute_state_root_from_parts(accounts_root, w.slots_root, keccak(w.globals), w.deposits_done, w.forced_done)
        error = _expect_revert(w3, osp, v, bad, "WitnessUndecodableLeaf", pre_root=pre_root)
        assert error.error_args == (0, proof.index)
    for globals in (w.globals[:-1], w.globals + b"\x00"):
        bad = msgspec.structs.replace(w, globals=globals)
        pre_root = compute_state_root_from_parts(w.accounts_root, w.slots_root, keccak(globals), w.deposits_done, w.forced_done)
        error = _expect_revert(w3, osp, v, bad, "WitnessUndecodableLeaf", pre_root=pre_root)
        assert error.error_args == (2, 0)


def _with_leaf(v: Vector, field: str, leaf: bytes) -> tuple[Witness, bytes]:
    """v's witness with its first `field` leaf replaced, and a pre-root that authenticates it."""
    from optinode.spec.merkle import compute_path

    w = v.witness
    proof, *others = getattr(w, field)
    path = compute_path(keccak(leaf), proof.index, proof.siblings)
    patched = []
    for other in others:  # the other proofs see the new leaf where their paths meet
        siblings = list(other.siblings)
        siblings[(proof.index ^ other.index).bit_length() - 1] = path[(proof.index ^ other.index).bit_length() - 1]
        patched.append(msgspec.structs.replace(other, siblings=tuple(siblings)))
    proofs = (msgspec.structs.replace(proof, leaf=leaf), *patched)
    bad = msgspec.structs.replace(w, **{field: proofs, f"{field}_root": path[-1]})
    pre_root = compute_state_root_from_parts(bad.accounts_root, bad.slots_root, keccak(w.globals), w.deposits_done, w.forced_done)
    return bad, pre_root


def test_non_canonical_leaf(w3, osp) -> None:
    """Leaves no honest state contains (unsorted or empty positions, unknown markets, a side byte
    other than 0/1) are rejected on both sides rather than read in two different ways."""
    v = next(v for v in VECTORS if v.name == "withdraw/ok")
    leaf = v.witness.accounts[0].leaf
    head = leaf[:92]

    def positions(*items: tuple[int, int]) -> bytes:
        body = b"".join(m.to_bytes(1, "big") + size.to_bytes(8, "big", signed=True) + bytes(16) for m, size in items)
        return head + bytes([len(items)]) + body

    for bad_leaf in (positions((1, 5), (0, 5)), positions((0, 5), (0, 6)), positions((0, 0)), positions((9, 5))):
        bad, pre_root = _with_leaf(v, "accounts", bad_leaf)
        _expect_revert(w3, osp, v, bad, "WitnessUndecodableLeaf", pre_root=pre_root)
    v = next(v for v in VECTORS if v.name == "trade/ok_slot_maker")
    slot = bytearray(v.witness.slots[0].leaf)
    for offset, value in ((5, 2), (4, 9)):  # side byte, market
        bad_slot = bytearray(slot)
        bad_slot[offset] = value
        bad, pre_root = _with_leaf(v, "slots", bytes(bad_slot))
        _expect_revert(w3, osp, v, bad, "WitnessUndecodableLeaf", pre_root=pre_root)


def test_out_of_gas_is_not_a_verdict(w3, osp) -> None:
    """Starving the prover of gas reverts; it never turns into an 'invalid transaction' result."""
    from optinode.l1.osp import encode_call

    for v in VECTORS:
        if v.name not in ("trade/ok_new_orders_partial", "trade/insufficient_margin", "oracle/wrong_signer"):
            continue
        data = encode_call(*v.item)
        for gas in range(100_000, 260_000, 10_000):
            try:
                raw = w3.eth.call({"to": osp, "data": data, "gas": gas})
            except Exception:  # noqa: BLE001 - out of gas: any revert is fine
                continue
            assert OneStep(*__import__("eth_abi").decode(["bytes32", "uint8", "bool"], raw)) == OneStep(
                v.post_root, v.code, v.applied
            )
