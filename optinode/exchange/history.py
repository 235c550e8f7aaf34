"""Order history: what became of every order the engine accepted, kept in the store so that
`optinode_getOrder` gives the same answer after a restart (docs/api.md, docs/store.md).

    history = History(store)
    history.record(entry, result)               # the engine logged a book command (entry.seq)
    journal.append(entries, history.writes())   # the changed records go in the log's synced write batch
    history.flushed()                           # ... once that batch is durable
    history.get(order_hash)                     # OrderRecord | None
    history.prune(now)                          # at a batch cut: delete records whose retention ended

**Durability.** The records a log entry changes are written in the same synced write batch as the
entry (one fsync, all or nothing), so after a crash the history agrees with the log exactly: a fill
that was acknowledged is in both, one that was not is in neither. Nothing is derived on replay (the
books may come from a checkpoint rather than a replay from genesis, and the history must not
depend on which), and nothing here is read by matching or by the state: it is a view for clients.
A rebuild rewinds it (`rewind`) in the write batch that rewrites the log.

**What is kept.** A record for every order whose placement was logged (it rested, filled, or was
cancelled while matching), updated as it fills as a maker and when it is cancelled or expires.
Orders refused before matching change nothing and are not logged, so they are not stored either
(an answer `rejected` is final and immediate; the RPC front remembers the recent ones in memory).

**Retention** (what an exchange keeps for reconciliation, bounded so that the store does not grow
with a market maker's cancel traffic): a finished order with at least one fill is kept for
`RETENTION_FILLED` (30 days) after it finished, one that finished with no fill (cancelled, expired,
IOC unfilled: the bulk of a market maker's orders) for `RETENTION_UNFILLED` (3 days), both measured
in rollup L1 time; live orders are kept while they live. Fills stay on L1 for good: an indexer that
needs all history reads batches. Pruning runs at batch cuts, unsynced (a crash only delays it).
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec

from optinode.exchange.orders import CancelAll, Cancelled, CancelOrder, ExpireOrders, Fill, Placement, PlaceResult, Status
from optinode.store import keys
from optinode.store.codec import Codec
from optinode.store.kv import KV

__all__ = ["FillRecord", "History", "OrderRecord", "RETENTION_FILLED", "RETENTION_UNFILLED"]

RETENTION_FILLED = 30 * 86_400  # seconds of L1 time a finished order with fills is kept
RETENTION_UNFILLED = 3 * 86_400  # and one that finished without a fill
PRUNE_LIMIT = 10_000  # records deleted per cut at most (bounds the pause; the rest goes at the next cut)
FINAL = (Status.FILLED, Status.CANCELLED, Status.REJECTED)


class FillRecord(msgspec.Struct, frozen=True, array_like=True):
    """One fill of an order (the names are those of `orders.Fill`, so one view renders both)."""

    seq: int  # the log entry that executed it
    market: int
    price: int
    size: int
    taker_is_buy: bool
    maker_hash: bytes
    taker_hash: bytes
    maker_account: int
    taker_account: int


class OrderRecord(msgspec.Struct, frozen=True, kw_only=True):
    order_hash: bytes
    account_id: int
    market: int
    is_buy: bool
    price: int  # the signed limit price
    size: int  # the signed size
    expiry: int
    tif: str  # TimeInForce value
    reduce_only: bool
    status: Status
    reason: str | None
    fills: tuple[FillRecord, ...]
    placed_seq: int
    finished_seq: int | None = None
    finished_at: int | None = None  # the L1 time of the entry that finished it

    @property
    def filled(self) -> int:
        return sum(f.size for f in self.fills)


RECORD = Codec(OrderRecord)


def _prune_key(record: OrderRecord) -> bytes:
    """When a finished order's record may go: its retention after the L1 time it finished."""
    assert record.finished_at is not None
    return keys.order_prune(record.finished_at + (RETENTION_FILLED if record.fills else RETENTION_UNFILLED), record.order_hash)


def _fill_record(seq: int, fill: Fill) -> FillRecord:
    return FillRecord(seq, fill.market, fill.price, fill.size, fill.taker_is_buy, fill.maker_hash, fill.taker_hash,
                      fill.maker_account, fill.taker_account)


