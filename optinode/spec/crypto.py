"""keccak256 and secp256k1 public-key recovery (pure; C-backed for speed)."""

from collections.abc import Iterable
from functools import lru_cache

from coincurve import PublicKey
from sha3 import keccak_256  # safe-pysha3: ~7x faster than the pycryptodome backend here

from .constants import SECP256K1_HALF_N, SECP256K1_N, SIGNATURE_LEN


def keccak(data: bytes) -> bytes:
    return keccak_256(data).digest()


def is_valid_signature_form(signature: bytes) -> bool:
    """65 bytes r ‖ s ‖ v with v in {27, 28}, 0 < r < n and 0 < s <= n/2 (low s, as EIP-2)."""
    if len(signature) != SIGNATURE_LEN or signature[SIGNATURE_LEN - 1] not in (27, 28):
        return False
    r = int.from_bytes(signature[0:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    return 0 < r < SECP256K1_N and 0 < s <= SECP256K1_HALF_N


# Signers recovered earlier that `remember_signers` is handing to the memo (empty between its calls).
_REMEMBERED: dict[tuple[bytes, bytes], bytes | None] = {}


@lru_cache(maxsize=1 << 20)
def recover_signer(digest: bytes, signature: bytes) -> bytes | None:
    """The 20-byte address that signed `digest`, or None for a malformed or unrecoverable signature.

    Memoised: the sequencer verifies each order once at admission, so applying it is a cache hit."""
    if not is_valid_signature_form(signature):
        return None
    remembered = _REMEMBERED.pop((digest, signature), False)
    if remembered is not False:
        return remembered
    try:
        key = PublicKey.from_signature_and_message(
            signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None
        )
    except ValueError:  # coincurve: no point recovers for this r (hostile input, not a bug)
        return None
    return keccak(key.format(compressed=False)[1:])[12:]


def remember_signers(recovered: Iterable[tuple[bytes, bytes, bytes | None]]) -> None:
    """Put signers recovered earlier, (digest, signature, signer) as `recover_signer` returned them, in
    its memo without recovering them again: a verifier's store keeps what it recovered once (in
    worker threads or processes, or before a restart). The caller vouches for them, as it does for
    any state it loads."""
    for digest, signature, signer in recovered:
        _REMEMBERED[(digest, signature)] = signer
        recover_signer(digest, signature)  # a memo miss takes the remembered signer; a hit leaves it
        _REMEMBERED.pop((digest, signature), None)
