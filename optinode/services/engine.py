"""The engine: the sequencer's single writer.

    engine = Engine(store, genesis_state, policy=…, confirmations=6, deadlines=Deadlines(…))
    submitter = Submitter(inbox_send)          # the in-process entry point (the RPC front calls it)
    ack = await submitter.submit(trade)        # Accepted(seq, codes), only once the log entry is synced
    await run(engine, inbox_receive, batches_send, task_status=…)

Its inbox (one bounded channel) carries three kinds of message: `Submission` (a spec transaction and
where to answer), the L1 follower's outputs (events, `Head`, `Reorg`) and the batcher's `CutRequest`.
It takes everything that is waiting at once and, for each message, applies spec transactions with
`state_transition`; the accepted ones become `LogEntry`s, written in **one synced write batch for the
whole group** (group commit: one fsync covers every command that arrived meanwhile) before any of
them is acknowledged. A rejected submission changes nothing (the spec guarantees it) and is answered
at once with its error code; it is never logged and never reaches L1, so a batch holds only
transactions that executed.

**L1 queues.** Deposits and forced-withdrawal requests are consumed in L1 order, each once its block
is ``confirmations`` deep (a reorg shallower than that cannot remove an entry the log consumed; a
deeper one is `EngineCritical`). A deposit credits the depositor's account (the lowest id it owns) or
opens the next id; a forced request is executed or recorded with the reason it was rejected, as the
spec's `process_forced_withdraw` decides.

**L1 time.** Every transaction of a batch is applied with one timestamp, the batch's L1 time
(`batch_time`): the newest L1 head's time when the batch's first entry was applied (never the wall
clock, never later than a block the node has seen, never before the previous batch's). The proposer declares it in ``appendBatch``, the Rollup bounds it
(parent's <= it <= the append block's, at most ``maxTimestampDrift`` behind) and records it, and every
verifier and one-step proof replays the batch at it: an honest batch is never wrong because of when
it lands. The batcher cuts a batch before the head runs ``drift - drift_margin`` past it
(docs/sequencer.md, "Batch time").

**Batches.** Before a record that would cross a hard limit (records, bytes, gas) the pending batch is
cut; the batcher asks for age and deadline cuts. A cut captures what changed (O(what changed))
and syncs the batch's boundary; the root (once per batch, over the leaves that changed) is computed
behind the engine in slices, then the complete record and the incremental checkpoint are written by
the checkpoint lane and the batch goes to the proposer (docs/sequencer.md, "Checkpoints"). Restart
= last checkpoint + replay of the later log entries, re-cutting the batches whose checkpoints never
landed (`Engine.__init__`), byte for byte the same state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Union

import msgspec
import trio

from optinode.errors import InvalidInput
from optinode.exchange import orders as book_orders
from optinode.exchange.history import History
from optinode.exchange.matching import Matcher, UnknownOrder
from optinode.exchange.orders import Fill, PlaceResult
from optinode.l1 import events
from optinode.l1.follower import BLOCK, Head, Reorg, live_batches_before
from optinode.logs import alert
from optinode.metrics import SequencerMetrics
from optinode.services.batcher import BatchPolicy, CutRequest, Pending, framed_size
from optinode.services import checkpointer
from optinode.services.checkpointer import CheckpointLane
from optinode.services.faults import NO_FAULTS, Faults
from optinode.services.journal import (
    BatchRecord,
    Checkpoint,
    CheckpointDelta,
    DepositCommand,
    ForcedCommand,
    Journal,
    LogEntry,
    RebuildMark,
    ReplayMismatch,
    SubmitCommand,
    encode_globals_row,
    replay_entry,
)
from optinode.spec.commitment import Commitment, compute_state_root_from_parts, encode_globals, hash_account, hash_slot
from optinode.spec.crypto import keccak
from optinode.spec.errors import ErrorCode, InvalidTransaction
from optinode.spec.record_codec import decode_transaction, encode_transaction
from optinode.spec.state import State
from optinode.spec.transition import check_nonce_floor, state_transition
from optinode.spec.types import (
    CancelAll,
    Deleverage,
    Deposit,
    DepositEntry,
    ForcedEntry,
    ForcedWithdraw,
    FundingTick,
    L1Context,
    Liquidate,
    OraclePrice,
    Order,
    Trade,
    Transaction,
    Withdraw,
)
from optinode.store import keys
from optinode.replay import mint_one
from optinode.store.kv import KV

__all__ = ["Accepted", "BookAccepted", "BookSubmission", "Deadlines", "Engine", "EngineCritical", "OrderRevision", "RebuildRequest", "Rebuilt",
           "Rejected", "Submission", "Submitter", "run"]

log = logging.getLogger("optinode.services.engine")

# What a user may submit; deposits and forced withdrawals come from the L1 queues only.
SUBMITTABLE = (Trade, Withdraw, OraclePrice, FundingTick, Liquidate, Deleverage)
GROUP_LIMIT = 4096  # messages taken from the inbox per group commit
ROOT_SLICE = 0.0005  # seconds of a live cut's root work between yields (docs/sequencer.md, "Checkpoints")
_FULL_ORDER = Order(2**32 - 1, 127, True, 2**64 - 1, 2**64 - 1, 2**32 - 1, 2**64 - 1, 2**64 - 1, b"\xff" * 32 + b"\x7f" + b"\xff" * 31 + b"\x1c")
_MAX_TRADE_FRAMED = framed_size(encode_transaction(Trade(_FULL_ORDER, _FULL_ORDER, 2**64 - 1)))  # the largest a fill can be, framed
# a queue entry's one record at its largest (Deposit(id) of the largest id; ForcedWithdraw() is 1 byte)
_QUEUE_ROOM = (1, framed_size(encode_transaction(Deposit(2**32 - 1))))


class Accepted(msgspec.Struct, frozen=True):
    seq: int  # the log entry
    codes: tuple[int, ...]


class Rejected(InvalidInput):
    """A submitted transaction the spec refuses (nothing changed, nothing logged)."""

    def __init__(self, code: ErrorCode, message: str = "") -> None:
        self.code = code
        super().__init__(message or f"rejected: {code.name}")


class EngineCritical(Exception):
    """The log can no longer be trusted to match L1 (a reorg removed a consumed queue entry)."""


@dataclass
class Submission:
    tx: Transaction
    reply: trio.MemorySendChannel[Accepted | Rejected]


class BookAccepted(msgspec.Struct, frozen=True):
    seq: int | None  # the log entry (None: the command changed nothing, so nothing was logged)
    result: Any  # PlaceResult | Cancelled | list[Cancelled]


@dataclass
class BookSubmission:
    """An order-book command (a `Placement` whose signature intake checked, or a verified cancel)."""

    command: book_orders.Command
    reply: trio.MemorySendChannel[BookAccepted | Rejected]


@dataclass(frozen=True)
class RebuildRequest:
    """The proposer's: batch ``index`` (cut, never appended) is older than the Rollup's timestamp
    drift allows; rebuild it and its successors at a fresh L1 time."""

    index: int
    epoch: int  # the batch's epoch when it was found stale (a request for an older one is stale itself)


class Rebuilt(msgspec.Struct, frozen=True):
    """To the proposer, before the rebuilt batches: batches ``from_index`` and later were replaced
    (epoch ``epoch``); post from ``from_index`` again with the new records."""

    from_index: int
    epoch: int
    reason: str
    dropped: tuple[int, ...]  # log seqs of acknowledged commands that no longer execute


class OrderRevision(msgspec.Struct, frozen=True):
    """What a rebuild made of an acknowledged order (optinode_getOrder shows it): the fills it has
    now (as taker and as maker) and, if its placement no longer executes, why."""

    seq: int
    status: str  # the placement's status after the rebuild (book_orders.Status value), "dropped" if it no longer executes
    reason: str | None
    fills: tuple[Fill, ...]


Message = Union[Submission, BookSubmission, CutRequest, RebuildRequest, Head, Reorg, events.L1Event]
BOOK_COMMANDS = (book_orders.Placement, book_orders.CancelOrder, book_orders.CancelAll, book_orders.ExpireOrders)


def answer(reply: trio.MemorySendChannel[Any], value: Any) -> None:
    """Send a submitter its answer. A submitter that went away (its timeout passed, its client
    disconnected) must not stop the single writer: an accepted command stays logged either way."""
    try:
        reply.send_nowait(value)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


class Submitter:
    """The in-process entry point: submit a spec transaction, get its durable acknowledgement."""

    def __init__(self, inbox: trio.MemorySendChannel[Any]) -> None:
        self.inbox = inbox

    async def submit(self, tx: Transaction) -> Accepted:
        """Returns once the command's log entry is synced; raises `Rejected` if the spec refuses it."""
        return await self._ask(Submission, tx)

    async def submit_book(self, command: book_orders.Command) -> BookAccepted:
        """Match/cancel through the engine's book; returns once the resulting log entry is synced.
        A refused order is not an exception: its `PlaceResult` says REJECTED and why."""
        return await self._ask(BookSubmission, command)

    async def _ask(self, kind: Any, payload: Any) -> Any:
        send, receive = trio.open_memory_channel[Any](1)
        await self.inbox.send(kind(payload, send))
        async with receive:
            answer = await receive.receive()
        if isinstance(answer, Rejected):
            raise answer
        return answer


