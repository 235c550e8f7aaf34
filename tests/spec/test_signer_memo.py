"""`crypto.signer_memo`: the memo behind `recover_signer` (remembered answers, bounded, least recently
used out first; told answers waiting to be asked for, oldest out first)."""

from optinode.spec.crypto import compute_signer, signer_memo
from optinode.wallet import Key


def test_a_remembered_signer_is_a_hit_and_the_oldest_entry_goes_first() -> None:
    key = Key.from_seed("test-signer-memo")
    digests = [bytes([i]) * 32 for i in range(4)]
    signatures = [key.sign_digest(d) for d in digests]
    memo = signer_memo(maxsize=2)
    memo.remember(digests[0], signatures[0], key.address)  # as a worker process answered
    assert memo(digests[0], signatures[0]) == key.address and memo.cache_info().hits == 1 and memo.cache_info().misses == 0
    assert memo(digests[1], signatures[1]) == compute_signer(digests[1], signatures[1]) == key.address  # a miss, computed
    assert memo(digests[2], signatures[2]) == key.address
    assert memo.cache_info().currsize == 2
    misses = memo.cache_info().misses
    assert memo(digests[0], signatures[0]) == key.address and memo.cache_info().misses == misses + 1  # the oldest went
    assert memo(b"\x00" * 32, b"\x00" * 65) is None  # malformed: None, remembered like any answer


def test_the_order_digest_memo_takes_remembered_answers_and_clears() -> None:
    from optinode.spec.crypto import memoised
    from optinode.spec.eip712 import compute_order_digest
    from optinode.testing.world import World

    w = World()
    order = w.order("alice", nonce=12345)
    memo = memoised(maxsize=4)(compute_order_digest.__wrapped__)
    memo.remember_key((w.domain, order), b"\x01" * 32)  # as a worker process answered (here: a made-up one)
    assert memo(w.domain, order) == b"\x01" * 32 and memo.cache_info().hits == 1
    memo.cache_clear()
    assert memo.cache_info() == (0, 0, 4, 0)
    assert memo(w.domain, order) == compute_order_digest(w.domain, order) and memo.cache_info().misses == 1
    assert compute_order_digest.__name__ == "compute_order_digest" and "Memoised" in compute_order_digest.__doc__
