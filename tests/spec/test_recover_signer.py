"""`crypto.recover_signer` turns every hostile signature into None, and only those.

It catches coincurve's ValueError (no point recovers) and nothing wider, so a bug — a wrong argument
type, say — raises instead of passing as "bad signature".
"""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from optinode.spec.constants import SECP256K1_HALF_N, SECP256K1_N
from optinode.spec.crypto import is_valid_signature_form, recover_signer
from optinode.wallet import Key

DIGEST = bytes(range(32))


@given(
    r=st.integers(1, SECP256K1_N - 1),
    s=st.integers(1, SECP256K1_HALF_N),
    v=st.sampled_from([27, 28]),
    digest=st.binary(min_size=32, max_size=32),
)
def test_any_well_formed_signature_recovers_or_is_none(r: int, s: int, v: int, digest: bytes) -> None:
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,))
    assert is_valid_signature_form(signature)
    signer = recover_signer(digest, signature)
    assert signer is None or len(signer) == 20


def test_r_with_no_curve_point_is_none() -> None:
    # x = 5 is not the x-coordinate of any secp256k1 point (5**3 + 7 = 132 is not a square mod p).
    signature = (5).to_bytes(32, "big") + (1).to_bytes(32, "big") + bytes((27,))
    assert recover_signer(DIGEST, signature) is None


def test_a_real_signature_recovers_its_signer() -> None:
    key = Key.from_seed("test-recover-signer")
    signature = key.sign_digest(DIGEST)  # libsecp256k1 signs low-s
    assert is_valid_signature_form(signature)
    assert recover_signer(DIGEST, signature) == key.address


def test_a_bug_is_not_swallowed() -> None:
    signature = (1).to_bytes(32, "big") + (1).to_bytes(32, "big") + bytes((27,))
    with pytest.raises(TypeError):
        recover_signer("a 32-character str, not bytes!!!", signature)  # type: ignore[arg-type]