@dataclass(frozen=True)
class Deadlines:
    deposit: int  # seconds (Bridge.depositDeadline)
    forced: int


class _QueueItem(msgspec.Struct, frozen=True):
    event: Any  # events.Deposited | events.ForcedWithdrawalRequested
    seen_time: int  # an L1 time <= the entry's own (the head before its block)


def _book_records(command: Any, result: Any, state: State, now: int) -> tuple[bytes, ...]:
    """The records a book command's log entry carries: the Trades it matched, and for a signed
    cancel-all the spec's `CancelAll`, applied to `state` here (the book's own state) so that L1
    replay and verifiers see the nonce floor rise and no later replay can fill the cancelled orders.
    The CancelAll only when the spec applies it: a live submission of a floor it refuses is refused
    first (`_refused_cancel_all`); a logged one that a rebuild finds refused (a forced cancel-all
    re-consumed before it raised the floor past it) stays off-chain."""
    records = tuple(encode_transaction(t) for t in getattr(result, "trades", ()))
    if type(command) is not book_orders.CancelAll or not command.signature:
        return records
    tx = CancelAll(command.account_id, command.nonce_below, command.signature)
    return records + ((encode_transaction(tx),) if state_transition(state, tx, L1Context(now)).applied else ())


def _refused_cancel_all(state: State, command: Any) -> Rejected | None:
    """A signed cancel-all whose floor the spec would not raise (NONCE_TOO_LOW, NONCE_TOO_HIGH) is
    refused, not honoured off-chain alone: the book would drop orders whose signatures stay valid on
    L1 and refuse nonces L1 allows, and the user would be told it worked (docs/matching.md)."""
    if type(command) is not book_orders.CancelAll or not command.signature:
        return None
    account = state.accounts.get(command.account_id)
    if account is None:
        return Rejected(ErrorCode.ACCOUNT_NOT_FOUND)
    try:
        check_nonce_floor(account, command.nonce_below)
    except InvalidTransaction as invalid:
        return Rejected(invalid.code, f"nonce floor {command.nonce_below} (the account's is {account.nonce_base})")
    return None


class CheckpointedCommitment(Commitment):
    """The engine's commitment. It remembers the leaves its updates rehashed since the last
    `take_changed` — exactly the rows the next incremental checkpoint rewrites (the state's dirty
    marks alone would not do: anything that asks for the root between cuts — optinode_status —
    clears them). And it computes a live cut's root **in slices** (`defer`, `step`): the leaves
    are hashed from the cut's immutable copies, so the engine goes on with the next batch
    meanwhile; whatever needs the trees first (`update`, the next cut) finishes the pending work."""

    __slots__ = ("changed_accounts", "changed_slots", "jobs", "done")

    def __init__(self) -> None:
        super().__init__()
        self.changed_accounts: set[int] = set()
        self.changed_slots: set[int] = set()
        self.jobs: list[RootJob] = []  # cut, root not computed yet (in cut order)
        self.done: list[RootJob] = []  # root computed, not yet handed on (in cut order)

    def update(self, state: State) -> bytes:
        self.finish()
        self.changed_accounts |= state.dirty_accounts
        self.changed_slots |= state.dirty_slots
        return super().update(state)

    def take_changed(self) -> tuple[set[int], set[int]]:
        changed = self.changed_accounts, self.changed_slots
        self.changed_accounts, self.changed_slots = set(), set()
        return changed

    def defer(self, job: "RootJob") -> None:
        self.jobs.append(job)

    def step(self, budget: float) -> None:
        """About ``budget`` seconds of root work (at least one unit), oldest job first."""
        deadline = time.perf_counter() + budget
        while self.jobs and time.perf_counter() < deadline:
            if self.jobs[0].advance(self, deadline):
                self.done.append(self.jobs.pop(0))

    def finish(self) -> None:
        while self.jobs:
            self.step(3600.0)


class RootJob:
    """One live cut's root: leaf hashes of the copied accounts and slots, then the trees in chunks,
    then the root; `record` is then the complete `BatchRecord`."""

    CHUNK = 64  # leaves per unit of work (one hash pass, or one tree update)

    def __init__(self, record: BatchRecord, header: Checkpoint, delta: CheckpointDelta) -> None:
        self.record, self.header, self.delta = record, header, delta
        self.leaves: list[tuple[int, Any]] = list(delta.accounts)
        self.slot_leaves: list[tuple[int, Any]] = list(delta.slots)
        self.hashed: dict[int, bytes] = {}
        self.slot_hashed: dict[int, bytes] = {}
        self.at = 0
        self.phase = 0

    def advance(self, commitment: Commitment, deadline: float) -> bool:
        """Do units of work until ``deadline`` (at least one); True once the root is there."""
        chunk = self.CHUNK
        while True:
            if self.phase == 0:  # leaf hashes
                for i, account in self.leaves[self.at:self.at + chunk]:
                    self.hashed[i] = hash_account(account)
                for i, slot in self.slot_leaves[self.at:self.at + chunk]:
                    self.slot_hashed[i] = hash_slot(slot)
                self.at += chunk
                if self.at >= max(len(self.leaves), len(self.slot_leaves)):
                    self.phase, self.at = 1, 0
                    self.hashed_items, self.slot_items = list(self.hashed.items()), list(self.slot_hashed.items())
            elif self.phase == 1:  # the trees
                commitment.accounts.update(dict(self.hashed_items[self.at:self.at + chunk]))
                commitment.slots.update(dict(self.slot_items[self.at:self.at + chunk]))
                self.at += chunk
                if self.at >= max(len(self.hashed_items), len(self.slot_items)):
                    self.phase = 2
            else:
                r = self.record
                accounts_root, slots_root = commitment.accounts.root(), commitment.slots.root()
                root = compute_state_root_from_parts(accounts_root, slots_root, r.globals_hash, r.deposits_done, r.forced_done)
                self.record = msgspec.structs.replace(r, accounts_root=accounts_root, slots_root=slots_root, state_root=root)
                return True
            if time.perf_counter() >= deadline:
                return False


