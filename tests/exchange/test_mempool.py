"""Mempool intake: each check with its error, the limits, and fairness under a flood."""

from __future__ import annotations

import msgspec
import pytest

from optinode.exchange.matching import Matcher
from optinode.exchange.mempool import FairQueue, Limits, Mempool, IntakeRejected, TokenBucket
from optinode.exchange.orders import Placement
from optinode.testing.world import ETH_STEP, FUNDS, World


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def funded(names=("alice", "bob", "carol")) -> World:
    w = World()
    for name in names:
        w.deposit(name, FUNDS)
    return w


def reasons(outcomes) -> list[str | None]:
    return [o.reason if isinstance(o, IntakeRejected) else None for o in outcomes]


@pytest.mark.trio
async def test_each_check_names_its_error() -> None:
    w = funded()
    pool = Mempool(w.state)
    good = w.order("alice")
    out_of_range = msgspec.structs.replace(w.order("alice"), size=2**64)
    unknown_market = w.order("alice", market=7)
    expired = w.order("alice", expiry=w.state.time - 1)
    bad_sig = msgspec.structs.replace(w.order("alice"), signature=b"\x00" * 65)
    short_sig = msgspec.structs.replace(w.order("alice"), signature=b"\x00" * 64)
    wrong_signer = w.order("alice", signer="bob")
    no_account = w.order("nobody", account_id=99)
    outcomes = await pool.submit([Placement(o) for o in (
        good, out_of_range, unknown_market, expired, bad_sig, short_sig, wrong_signer, no_account, good,
    )])
    assert reasons(outcomes) == [
        None, "MALFORMED", "MARKET_NOT_FOUND", "EXPIRED", "BAD_SIGNATURE", "MALFORMED", "WRONG_SIGNER",
        "ACCOUNT_NOT_FOUND", "DUPLICATE_ORDER",
    ]
    assert len(pool.queue) == 1


@pytest.mark.trio
async def test_nonce_checks_use_the_accounts_window() -> None:
    w = funded()
    m = Matcher(w.state)
    m.place(Placement(w.order("bob", is_buy=False, size=ETH_STEP, nonce=300)))
    m.place(Placement(w.order("alice", size=ETH_STEP, nonce=0)))  # fills: bob's window slides to 45..300
    pool = Mempool(w.state)
    outcomes = await pool.submit([
        Placement(w.order("bob", is_buy=False, nonce=300)),
        Placement(w.order("bob", is_buy=False, nonce=10)),
        Placement(w.order("bob", is_buy=False, nonce=301)),
    ])
    assert reasons(outcomes) == ["NONCE_USED", "NONCE_TOO_LOW", None]


@pytest.mark.trio
async def test_request_size_limit() -> None:
    w = funded()
    pool = Mempool(w.state, Limits(max_request_items=3))
    with pytest.raises(IntakeRejected, match="REQUEST_TOO_LARGE"):
        await pool.submit([Placement(w.order("alice")) for _ in range(4)])


def test_token_bucket_refills_with_time() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    assert all(bucket.take(1, 1) for _ in range(5))
    assert not bucket.take(1, 1)
    assert bucket.take(2, 1)  # another account has its own bucket
    clock.now += 0.35  # 3.5 tokens back
    assert [bucket.take(1, 1) for _ in range(4)] == [True, True, True, False]


@pytest.mark.trio
async def test_rate_limit_rejects_with_a_clear_error_and_spares_others() -> None:
    w = funded()
    clock = Clock()
    pool = Mempool(w.state, Limits(items_per_second=1, burst=3), clock=clock)
    flood = await pool.submit([Placement(w.order("alice")) for _ in range(5)])
    assert reasons(flood) == [None, None, None, "RATE_LIMITED", "RATE_LIMITED"]
    assert reasons(await pool.submit([Placement(w.order("bob"))])) == [None]
    clock.now += 1
    assert reasons(await pool.submit([Placement(w.order("alice"))])) == [None]


