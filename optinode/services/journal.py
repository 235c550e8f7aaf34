"""The sequencer's durable record in the store: the command log, batches and state checkpoints.

    journal = Journal(store)
    journal.append([entry, ...])                        # one synced write batch (group commit)
    journal.entries(from_seq)                           # replay
    journal.append_batch(record)                        # a cut batch, synced
    journal.write_checkpoint(record, header, delta)     # its checkpoint: the rows that changed + undo
    journal.restore_point(batch_index)                  # (header, state, books) of any pending batch's checkpoint

**The log is the truth.** Each `LogEntry` is one accepted command (a submitted spec transaction, or
an L1 queue entry the engine consumed) with the L1 time it was applied at, the records of the spec
transactions it produced and their receipt codes. Replaying the entries in order from a checkpoint
with `replay_entry` rebuilds the state exactly; a code that comes out different is corruption or a
bug, never silently accepted.

**Batches** are ranges of the log: batch i holds the records of entries ``[first_seq, end_seq)``.
A cut writes the `BatchRecord` (with the preimage of its post-state root, what ``appendBatch``
takes), synced; entries after the last cut are the pending batch.

**Checkpoints are incremental** (docs/sequencer.md, "Checkpoints"): one row per account, slot,
resting order, seen order hash and book floor (`keys.Row`), rewritten only when it changed, with a
per-batch undo record of what it overwrote and a small header (`Checkpoint`: next seq, L1 time, the
state's globals). A checkpoint costs O(what changed); the last one is the rows as they are, an
earlier one the rows rolled back through the later undo records. Undo records of final batches are
pruned. The checkpoint after a batch may land after the batch record (the engine writes it behind
the cut); a restart re-derives a missing one from the log.

**Rebuilds** (`rewrite`): batches from some index on are replaced in one synced write batch — their
records and checkpoints deleted, the log entries after the parent checkpoint rewritten in place
(same seqs; an entry that no longer executes is kept, marked ``dropped`` with its reason), the new
batch records and checkpoints written, and the `RebuildMark` (epoch, discards handled) moved on
(docs/sequencer.md, "Rebuilding batches").
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from typing import Any, Union

import msgspec

from optinode.exchange.matching import BookChanges, MatcherSnapshot, RestingSnapshot
from optinode.exchange.orders import Command as BookCommand
from optinode.spec.record_codec import decode_transaction
from optinode.spec.state import Account, Slot, State
from optinode.spec.transition import state_transition
from optinode.spec.types import DepositEntry, ForcedEntry, L1Context
from optinode.store import keys
from optinode.store.codec import Codec
from optinode.store.kv import KV, Reader

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
    """The header of the checkpoint after a batch. The state's accounts and slots and the matcher's
    resting orders, seen hashes and floors are rows (`keys.Row`) rewritten only when they changed, so
    a cut costs O(what changed), not O(state + book) (docs/sequencer.md, "Checkpoints")."""

    batch_index: int
    next_seq: int  # the first log entry after this batch
    l1_time: int  # the L1 time of its last entry (the engine's clock never runs backwards)
    globals: bytes  # JSON of the spec State without its accounts and slots (markets, clocks, counters: constant size)
    book_seq: int = 0  # the matcher's command counter (`Matcher.seq`)


class CheckpointUndo(msgspec.Struct, frozen=True, array_like=True):
    """The rows a batch's cut overwrote, as they were before it (None: the row did not exist): the
    checkpoint of an earlier batch is the rows now, rolled back through the later batches' undo."""

    rows: tuple[tuple[bytes, bytes | None], ...]


Row = tuple[bytes, "bytes | None"]  # a row key and its new value (None: delete the row)


