"""The shared one-step vectors: fresh, executable from the witness alone, covering every code."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from optinode.spec.record_codec import decode_transaction
from optinode.spec.errors import ErrorCode, WitnessError
from optinode.spec.serde import from_plain
from optinode.spec.types import L1Context, Transaction
from optinode.spec.witness import LeafProof, Witness, execute_witness
from optinode.testing import vectors

FILES = sorted(vectors.VECTORS_DIR.rglob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def parts(v: dict) -> tuple[bytes, Transaction, L1Context, Witness]:
    return (
        bytes.fromhex(v["pre_root"][2:]),
        decode_transaction(bytes.fromhex(v["record"][2:])),
        from_plain(v["l1"], L1Context),
        from_plain(v["witness"], Witness),
    )


def test_vectors_are_fresh() -> None:
    """Regenerating gives exactly the committed files (run `python -m optinode.testing.vectors`)."""
    generated = vectors.generate()
    assert set(generated) == set(FILES)
    stale = [p.name for p, text in generated.items() if p.read_text() != text]
    assert not stale, f"stale vectors: {stale}"


def test_vectors_cover_every_code_and_type() -> None:
    loaded = [load(p) for p in FILES]
    assert {v["expected"]["code_name"] for v in loaded} == {c.name for c in ErrorCode}
    assert {v["tx"]["type"] for v in loaded} == {t.__name__ for t in Transaction.__args__}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_vector_executes_from_witness(path: Path) -> None:
    v = load(path)
    pre_root, tx, ctx, witness = parts(v)
    assert tx == from_plain(v["tx"], Transaction)  # the record decodes to the stated transaction
    post_root, receipt = execute_witness(pre_root, witness, tx, ctx)
    assert "0x" + post_root.hex() == v["expected"]["post_root"]
    assert (int(receipt.code), receipt.applied) == (v["expected"]["code"], v["expected"]["applied"])
    assert (post_root == pre_root) == (not receipt.applied)


def _tamper_leaf(proof: LeafProof) -> LeafProof:
    leaf = bytearray(proof.leaf or b"\x00")
    leaf[-1] ^= 1
    return msgspec.structs.replace(proof, leaf=bytes(leaf))


def _tamper_sibling(proof: LeafProof) -> LeafProof:
    siblings = list(proof.siblings)
    siblings[3] = bytes(31) + b"\x01"
    return msgspec.structs.replace(proof, siblings=tuple(siblings))


@pytest.mark.parametrize("tamper", [_tamper_leaf, _tamper_sibling])
def test_tampered_witness_is_rejected(tamper) -> None:
    checked = 0
    for path in FILES:
        pre_root, tx, ctx, witness = parts(load(path))
        for field in ("accounts", "slots"):
            proofs = getattr(witness, field)
            if not proofs:
                continue
            bad = msgspec.structs.replace(witness, **{field: (tamper(proofs[0]),) + proofs[1:]})
            with pytest.raises(WitnessError):
                execute_witness(pre_root, bad, tx, ctx)
            checked += 1
    assert checked > 50


def test_wrong_globals_or_counters_are_rejected() -> None:
    pre_root, tx, ctx, witness = parts(load(vectors.VECTORS_DIR / "trade" / "ok_slot_maker.json"))
    for bad in (
        msgspec.structs.replace(witness, globals=witness.globals[:-1] + bytes([witness.globals[-1] ^ 1])),
        msgspec.structs.replace(witness, deposits_done=witness.deposits_done + 1),
        msgspec.structs.replace(witness, accounts=witness.accounts[1:]),  # a leaf the trade needs is missing
    ):
        with pytest.raises(WitnessError):
            execute_witness(pre_root, bad, tx, ctx)