@pytest.mark.trio
async def test_a_flood_from_one_account_never_starves_the_others() -> None:
    w = funded(("alice", "bob", "carol"))
    pool = Mempool(w.state, Limits(items_per_second=10**6, burst=10**6, max_request_items=1000))
    await pool.submit([Placement(w.order("alice", nonce=n)) for n in range(600)])
    await pool.submit([Placement(w.order("bob")), Placement(w.order("bob"))])
    await pool.submit([Placement(w.order("carol"))])
    first = await pool.next_batch(4)
    owners = [p.order.account_id for p, _ in first]
    assert sorted(owners) == [0, 0, 1, 2]  # bob and carol are served in the first round
    second = await pool.next_batch(2)
    assert sorted(p.order.account_id for p, _ in second) == [0, 1]  # bob's second order in the next round
    rest = await pool.next_batch(10_000)
    assert len(rest) == 600 - 3 and {p.order.account_id for p, _ in rest} == {0}


def test_fair_queue_bounds_each_account() -> None:
    queue = FairQueue(max_per_account=2)
    queue.put(1, "a")
    queue.put(1, "b")
    with pytest.raises(IntakeRejected, match="QUEUE_FULL"):
        queue.put(1, "c")
    queue.put(2, "x")
    assert queue.pop(10) == ["a", "x", "b"] and len(queue) == 0


@pytest.mark.trio
async def test_recovery_in_threads_agrees_with_the_spec_and_fills_its_memo() -> None:
    from optinode.spec.crypto import recover_signer

    w = funded()
    pool = Mempool(w.state, Limits(recovery_chunk=8))
    orders = [w.order("alice") for _ in range(50)] + [w.order("bob") for _ in range(50)]
    pairs = [(compute_hash(w, o), o.signature) for o in orders]
    signers = await pool.recover(pairs)
    assert signers == [w.address("alice")] * 50 + [w.address("bob")] * 50
    hits = recover_signer.cache_info().hits
    assert [recover_signer(d, s) for d, s in pairs] == signers
    assert recover_signer.cache_info().hits == hits + 100  # the engine's check will be a memo hit


def compute_hash(w: World, order) -> bytes:
    from optinode.spec.eip712 import compute_order_digest

    return compute_order_digest(w.domain, order)


@pytest.mark.trio
async def test_signed_cancels_are_checked_and_drop_what_is_still_queued() -> None:
    from optinode.exchange.cancel import SignedCancelAll, SignedCancelOrder, compute_cancel_digest
    from optinode.exchange.orders import CancelAll, CancelOrder

    w = funded()
    pool = Mempool(w.state)
    queued = [Placement(w.order("alice", nonce=n)) for n in range(4)]
    hashes = await pool.submit(queued)

    def signed(message, name="alice"):
        return msgspec.structs.replace(message, signature=w.key(name).sign_digest(compute_cancel_digest(w.domain, message)))

    one = signed(SignedCancelOrder(0, hashes[1], b""))
    assert await pool.check_cancel(one) == (CancelOrder(0, hashes[1]), True)
    assert (await pool.check_cancel(one))[1] is False  # twice: nothing more to drop
    floor = signed(SignedCancelAll(0, 3, b""))
    assert await pool.check_cancel(floor) == (CancelAll(0, 3, floor.signature), False)  # signed: the engine posts it
    taken = await pool.next_batch(10)
    assert [h for _, h in taken] == [hashes[3]]  # 1 cancelled, 0 and 2 below the floor
    late = await pool.submit([Placement(w.order("alice", nonce=2))])
    assert reasons(late) == ["NONCE_CANCELLED"]
    for bad, reason in (
        (signed(SignedCancelOrder(0, hashes[0], b""), name="bob"), "WRONG_SIGNER"),
        (SignedCancelOrder(0, hashes[0], b"\x00" * 65), "BAD_SIGNATURE"),
        (SignedCancelOrder(0, b"\x00" * 31, b"\x00" * 65), "MALFORMED"),
        (signed(SignedCancelOrder(42, hashes[0], b"")), "ACCOUNT_NOT_FOUND"),
    ):
        with pytest.raises(IntakeRejected, match=reason):
            await pool.check_cancel(bad)


def test_requests_are_cut_into_even_parts() -> None:
    from optinode.exchange.mempool import split_evenly

    assert [len(p) for p in split_evenly(200, 128)] == [100, 100]
    assert [len(p) for p in split_evenly(129, 128)] == [65, 64]
    assert [len(p) for p in split_evenly(5, 128)] == [5] and split_evenly(0, 128) == []
    for count in range(0, 300, 7):
        for most in (1, 3, 16, 128):
            parts = split_evenly(count, most)
            assert [i for p in parts for i in p] == list(range(count)) and all(0 < len(p) <= most for p in parts)
