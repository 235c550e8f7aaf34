"""keccak256 and secp256k1 public-key recovery (pure; C-backed for speed)."""

from collections import OrderedDict, namedtuple
from functools import update_wrapper

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


class Memo:
    """A pure function memoised by its arguments, an lru_cache-like object (`cache_info()`,
    `cache_clear()`, `__wrapped__`) that can also be told an answer computed elsewhere
    (`remember_key`): a worker process's memo is not this one. When full, the oldest entry is
    dropped first."""

    def __init__(self, fn, maxsize: int) -> None:
        update_wrapper(self, fn)  # its name and docstring; `__wrapped__` is `fn` itself, uncached
        self.maxsize = maxsize
        # An OrderedDict, not a dict: dropping a plain dict's first entry scans the holes earlier
        # drops left at its front, ~25 µs per insert once a 200k-entry memo is full.
        self.memo: OrderedDict = OrderedDict()
        self.hits = self.misses = 0

    def __call__(self, *args):
        try:
            value = self.memo[args]
        except KeyError:
            self.misses += 1
            value = self.__wrapped__(*args)
            self.remember_key(args, value)
            return value
        except TypeError:  # an unhashable argument: the function itself raises the right error
            return self.__wrapped__(*args)
        self.hits += 1
        return value

    def remember_key(self, args: tuple, value) -> None:
        memo = self.memo
        memo[args] = value
        if len(memo) > self.maxsize:
            try:
                memo.popitem(last=False)
            except KeyError:  # (another thread emptied it meanwhile)
                pass

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self.hits, self.misses, self.maxsize, len(self.memo))

    def cache_clear(self) -> None:
        self.memo.clear()
        self.hits = self.misses = 0


def memoised(maxsize: int):
    """A decorator: the function as a `Memo` of at most `maxsize` entries."""
    return lambda fn: Memo(fn, maxsize)


class SignerMemo(Memo):
    """`compute_signer` memoised. The sequencer verifies each order once at admission, so applying it
    is a memo hit. Admission may recover signatures in worker processes: `remember` records what such
    a worker's `compute_signer` returned."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(compute_signer, maxsize)

    def remember(self, digest: bytes, signature: bytes, signer: bytes | None) -> None:
        self.remember_key((digest, signature), signer)


recover_signer = SignerMemo(maxsize=1 << 20)
