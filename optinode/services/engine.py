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
cut; the batcher asks for age and deadline cuts. A cut computes the state root once (the commitment
rehashes the leaves that changed), writes the batch record and the state checkpoint in one synced
batch, and hands the batch to the proposer. Restart = last checkpoint + replay of the later log
entries (`Engine.__init__`), byte for byte the same state.
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
from optinode.exchange.matching import Matcher, UnknownOrder
from optinode.l1 import events
from optinode.l1.follower import BLOCK, Head, Reorg
from optinode.metrics import SequencerMetrics
from optinode.services.batcher import BatchPolicy, CutRequest, Pending
from optinode.services.faults import NO_FAULTS, Faults
from optinode.services.journal import (
    BatchRecord,
    DepositCommand,
    ForcedCommand,
    Journal,
    LogEntry,
    ReplayMismatch,
    SubmitCommand,
    decode_state,
    replay_entry,
)
from optinode.spec.commitment import Commitment, encode_globals
from optinode.spec.crypto import keccak
from optinode.spec.errors import ErrorCode
from optinode.spec.record_codec import encode_transaction
from optinode.spec.state import State
from optinode.spec.transition import state_transition
from optinode.spec.types import (
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

__all__ = ["Accepted", "BookAccepted", "BookSubmission", "Deadlines", "Engine", "EngineCritical", "Rejected", "Submission", "Submitter", "run"]

log = logging.getLogger("optinode.services.engine")

# What a user may submit; deposits and forced withdrawals come from the L1 queues only.
SUBMITTABLE = (Trade, Withdraw, OraclePrice, FundingTick, Liquidate, Deleverage)
GROUP_LIMIT = 4096  # messages taken from the inbox per group commit
_FULL_ORDER = Order(2**32 - 1, 127, True, 2**64 - 1, 2**64 - 1, 2**32 - 1, 2**64 - 1, 2**64 - 1, b"\xff" * 32 + b"\x7f" + b"\xff" * 31 + b"\x1c")
_MAX_TRADE_RECORD = encode_transaction(Trade(_FULL_ORDER, _FULL_ORDER, 2**64 - 1))  # the largest a fill can be


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


Message = Union[Submission, BookSubmission, CutRequest, Head, Reorg, events.L1Event]
BOOK_COMMANDS = (book_orders.Placement, book_orders.CancelOrder, book_orders.CancelAll, book_orders.ExpireOrders)


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
        self.policy = policy
        self.confirmations = confirmations
        self.deadlines = deadlines
        self.faults = faults
        self.journal.write_genesis(genesis)
        checkpoint = self.journal.last_checkpoint()
        genesis_checkpoint = self.journal.checkpoint(0)
        assert checkpoint is not None and genesis_checkpoint is not None
        # The order books are not in the checkpoints (only the spec state is), so they are rebuilt
        # by replaying the whole log from genesis through the matcher: book commands are matched
        # again and must emit exactly the Trades they logged (ReplayMismatch otherwise). Restart
        # time is therefore linear in the log length (docs/api.md, "Durability").
        self.state = decode_state(genesis_checkpoint.state)
        self.matcher = Matcher(self.state)
        self.batch_index = checkpoint.batch_index + 1  # the next batch to cut
        self.pending = Pending()
        self.pending_first_seq = checkpoint.next_seq
        self.next_seq = checkpoint.next_seq
        self.l1_time = max(genesis.time, checkpoint.l1_time)
        # The pending batch's L1 time: fixed by its first entry, None while it is empty.
        self.batch_time: int | None = None
        replayed = 0
        for entry in self.journal.entries(0):
            if isinstance(entry.command, BOOK_COMMANDS):
                self._replay_book(entry)
            else:
                replay_entry(self.state, entry)
            if entry.seq >= checkpoint.next_seq:
                self._pend(entry, 0.0, self._post_by(entry))  # run() restarts the age clock
                if entry.records and self.batch_time is None:
                    self.batch_time = entry.l1_timestamp  # the pending batch's time, as its entries ran
                replayed += 1
            self.next_seq = entry.seq + 1
            self.l1_time = max(self.l1_time, entry.l1_timestamp)
        self.commitment = Commitment.from_state(self.state)
        self.owners: dict[bytes, int] = {}
        for account_id in sorted(self.state.accounts):
            self.owners.setdefault(self.state.accounts[account_id].owner, account_id)
        self.deposits: dict[int, _QueueItem] = {}
        self.forced: dict[int, _QueueItem] = {}
        self.head: Head | None = None
        self._head_time = 0
        self.busy = False  # a group is being processed (tests wait for it to settle)
        self.metrics.watch_l1(lambda: self.head)  # read at scrape time: nothing on the hot path
        self.metrics.watch_book(lambda: self.matcher.books)
        # Called with the ids of the accounts changed since the last cut (a superset of what the last
        # group touched), after each group and before each cut clears the marks: the liquidator's
        # risk index re-values exactly these (docs/market-services.md). Must not block or raise.
        self.account_listeners: list[Callable[[set[int]], None]] = []
        log.info("engine: batch %d next, %d log entries replayed after checkpoint %d", self.batch_index, replayed, checkpoint.batch_index)

    @property
    def head_time(self) -> int:
        """The newest L1 head's time (the batcher's drift cut measures against it)."""
        return self._head_time

    # --- the order book ---------------------------------------------------------------------------

    def _pend(self, entry: LogEntry, now: float, post_by: float | None = None) -> None:
        """Count an entry in the pending batch. A book command with no Trade (an order that rests,
        a cancel) carries no record: it stays in the log range of the next batch but must not
        start a batch of its own (an empty batch)."""
        if entry.records or not isinstance(entry.command, BOOK_COMMANDS):
            self.pending.add(entry.records, now, post_by)

    def _replay_book(self, entry: LogEntry) -> None:
        try:
            result = self.matcher.apply(entry.command, L1Context(entry.l1_timestamp))
        except UnknownOrder as error:
            raise ReplayMismatch(f"log entry {entry.seq}: {error}") from None
        trades = tuple(encode_transaction(t) for t in getattr(result, "trades", ()))
        if trades != entry.records:
            raise ReplayMismatch(f"log entry {entry.seq} matches to {len(trades)} other Trades than the {len(entry.records)} logged")

    def _book_room(self, command: Any) -> tuple[bytes, ...]:
        """The most records a book command can add: one Trade per resting order it can meet."""
        if type(command) is not book_orders.Placement:
            return ()
        order = command.order
        # (not the whole opposite side: with a deep book that would cut a batch before every order)
        if order.market >= len(self.matcher.books):
            return ()
        # every fill is at least one step, so no more fills than steps in the order
        most = min(self.matcher.books[order.market].crossing(order.is_buy, order.limit_price),
                   order.size // self.state.config.markets[order.market].step_size)
        return (_MAX_TRADE_RECORD,) * min(most, self.policy.max_records)

    def _expire_orders(self) -> LogEntry | None:
        """Once the system time has passed a resting order's signed expiry, an `ExpireOrders` book
        command (logged, so replay removes the same orders at the same point) takes them off the
        book: a book must not show orders that can no longer fill."""
        by_expiry = self.matcher.by_expiry
        if not by_expiry or by_expiry[0][0] >= self.state.time:
            return None
        outcome = self._book_submission(book_orders.ExpireOrders())
        assert isinstance(outcome, tuple)
        return outcome[0]

    def _book_submission(self, command: Any) -> tuple[LogEntry, Any] | BookAccepted | Rejected:
        if not isinstance(command, BOOK_COMMANDS):
            return Rejected(ErrorCode.MALFORMED, f"{type(command).__name__} is not a book command")
        opened = self.batch_time is None
        now = self._time()  # the Trades it emits run at the pending batch's L1 time
        try:
            result = self.matcher.apply(command, L1Context(now))
        except UnknownOrder as error:
            if opened:
                self.batch_time = None
            return Rejected(ErrorCode.MALFORMED, str(error))
        records = tuple(encode_transaction(t) for t in getattr(result, "trades", ()))
        if opened and not records:
            self.batch_time = None  # no record joined the batch: it opens with its first one
        if type(result) is book_orders.PlaceResult and not result.logged:
            return BookAccepted(None, result)
        entry = LogEntry(self.next_seq, now, command, records, (int(ErrorCode.OK),) * len(records))
        self.next_seq += 1
        self._pend(entry, trio.current_time())
        return entry, result

    # --- L1 ----------------------------------------------------------------------------------------

    def absorb(self, event: Any) -> None:
        """Note a queue entry (from the follower, or its stored events at start-up)."""
        if isinstance(event, events.Deposited) and event.index >= self.state.deposits_done:
            self.deposits.setdefault(event.index, _QueueItem(event, self._head_time))
        elif isinstance(event, events.ForcedWithdrawalRequested) and event.index >= self.state.forced_done:
            self.forced.setdefault(event.index, _QueueItem(event, self._head_time))

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
        if self.head is not None and self.head.number > reorg.common_ancestor:
            self.head = Head(reorg.common_ancestor, b"", self.head.timestamp)

    def _on_head(self, head: Head) -> None:
        self.head = head
        self._head_time = max(self._head_time, head.timestamp)
        confirmed = self.store.get_value(keys.l1_block(max(0, head.number - self.confirmations)), BLOCK)
        if confirmed is not None:
            self.l1_time = max(self.l1_time, confirmed.timestamp)

    def _next_queue_item(self) -> tuple[str, _QueueItem] | None:
        """The oldest unconsumed queue entry that is deep enough, in L1 order."""
        if self.head is None:
            return None
        candidates = []
        for kind, table, done in (("deposit", self.deposits, self.state.deposits_done), ("forced", self.forced, self.state.forced_done)):
            item = table.get(done)
            if item is not None and item.event.block_number + self.confirmations <= self.head.number:
                candidates.append(((item.event.block_number, item.event.log_index), kind, item))
        if not candidates:
            return None
        _, kind, item = min(candidates, key=lambda c: c[0])
        return kind, item

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

    def _queue_entry(self, kind: str, item: _QueueItem) -> LogEntry:
        event = item.event
        now = self._time()
        if kind == "deposit":
            ctx = L1Context(now, deposits={event.index: DepositEntry(event.owner, event.amount)})
            account_id = self.owners.get(event.owner, self.state.next_account_id)
            tx: Transaction = Deposit(account_id)
            receipt = state_transition(self.state, tx, ctx)
            if not receipt.applied and account_id != self.state.next_account_id:
                # The owner's account cannot take it (a balance limit): a new account always can.
                account_id = self.state.next_account_id
                tx = Deposit(account_id)
                receipt = state_transition(self.state, tx, ctx)
            if not receipt.applied:
                raise RuntimeError(f"deposit {event.index} cannot be consumed: {receipt.code.name}")
            self.owners.setdefault(event.owner, account_id)
            command: Any = DepositCommand(event.index, event.owner, event.amount, account_id)
            self.deposits.pop(event.index)
            post_by = self.policy.post_by(item.seen_time, self.deadlines.deposit)
        else:
            ctx = L1Context(now, forced={event.index: ForcedEntry(event.requester, event.account_id, event.amount)})
            tx = ForcedWithdraw()
            receipt = state_transition(self.state, tx, ctx)
            if not receipt.applied:
                raise RuntimeError(f"forced request {event.index} cannot be consumed: {receipt.code.name}")
            command = ForcedCommand(event.index, event.requester, event.account_id, event.amount)
            self.forced.pop(event.index)
            post_by = self.policy.post_by(item.seen_time, self.deadlines.forced)
            if receipt.code != ErrorCode.OK:
                log.info("forced request %d (account %d, %d) recorded as rejected: %s", event.index, event.account_id, event.amount, receipt.code.name)
        entry = LogEntry(self.next_seq, now, command, (encode_transaction(tx),), (int(receipt.code),))
        self.next_seq += 1
        self.pending.add(entry.records, trio.current_time(), post_by)
        return entry

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

        async def room_for(records: tuple[bytes, ...]) -> None:
            if not self.policy.fits(self.pending, records):
                await self._flush(written, replies)
                await self.cut(batches, "size")

        for message in group:
            if isinstance(message, Submission):
                record = self._record_of(message.tx)
                if record is None:
                    message.reply.send_nowait(Rejected(ErrorCode.MALFORMED, "the transaction does not encode as a batch record"))
                    continue
                await room_for((record,))
                result = self._submission(message.tx)
                if self._needs_later_time(result):
                    # An oracle sample or funding tick stamped after the open batch's L1 time but not
                    # after the head's: close the batch and run it in a new one at the head's time
                    # (at most one extra cut per L1 block: the new batch opens at the newest head).
                    await self._flush(written, replies)
                    await self.cut(batches, "l1 time")
                    result = self._submission(message.tx)
                if isinstance(result, Rejected):
                    message.reply.send_nowait(result)
                    continue
                self.faults.point("engine.applied")
                written.append(result)
                replies.append((message.reply, Accepted(result.seq, result.codes)))
                expired = self._expire_orders()  # a price or funding tick moved the system time
                if expired is not None:
                    written.append(expired)
            elif isinstance(message, BookSubmission):
                await room_for(self._book_room(message.command))
                outcome = self._book_submission(message.command)
                if isinstance(outcome, tuple):
                    entry, result = outcome
                    self.faults.point("engine.applied")
                    written.append(entry)
                    replies.append((message.reply, BookAccepted(entry.seq, result)))
                else:
                    message.reply.send_nowait(outcome)
            elif isinstance(message, CutRequest):
                cut_reason = message.reason
            elif isinstance(message, Head):
                self._on_head(message)
                while (item := self._next_queue_item()) is not None:
                    await room_for((b"\x00" * 4,))
                    written.append(self._queue_entry(*item))
                    self.faults.point("engine.applied")
            elif isinstance(message, Reorg):
                self._on_reorg(message)
            else:
                self.absorb(message)
        await self._flush(written, replies)
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
            await trio.to_thread.run_sync(self.journal.append, entries)
            self.metrics.fsync.observe(time.perf_counter() - started)
            self.metrics.group_entries.inc(len(entries))
            self.faults.point("engine.logged")
        for reply, ack in replies:
            try:
                reply.send_nowait(ack)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the submitter went away; the command stays logged
        replies.clear()

    async def cut(self, batches: trio.MemorySendChannel[BatchRecord], reason: str) -> BatchRecord:
        """Close the pending batch (its entries are durable): root once, record + checkpoint, hand over."""
        if self.faults.tamper_after(self.batch_index) is not None:
            mint_one(self.state)  # devnet fault `corrupt:B:K`: this batch's root is wrong (the defender replays it from tx K)
        self._notify_accounts()  # (the commitment clears the marks)
        root = self.commitment.update(self.state)
        state = self.state
        record = BatchRecord(
            index=self.batch_index,
            first_seq=self.pending_first_seq,
            end_seq=self.next_seq,
            record_count=self.pending.records,
            data_bytes=self.pending.data_bytes,
            accounts_root=self.commitment.accounts.root(),
            slots_root=self.commitment.slots.root(),
            globals_hash=keccak(encode_globals(state)),
            deposits_done=state.deposits_done,
            forced_done=state.forced_done,
            state_root=root,
            l1_timestamp=self.batch_time if self.batch_time is not None else self.l1_time,
        )
        # the checkpoint's clock covers this batch's time: the next batch never opens before it
        self.l1_time = max(self.l1_time, record.l1_timestamp)
        await trio.to_thread.run_sync(self.journal.cut, record, state, self.l1_time)
        log.info("batch %d cut (%s): log %d..%d, %d records, %d bytes, root %s",
                 record.index, reason, record.first_seq, record.end_seq - 1, record.record_count, record.data_bytes, root.hex()[:16])
        self.metrics.batches_cut.labels(reason).inc()
        self.metrics.last_cut.set(record.index)
        self.faults.point("engine.cut")
        self.batch_index += 1
        self.pending = Pending()
        self.batch_time = None
        self.pending_first_seq = self.next_seq
        await batches.send(record)
        return record


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
    task_status.started()
    async with inbox, batches:
        while True:
            group: list[Message] = [await inbox.receive()]
            while len(group) < GROUP_LIMIT:
                try:
                    group.append(inbox.receive_nowait())
                except trio.WouldBlock:
                    break
            engine.busy = True
            try:
                await engine.process(group, batches)
            finally:
                engine.busy = False

