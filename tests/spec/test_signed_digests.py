"""`eip712.get_signed_digests` names every signature `state_transition` recovers, so a verifier that
recovers those ahead of its replay (on every core) and remembers them (`recover_signer.remember`)
replays with no recovery of its own; and remembered signers are what `recover_signer` returns."""

from __future__ import annotations

import json

import pytest

from optinode.spec import transition
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import compute_order_digest, get_signed_digests
from optinode.spec.record_codec import decode_transaction
from optinode.spec.serde import from_plain
from optinode.spec.types import L1Context
from optinode.spec.witness import Witness, execute_witness
from optinode.testing import vectors
from optinode.testing.world import World

FILES = sorted(vectors.VECTORS_DIR.rglob("*.json"))
DOMAIN = World().state.config.domain_separator


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_recovery_of_a_vector_is_named(path, monkeypatch) -> None:
    v = json.loads(path.read_text())
    tx = decode_transaction(bytes.fromhex(v["record"][2:]))
    recovered: list[tuple[bytes, bytes]] = []

    def recording(digest: bytes, signature: bytes) -> bytes | None:
        recovered.append((digest, signature))
        return recover_signer(digest, signature)

    monkeypatch.setattr(transition, "recover_signer", recording)
    execute_witness(bytes.fromhex(v["pre_root"][2:]), from_plain(v["witness"], Witness), tx, from_plain(v["l1"], L1Context))
    named = get_signed_digests(DOMAIN, tx)
    assert set(recovered) <= set(named)
    if v["expected"]["applied"] and type(tx).__name__ != "ForcedWithdraw":  # an applied tx checked every signature it carries
        assert recovered == named


def test_remembered_signers_are_returned_without_recovery() -> None:
    w = World()
    order = w.order("alice", is_buy=True, size=10**6, limit_price=3_000 * 10**6, expiry=2**40)
    digest, signature = compute_order_digest(w.state.config.domain_separator, order), order.signature
    alice = recover_signer(digest, signature)
    assert alice is not None
    fake = bytes(range(20))  # nobody's key: only the memo can answer it
    other = signature[:31] + bytes([signature[31] ^ 1]) + signature[32:]  # a signature never recovered
    misses = recover_signer.cache_info().misses
    recover_signer.remember(digest, other, fake)
    assert recover_signer(digest, other) == fake and recover_signer(digest, signature) == alice
    assert recover_signer.cache_info().misses == misses  # neither was recovered again
