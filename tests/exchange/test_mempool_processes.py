"""The mempool's signature recovery in worker processes — the intake's own pool (what the sequencer
runs) and trio-parallel (which the mempool still accepts): the answers agree with the spec, a bad
signature is still BAD_SIGNATURE, and they land in the engine process's memo of `recover_signer`, so
the engine's own check is a memo hit, not a second recovery; a worker killed under a request does not
change its answers."""

from __future__ import annotations

import os
import signal

import pytest
import trio
import trio_parallel

from optinode.exchange.mempool import IntakeRejected, Limits, Mempool, open_intake_pool
from optinode.exchange.orders import Placement
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import compute_order_digest

from tests.exchange.test_mempool import funded

pytestmark = pytest.mark.trio


@pytest.fixture(params=["pool", "trio_parallel"])
def open_workers(request):
    """How the workers are opened: the intake's pool as the sequencer opens it, or trio-parallel's."""
    if request.param == "pool":
        return lambda: open_intake_pool(Limits())
    return trio_parallel.open_worker_context


async def test_recovery_in_worker_processes_agrees_with_the_spec_and_fills_the_engines_memo(open_workers) -> None:
    w = funded()
    orders = [w.order("alice") for _ in range(30)] + [w.order("bob") for _ in range(30)]
    forged = w.order("carol", signer="alice")  # signed with another key
    broken = w.order("carol")
    broken = type(broken)(**{**{f: getattr(broken, f) for f in broken.__struct_fields__}, "signature": b"\x00" * 64 + b"\x1b"})
    async with open_workers() as workers:
        pool = Mempool(w.state, Limits(recovery_chunk=16), workers=workers)
        outcomes = await pool.submit([Placement(o) for o in orders + [forged, broken]])
    assert all(isinstance(o, bytes) for o in outcomes[:60])
    assert isinstance(outcomes[60], IntakeRejected) and outcomes[60].reason == "WRONG_SIGNER"
    assert isinstance(outcomes[61], IntakeRejected) and outcomes[61].reason == "BAD_SIGNATURE"
    hits, misses = recover_signer.cache_info().hits, recover_signer.cache_info().misses
    signers = [recover_signer(compute_order_digest(w.domain, o), o.signature) for o in orders]
    assert signers == [w.address("alice")] * 30 + [w.address("bob")] * 30
    assert recover_signer.cache_info().hits == hits + 60 and recover_signer.cache_info().misses == misses


async def test_each_check_names_its_error_in_worker_processes_too(open_workers) -> None:
    """The field checks and the digest run in the workers now: the same errors as in process, and a
    field value a worker cannot be handed (it does not pickle) is MALFORMED, not a crash."""
    import msgspec

    w = funded()
    good = w.order("alice")
    out_of_range = msgspec.structs.replace(w.order("alice"), size=2**64)
    wrong_type = msgspec.structs.replace(w.order("alice"), is_buy=1)
    unpicklable = msgspec.structs.replace(w.order("alice"), nonce=lambda: 0)
    not_an_order = w.order("alice").signature
    expired = w.order("alice", expiry=w.state.time - 1)
    unknown_market = w.order("alice", market=7)
    async with open_workers() as workers:
        pool = Mempool(w.state, Limits(recovery_chunk=3), workers=workers)
        outcomes = await pool.submit([Placement(o) for o in (  # type: ignore[arg-type]
            good, out_of_range, wrong_type, expired, unknown_market, good)])
        assert [o.reason if isinstance(o, IntakeRejected) else None for o in outcomes] == [
            None, "MALFORMED", "MALFORMED", "EXPIRED", "MARKET_NOT_FOUND", "DUPLICATE_ORDER"]
        assert "size" in str(outcomes[1]) and "is_buy" in str(outcomes[2])
        odd = await pool.submit([Placement(unpicklable), Placement(not_an_order), Placement(w.order("bob"))])  # type: ignore[arg-type]
        assert [o.reason if isinstance(o, IntakeRejected) else None for o in odd] == ["MALFORMED", "MALFORMED", None]
        assert "nonce" in str(odd[0])
    assert len(pool.queue) == 2


async def test_the_engines_digest_of_an_admitted_order_is_a_memo_hit(open_workers) -> None:
    """The worker computed each order's EIP-712 digest; the engine's `resolve_order` finds it remembered."""
    w = funded()
    orders = [w.order("alice") for _ in range(20)]
    async with open_workers() as workers:
        pool = Mempool(w.state, Limits(recovery_chunk=8), workers=workers)
        outcomes = await pool.submit([Placement(o) for o in orders])
    misses = compute_order_digest.cache_info().misses
    assert [compute_order_digest(w.domain, o) for o in orders] == outcomes
    assert compute_order_digest.cache_info().misses == misses
    assert outcomes == [compute_order_digest.__wrapped__(w.domain, o) for o in orders]


async def test_a_worker_killed_under_a_request_changes_none_of_its_answers() -> None:
    """SIGKILL one of the pool's workers while it holds a request's chunks: the request's answers are
    those of a run with no death (the lost chunks are checked on the engine's thread), and the next
    request is served by the pool again, with a replacement worker."""
    w = funded()
    orders = [w.order(("alice", "bob")[i % 2]) for i in range(120)]
    forged = w.order("carol", signer="alice")
    async with open_intake_pool(Limits(workers=2, jobs_per_worker=4)) as workers:
        pool = Mempool(w.state, Limits(recovery_chunk=8), workers=workers)
        victim = workers.workers[0]
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                outcome: list = []

                async def submit() -> None:
                    outcome.extend(await pool.submit([Placement(o) for o in orders + [forged]]))

                nursery.start_soon(submit)
                while not victim.jobs:  # the request's 15 chunks: 4 queued in each worker, the rest waiting for room
                    await trio.sleep(0)
                os.kill(victim.pid, signal.SIGKILL)
                assert len(victim.jobs) == 4
            while workers.replaced < 1:
                await trio.sleep(0.05)
        assert outcome[:120] == [compute_order_digest.__wrapped__(w.domain, o) for o in orders]
        assert isinstance(outcome[120], IntakeRejected) and outcome[120].reason == "WRONG_SIGNER"
        again = await pool.submit([Placement(w.order("bob")) for _ in range(20)])
        assert all(isinstance(o, bytes) for o in again) and victim.pid not in workers.pids