class History:
    def __init__(self, store: KV) -> None:
        self.store = store
        self.pending: dict[bytes, OrderRecord | None] = {}  # changed since the last durable write (None: deleted)
        self.prunes: dict[bytes, bool] = {}  # prune keys to put (True) or delete (False) with them
        # The current record of every order not yet final (the resting ones: as many as the books
        # hold), so that a maker's fill updates its record without a store read and a decode (they
        # were ~a sixth of the engine's own cost per order: docs/benchmarks.md). Filled from the
        # store on first read after a restart; cleared by a rebuild's rewind.
        self.live: dict[bytes, OrderRecord] = {}

    def get(self, order_hash: bytes) -> OrderRecord | None:
        if order_hash in self.pending:
            return self.pending[order_hash]
        record = self.live.get(order_hash)
        if record is not None:
            return record
        if len(order_hash) != keys.ORDER_HASH_LEN:
            return None
        record = self.store.get_value(keys.order(order_hash), RECORD)
        if record is not None and record.status not in FINAL:
            self.live[order_hash] = record
        return record

    # --- recording (the engine, for each logged book command) -------------------------------------

    def record(self, seq: int, l1_time: int, command: Any, result: Any) -> None:
        """Update the records a logged book command changed (``result`` is the matcher's)."""
        kind = type(command)
        if kind is Placement:
            self._placed(seq, l1_time, command, result)
        elif kind is CancelOrder:
            self._cancelled(seq, l1_time, result)
        elif kind in (CancelAll, ExpireOrders):
            for cancelled in result:
                self._cancelled(seq, l1_time, cancelled)

    def _placed(self, seq: int, l1_time: int, placement: Placement, result: PlaceResult) -> None:
        order = placement.order
        fills = tuple(_fill_record(seq, f) for f in result.fills)
        record = OrderRecord(order_hash=result.order_hash, account_id=order.account_id, market=order.market, is_buy=order.is_buy,
                             price=order.limit_price, size=order.size, expiry=order.expiry, tif=placement.tif.value,
                             reduce_only=placement.reduce_only, status=result.status, reason=result.reason, fills=fills, placed_seq=seq)
        self._put(record, seq, l1_time)
        for fill in fills:  # the makers' side of each fill (a maker can be filled, then cancelled: fills first)
            maker = self.get(fill.maker_hash)
            if maker is not None:
                filled = maker.filled + fill.size
                status = Status.FILLED if filled >= maker.size else Status.PARTIALLY_FILLED
                self._put(msgspec.structs.replace(maker, fills=maker.fills + (fill,), status=status), seq, l1_time)
        for cancelled in result.cancelled:
            self._cancelled(seq, l1_time, cancelled)

    def _cancelled(self, seq: int, l1_time: int, cancelled: Cancelled) -> None:
        record = self.get(cancelled.order_hash)
        if record is not None and record.status not in FINAL:
            self._put(msgspec.structs.replace(record, status=Status.CANCELLED, reason=cancelled.reason), seq, l1_time)

    def _put(self, record: OrderRecord, seq: int, l1_time: int) -> None:
        if record.status in FINAL and record.finished_seq is None:
            record = msgspec.structs.replace(record, finished_seq=seq, finished_at=l1_time)
            self.prunes[_prune_key(record)] = True
        self.pending[record.order_hash] = record
        if record.status in FINAL:
            self.live.pop(record.order_hash, None)
        else:
            self.live[record.order_hash] = record

    # --- rebuilds ----------------------------------------------------------------------------------

    def rewind(self, first_seq: int, reapplied: list[tuple[Any, Any]]) -> None:
        """A rebuild re-applied log entries ``first_seq`` and later (``reapplied``: each new entry and
        the matcher's result, None for an entry that is not a book command or no longer executes):
        make the history what those entries did this time. Orders placed from ``first_seq`` on are
        recorded again from scratch (a placement that no longer executes as REJECTED with the reason
        the rebuild dropped it for); older orders lose the fills and the finish that came from
        ``first_seq`` on (they were live at the checkpoint) before the re-applied entries update them.
        Reads every stored record (rebuilds are rare; retention bounds the table)."""
        stop = keys.prefix_end(keys.prefix_of(keys.Prefix.ORDER))
        stored = [RECORD.decode(v, key=k) for k, v in self.store.iterate(start=keys.prefix_of(keys.Prefix.ORDER), stop=stop)]
        placed_at: dict[int, OrderRecord] = {}  # records of placements from first_seq on, by seq
        for record in stored + [r for r in self.pending.values() if r is not None]:
            record = self.get(record.order_hash) or record
            if record.finished_seq is not None and record.finished_seq >= first_seq:
                self.prunes[_prune_key(record)] = False
            if record.placed_seq >= first_seq:
                placed_at[record.placed_seq] = record
                self.pending[record.order_hash] = None
            elif record.finished_seq is not None and record.finished_seq >= first_seq or any(f.seq >= first_seq for f in record.fills):
                fills = tuple(f for f in record.fills if f.seq < first_seq)
                self.pending[record.order_hash] = msgspec.structs.replace(
                    record, fills=fills, status=Status.PARTIALLY_FILLED if fills else Status.RESTING, reason=None,
                    finished_seq=None, finished_at=None)
        # The records changed above are in `pending` now; what `live` held (or read from the store
        # in this loop) may be older. The re-applied entries below fill it again.
        self.live.clear()
        for entry, result in reapplied:
            command = entry.command
            if entry.dropped and type(command) is Placement:
                if type(result) is PlaceResult and result.order_hash:  # dropped now: no longer executes
                    self._placed(entry.seq, entry.l1_timestamp, command, PlaceResult(
                        result.order_hash, Status.REJECTED, reason=entry.dropped, logged=False))
                elif entry.seq in placed_at:  # dropped by an earlier rebuild: as it was recorded then
                    self.pending[placed_at[entry.seq].order_hash] = placed_at[entry.seq]
                    if placed_at[entry.seq].finished_at is not None:
                        self.prunes[_prune_key(placed_at[entry.seq])] = True
            elif not entry.dropped and result is not None:
                self.record(entry.seq, entry.l1_timestamp, command, result)

    # --- writing ---------------------------------------------------------------------------------

    def writes(self) -> list[tuple[bytes, bytes | None]]:
        """The puts (a value) and deletes (None) that go in the write batch of the log entries that caused them."""
        puts = [(keys.order(h), None if r is None else RECORD.encode(r)) for h, r in self.pending.items()]
        return puts + [(key, b"" if put else None) for key, put in self.prunes.items()]

    def flushed(self) -> None:
        """The write batch holding `writes()` is durable (until then `get` reads the pending records)."""
        self.pending.clear()
        self.prunes.clear()

    def prune(self, now: int, limit: int = PRUNE_LIMIT) -> int:
        """Delete the records whose retention ended before ``now`` (L1 time); returns how many."""
        due = [key for key, _ in itertools.islice(self.store.iterate(start=keys.order_prune_before(0), stop=keys.order_prune_before(now)), limit)]
        if due:
            with self.store.write_batch(sync=False) as batch:
                for key in due:
                    batch.delete(key)
                    batch.delete(keys.order(keys.parse_order_prune(key)[1]))
        return len(due)