class CheckpointDelta:
    """What one cut's checkpoint rewrites, captured on the engine's thread in O(what changed):
    copies of the changed accounts (their `positions` dicts are replaced, never mutated, by the spec:
    copied anyway), references to the changed slots (frozen), the matcher's `BookChanges` (fresh
    snapshots). `rows()` encodes them, on the write thread."""

    __slots__ = ("accounts", "slots", "book")

    def __init__(self, state: State, account_ids: set[int], slot_ids: set[int], book: BookChanges) -> None:
        accounts, slots = state.accounts, state.slots
        self.accounts = [(i, _copy_account(accounts[i]) if i in accounts else None) for i in account_ids]
        self.slots = [(i, slots.get(i)) for i in slot_ids]
        self.book = book

    def rows(self) -> list[Row]:
        row, json = keys.checkpoint_row, _STATE_ENCODER.encode
        rows: list[Row] = [(row(keys.Row.ACCOUNT, i), None if a is None else json(a)) for i, a in self.accounts]
        rows += [(row(keys.Row.SLOT, i), None if slot is None else json(slot)) for i, slot in self.slots]
        book = self.book
        rows += [(row(keys.Row.RESTING, h), None if r is None else RESTING.encode(r)) for h, r in book.resting]
        rows += [(row(keys.Row.SEEN, h), None if e is None else _SEEN.pack(*e)) for h, e in book.seen]
        rows += [(row(keys.Row.FLOOR, a), json(f)) for a, f in book.floors]
        return rows


def _copy_account(account: Account) -> Account:
    return msgspec.structs.replace(account, positions=dict(account.positions))


def full_delta(state: State, book: MatcherSnapshot) -> CheckpointDelta:
    """Every row of a state and books (the genesis checkpoint)."""
    changes = BookChanges([(r.order_hash, r) for r in book.resting], [(h, (e, a, n)) for h, e, a, n in book.seen], list(book.nonce_floor),
                          book.seq)
    return CheckpointDelta(state, set(state.accounts), set(state.slots), changes)


