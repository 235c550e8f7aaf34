"""Batch cutting rules, the fault switch, and the admin endpoint's handling of bad requests."""

from __future__ import annotations

import msgspec
import pytest
import trio

from optinode.config import BatchSection
from optinode.services import admin_rpc
from optinode.services.batcher import BatchPolicy, Pending, estimate_append_gas, framed_size
from optinode.services.engine import Submitter
from optinode.services.faults import FaultRefused, Faults
from optinode.spec import serde
from optinode.spec.batch_framing import MAX_RECORD_LEN, frame_records
from optinode.spec.errors import EncodeError
from optinode.store.memory import open_memory
from optinode.testing.world import World

from tests.services.conftest import make_engine


def policy(**overrides) -> BatchPolicy:
    return BatchPolicy.from_config(BatchSection(**overrides), challenge_window=30, clock=60)


def test_hard_limits_records_bytes_gas() -> None:
    p = policy(max_records=3, max_bytes=1024)
    pending = Pending()
    for _ in range(3):
        assert p.fits(pending, (b"x" * 10,))
        pending.add((b"x" * 10,), 0.0)
    assert not p.fits(pending, (b"x",))  # a fourth record
    assert not policy(max_bytes=1024).fits(Pending(), (b"x" * 1024,))  # 1024 + its prefix
    assert framed_size(b"x" * 127) == 128 and framed_size(b"x" * 128) == 130
    big = policy(max_gas=200_000)  # the smallest gas limit the config allows
    assert not big.fits(Pending(), (b"x" * 2_000,)) and estimate_append_gas(1, 2_002) > 200_000


def test_framed_size_is_the_spec_framing() -> None:
    """The batcher counts a record's framed size without framing it: the same as the spec's
    `frame_records` at every length, and refused where the spec refuses."""
    for length in [*range(0, 300), *range(MAX_RECORD_LEN - 300, MAX_RECORD_LEN + 1)]:
        record = b"\x01" * length
        assert framed_size(record) == len(frame_records((record,))), length
    with pytest.raises(EncodeError):
        framed_size(b"\x01" * (MAX_RECORD_LEN + 1))
    p = policy()
    assert p.fits(Pending(), (b"x" * 200, b"y" * 5)) == p.fits_size(Pending(), 2, 203 + 6)


def test_age_and_queue_deadline_cuts() -> None:
    p = policy(max_age=2.0, queue_margin=5.0)
    pending = Pending()
    assert p.due(pending, 100.0, 0) is None  # nothing to cut
    pending.add((b"x",), now=10.0)
    assert p.due(pending, 11.9, 0) is None and p.due(pending, 12.0, 0) == "age"
    queued = Pending()
    queued.add((b"d",), now=10.0, post_by=p.post_by(1_000, 300))
    assert queued.post_by == 1_000 + 300 - (30 + 2 * 60 + 5)
    assert p.due(queued, 10.5, 1_144) is None and p.due(queued, 10.5, 1_145) == "queue deadline"


def test_timestamp_drift_cut() -> None:
    """A batch is cut once the head is max_timestamp_drift - drift_margin past its L1 time."""
    p = BatchPolicy.from_config(BatchSection(max_age=1000.0, drift_margin=20.0), challenge_window=30, clock=60, max_timestamp_drift=100)
    pending = Pending()
    pending.add((b"x",), now=10.0)
    assert p.due(pending, 11.0, 1_000, head_time=1_079, batch_time=1_000) is None
    assert p.due(pending, 11.0, 1_000, head_time=1_080, batch_time=1_000) == "timestamp drift"
    assert policy().due(pending, 11.0, 1_000, head_time=10**9, batch_time=1_000) is None  # no drift configured


def test_the_fault_switch_is_devnet_only() -> None:
    assert Faults.parse("engine.cut:2", chain_id=31337).after == 2
    with pytest.raises(FaultRefused, match="devnets only"):
        Faults.parse("engine.cut", chain_id=1)
    with pytest.raises(FaultRefused, match="unknown point"):
        Faults.parse("engine.nowhere", chain_id=31337)
    Faults.parse(None, chain_id=1).point("engine.cut")  # unarmed: nothing happens


async def _post(port: int, body: bytes, method: str = "POST") -> dict:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(f"{method} / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return msgspec.json.decode(data.partition(b"\r\n\r\n")[2])


@pytest.mark.trio
async def test_admin_endpoint_answers_bad_requests_with_json_rpc_errors(nursery) -> None:
    engine = make_engine(open_memory())
    inbox, _ = trio.open_memory_channel(8)
    port = await nursery.start(admin_rpc.run, admin_rpc.AdminDeps(engine, Submitter(inbox)))
    assert (await _post(port, b"{nope"))["error"]["code"] == -32700
    assert (await _post(port, b"[1, 2]"))["error"]["code"] == -32600
    assert (await _post(port, b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}'))["error"]["code"] == -32601
    bad = await _post(port, b'{"jsonrpc": "2.0", "id": 2, "method": "optinode_adminSubmit", "params": [{"type": "Trade"}]}')
    assert bad["id"] == 2 and bad["error"]["code"] == -32602
    assert (await _post(port, b"", method="GET"))["error"]["code"] == -32600
    claim = await _post(port, b'{"jsonrpc": "2.0", "id": 3, "method": "optinode_adminWithdrawalClaim", "params": [5]}')
    assert claim["error"]["code"] == -32000  # no such account in the genesis checkpoint
    status = await _post(port, b'{"jsonrpc": "2.0", "id": 4, "method": "optinode_adminStatus", "params": []}')
    assert status["result"]["next_batch"] == 1 and status["result"]["last_final"] == 0
    # a well-formed transaction goes to the engine's inbox (nothing serves it here, so only check the shape)
    tx = serde.to_plain(World().withdraw("alice", 1))
    assert tx["type"] == "Withdraw"
