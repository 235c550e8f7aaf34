"""The batcher: when to cut the pending batch.

    policy = BatchPolicy.from_config(config.node.batch, deadline_slack=…)
    policy.fits(pending, record)          # the engine asks before adding a record: a size limit cuts first
    await run(deps, cuts, task_status=…)  # the service: age and queue-deadline cuts

Limits (op-batcher's and Arbitrum's batch poster's, for one L1 transaction per batch):

- **records** (``max_records``), **bytes** of the framed batch (``max_bytes``, under the 128 KiB
  transaction-size limit with room for the ABI envelope) and **gas** (`estimate_append_gas` <=
  ``max_gas``, under EIP-7825's 2^24 per transaction). These are hard: the engine cuts *before* a
  record that would cross one, so a batch never exceeds them (`BatchPolicy.fits`).
- **age** (``max_age``): the pending batch is cut once its first command is this old, so a quiet
  exchange still posts within ``max_age`` plus the L1 inclusion time.
- **queue deadlines**: a deposit or forced request must be consumed by a *finalized* batch within
  its L1 deadline, and a batch takes ``challenge_window`` (plus two game clocks if it is challenged)
  to finalize. A batch holding queue entries is cut once the L1 time reaches ``entry time + deadline
  - (window + 2 clocks) - queue_margin`` for its oldest entry. (The engine consumes an entry as soon
  as it is ``queue_confirmations`` deep, so in practice the age cut comes first.)
- **timestamp drift**: a batch is executed at one L1 time (its first entry's, `Engine.batch_time`)
  and the Rollup refuses it once the append block is more than ``max_timestamp_drift`` later. The
  batch is cut once the L1 head is ``max_timestamp_drift - drift_margin`` past its time, leaving
  ``drift_margin`` for the append to be mined (docs/sequencer.md, "Batch time").

The state root is computed once per batch, at the cut (`Engine.cut`), over the leaves that changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import trio

from optinode.spec.batch_framing import MAX_RECORD_LEN, frame_records

__all__ = ["APPEND_BASE_GAS", "BatchPolicy", "Pending", "estimate_append_gas", "framed_size", "run"]

# appendBatch's cost, measured with bench/l1cost.py on anvil (docs/benchmarks.md) and rounded up:
APPEND_BASE_GAS = 160_000  # 21k intrinsic, the batch record and bond slots, two events, the queue read
GAS_PER_RECORD = 600  # the transaction tree: a leaf hash and about one inner node per record
GAS_PER_BYTE = 40  # calldata at the EIP-7623 floor price for a non-zero byte (an upper bound per byte)


def framed_size(record: bytes) -> int:
    """Bytes the record takes in the framed batch (its length prefix included): the spec's framing
    (`frame_records`: a one-byte prefix below 0x80, two bytes up to MAX_RECORD_LEN; a longer record
    is refused there). Counted, not framed: the engine asks this for every record it logs."""
    length = len(record)
    if length > MAX_RECORD_LEN:
        return len(frame_records((record,)))  # (raises the spec's EncodeError)
    return length + (1 if length < 0x80 else 2)  # format: the spec's one-byte prefix below 0x80


def estimate_append_gas(records: int, data_bytes: int) -> int:
    """An upper bound on the L1 gas of appending a batch of ``records`` records in ``data_bytes``."""
    return APPEND_BASE_GAS + GAS_PER_RECORD * records + GAS_PER_BYTE * (data_bytes + 7 * 32 + 4)


@dataclass
class Pending:
    """What the pending batch holds (the engine keeps it up to date)."""

    entries: int = 0
    records: int = 0
    data_bytes: int = 0
    started_at: float | None = None  # trio clock at its first entry
    post_by: float | None = None  # L1 time by which it must be posted (queue deadlines), if any

    def add(self, records: tuple[bytes, ...], now: float, post_by: float | None = None) -> None:
        if self.started_at is None:
            self.started_at = now
        self.entries += 1
        self.records += len(records)
        self.data_bytes += sum(framed_size(r) for r in records)
        if post_by is not None and (self.post_by is None or post_by < self.post_by):
            self.post_by = post_by


@dataclass(frozen=True)
class BatchPolicy:
    max_records: int
    max_bytes: int
    max_gas: int
    max_age: float
    deadline_slack: float  # seconds before a queue entry's deadline its batch must be posted
    # cut once the head is this far past the batch's L1 time (max_timestamp_drift - drift_margin)
    drift_cut: float | None = None

    @classmethod
    def from_config(cls, batch: Any, *, challenge_window: int, clock: int, max_timestamp_drift: int | None = None) -> BatchPolicy:
        drift_cut = None if max_timestamp_drift is None else max_timestamp_drift - batch.drift_margin
        return cls(batch.max_records, batch.max_bytes, batch.max_gas, batch.max_age,
                   deadline_slack=challenge_window + 2 * clock + batch.queue_margin, drift_cut=drift_cut)

    def fits(self, pending: Pending, records: tuple[bytes, ...]) -> bool:
        """Whether ``records`` can join the pending batch without crossing a hard limit."""
        return self.fits_size(pending, len(records), sum(framed_size(r) for r in records))

    def fits_size(self, pending: Pending, records: int, framed_bytes: int) -> bool:
        """Whether ``records`` more records of ``framed_bytes`` in all (prefixes included) can join."""
        count = pending.records + records
        size = pending.data_bytes + framed_bytes
        return count <= self.max_records and size <= self.max_bytes and estimate_append_gas(count, size) <= self.max_gas

    def post_by(self, entry_time: int, deadline: int) -> float:
        return entry_time + deadline - self.deadline_slack

    def due(self, pending: Pending, now: float, l1_time: int, head_time: int = 0, batch_time: int | None = None) -> str | None:
        """Why the pending batch must be cut now (None: not yet)."""
        if pending.entries == 0:
            return None
        if pending.started_at is not None and now - pending.started_at >= self.max_age:
            return "age"
        if pending.post_by is not None and l1_time >= pending.post_by:
            return "queue deadline"
        if self.drift_cut is not None and batch_time is not None and head_time - batch_time >= self.drift_cut:
            return "timestamp drift"
        return None


class CutRequest:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class EngineView(Protocol):
    pending: Pending
    l1_time: int
    batch_time: int | None  # the pending batch's L1 time
    head_time: int  # the newest L1 head's time


@dataclass
class BatcherDeps:
    engine: EngineView
    policy: BatchPolicy
    tick: float = 0.1


async def run(deps: BatcherDeps, cuts: trio.MemorySendChannel[Any], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Every ``tick``, ask the engine to cut when the pending batch is due (age or queue deadline).
    One request at a time: the next is sent only after the engine has cut (or the batch emptied)."""
    task_status.started()
    async with cuts:
        requested_for: float | None = None
        while True:
            await trio.sleep(deps.tick)
            pending = deps.engine.pending
            if requested_for is not None and pending.started_at == requested_for:
                continue  # the last request is still in the engine's inbox
            reason = deps.policy.due(pending, trio.current_time(), deps.engine.l1_time, deps.engine.head_time, deps.engine.batch_time)
            if reason is not None:
                requested_for = pending.started_at
                await cuts.send(CutRequest(reason))
