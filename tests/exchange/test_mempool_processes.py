"""The mempool's signature recovery in trio-parallel worker processes (what the sequencer runs): the
answers agree with the spec, a bad signature is still BAD_SIGNATURE, and they land in the engine
process's memo of `recover_signer`, so the engine's own check is a memo hit, not a second recovery."""

from __future__ import annotations

import pytest
import trio_parallel

from optinode.exchange.mempool import IntakeRejected, Limits, Mempool
from optinode.exchange.orders import Placement
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import compute_order_digest

from tests.exchange.test_mempool import funded

pytestmark = pytest.mark.trio


async def test_recovery_in_worker_processes_agrees_with_the_spec_and_fills_the_engines_memo() -> None:
    w = funded()
    orders = [w.order("alice") for _ in range(30)] + [w.order("bob") for _ in range(30)]
    forged = w.order("carol", signer="alice")  # signed with another key
    broken = w.order("carol")
    broken = type(broken)(**{**{f: getattr(broken, f) for f in broken.__struct_fields__}, "signature": b"\x00" * 64 + b"\x1b"})
    async with trio_parallel.open_worker_context() as workers:
        pool = Mempool(w.state, Limits(recovery_chunk=16), workers=workers)
        outcomes = await pool.submit([Placement(o) for o in orders + [forged, broken]])
    assert all(isinstance(o, bytes) for o in outcomes[:60])
    assert isinstance(outcomes[60], IntakeRejected) and outcomes[60].reason == "WRONG_SIGNER"
    assert isinstance(outcomes[61], IntakeRejected) and outcomes[61].reason == "BAD_SIGNATURE"
    hits, misses = recover_signer.cache_info().hits, recover_signer.cache_info().misses
    signers = [recover_signer(compute_order_digest(w.domain, o), o.signature) for o in orders]
    assert signers == [w.address("alice")] * 30 + [w.address("bob")] * 30
    assert recover_signer.cache_info().hits == hits + 60 and recover_signer.cache_info().misses == misses


async def test_each_check_names_its_error_in_worker_processes_too() -> None:
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
    async with trio_parallel.open_worker_context() as workers:
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


async def test_the_engines_digest_of_an_admitted_order_is_a_memo_hit() -> None:
    """The worker computed each order's EIP-712 digest; the engine's `resolve_order` finds it remembered."""
    w = funded()
    orders = [w.order("alice") for _ in range(20)]
    async with trio_parallel.open_worker_context() as workers:
        pool = Mempool(w.state, Limits(recovery_chunk=8), workers=workers)
        outcomes = await pool.submit([Placement(o) for o in orders])
    misses = compute_order_digest.cache_info().misses
    assert [compute_order_digest(w.domain, o) for o in orders] == outcomes
    assert compute_order_digest.cache_info().misses == misses
    assert outcomes == [compute_order_digest.__wrapped__(w.domain, o) for o in orders]