class Engine:
    def __init__(
        self,
        store: KV,
        genesis: State,
        *,
        policy: BatchPolicy,
        confirmations: int,
        deadlines: Deadlines,
        faults: Faults = NO_FAULTS,
        metrics: SequencerMetrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or SequencerMetrics()  # this node's registry (served at /metrics)
        self.journal = Journal(store)
        self.history = History(store)  # what became of each accepted order (optinode_getOrder), written with the log
        self.policy = policy
        self.confirmations = confirmations
        self.deadlines = deadlines
        self.faults = faults
        self.journal.write_genesis(genesis, Matcher(genesis).export())
        checkpoint = self.journal.last_checkpoint()
        assert checkpoint is not None
        self.mark = self.journal.rebuild_mark()
        self._discards: list[events.L1Event] = []  # BatchesDiscarded not rolled back for yet
        self._rebuild_asked: RebuildRequest | None = None
        self.revisions: dict[bytes, OrderRevision] = {}  # orders the last rebuilds changed (since start)
        # Restart: the last checkpoint's state and books, then the later log entries: the batches cut
        # after it (their checkpoints were not written yet: the checkpoint lane runs behind the cuts),
        # re-cut at their recorded boundaries, each root checked and its checkpoint written; then the
        # pending batch.
        self.state, self.matcher = self._restore(checkpoint)
        self.commitment = CheckpointedCommitment.from_state(self.state)
        self.commitment.take_changed()  # (every leaf: the checkpoint's rows already hold them)
        self._cut_dirty: tuple[set[int], set[int]] = (set(), set())  # the leaves the batch being cut changed
        self.batch_index = checkpoint.batch_index + 1  # the next batch to cut
        self.pending = Pending()
        self.pending_first_seq = checkpoint.next_seq
        self.next_seq = checkpoint.next_seq
        self.l1_time = max(genesis.time, checkpoint.l1_time)
        # The pending batch's L1 time: fixed by its first entry, None while it is empty.
        self.batch_time: int | None = None
        uncheckpointed = list(self.journal.batches(self.batch_index))
        for entry in self.journal.entries(checkpoint.next_seq):
            while uncheckpointed and entry.seq >= uncheckpointed[0].end_seq:
                self._recut(uncheckpointed.pop(0))
            self._replay(entry, self.state, self.matcher)
            self._pend(entry, 0.0, self._post_by(entry))  # run() restarts the age clock
            if entry.records and self.batch_time is None:
                self.batch_time = entry.l1_timestamp  # the pending batch's time, as its entries ran
            self.next_seq = entry.seq + 1
            self.l1_time = max(self.l1_time, entry.l1_timestamp)
        for record in uncheckpointed:
            self._recut(record)
        self.replayed_seqs = range(self._restored_from, self.next_seq)  # what the restart replayed (tests assert it)
        self.checkpoints = CheckpointLane(self.journal, self.history)  # run() starts its writer
        self._roots_wake: trio.Event | None = None  # set while `background` runs: a live cut's root job is waiting
        self.owners: dict[bytes, int] = {}
        for account_id in sorted(self.state.accounts):
            self.owners.setdefault(self.state.accounts[account_id].owner, account_id)
        self.deposits: dict[int, _QueueItem] = {}
        self.forced: dict[int, _QueueItem] = {}
        self._waiting_forced: set[int] = set()  # forced requests that could not be consumed yet (logged once)
        self.head: Head | None = None
        self._head_time = 0
        self.processing = False  # a group is being processed (see `busy`)
        self._handing_over = False
        self._hand_over_lock = trio.Lock()
        self.metrics.watch_l1(lambda: self.head)  # read at scrape time: nothing on the hot path
        self.metrics.watch_book(lambda: self.matcher.books)
        # Called with the ids of the accounts changed since the last cut (a superset of what the last
        # group touched), after each group and before each cut clears the marks: the liquidator's
        # risk index re-values exactly these (docs/market-services.md). Must not block or raise.
        # (After a rebuild, with every account: the state was replaced.)
        self.account_listeners: list[Callable[[set[int]], None]] = []
        log.info("engine: batch %d next, %d log entries replayed after checkpoint %d", self.batch_index, len(self.replayed_seqs),
                 checkpoint.batch_index)

    @property
    def busy(self) -> bool:
        """A group is being processed, or a cut's root, record or checkpoint is still on its way to
        the proposer (tests wait for the engine to settle)."""
        return (self.processing or self._handing_over or bool(self.commitment.jobs or self.commitment.done)
                or self.checkpoints.queued > 0)

    @property
    def head_time(self) -> int:
        """The newest L1 head's time (the batcher's drift cut measures against it)."""
        return self._head_time

    # --- restoring a checkpoint --------------------------------------------------------------------

    def _restore(self, checkpoint: Checkpoint) -> tuple[State, Matcher]:
        """Fresh state and books as of ``checkpoint`` (its rows, rolled back through the later
        batches' undo records if it is not the last: docs/sequencer.md, "Checkpoints"). Sets where
        the replay of the log after it begins (`_restored_from`)."""
        point = self.journal.restore_point(checkpoint.batch_index)
        if point is None:
            raise EngineCritical(f"checkpoint {checkpoint.batch_index} cannot be read back: its undo records are pruned (final)")
        _, state, book = point
        self._restored_from = checkpoint.next_seq
        return state, Matcher.restore(state, book)

    def _recut(self, record: BatchRecord) -> None:
        """Restart: close the replayed batch ``record`` as it was cut (the same log range, the same
        devnet fault), check that it gives the root recorded, and write its checkpoint."""
        if self.next_seq != record.end_seq or self.batch_index != record.index:
            raise EngineCritical(f"batch {record.index} (log {record.first_seq}..{record.end_seq - 1}) does not follow the log replayed "
                                 f"(batch {self.batch_index} next, log entry {self.next_seq} next)")
        if record.epoch == 0 and self.faults.tamper_after(record.index) is not None:
            mint_one(self.state)  # (as `_close_batch` did)
        root = self.commitment.update(self.state)
        self._cut_dirty = self.commitment.take_changed()
        if not record.state_root:  # a boundary: the process died before the root was computed
            record = msgspec.structs.replace(record, accounts_root=self.commitment.accounts.root(), slots_root=self.commitment.slots.root(),
                                             state_root=root)
        elif root != record.state_root:
            raise ReplayMismatch(f"batch {record.index} replays to root 0x{root.hex()} instead of 0x{record.state_root.hex()}")
        self.l1_time = max(self.l1_time, record.l1_timestamp)
        self.journal.write_checkpoint(record, *self._checkpoint(record))
        self.batch_index = record.index + 1
        self.pending = Pending()
        self.pending_first_seq = record.end_seq
        self.batch_time = None

    def _replay(self, entry: LogEntry, state: State, matcher: Matcher) -> None:
        """Re-run a logged entry exactly as it ran (restart): it must reproduce what it logged."""
        if entry.dropped:
            return
        if isinstance(entry.command, BOOK_COMMANDS):
            self._replay_book(entry, matcher)
        else:
            replay_entry(state, entry)

    def _restore_in_place(self, checkpoint: Checkpoint) -> None:
        """Make the engine's own State object (which the mempool, the market services and the
        liquidator's risk index hold) the checkpoint's again, and the books with it."""
        state, matcher = self._restore(checkpoint)
        for name in State.__struct_fields__:
            setattr(self.state, name, getattr(state, name))
        matcher.state = self.state
        self.matcher = matcher

    def _checkpoint(self, record: BatchRecord) -> tuple[Checkpoint, CheckpointDelta]:
        """The checkpoint after batch ``record``: its header (the state's globals, constant size) and
        what changed since the last cut — the leaves the batch dirtied (`_cut_dirty`, taken before the
        commitment cleared the marks) and the matcher's `take_changes` — as copies and references,
        encoded on the write thread. O(what changed), never O(state + book)."""
        accounts, slots = self._cut_dirty
        self._cut_dirty = (set(), set())  # (taken: a rebuild's next close sets it again)
        delta = CheckpointDelta(self.state, accounts, slots, self.matcher.take_changes())
        header = Checkpoint(batch_index=record.index, next_seq=record.end_seq, l1_time=self.l1_time, globals=encode_globals_row(self.state),
                            book_seq=self.matcher.seq)
        return header, delta

    # --- the order book ---------------------------------------------------------------------------

    def _pend(self, entry: LogEntry, now: float, post_by: float | None = None) -> None:
        """Count an entry in the pending batch. A book command with no Trade (an order that rests,
        a cancel) carries no record: it stays in the log range of the next batch but must not
        start a batch of its own (an empty batch)."""
        if entry.records or not (entry.dropped or isinstance(entry.command, BOOK_COMMANDS)):
            self.pending.add(entry.records, now, post_by)

    def _replay_book(self, entry: LogEntry, matcher: Matcher) -> None:
        try:
            result = matcher.apply(entry.command, L1Context(entry.l1_timestamp))
        except UnknownOrder as error:
            raise ReplayMismatch(f"log entry {entry.seq}: {error}") from None
        trades = _book_records(entry.command, result, matcher.state, entry.l1_timestamp)
        if trades != entry.records:
            raise ReplayMismatch(f"log entry {entry.seq} matches to {len(trades)} other Trades than the {len(entry.records)} logged")

    def _book_room(self, command: Any) -> tuple[int, int]:
        """The most records a book command can add, and their framed bytes: one Trade (of the
        largest size a Trade can encode to) per resting order it can meet."""
        if type(command) is not book_orders.Placement:
            return (0, 0)
        order = command.order
        # (not the whole opposite side: with a deep book that would cut a batch before every order)
        if order.market >= len(self.matcher.books):
            return (0, 0)
        # every fill is at least one step, so no more fills than steps in the order: when that many
        # fit, the book need not be asked (the room is only ever compared with what fits)
        most = min(order.size // self.state.config.markets[order.market].step_size, self.policy.max_records)
        if not self.policy.fits_size(self.pending, most, most * _MAX_TRADE_FRAMED):
            most = min(most, self.matcher.books[order.market].crossing(order.is_buy, order.limit_price))
        return (most, most * _MAX_TRADE_FRAMED)

    def _expire_orders(self) -> LogEntry | None:
        """Once the system time has passed a resting order's signed expiry, an `ExpireOrders` book
        command (logged, so replay removes the same orders at the same point) takes them off the
        book: a book must not show orders that can no longer fill."""
        expiry = self.matcher.next_expiry()
        if expiry is None or expiry >= self.state.time:
            return None
        outcome = self._book_submission(book_orders.ExpireOrders())
        assert isinstance(outcome, tuple)
        return outcome[0]

    def _book_submission(self, command: Any) -> tuple[LogEntry, Any] | BookAccepted | Rejected:
        if not isinstance(command, BOOK_COMMANDS):
            return Rejected(ErrorCode.MALFORMED, f"{type(command).__name__} is not a book command")
        refused = _refused_cancel_all(self.state, command)
        if refused is not None:
            return refused
        opened = self.batch_time is None
        now = self._time()  # the Trades it emits run at the pending batch's L1 time
        try:
            result = self.matcher.apply(command, L1Context(now))
        except UnknownOrder as error:
            if opened:
                self.batch_time = None
            return Rejected(ErrorCode.MALFORMED, str(error))
        records = _book_records(command, result, self.state, now)
        if opened and not records:
            self.batch_time = None  # no record joined the batch: it opens with its first one
        if type(result) is book_orders.PlaceResult and not result.logged:
            return BookAccepted(None, result)
        entry = LogEntry(self.next_seq, now, command, records, (int(ErrorCode.OK),) * len(records))
        self.next_seq += 1
        self._pend(entry, trio.current_time())
        self.history.record(entry.seq, now, command, result)  # (written in the entry's own synced batch)
        return entry, result

    # --- L1 ----------------------------------------------------------------------------------------

    def absorb(self, event: Any) -> None:
        """Note a queue entry (from the follower, or its stored events at start-up)."""
        if isinstance(event, events.Deposited) and event.index >= self.state.deposits_done:
            self.deposits.setdefault(event.index, _QueueItem(event, self._head_time))
        elif isinstance(event, events.ForcedWithdrawalRequested) and event.index >= self.state.forced_done:
            self.forced.setdefault(event.index, _QueueItem(event, self._head_time))
        elif isinstance(event, events.BatchesDiscarded) and self._discard_position(event) not in self.mark.discards:
            self._discards.append(event)  # rolled back for once a head gives a fresh time (_maybe_rebuild)

    def _on_reorg(self, reorg: Reorg) -> None:
        for event in reorg.removed:
            if isinstance(event, events.Deposited):
                if event.index < self.state.deposits_done:
                    raise EngineCritical(f"an L1 reorg removed deposit {event.index}, which the log consumed: "
                                         "raise node.batch.queue_confirmations above the chain's reorg depth")
                self.deposits.pop(event.index, None)
            elif isinstance(event, events.ForcedWithdrawalRequested):
                if event.index < self.state.forced_done:
                    raise EngineCritical(f"an L1 reorg removed forced request {event.index}, which the log consumed")
                self.forced.pop(event.index, None)
        # A discard not yet rolled back for that the reorg removed: nothing to roll back (its batches are
        # live again on the canonical chain, and still ours; docs/sequencer.md, "A discard that a reorg removes").
        gone = {self._discard_position(e) for e in reorg.removed if isinstance(e, events.BatchesDiscarded)}
        self._discards = [d for d in self._discards if self._discard_position(d) not in gone]
        if self.head is not None and self.head.number > reorg.common_ancestor:
            self.head = Head(reorg.common_ancestor, b"", self.head.timestamp)

    def _on_head(self, head: Head) -> None:
        self.head = head
        self._head_time = max(self._head_time, head.timestamp)
        confirmed = self.store.get_value(keys.l1_block(max(0, head.number - self.confirmations)), BLOCK)
        if confirmed is not None:
            self.l1_time = max(self.l1_time, confirmed.timestamp)

    def _next_queue_item(self, waiting: frozenset[str] = frozenset()) -> tuple[str, _QueueItem] | None:
        """The oldest unconsumed queue entry that is deep enough, in L1 order (none of the kinds in
        ``waiting``: their next entry cannot be consumed yet)."""
        if self.head is None:
            return None
        candidates = []
        for kind, table, done in (("deposit", self.deposits, self.state.deposits_done), ("forced", self.forced, self.state.forced_done)):
            if kind in waiting:
                continue
            item = table.get(done)
            if kind == "forced" and item is not None and self._censors_forced(item.event):
                continue  # devnet fault: the forced queue stalls behind a censored request
            if item is not None and item.event.block_number + self.confirmations <= self.head.number:
                candidates.append(((item.event.block_number, item.event.log_index), kind, item))
        if not candidates:
            return None
        _, kind, item = min(candidates, key=lambda c: c[0])
        return kind, item

    def _censors_forced(self, event: Any) -> bool:
        if not self.faults.censor or not self.faults.censors_forced(self.state, event.requester, event.account_id):
            return False
        if event.index not in self._waiting_forced:
            log.warning("devnet fault censor: forced request %d (account %d) is not consumed", event.index, event.account_id)
            self._waiting_forced.add(event.index)
        return True

    def _censored(self, message: Submission | BookSubmission) -> bool:
        command = message.tx if isinstance(message, Submission) else message.command
        if not self.faults.ignores(self.state, command):
            return False
        log.warning("devnet fault censor: %s of a censored account left unanswered", type(command).__name__)
        return True

    def _requeue_forced(self, command: ForcedCommand) -> None:
        """Put a forced request a rebuild could not re-consume back in the queue. It was confirmed when
        first consumed, so its block is taken as 0 (deep enough, and before any later queue entry).
        When it was requested is not in the log, and any later time (the first consumption's) would
        make the batcher late for its deadline, so it counts as seen at time 0: the batch that
        consumes it again is cut at once ("queue deadline")."""
        event = events.ForcedWithdrawalRequested(
            index=command.index, requester=command.requester, account_id=command.account_id, amount=command.amount,
            acc=b"\x00" * 32, block_number=0, block_hash=b"\x00" * 32, log_index=0, tx_hash=b"\x00" * 32, address=b"\x00" * 20)
        self.forced[command.index] = _QueueItem(event, 0)

    def _post_by(self, entry: LogEntry) -> float | None:
        command = entry.command
        if type(command) is DepositCommand:
            return self.policy.post_by(entry.l1_timestamp, self.deadlines.deposit)
        if type(command) is ForcedCommand:
            return self.policy.post_by(entry.l1_timestamp, self.deadlines.forced)
        return None

    def _time(self) -> int:
        """The pending batch's L1 time, opening it if it is empty at the newest L1 time seen: the head's
        (not the confirmed block's, which lags by `confirmations` blocks and would eat the drift), and
        never before a logged entry's (`l1_time`), so never before the parent batch's."""
        if self.batch_time is None:
            self.batch_time = max(self.l1_time, self._head_time)
        return self.batch_time

    def _queue_entry(self, kind: str, item: _QueueItem) -> LogEntry | None:
        """Consume queue entry ``item``, or None when the spec says it must wait (a forced request on a
        stale price: it stays at the head of its queue until a fresh price or funding tick)."""
        event = item.event
        now = self._time()
        if kind == "deposit":
            entry = self._consume_deposit(self.next_seq, now, event.index, event.owner, event.amount)
            self.deposits.pop(event.index)
            post_by = self.policy.post_by(item.seen_time, self.deadlines.deposit)
        else:
            forced = self._consume_forced(self.next_seq, now, ForcedCommand.of(event.index, event.requester, event.account_id, event.amount))
            if forced is None:
                return None
            entry = forced
            self.forced.pop(event.index)
            post_by = self.policy.post_by(item.seen_time, self.deadlines.forced)
        self.next_seq += 1
        self.pending.add(entry.records, trio.current_time(), post_by)
        return entry

    def _consume_deposit(self, seq: int, now: int, index: int, owner: bytes, amount: int) -> LogEntry:
        """Deposit queue entry ``index`` into the owner's lowest account, or a new one (both the live
        path and a rebuild, which re-consumes every entry its log range consumed, once, in order)."""
        ctx = L1Context(now, deposits={index: DepositEntry(owner, amount)})
        account_id = self.owners.get(owner, self.state.next_account_id)
        tx: Transaction = Deposit(account_id)
        receipt = state_transition(self.state, tx, ctx)
        if not receipt.applied and account_id != self.state.next_account_id:
            # The owner's account cannot take it (a balance limit): a new account always can.
            account_id = self.state.next_account_id
            tx = Deposit(account_id)
            receipt = state_transition(self.state, tx, ctx)
        if not receipt.applied:
            raise RuntimeError(f"deposit {index} cannot be consumed: {receipt.code.name}")
        self.owners.setdefault(owner, account_id)
        return LogEntry(seq, now, DepositCommand(index, owner, amount, account_id), (encode_transaction(tx),), (int(receipt.code),))

    def _consume_forced(self, seq: int, now: int, command: ForcedCommand) -> LogEntry | None:
        """Forced request ``command.index``: executed, or recorded with the spec's reason; consumed either
        way. None when the spec does not consume it now (the prices or funding it reads are stale): it
        waits, and its deadline keeps running, so a sequencer that lets prices lag is the one that
        freezes the rollup; a request must never stop the engine (anyone can send one)."""
        ctx = L1Context(now, forced={command.index: ForcedEntry(command.requester, command.account_id, command.amount)})
        tx = ForcedWithdraw()
        receipt = state_transition(self.state, tx, ctx)
        if not receipt.applied:
            if command.index not in self._waiting_forced:
                alert(log, "forced_request_waiting", index=command.index, account=command.account_id, l1_time=now,
                      reason=receipt.code.name, action="waits for a fresh price or funding tick; its deadline keeps running")
                self._waiting_forced.add(command.index)
            return None
        self._waiting_forced.discard(command.index)
        if receipt.code != ErrorCode.OK:
            log.info("forced request %d (account %d, %d) recorded as rejected: %s", command.index, command.account_id, command.amount,
                     receipt.code.name)
        return LogEntry(seq, now, command, (encode_transaction(tx),), (int(receipt.code),))

    # --- submissions -------------------------------------------------------------------------------

    def _submission(self, tx: Transaction) -> LogEntry | Rejected:
        if not isinstance(tx, SUBMITTABLE):
            return Rejected(ErrorCode.MALFORMED, f"{type(tx).__name__} cannot be submitted: it comes from the L1 queue")
        record = encode_transaction(tx)
        opened = self.batch_time is None
        now = self._time()
        receipt = state_transition(self.state, tx, L1Context(now))
        if not receipt.applied:
            if opened:
                self.batch_time = None  # nothing joined the batch: it opens with its first entry
            return Rejected(receipt.code)
        entry = LogEntry(self.next_seq, now, SubmitCommand(record), (record,), (int(receipt.code),))
        self.next_seq += 1
        self.pending.add(entry.records, trio.current_time())
        return entry

    def _needs_later_time(self, result: LogEntry | Rejected) -> bool:
        return (isinstance(result, Rejected) and result.code == ErrorCode.FUTURE_TIMESTAMP and self.pending.entries > 0
                and self.batch_time is not None and self._head_time > self.batch_time)

    def _record_of(self, tx: Transaction) -> bytes | None:
        try:
            return encode_transaction(tx)
        except Exception:  # noqa: BLE001 - a value the codec cannot carry is the submitter's error
            return None

    # --- one group ----------------------------------------------------------------------------------

    async def process(self, group: list[Message], batches: trio.MemorySendChannel[BatchRecord]) -> None:
        written: list[LogEntry] = []
        replies: list[tuple[trio.MemorySendChannel[Any], Accepted]] = []
        cut_reason: str | None = None

        async def room_for(records: int, framed_bytes: int) -> None:
            if not self.policy.fits_size(self.pending, records, framed_bytes):
                await self._flush(written, replies)
                await self.cut(batches, "size")

        for message in group:
            if self.faults.censor and isinstance(message, (Submission, BookSubmission)) and self._censored(message):
                continue  # devnet fault: left unanswered (its submitter waits until it gives up)
            if isinstance(message, BookSubmission):  # (the bulk of a busy group: tested first)
                room = self._book_room(message.command)
                if not self.policy.fits_size(self.pending, *room):
                    await room_for(*room)
                outcome = self._book_submission(message.command)
                if isinstance(outcome, tuple):
                    entry, result = outcome
                    self.faults.point("engine.applied")
                    written.append(entry)
                    replies.append((message.reply, BookAccepted(entry.seq, result)))
                else:
                    answer(message.reply, outcome)
            elif isinstance(message, Submission):
                record = self._record_of(message.tx)
                if record is None:
                    answer(message.reply, Rejected(ErrorCode.MALFORMED, "the transaction does not encode as a batch record"))
                    continue
                await room_for(1, framed_size(record))
                result = self._submission(message.tx)
                if self._needs_later_time(result):
                    # An oracle sample or funding tick stamped after the open batch's L1 time but not
                    # after the head's: close the batch and run it in a new one at the head's time
                    # (at most one extra cut per L1 block: the new batch opens at the newest head).
                    await self._flush(written, replies)
                    await self.cut(batches, "l1 time")
                    result = self._submission(message.tx)
                if isinstance(result, Rejected):
                    answer(message.reply, result)
                    continue
                self.faults.point("engine.applied")
                written.append(result)
                replies.append((message.reply, Accepted(result.seq, result.codes)))
                expired = self._expire_orders()  # a price or funding tick moved the system time
                if expired is not None:
                    written.append(expired)
            elif isinstance(message, CutRequest):
                cut_reason = message.reason
            elif isinstance(message, RebuildRequest):
                self._rebuild_asked = message
            elif isinstance(message, Head):
                self._on_head(message)
                waiting: frozenset[str] = frozenset()
                while (item := self._next_queue_item(waiting)) is not None:
                    await room_for(*_QUEUE_ROOM)
                    queued = self._queue_entry(*item)
                    if queued is None:
                        waiting |= {item[0]}  # (retried at the next head)
                        continue
                    written.append(queued)
                    self.faults.point("engine.applied")
            elif isinstance(message, Reorg):
                self._on_reorg(message)
            else:
                self.absorb(message)
        await self._flush(written, replies)
        await self._maybe_rebuild(batches)
        self._notify_accounts()
        if cut_reason is not None and self.pending.entries:
            await self.cut(batches, cut_reason)

    def _notify_accounts(self) -> None:
        if self.state.dirty_accounts:
            for listener in self.account_listeners:
                listener(self.state.dirty_accounts)

    async def _flush(self, written: list[LogEntry], replies: list[tuple[trio.MemorySendChannel[Any], Accepted]]) -> None:
        if written:
            entries = list(written)
            written.clear()
            started = time.perf_counter()
            await trio.to_thread.run_sync(self.journal.append, entries, self.history.writes())
            self.metrics.fsync.observe(time.perf_counter() - started)
            self.metrics.group_entries.inc(len(entries))
            self.history.flushed()
            self.faults.point("engine.logged")
        for reply, ack in replies:
            answer(reply, ack)
        replies.clear()

    def _close(self, reason: str) -> tuple[BatchRecord, Checkpoint, CheckpointDelta]:
        """Close the pending batch in memory: the root once, the batch record and the checkpoint after it."""
        record = self._close_batch(reason)
        return (record, *self._checkpoint(record))

    def _close_batch(self, reason: str, *, deferred: bool = False) -> BatchRecord:
        """Close the pending batch in memory: the root once and its batch record (the checkpoint, of
        the state and books as they are now, is `_checkpoint(record)`, before anything is applied).
        ``deferred`` (a live cut): the record's roots are left empty — the batch boundary — and the
        leaves it changed are taken from the marks for the root job (`cut`)."""
        if self.mark.epoch == 0 and self.faults.tamper_after(self.batch_index) is not None:
            # devnet fault `corrupt:B:K`: this batch's root is wrong (the defender replays it from tx K).
            # Only before the first rebuild: the batches that replace a discarded one are honest.
            mint_one(self.state)
        self._notify_accounts()  # (the commitment clears the marks)
        state = self.state
        if deferred:
            self.commitment.finish()  # (the trees take the batches in order: the previous cut's root first)
            accounts, slots = self.commitment.take_changed()
            self._cut_dirty = (accounts | state.dirty_accounts, slots | state.dirty_slots)  # the job hashes these, from copies
            state.dirty_accounts.clear()
            state.dirty_slots.clear()
            accounts_root = slots_root = root = b""
        else:
            root = self.commitment.update(state)
            self._cut_dirty = self.commitment.take_changed()  # the leaves changed since the last checkpoint: its rows
            accounts_root, slots_root = self.commitment.accounts.root(), self.commitment.slots.root()
        record = BatchRecord(
            index=self.batch_index,
            first_seq=self.pending_first_seq,
            end_seq=self.next_seq,
            record_count=self.pending.records,
            data_bytes=self.pending.data_bytes,
            accounts_root=accounts_root,
            slots_root=slots_root,
            globals_hash=keccak(encode_globals(state)),
            deposits_done=state.deposits_done,
            forced_done=state.forced_done,
            state_root=root,
            l1_timestamp=self.batch_time if self.batch_time is not None else self.l1_time,
            epoch=self.mark.epoch,
        )
        # the checkpoint's clock covers this batch's time: the next batch never opens before it
        self.l1_time = max(self.l1_time, record.l1_timestamp)
        log.info("batch %d cut (%s): log %d..%d, %d records, %d bytes, root %s",
                 record.index, reason, record.first_seq, record.end_seq - 1, record.record_count, record.data_bytes,
                 root.hex()[:16] or "(computed behind the engine)")
        self.metrics.batches_cut.labels(reason).inc()
        self.metrics.last_cut.set(record.index)
        self.batch_index += 1
        self.pending = Pending()
        self.batch_time = None
        self.pending_first_seq = self.next_seq
        return record

    async def cut(self, batches: trio.MemorySendChannel[Any], reason: str) -> BatchRecord:
        """Close the pending batch (its entries are durable) and return its record (with the
        background task running: still the boundary, roots empty). On the engine's path: the capture of
        what changed (copies) and the batch boundary — its record without the roots — synced, so
        the log after it can never be replayed into this batch. The root is computed in slices
        behind the engine (`RootJob`, `background`), then the complete record and the checkpoint go
        to the checkpoint lane and the batch to the proposer (`_hand_over`). Without the background
        task (an engine driven directly) all of it happens here.
        (No yield to other tasks inside the cut: tried, unmeasurable in the latency under the shared
        machine's noise, and it let the liquidator run a round between the cut's account notices,
        re-valuing more accounts than tests/services/test_market_services_attacks.py bounds.)"""
        boundary = self._close_batch(reason, deferred=True)
        checkpoint, delta = self._checkpoint(boundary)
        job = RootJob(boundary, checkpoint, delta)
        self.commitment.defer(job)
        await trio.to_thread.run_sync(self.journal.append_batch, boundary)
        self.faults.point("engine.cut")
        if self._roots_wake is None:
            self.commitment.finish()
            await self._hand_over(batches)
        else:
            self._roots_wake.set()
        return job.record  # (complete once its root is computed: here, without the background task)

    async def _hand_over(self, batches: trio.MemorySendChannel[Any]) -> None:
        """The batches whose root is computed, in cut order: record and checkpoint to the lane, the
        batch to the proposer."""
        async with self._hand_over_lock:  # (a rebuild hands over too: one at a time keeps the cut order)
            self._handing_over = True
            try:
                await self._hand_over_done(batches)
            finally:
                self._handing_over = False

    async def _hand_over_done(self, batches: trio.MemorySendChannel[Any]) -> None:
        while self.commitment.done:
            job = self.commitment.done.pop(0)
            log.info("batch %d root %s", job.record.index, job.record.state_root.hex()[:16])
            self.journal.complete(job.record)
            await self.checkpoints.submit(job.record, job.header, job.delta)  # written behind the engine (services/checkpointer.py)
            await self.checkpoints.flushed()  # (the proposer reads the record back from the store before it posts)
            await batches.send(job.record)

    async def background(self, batches: trio.MemorySendChannel[Any], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """What runs behind the engine: the checkpoint lane, and the live cuts' roots in slices of
        `ROOT_SLICE` seconds of the engine's thread, each followed by a yield, so no request waits
        for a whole root."""
        async with trio.open_nursery() as nursery:
            await nursery.start(checkpointer.run, self.checkpoints)
            self._roots_wake = trio.Event()
            task_status.started()
            try:
                while True:
                    await self._roots_wake.wait()
                    self._roots_wake = trio.Event()
                    while self.commitment.jobs:
                        self.commitment.step(ROOT_SLICE)
                        await trio.sleep(0)
                    await self._hand_over(batches)
            finally:
                self._roots_wake = None

    # --- rebuilding batches (docs/sequencer.md, "Rebuilding batches") --------------------------------

    async def rebuild(self, batches: trio.MemorySendChannel[Any], from_index: int, reason: str,
                      discard: tuple[int, int] | None = None) -> Rebuilt | None:
        """Replace batches ``from_index`` and later: restore the checkpoint of ``from_index - 1`` (state
        and books), re-apply every later log entry — the cut batches' and the pending ones' — at a
        fresh L1 time (the newest head's), cut the result again by the size limits, and write it all
        in one synced write batch. An entry that no longer executes is kept in the log as dropped
        (its reason recorded; the client sees it through optinode_getCommand / optinode_getOrder).
        L1 queue entries are re-consumed from the same counters, once each, in the same order."""
        self.commitment.finish()
        await self._hand_over(batches)  # (the live cuts' roots, records and checkpoints first)
        await self.checkpoints.flushed()  # (the parent's and every later checkpoint written: the rewrite replaces them)
        parent = self.journal.checkpoint(from_index - 1)
        if parent is None or from_index > self.batch_index:
            raise EngineCritical(f"cannot rebuild from batch {from_index}: no checkpoint of batch {from_index - 1}")
        old = list(self.journal.entries(parent.next_seq))
        self._restore_in_place(parent)
        self.commitment = CheckpointedCommitment.from_state(self.state)
        self.commitment.take_changed()  # (the rows are rolled back to the parent's: the re-applied entries mark what changes)
        self.owners = {}
        for account_id in sorted(self.state.accounts):
            self.owners.setdefault(self.state.accounts[account_id].owner, account_id)
        self.mark = RebuildMark(epoch=self.mark.epoch + 1, discards=self.mark.discards + ((discard,) if discard else ()))
        self.batch_index = from_index
        self.pending = Pending()
        self.pending_first_seq = parent.next_seq
        self.batch_time = None
        now = self._time()  # the newest head's time (never before the parent's: l1_time covers it)
        cuts: list[tuple[BatchRecord, Checkpoint, CheckpointDelta]] = []
        rewritten: list[LogEntry] = []
        results: list[tuple[LogEntry, Any]] = []
        end_seq = self.next_seq
        for entry in old:
            self.next_seq = entry.seq  # (a cut in between ends the batch before this entry)
            command = entry.command
            room = (self._book_room(command) if isinstance(command, BOOK_COMMANDS)
                    else (1, framed_size(command.record)) if type(command) is SubmitCommand else _QUEUE_ROOM)
            if self.pending.records and not self.policy.fits_size(self.pending, *room):
                cuts.append(self._close("rebuild"))
                now = self._time()
            new, result = self._reapply(entry, now)
            self.next_seq = entry.seq + 1
            rewritten.append(new)
            results.append((new, result))
            self._pend(new, trio.current_time())
        assert self.next_seq == end_seq, "the log range rebuilt is the whole log after the checkpoint"
        if self.pending.records:
            cuts.append(self._close("rebuild"))
        else:
            self.batch_time = None  # only record-less entries left: the next batch opens with its first record
        self.history.rewind(parent.next_seq, results)  # the order history of what the rebuild re-applied
        self.faults.point("engine.rebuilding")
        await trio.to_thread.run_sync(self.journal.rewrite, from_index, rewritten, cuts, self.mark, self.history.writes())
        self.history.flushed()
        expired = self._expire_orders()  # orders whose expiry the fresh time passed leave the book
        if expired is not None:
            await trio.to_thread.run_sync(self.journal.append, [expired], self.history.writes())
            self.history.flushed()
        dropped = tuple(e.seq for e in rewritten if e.dropped)
        self._revise(results)
        for account_listener in self.account_listeners:
            account_listener(set(self.state.accounts))
        alert(log, "batches_rebuilt", from_index=from_index, reason=reason, epoch=self.mark.epoch, entries=len(rewritten), l1_time=now,
              batches=len(cuts), dropped=len(dropped), dropped_first=[[e.seq, str(e.dropped)] for e in rewritten if e.dropped][:20])
        self.faults.point("engine.rebuilt")
        done = Rebuilt(from_index, self.mark.epoch, reason, dropped)
        await batches.send(done)
        for record, *_ in cuts:
            await batches.send(record)
        return done

    def _reapply(self, entry: LogEntry, now: int) -> tuple[LogEntry, Any]:
        """Run a logged command again at L1 time ``now`` on the restored state: the same seq, the
        records and codes it gives now, or dropped with the reason it no longer executes."""
        command, seq = entry.command, entry.seq
        if type(command) is DepositCommand:
            return self._consume_deposit(seq, now, command.index, command.owner, command.amount), None
        if entry.dropped:
            return msgspec.structs.replace(entry, l1_timestamp=now), None  # (dropped by an earlier rebuild: stays dropped)
        if type(command) is ForcedCommand:
            consumed = self._consume_forced(seq, now, command)
            if consumed is None:  # stale at the fresh time: back to the head of the queue, consumed live later
                self._requeue_forced(command)
                return LogEntry(seq, now, command, (), (), dropped="WAITING_FOR_PRICE"), None
            return consumed, None
        if type(command) is SubmitCommand:
            receipt = state_transition(self.state, decode_transaction(command.record), L1Context(now))
            if not receipt.applied:
                return LogEntry(seq, now, command, (), (), dropped=receipt.code.name), None
            return LogEntry(seq, now, command, (command.record,), (int(receipt.code),)), None
        try:
            result = self.matcher.apply(command, L1Context(now))
        except UnknownOrder:
            return LogEntry(seq, now, command, (), (), dropped="UNKNOWN_ORDER"), None
        if type(result) is PlaceResult and not result.logged:
            return LogEntry(seq, now, command, (), (), dropped=result.reason or "REJECTED"), result
        records = _book_records(command, result, self.state, now)
        return LogEntry(seq, now, command, records, (int(ErrorCode.OK),) * len(records)), result

    def _revise(self, results: list[tuple[LogEntry, Any]]) -> None:
        """What the rebuild made of each re-applied order: its fills as taker and as maker, its status."""
        fills: dict[bytes, list[Fill]] = {}
        for _, result in results:
            for fill in getattr(result, "fills", ()):
                fills.setdefault(fill.maker_hash, []).append(fill)
        for entry, result in results:
            if type(result) is PlaceResult:
                status = "dropped" if entry.dropped else result.status.value
                self.revisions[result.order_hash] = OrderRevision(entry.seq, status, result.reason, tuple(result.fills) + tuple(fills.get(result.order_hash, ())))

    def command_status(self, seq: int) -> dict[str, Any] | None:
        """What became of acknowledged command ``seq`` (optinode_getCommand): ``pending`` (not cut
        yet), ``batched`` / ``final`` (in batch n), or ``dropped`` with the reason a rebuild found it
        no longer executes. Read from the durable log, so it survives restarts."""
        entry = self.journal.entry(seq)
        if entry is None:
            return None
        view: dict[str, Any] = {"seq": seq, "l1Time": entry.l1_timestamp, "batch": None, "reason": entry.dropped or None}
        if entry.dropped:
            return {**view, "status": "dropped"}
        low, high = 1, self.batch_index - 1  # batches are consecutive log ranges: binary search by first_seq
        while low <= high:
            middle = (low + high) // 2
            record = self.journal.batch(middle)
            if record is None or seq < record.first_seq:
                high = middle - 1
            elif seq >= record.end_seq:
                low = middle + 1
            else:
                status = "final" if record.index <= self.journal.last_final() else "batched"
                return {**view, "status": status, "batch": record.index}
        return {**view, "status": "pending"}

    def _discard_position(self, event: Any) -> tuple[int, int]:
        return (event.block_number, event.log_index)

    def _discarded(self, event: Any) -> tuple[bytes, int] | None:
        """The batch ``event`` discarded as L1 held it then: (state root, declared time), None if not stored."""
        return live_batches_before(self.store, self._discard_position(event)).get(event.from_index)

    async def _maybe_rebuild(self, batches: trio.MemorySendChannel[Any]) -> None:
        """Discards seen on L1 and stale-batch requests, once an L1 head gives a fresh time."""
        if self.head is None:
            return
        while self._discards:
            event = self._discards[0]
            position = self._discard_position(event)
            if position not in self.mark.discards and event.block_number + self.confirmations > self.head.number:
                # Rolled back for only once as deep as a consumed queue entry must be: a reorg shallower
                # than that may still remove the discard, and then there is nothing to undo (the journal
                # keeps the batches L1 holds again; a rewrite could not be undone). Later discards wait too.
                break
            self._discards.pop(0)
            if position in self.mark.discards:
                continue
            if event.from_index >= self.batch_index or self.journal.batch(event.from_index) is None:
                log.warning("batches %d..%d discarded on L1: none of them is ours to rebuild", event.from_index, event.to_index - 1)
                continue
            ours, discarded = self.journal.batch(event.from_index), self._discarded(event)
            if ours is not None and discarded is not None and discarded != (ours.state_root, ours.l1_timestamp):
                # L1 discarded a batch we no longer hold: one we already replaced. A reorg took out
                # the discard we rolled back for and L1 did it again, at another position. Rolling
                # back again would replace the rebuilt batches, whose appends may land meanwhile
                # (WrongParent for ever after). The proposer resumes with what it has.
                log.warning("batches %d..%d discarded on L1 again (root 0x%s, time %d): ours (epoch %d, 0x%s, time %d) already replace them",
                            event.from_index, event.to_index - 1, discarded[0].hex()[:16], discarded[1], ours.epoch, ours.state_root.hex()[:16],
                            ours.l1_timestamp)
                await batches.send(Rebuilt(event.from_index, self.mark.epoch, "discarded batch already replaced", ()))
                continue
            alert(log, "batches_discarded", from_index=event.from_index, to_index=event.to_index, action="rolling back",
                  checkpoint=event.from_index - 1)
            await self.rebuild(batches, event.from_index, "discarded on L1", discard=position)
        request, self._rebuild_asked = self._rebuild_asked, None
        if request is not None:
            record = self.journal.batch(request.index)
            if record is not None and record.epoch == request.epoch:
                await self.rebuild(batches, request.index, "older than the timestamp drift")


async def run(
    engine: Engine,
    inbox: trio.MemoryReceiveChannel[Message],
    batches: trio.MemorySendChannel[BatchRecord],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The engine as a service: take every waiting message, process them as one group commit."""
    if engine.pending.entries:
        engine.pending.started_at = trio.current_time()
    async with trio.open_nursery() as nursery, inbox, batches:
        await nursery.start(engine.background, batches)
        task_status.started()
        while True:
            group: list[Message] = [await inbox.receive()]
            while len(group) < GROUP_LIMIT:
                try:
                    group.append(inbox.receive_nowait())
                except trio.WouldBlock:
                    break
            engine.processing = True
            try:
                await engine.process(group, batches)
            finally:
                engine.processing = False