def encode_globals_row(state: State) -> bytes:
    """The state without its accounts and slots (and no dirty marks), JSON: constant size."""
    return _STATE_ENCODER.encode(msgspec.structs.replace(state, accounts={}, slots={}, dirty_accounts=set(), dirty_slots=set()))


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
UNDO = Codec(CheckpointUndo)
RESTING = Codec(RestingSnapshot)
FINAL = Codec(FinalMark)
REBUILD = Codec(RebuildMark)
# Checkpoints hold the whole State as JSON: its integers are unbounded (a nonce window is a 256-bit
# bitmap), which msgpack cannot carry; msgspec's JSON can, exactly.
_STATE_ENCODER = msgspec.json.Encoder()
_STATE_DECODER = msgspec.json.Decoder(State)
_ACCOUNT_DECODER = msgspec.json.Decoder(Account)
_SLOT_DECODER = msgspec.json.Decoder(Slot)
_INT_DECODER = msgspec.json.Decoder(int)
_SEEN = struct.Struct(">QIQ")  # a seen row: expiry, account, nonce


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
        self._complete: dict[int, BatchRecord] = {}  # complete records not yet written over their boundaries

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

    def append_batch(self, record: BatchRecord) -> None:
        """Record a cut batch, durably (synced). A live cut writes it as the batch's boundary (its
        log range, no roots yet: ``state_root`` empty); the complete record follows with its
        checkpoint (`write_checkpoint`), possibly later: a restart re-derives a missing one."""
        with self.store.write_batch(sync=True) as batch:
            batch.put(keys.batch(record.index), BATCH.encode(record))

    def complete(self, record: BatchRecord) -> None:
        """A batch's complete record, before `write_checkpoint` stores it: `batch` answers it meanwhile."""
        self._complete[record.index] = record

    def write_checkpoint(self, record: BatchRecord, checkpoint: Checkpoint, delta: CheckpointDelta) -> None:
        """The checkpoint after batch ``record`` (whose batch record is durable), in one atomic write
        batch: its header, the rows that changed, and (read back first) what those rows were before,
        as the batch's undo record. O(what changed). Checkpoints are written in batch order, each on
        the previous one's rows. Not synced: nothing waits for it, and a checkpoint lost in a crash
        is re-derived from the log (the next synced log write carries it to disk anyway). Undo
        records of final batches go (nothing rolls back past the last final batch: a rebuild or a
        game is about a pending batch, a claim is under a final one)."""
        rows = delta.rows()
        get = self.store.get
        undo = CheckpointUndo(tuple((key, get(key)) for key, _ in rows))
        with self.store.write_batch(sync=False) as batch:
            _write_views(batch, rows)
            batch.put(keys.checkpoint_undo(record.index), UNDO.encode(undo))
            batch.put(keys.checkpoint(record.index), CHECKPOINT.encode(checkpoint))
            if record.state_root:
                batch.put(keys.batch(record.index), BATCH.encode(record))  # (the complete record, over its boundary)
            for key, _ in self.store.iterate(start=keys.checkpoint_undo(0), stop=keys.checkpoint_undo(self.last_final() + 1)):
                batch.delete(key)
        self._complete.pop(record.index, None)

    def cut(self, record: BatchRecord, checkpoint: Checkpoint, delta: CheckpointDelta) -> None:
        """A batch record and its checkpoint at once (tests and tools)."""
        self.append_batch(record)
        self.write_checkpoint(record, checkpoint, delta)

    def rewrite(self, from_index: int, entries: list[LogEntry], cuts: list[tuple[BatchRecord, Checkpoint, CheckpointDelta]],
                mark: RebuildMark, views: Sequence[tuple[bytes, bytes | None]] = ()) -> None:
        """A rebuild, in one synced write batch: batches ``from_index`` and later and their checkpoints
        go (the rows rolled back through their undo records), the re-applied log entries replace
        theirs (same seqs), the rebuilt batches and their checkpoints come in, and the rebuild mark
        moves on. A crash leaves the old or the new, never a mix."""
        for index in [i for i in self._complete if i >= from_index]:
            del self._complete[index]
        with self.store.write_batch(sync=True) as batch:
            rows = self._rolled_back(self.store, from_index - 1)  # the rows as the write batch leaves them
            if rows is None:
                raise ValueError(f"batch {from_index - 1}'s checkpoint is pruned (final): batches after a final one are never rebuilt")
            for record in list(self.batches(from_index)):
                batch.delete(keys.batch(record.index))
                batch.delete(keys.checkpoint(record.index))
                batch.delete(keys.checkpoint_undo(record.index))
            for entry in entries:
                batch.put(keys.log_entry(entry.seq), ENTRY.encode(entry))
            for record, checkpoint, delta in cuts:
                changed = delta.rows()
                undo = CheckpointUndo(tuple((key, rows[key] if key in rows else self.store.get(key)) for key, _ in changed))
                rows.update(changed)
                batch.put(keys.checkpoint_undo(record.index), UNDO.encode(undo))
                batch.put(keys.batch(record.index), BATCH.encode(record))
                batch.put(keys.checkpoint(record.index), CHECKPOINT.encode(checkpoint))
            _write_views(batch, list(rows.items()))
            batch.put(keys.REBUILD, REBUILD.encode(mark))
            _write_views(batch, views)

    def rebuild_mark(self) -> RebuildMark:
        return self.store.get_value(keys.REBUILD, REBUILD) or RebuildMark()

    def write_genesis(self, state: State, book: MatcherSnapshot) -> None:
        if self.store.get(keys.checkpoint(0)) is None:
            genesis = Checkpoint(batch_index=0, next_seq=0, l1_time=0, globals=encode_globals_row(state), book_seq=book.seq)
            with self.store.write_batch(sync=True) as batch:
                _write_views(batch, full_delta(state, book).rows())
                batch.put(keys.checkpoint(0), CHECKPOINT.encode(genesis))

    # --- reading a checkpoint ----------------------------------------------------------------------

    @staticmethod
    def _rolled_back(reader: Reader, batch_index: int) -> dict[bytes, bytes | None] | None:
        """The rows that differ between now (the last checkpoint) and the checkpoint of
        ``batch_index``, as they were then (None: absent then): the undo records of every later
        batch, newest first, so that the oldest one's value wins. None when one of them is gone (the
        batches up to it are final: their undo records are pruned)."""
        last = reader.last(keys.prefix_of(keys.Prefix.CHECKPOINT))
        newest = batch_index if last is None else keys.parse_checkpoint(last[0])
        rows: dict[bytes, bytes | None] = {}
        expected = newest
        stop = keys.prefix_end(keys.prefix_of(keys.Prefix.CHECKPOINT_UNDO))
        for key, value in reader.iterate(start=keys.checkpoint_undo(batch_index + 1), stop=stop, reverse=True):
            index = keys.parse_checkpoint_undo(key)
            if index != expected:
                break
            rows.update(UNDO.decode(value, key=key).rows)
            expected -= 1
        return rows if expected == batch_index else None

    def restore_point(self, batch_index: int) -> tuple[Checkpoint, State, MatcherSnapshot] | None:
        """The checkpoint of batch ``batch_index``: its header, the spec state and the books then, read
        from one consistent snapshot of the store. None if there is no such checkpoint, or it is
        older than the undo records kept (its batch and the next are final)."""
        with self.store.snapshot() as snap:
            header = snap.get_value(keys.checkpoint(batch_index), CHECKPOINT)
            if header is None:
                return None
            old = self._rolled_back(snap, batch_index)
            if old is None:
                return None
            tables: dict[keys.Row, dict[Any, bytes]] = {table: {} for table in keys.Row}
            for key, value in snap.iterate(prefix=keys.prefix_of(keys.Prefix.CHECKPOINT_ROW)):
                if key not in old:
                    table, ident = keys.parse_checkpoint_row(key)
                    tables[table][ident] = value
            for key, was in old.items():
                if was is not None:
                    table, ident = keys.parse_checkpoint_row(key)
                    tables[table][ident] = was
        state = _STATE_DECODER.decode(header.globals)
        state.accounts = {i: _ACCOUNT_DECODER.decode(v) for i, v in sorted(tables[keys.Row.ACCOUNT].items())}
        state.slots = {i: _SLOT_DECODER.decode(v) for i, v in sorted(tables[keys.Row.SLOT].items())}
        book = MatcherSnapshot(
            resting=tuple(sorted((RESTING.decode(v) for v in tables[keys.Row.RESTING].values()), key=lambda r: r.seq)),
            nonce_floor=tuple(sorted((a, _INT_DECODER.decode(v)) for a, v in tables[keys.Row.FLOOR].items())),
            seen=tuple(sorted((h, *_SEEN.unpack(v)) for h, v in tables[keys.Row.SEEN].items())),
            seq=header.book_seq,
        )
        return header, state, book

    def state_at(self, batch_index: int) -> State | None:
        """The spec state after batch ``batch_index`` (None: no checkpoint of it, or pruned)."""
        point = self.restore_point(batch_index)
        return None if point is None else point[1]

    def entry(self, seq: int) -> LogEntry | None:
        return self.store.get_value(keys.log_entry(seq), ENTRY)

    def batch(self, index: int) -> BatchRecord | None:
        """The complete batch record; None while it is only a boundary (a live cut's, whose root is
        still being computed: nothing may post or prove it yet). `batches` yields boundaries too."""
        complete = self._complete.get(index)
        if complete is not None:
            return complete
        record = self.store.get_value(keys.batch(index), BATCH)
        return record if record is not None and record.state_root else None

    def batches(self, from_index: int = 1) -> Iterator[BatchRecord]:
        stop = keys.prefix_end(keys.prefix_of(keys.Prefix.BATCH))
        for key, value in self.store.iterate(start=keys.batch(from_index), stop=stop):
            yield BATCH.decode(value, key=key)

    def batch_records(self, batch: BatchRecord) -> list[bytes]:
        return [r for entry in self.entries(batch.first_seq, batch.end_seq) for r in entry.records]

    def checkpoint(self, batch_index: int) -> Checkpoint | None:
        return self.store.get_value(keys.checkpoint(batch_index), CHECKPOINT)

    def last_batch(self) -> BatchRecord | None:
        last = self.store.last(keys.prefix_of(keys.Prefix.BATCH))
        return None if last is None else BATCH.decode(last[1], key=last[0])

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
