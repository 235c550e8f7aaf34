"""keccak256 and secp256k1 public-key recovery (pure; C-backed for speed)."""

from collections import OrderedDict, namedtuple

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


def compute_signer(digest: bytes, signature: bytes) -> bytes | None:
    """The 20-byte address that signed `digest`, or None for a malformed or unrecoverable signature."""
    if not is_valid_signature_form(signature):
        return None
    try:
        key = PublicKey.from_signature_and_message(
            signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None
        )
    except ValueError:  # coincurve: no point recovers for this r (hostile input, not a bug)
        return None
    return keccak(key.format(compressed=False)[1:])[12:]


CacheInfo = namedtuple("CacheInfo", "hits misses maxsize currsize")


class SignerMemo:
    """`compute_signer` memoised (an lru_cache-like object: `cache_info()`, `__wrapped__`).

    The sequencer verifies each order once at admission, so applying it is a memo hit. Admission may
    recover signatures in worker processes, whose memo is not this one: `remember` records what such
    a worker's `compute_signer` returned. When full, the oldest entry is dropped first."""

    def __init__(self, maxsize: int) -> None:
        self.__wrapped__ = compute_signer
        self.maxsize = maxsize
        # An OrderedDict, not a dict: dropping a plain dict's first entry scans the holes earlier
        # drops left at its front, ~25 µs per insert once a 200k-entry memo is full.
        self.memo: OrderedDict[tuple[bytes, bytes], bytes | None] = OrderedDict()
        self.hits = self.misses = 0

    def __call__(self, digest: bytes, signature: bytes) -> bytes | None:
        try:
            signer = self.memo[(digest, signature)]
        except KeyError:
            self.misses += 1
            signer = compute_signer(digest, signature)
            self.remember(digest, signature, signer)
            return signer
        except TypeError:  # an unhashable argument: the recovery itself raises the right error
            return compute_signer(digest, signature)
        self.hits += 1
        return signer

    def remember(self, digest: bytes, signature: bytes, signer: bytes | None) -> None:
        memo = self.memo
        memo[(digest, signature)] = signer
        if len(memo) > self.maxsize:
            try:
                memo.popitem(last=False)
            except KeyError:  # (another thread emptied it meanwhile)
                pass

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self.hits, self.misses, self.maxsize, len(self.memo))


recover_signer = SignerMemo(maxsize=1 << 20)
