"""keccak256 and secp256k1 public-key recovery (pure; C-backed for speed)."""

from collections import OrderedDict, namedtuple
from functools import lru_cache, update_wrapper

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


def memoised(maxsize: int):
    """A decorator: a pure function memoised in a `functools.lru_cache` of `maxsize` entries (a hit
    costs no Python call: the engine asks for each order's digest and signer several times), that
    can also be told an answer computed elsewhere, `remember_key(args, value)`: a worker process's
    memo is not this one. A told answer waits aside (at most `maxsize` of them, oldest out first)
    until it is asked for, then it is cached like any other; `cache_info()` counts that ask as a
    hit, not a miss. `__wrapped__` is the function itself, uncached."""

    def decorate(fn):
        told: OrderedDict = OrderedDict()
        answered = [0]  # asks answered from `told`

        def compute(*args):
            try:
                value = told.pop(args)
            except KeyError:
                return fn(*args)
            answered[0] += 1
            return value

        memo = lru_cache(maxsize=maxsize)(compute)
        update_wrapper(memo, fn)  # its name and docstring, and `__wrapped__` = fn
        lru_info, lru_clear = memo.cache_info, memo.cache_clear

        def remember_key(args: tuple, value) -> None:
            told[args] = value
            if len(told) > maxsize:
                try:
                    told.popitem(last=False)
                except KeyError:  # (another thread emptied it meanwhile)
                    pass

        def cache_info() -> CacheInfo:
            hits, misses, _, size = lru_info()
            return CacheInfo(hits + answered[0], misses - answered[0], maxsize, size + len(told))

        def cache_clear() -> None:
            lru_clear()
            told.clear()
            answered[0] = 0

        memo.remember_key, memo.cache_info, memo.cache_clear = remember_key, cache_info, cache_clear
        memo.memo = _Clearable(cache_clear)  # (`memo.clear()`: a restarted process's empty memo)
        return memo

    return decorate


class _Clearable:
    def __init__(self, clear) -> None:
        self.clear = clear


def signer_memo(maxsize: int):
    """`compute_signer` memoised (see `memoised`), with `remember(digest, signature, signer)`: the
    sequencer verifies each order once at admission, in worker processes, so applying it is a memo
    hit, and a verifier recovers a batch's signatures ahead of its replay the same way."""
    memo = memoised(maxsize)(compute_signer)
    memo.remember = lambda digest, signature, signer: memo.remember_key((digest, signature), signer)
    return memo


recover_signer = signer_memo(maxsize=1 << 20)
