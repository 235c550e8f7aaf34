"""The sequencer's durable record in the store: the command log, batches and state checkpoints.

    journal = Journal(store)
    journal.append([entry, ...])                 # one synced write batch (group commit)
    journal.entries(from_seq)                    # replay
    journal.cut(batch, state)                    # batch record + checkpoint, one synced write batch
    journal.last_checkpoint()                    # (batch index, next seq, state) to restart from

**The log is the truth.** Each `LogEntry` is one accepted command (a submitted spec transaction, or
an L1 queue entry the engine consumed) with the L1 time it was applied at, the records of the spec
transactions it produced and their receipt codes. Replaying the entries in order from a checkpoint
with `replay_entry` rebuilds the state exactly; a code that comes out different is corruption or a
bug, never silently accepted.

**Batches** are ranges of the log: batch i holds the records of entries ``[first_seq, end_seq)``.
A cut writes the `BatchRecord` (with the preimage of its post-state root, what ``appendBatch``
takes) and the `Checkpoint` of the state after it in one synced write batch, so after a crash either
both exist or neither does; entries after the last cut are the pending batch. Checkpoints of earlier
batches are kept: a withdrawal claim proves an account under a finalized batch's root
(`optinode.services.claims`). A checkpoint holds the order books too (`MatcherSnapshot`), so a
restart is the last checkpoint plus the later log.

**Rebuilds** (`rewrite`): batches from some index on are replaced in one synced write batch — their
records and checkpoints deleted, the log entries after the parent checkpoint rewritten in place
(same seqs; an entry that no longer executes is kept, marked ``dropped`` with its reason), the new
batch records and checkpoints written, and the `RebuildMark` (epoch, discards handled) moved on
(docs/sequencer.md, "Rebuilding batches").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Union

import msgspec

from optinode.exchange.matching import MatcherSnapshot
from optinode.exchange.orders import Command as BookCommand
from optinode.spec.record_codec import decode_transaction
from optinode.spec.state import State
from optinode.spec.transition import state_transition
from optinode.spec.types import DepositEntry, ForcedEntry, L1Context
from optinode.store import keys
from optinode.store.codec import Codec
from optinode.store.kv import KV

__all__ = [
    "BatchRecord",
    "Checkpoint",
    "Command",
    "DepositCommand",
    "ForcedCommand",
    "Journal",
    "LogEntry",
    "ReplayMismatch",
    "SubmitCommand",
    "entry_context",
    "replay_entry",
]


class SubmitCommand(msgspec.Struct, frozen=True, tag=True):
    """A spec transaction submitted to the sequencer (its batch record)."""

    record: bytes


class DepositCommand(msgspec.Struct, frozen=True, tag=True):
    """L1 deposit-queue entry ``index`` consumed, credited to ``account_id``."""

    index: int
    owner: bytes
    amount: int
    account_id: int


class ForcedCommand(msgspec.Struct, frozen=True, tag=True):
    """L1 forced-withdrawal request ``index`` consumed (executed or rejected with a reason)."""

    index: int
    requester: bytes
    account_id: int
    # The request's uint256 amount word, 32 bytes big-endian: a cancel-all's or a deleverage's word
    # (FORCED_CANCEL_ALL, FORCED_DELEVERAGE) does not fit msgpack's 64-bit integers.
    amount_word: bytes

    @classmethod
    def of(cls, index: int, requester: bytes, account_id: int, amount: int) -> "ForcedCommand":
        return cls(index, requester, account_id, amount.to_bytes(32, "big"))

    @property
    def amount(self) -> int:
        return int.from_bytes(self.amount_word, "big")


# Order-book commands (optinode.exchange.orders: Placement, CancelOrder, CancelAll, ExpireOrders) are
# logged as themselves; their records are the Trades the matcher emitted. `replay_entry` replays
# those records (the state); the engine replays the commands through its matcher (the books).
Command = Union[SubmitCommand, DepositCommand, ForcedCommand, BookCommand]


class LogEntry(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    l1_timestamp: int  # the L1 time the transactions were applied at: their batch's L1 time
    command: Command
    records: tuple[bytes, ...]  # the spec transactions it produced, as batch records
    codes: tuple[int, ...]  # their receipt codes (every one applied)
    # Set by a rebuild (docs/sequencer.md, "Rebuilding batches"): the acknowledged command no longer
    # executes at the rebuilt batch's L1 time (an order expired meanwhile, ...): the reason (a spec
    # ErrorCode or exchange Reason name). A dropped entry has no records and replays as nothing.
    dropped: str = ""


class BatchRecord(msgspec.Struct, frozen=True, kw_only=True):
    index: int  # the Rollup batch index it is appended at (batch 0 is genesis)
    first_seq: int
    end_seq: int  # exclusive
    record_count: int
    data_bytes: int  # framed batch bytes
    accounts_root: bytes
    slots_root: bytes
    globals_hash: bytes
    deposits_done: int
    forced_done: int
    state_root: bytes
    # the batch's L1 time: every entry's l1_timestamp, declared in appendBatch (the Rollup bounds it)
    l1_timestamp: int = 0
    # how many rebuilds came before its cut (docs/sequencer.md, "Rebuilding batches"): the L1 sender
    # item of its append is unique per (epoch, index), so a rebuilt batch is never confused with the
    # one it replaces
    epoch: int = 0


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    batch_index: int
    next_seq: int  # the first log entry after this batch
    l1_time: int  # the L1 time of its last entry (the engine's clock never runs backwards)
    state: bytes  # JSON of the spec State (see encode_state)
    # the order books and matcher memory at the same point; None: not in this checkpoint (the engine
    # snapshots them every few batches): ``book_at`` is then the batch index of the checkpoint that
    # last held them, whose state and books the engine replays through the log to this one (both
    # None: written before books were checkpointed; the engine then replays from genesis)
    book: MatcherSnapshot | None = None
    book_at: int | None = None


class RebuildMark(msgspec.Struct, frozen=True, kw_only=True):
    """The sequencer's rebuild history: the epoch (rebuilds so far) and the L1 discards already
    handled (their event positions), so a restart neither repeats nor misses one."""

    epoch: int = 0
    discards: tuple[tuple[int, int], ...] = ()  # (block number, log index) of each BatchesDiscarded rolled back for


class FinalMark(msgspec.Struct, frozen=True, array_like=True):
    index: int


ENTRY = Codec(LogEntry)
BATCH = Codec(BatchRecord)
CHECKPOINT = Codec(Checkpoint)
FINAL = Codec(FinalMark)
REBUILD = Codec(RebuildMark)
# Checkpoints hold the whole State as JSON: its integers are unbounded (a nonce window is a 256-bit
# bitmap), which msgpack cannot carry; msgspec's JSON can, exactly.
_STATE_ENCODER = msgspec.json.Encoder()
_STATE_DECODER = msgspec.json.Decoder(State)


class ReplayMismatch(Exception):
    """A logged entry does not replay to the receipts it recorded: the log or the code is wrong."""


def entry_context(entry: LogEntry) -> L1Context:
    """The L1 context an entry was applied with: its time and the queue entry it consumed."""
    command = entry.command
    if type(command) is DepositCommand:
        return L1Context(entry.l1_timestamp, deposits={command.index: DepositEntry(command.owner, command.amount)})
    if type(command) is ForcedCommand:
        return L1Context(entry.l1_timestamp, forced={command.index: ForcedEntry(command.requester, command.account_id, command.amount)})
    return L1Context(entry.l1_timestamp)


def replay_entry(state: State, entry: LogEntry) -> None:
    if entry.dropped:
        return
    ctx = entry_context(entry)
    for record, code in zip(entry.records, entry.codes, strict=True):
        receipt = state_transition(state, decode_transaction(record), ctx)
        if not receipt.applied or receipt.code != code:
            raise ReplayMismatch(f"log entry {entry.seq} replays to {receipt} instead of code {code}")


def encode_state(state: State) -> bytes:
    return _STATE_ENCODER.encode(state)


def decode_state(data: bytes) -> State:
    return _STATE_DECODER.decode(data)


def _write_views(batch: Any, views: Sequence[tuple[bytes, bytes | None]]) -> None:
    for key, value in views:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)


class Journal:
    def __init__(self, store: KV) -> None:
        self.store = store

    # --- the log -----------------------------------------------------------------------------------

    def append(self, entries: list[LogEntry], views: Sequence[tuple[bytes, bytes | None]] = ()) -> None:
        """Make ``entries`` durable together: one synced write batch (one fsync for the group).
        ``views`` are puts (deletes, for None) derived from these entries (the order history) that
        must be exactly as durable as they are: in the same batch, so a crash keeps both or neither."""
        with self.store.write_batch(sync=True) as batch:
            for entry in entries:
                batch.put(keys.log_entry(entry.seq), ENTRY.encode(entry))
            _write_views(batch, views)

    def entries(self, from_seq: int = 0, end_seq: int | None = None) -> Iterator[LogEntry]:
        stop = keys.prefix_end(keys.prefix_of(keys.Prefix.LOG_ENTRY)) if end_seq is None else keys.log_entry(end_seq)
        for key, value in self.store.iterate(start=keys.log_entry(from_seq), stop=stop):
            yield ENTRY.decode(value, key=key)

    def next_seq(self) -> int:
        last = self.store.last(keys.prefix_of(keys.Prefix.LOG_ENTRY))
        return 0 if last is None else keys.parse_log_entry(last[0]) + 1

    # --- batches and checkpoints -------------------------------------------------------------------

    def cut(self, record: BatchRecord, checkpoint: Checkpoint) -> None:
        """Record a batch and the state (and books) after it, atomically and durably."""
        with self.store.write_batch(sync=True) as batch:
            batch.put(keys.batch(record.index), BATCH.encode(record))
            batch.put(keys.checkpoint(record.index), CHECKPOINT.encode(checkpoint))

    def rewrite(self, from_index: int, entries: list[LogEntry], cuts: list[tuple[BatchRecord, Checkpoint]], mark: RebuildMark,
                views: Sequence[tuple[bytes, bytes | None]] = ()) -> None:
        """A rebuild, in one synced write batch: batches ``from_index`` and later and their checkpoints
        go, the re-applied log entries replace theirs (same seqs), the rebuilt batches and their
        checkpoints come in, and the rebuild mark moves on. A crash leaves the old or the new, never a mix."""
        with self.store.write_batch(sync=True) as batch:
            for record in list(self.batches(from_index)):
                batch.delete(keys.batch(record.index))
                batch.delete(keys.checkpoint(record.index))
            for entry in entries:
                batch.put(keys.log_entry(entry.seq), ENTRY.encode(entry))
            for record, checkpoint in cuts:
                batch.put(keys.batch(record.index), BATCH.encode(record))
                batch.put(keys.checkpoint(record.index), CHECKPOINT.encode(checkpoint))
            batch.put(keys.REBUILD, REBUILD.encode(mark))
            _write_views(batch, views)

    def rebuild_mark(self) -> RebuildMark:
        return self.store.get_value(keys.REBUILD, REBUILD) or RebuildMark()

    def write_genesis(self, state: State, book: MatcherSnapshot) -> None:
        if self.store.get(keys.checkpoint(0)) is None:
            genesis = Checkpoint(batch_index=0, next_seq=0, l1_time=0, state=encode_state(state), book=book)
            with self.store.write_batch(sync=True) as batch:
                batch.put(keys.checkpoint(0), CHECKPOINT.encode(genesis))

    def entry(self, seq: int) -> LogEntry | None:
        return self.store.get_value(keys.log_entry(seq), ENTRY)

    def batch(self, index: int) -> BatchRecord | None:
        return self.store.get_value(keys.batch(index), BATCH)

    def batches(self, from_index: int = 1) -> Iterator[BatchRecord]:
        stop = keys.prefix_end(keys.prefix_of(keys.Prefix.BATCH))
        for key, value in self.store.iterate(start=keys.batch(from_index), stop=stop):
            yield BATCH.decode(value, key=key)

    def batch_records(self, batch: BatchRecord) -> list[bytes]:
        return [r for entry in self.entries(batch.first_seq, batch.end_seq) for r in entry.records]

    def checkpoint(self, batch_index: int) -> Checkpoint | None:
        return self.store.get_value(keys.checkpoint(batch_index), CHECKPOINT)

    def last_checkpoint(self) -> Checkpoint | None:
        last = self.store.last(keys.prefix_of(keys.Prefix.CHECKPOINT))
        return None if last is None else CHECKPOINT.decode(last[1], key=last[0])

    # --- finality (re-derivable from L1: written unsynced) -----------------------------------------

    def last_final(self) -> int:
        mark = self.store.get_value(keys.BATCH_FINAL, FINAL)
        return 0 if mark is None else mark.index

    def set_final(self, index: int) -> None:
        with self.store.write_batch(sync=False) as batch:
            batch.put(keys.BATCH_FINAL, FINAL.encode(FinalMark(index)))
