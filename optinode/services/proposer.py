"""The proposer: appends cut batches to the Rollup with their bond, finalizes them once their window
has passed, and tracks which are final.

    await run(deps, inbox, task_status=…)   # inbox: BatchRecord (engine), L1 outputs (router), SendRecord (sender)

- **Once per batch.** Batch i is the L1 sender's item ``i``: the sender writes the signed transaction
  (durably) before broadcasting and never signs a second one for an item, so however often the node
  crashes and restarts, batch i is appended at most once; replacements for fees reuse the nonce.
- **In order.** Batches are handed to the sender strictly by index (nonces follow), and batch i+1 is
  not handed over while batch i is refused by the endpoint: a later batch can never take an earlier
  one's index.
- **Pipelined.** A batch is sent as soon as it is cut: batch n+1 goes out while batch n waits out its
  challenge window (op-proposer and Arbitrum's poster do the same).
- **Start-up.** Every batch after the last known-final one is handed to the sender again (a no-op for
  those it already has), so a crash between the cut and the send loses nothing.
- **Finality.** When the L1 head's time has passed ``append time + challenge_window`` for the next
  batch to finalize, ``finalize(i)`` is sent (item ``FINALIZE_ITEM + i``; an estimate that reverts —
  the window not over on chain yet — is retried at the next head). ``BatchFinalized`` events mark
  batches final in the store.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import eth_abi
import trio

from optinode.l1 import events
from optinode.l1.follower import Head, Reorg, live_batches_before, stored_events
from optinode.l1.rpc import RpcClient
from optinode.l1.sender import Sender, SendRecord, SendRejected
from optinode.logs import alert
from optinode.services.faults import Faults
from optinode.metrics import SequencerMetrics
from optinode.services.engine import RebuildRequest, Rebuilt
from optinode.services.journal import BatchRecord, Journal
from optinode.spec.batch_framing import frame_records
from optinode.spec.crypto import keccak

__all__ = ["FINALIZE_ITEM", "ProposerDeps", "append_calldata", "append_item", "finalize_calldata", "run"]

log = logging.getLogger("optinode.services.proposer")

FINALIZE_ITEM = 1 << 40  # sender item ids: batch i is item i, its finalize FINALIZE_ITEM + 256 i + attempt
EPOCH_ITEM = 1 << 48  # a rebuilt batch i of epoch e >= 1 is item e * EPOCH_ITEM + i (above every finalize item)
_APPEND = keccak(b"appendBatch(bytes,bytes32,bytes32,bytes32,uint64,uint64,uint64,bytes32)")[:4]
_FINALIZE = keccak(b"finalize(uint256)")[:4]


def append_calldata(records: list[bytes], batch: BatchRecord, parent_root: bytes) -> bytes:
    """``parent_root``: the state root of the batch this one was executed on (the journal's batch
    index - 1, genesis for batch 1). The Rollup refuses the append (WrongParent) unless that is its
    tip, so a transaction signed before a discard, or behind an append that reverted, cannot land
    on another pre-state and cost its bond (docs/contracts.md, "Appending")."""
    return _APPEND + eth_abi.encode(
        ["bytes", "bytes32", "bytes32", "bytes32", "uint64", "uint64", "uint64", "bytes32"],
        [frame_records(records), batch.accounts_root, batch.slots_root, batch.globals_hash, batch.deposits_done, batch.forced_done,
         batch.l1_timestamp,  # the time the engine executed the batch at: the Rollup bounds and records it
         parent_root],
    )


def append_item(batch: BatchRecord) -> int:
    """The L1 sender item of a batch's append: one per (epoch, index), so the batch that replaces a
    rebuilt or discarded one gets its own transaction (the sender never signs an item twice)."""
    return batch.index if batch.epoch == 0 else batch.epoch * EPOCH_ITEM + batch.index


def finalize_calldata(index: int) -> bytes:
    return _FINALIZE + eth_abi.encode(["uint256"], [index])


@dataclass
class ProposerDeps:
    sender: Sender
    rpc: RpcClient
    journal: Journal
    rollup: bytes
    bond: int
    challenge_window: int
    genesis_root: bytes  # the Rollup's batch 0: the parent batch 1 names
    faults: Faults = field(default_factory=Faults)
    known_events: list[Any] = field(default_factory=list)  # the follower's stored events at start-up
    max_timestamp_drift: int | None = None  # Rollup.maxTimestampDrift: an older batch is refused on chain
    metrics: SequencerMetrics = field(default_factory=SequencerMetrics)
    engine: Any = None  # the engine's inbox (a MemorySendChannel): stale batches are sent back to be rebuilt


@dataclass
class _Tracker:
    next_submit: int  # the lowest batch index not yet handed to the sender
    last_final: int
    appended: dict[int, events.L1Event] = field(default_factory=dict)  # index -> its BatchAppended
    append_time: dict[int, int] = field(default_factory=dict)
    head_time: int = 0  # the newest L1 head's time
    cut_at: dict[int, float] = field(default_factory=dict)  # index -> monotonic time its BatchRecord arrived (posting latency)
    last_posted: int = 0
    live: bool = True  # False while the stored events of before a restart are re-read (gauges only, no counters)
    epoch: int = 0  # the engine's rebuild epoch as the proposer last heard it: newer batches wait for `Rebuilt`
    halted: bool = False  # L1 discarded our batches: post nothing until the engine has rebuilt them
    waiting: set[tuple[int, int]] = field(default_factory=set)  # L1 positions of the discards halted for, until `Rebuilt`
    diverged: bool = False  # l1_diverged was raised: only the operator lifts that halt (a restart)
    asked: tuple[int, int] | None = None  # the (index, epoch) a rebuild was last requested for
    reverted: set[int] = field(default_factory=set)  # append items that reverted: rebuilt once their batch is stale


async def _submit_ready(deps: ProposerDeps, t: _Tracker) -> None:
    """Hand every cut batch from ``next_submit`` on to the sender, in order, stopping at a refusal."""
    while not t.halted and (batch := deps.journal.batch(t.next_submit)) is not None:
        if batch.epoch > t.epoch:
            return  # written by a rebuild whose `Rebuilt` has not reached us yet (it resets next_submit)
        if (deps.max_timestamp_drift is not None and deps.sender.record(append_item(batch)) is None
                and t.head_time > batch.l1_timestamp + deps.max_timestamp_drift):
            # The chain would refuse it (TimestampTooOld), and no append of it can ever land now (every
            # later block is later still): the engine rebuilds it and its successors at a fresh L1 time.
            # docs/sequencer.md, "Rebuilding batches".
            if t.asked != (batch.index, batch.epoch):
                log.warning("batch %d: its L1 time %d is more than %d s behind the head (%d): asking the engine to rebuild it",
                            batch.index, batch.l1_timestamp, deps.max_timestamp_drift, t.head_time)
            _ask_rebuild(deps, t, batch)
            return
        deps.faults.point("proposer.before_submit")
        try:
            record = await deps.sender.submit(
                item=append_item(batch), to=deps.rollup, data=append_calldata(deps.journal.batch_records(batch), batch, _parent_root(deps, batch)),
                value=deps.bond, label=f"batch {batch.index}",
            )
        except SendRejected as error:
            log.error("batch %d: the endpoint refuses the append (%s); retrying", batch.index, error)
            return
        deps.faults.point("proposer.submitted")
        if record.status == "reverted":
            # Its transaction can never land now (the sender never re-signs an item): only a rebuilt
            # batch, a new item, can take its place. (An append re-broadcast after a reorg while
            # the batch it replaced was live again reverts WrongParent; docs/sequencer.md.)
            log.warning("batch %d: its append reverted on L1; asking the engine to rebuild it, to post it again", batch.index)
            _ask_rebuild(deps, t, batch)
            return
        if record.status == "conflict":
            log.error("batch %d: its append is %s on L1; the operator must look (another proposer on this key?)", batch.index, record.status)
        t.next_submit = batch.index + 1


def _parent_root(deps: ProposerDeps, batch: BatchRecord) -> bytes:
    """The root of the batch ``batch`` was executed on: the journal's previous batch (a rebuild
    rewrites both together), genesis for batch 1."""
    if batch.index == 1:
        return deps.genesis_root
    parent = deps.journal.batch(batch.index - 1)
    if parent is None:
        raise RuntimeError(f"batch {batch.index} is in the journal without its parent")
    return parent.state_root


async def _maybe_finalize(deps: ProposerDeps, t: _Tracker, head: Head) -> None:
    index = t.last_final + 1
    appended = t.appended.get(index)
    if appended is None:
        return
    if index not in t.append_time:
        block = await deps.rpc.get_block(appended.block_number)
        if block is None:
            return
        t.append_time[index] = block.timestamp
    if head.timestamp < t.append_time[index] + deps.challenge_window:
        return
    for attempt in range(256):
        item = FINALIZE_ITEM + 256 * index + attempt
        existing = deps.sender.record(item)
        if existing is None:
            break
        if existing.status != "reverted":
            return  # sent (pending or mined): the BatchFinalized event will tell
    else:
        log.error("batch %d: 256 finalize attempts reverted; giving up on it", index)
        return
    try:
        await deps.sender.submit(item=item, to=deps.rollup, data=finalize_calldata(index), label=f"finalize {index}")
    except SendRejected as error:
        log.info("finalize %d not accepted yet (%s); retrying at the next head", index, error.error.message)
        return
    deps.faults.point("proposer.finalize_submitted")


async def run(deps: ProposerDeps, inbox: trio.MemoryReceiveChannel[Any], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    last_final = deps.journal.last_final()
    t = _Tracker(next_submit=last_final + 1, last_final=last_final, epoch=deps.journal.rebuild_mark().epoch)
    deps.metrics.last_final.set(last_final)
    await _submit_ready(deps, t)
    task_status.started()
    async with inbox:
        # What the follower read before a restart is not emitted again: start from its stored events.
        t.live = False
        for event in deps.known_events:
            await _handle(deps, t, event)
        t.live = True
        deps.known_events = []
        async for message in inbox:
            await _handle(deps, t, message)


def _posted(metrics: SequencerMetrics, t: _Tracker, index: int) -> None:
    t.last_posted = max(t.last_posted, index)
    metrics.last_posted.set(t.last_posted)
    cut_at = t.cut_at.pop(index, None)
    if t.live:
        metrics.batches_posted.inc()
        if cut_at is not None:
            metrics.posting_latency.observe(time.monotonic() - cut_at)


async def _handle(deps: ProposerDeps, t: _Tracker, message: Any) -> None:
    if isinstance(message, BatchRecord):
        t.cut_at[message.index] = time.monotonic()
        await _submit_ready(deps, t)
    elif isinstance(message, Rebuilt):
        # The engine replaced batches from_index..: post from there again (new sender items).
        t.epoch, t.halted = message.epoch, False
        t.waiting.clear()
        t.next_submit = min(t.next_submit, message.from_index)
        for index in [i for i in t.appended if i >= message.from_index]:
            ours, landed = deps.journal.batch(index), t.appended[index]
            if ours is None or (ours.state_root, ours.l1_timestamp) != (landed.state_root, landed.l1_timestamp):  # (ours may have landed already)
                t.appended.pop(index)
                t.append_time.pop(index, None)
        log.info("batches from %d rebuilt (epoch %d, %s): posting them again; %d acknowledged command(s) dropped",
                 message.from_index, message.epoch, message.reason, len(message.dropped))
    elif isinstance(message, events.BatchesDiscarded):
        position = (message.block_number, message.log_index)
        if position not in deps.journal.rebuild_mark().discards and not _already_replaced(deps, message):
            t.halted = True  # until the engine's `Rebuilt`: a batch cut on the discarded chain must not land
            t.waiting.add(position)  # (or a reorg that removes the discard before the engine rolls back)
        for index in [i for i in t.appended if i >= message.from_index]:
            t.appended.pop(index)
            t.append_time.pop(index, None)
        t.last_posted = min(t.last_posted, message.from_index - 1)
        deps.metrics.last_posted.set(t.last_posted)
    elif isinstance(message, events.BatchAppended):
        t.appended[message.index] = message
        t.append_time.pop(message.index, None)
        ours = deps.journal.batch(message.index)
        if ours is not None and ours.state_root != message.state_root:
            log.error("batch %d on L1 has root %s, ours is %s: another proposer appended it", message.index,
                      message.state_root.hex(), ours.state_root.hex())
        elif ours is not None:
            _posted(deps.metrics, t, message.index)
    elif isinstance(message, events.BatchFinalized):
        ours = deps.journal.batch(message.index)
        if ours is not None and ours.state_root != message.state_root:
            # L1 finalized a batch we replaced: a reorg undid the discard we rolled back for and nobody
            # made the resolving move again. Marking ours final would let claims prove a root L1
            # never finalized; nothing we post can land on it (docs/sequencer.md).
            alert(log, "l1_diverged", level=logging.ERROR, batch=message.index, l1_root=message.state_root, ours=ours.state_root,
                  action="L1 finalized a batch this node replaced: posting stops, the operator must look")
            t.halted = t.diverged = True
        elif message.index > t.last_final:
            t.last_final = message.index
            deps.journal.set_final(message.index)
            deps.metrics.last_final.set(message.index)
            if t.live:
                deps.metrics.batches_finalized.inc()
            log.info("batch %d is final on L1", message.index)
    elif isinstance(message, Reorg):
        for event in message.removed:
            if isinstance(event, events.BatchAppended):
                t.appended.pop(event.index, None)
                t.append_time.pop(event.index, None)
            elif isinstance(event, events.BatchFinalized) and event.index <= t.last_final:
                t.last_final = event.index - 1
                deps.journal.set_final(t.last_final)
        _undiscarded(deps, t, message)
    elif isinstance(message, Head):
        t.head_time = max(t.head_time, message.timestamp)
        if t.reverted:
            _rebuild_reverted(deps, t)
        await _submit_ready(deps, t)  # a no-op unless an append was refused before
        await _maybe_finalize(deps, t, message)
    elif isinstance(message, SendRecord):
        append = message.item < FINALIZE_ITEM or message.item >= EPOCH_ITEM
        if message.status == "reverted" and append and _replaced(deps, message.item):
            # Signed on a chain L1 then discarded, mined after the discard: WrongParent, as designed
            # (docs/sequencer.md, "Attacks considered"). Its batch is already rebuilt; nothing to do.
            log.info("%s: reverted on L1 after a rebuild replaced its batch (it named a discarded parent): only its gas is lost",
                     message.label)
        elif message.status in ("reverted", "conflict"):
            log.error("%s: %s on L1", message.label, message.status)
        if message.status == "reverted" and append:
            if not _replaced(deps, message.item):  # _submit_ready gets its batch rebuilt and posted again
                t.next_submit = min(t.next_submit, message.item % EPOCH_ITEM)
            t.reverted.add(message.item)
            _rebuild_reverted(deps, t)


def _undiscarded(deps: ProposerDeps, t: _Tracker, reorg: Reorg) -> None:
    """A reorg removed discards we halted for before the engine rolled back for them (it waits until a
    discard is as deep as a consumed queue entry): the batches are live again on the canonical chain
    and still the journal's, so posting goes on from where it was, and the appends the discard had
    taken from our view come back (read from the follower's store, which holds the chain as it now is;
    the follower does not emit them again when they lie before the common ancestor)."""
    gone = {(e.block_number, e.log_index) for e in reorg.removed if isinstance(e, events.BatchesDiscarded)} & t.waiting
    if not gone:
        return
    t.waiting -= gone
    live: dict[int, events.L1Event] = {}
    for event in stored_events(deps.journal.store):
        if isinstance(event, events.BatchAppended):
            live[event.index] = event
        elif isinstance(event, events.BatchesDiscarded):
            for index in [i for i in live if i >= event.from_index]:
                del live[index]
    for index, appended in live.items():
        if t.appended.get(index) != appended:
            t.appended[index] = appended
            t.append_time.pop(index, None)
            ours = deps.journal.batch(index)
            if ours is not None and ours.state_root == appended.state_root:
                t.last_posted = max(t.last_posted, index)
    deps.metrics.last_posted.set(t.last_posted)
    if not t.waiting and not t.diverged:
        t.halted = False
        log.warning("an L1 reorg removed the discard of batch(es) from %d before the engine rolled back for it: they are live on L1 "
                    "again and still ours; posting goes on", min(e.from_index for e in reorg.removed if isinstance(e, events.BatchesDiscarded)))


def _already_replaced(deps: ProposerDeps, discard: Any) -> bool:
    """Whether L1 discarded a batch our journal no longer holds (the engine's rule: it does not roll
    back for it, so no `Rebuilt` may follow to lift a halt; docs/sequencer.md)."""
    ours = deps.journal.batch(discard.from_index)
    discarded = live_batches_before(deps.journal.store, (discard.block_number, discard.log_index)).get(discard.from_index)
    return ours is not None and discarded is not None and discarded != (ours.state_root, ours.l1_timestamp)


def _replaced(deps: ProposerDeps, item: int) -> bool:
    """Whether append ``item``'s batch is no longer in the journal as that item (a rebuild replaced it)."""
    batch = deps.journal.batch(item % EPOCH_ITEM)
    return batch is None or append_item(batch) != item


def _rebuild_reverted(deps: ProposerDeps, t: _Tracker) -> None:
    """An append signed in time but mined (reverted) only after the drift ran out (L1 stalled or
    unreachable meanwhile): rebuild its batch like one never signed (docs/sequencer.md), once the
    head shows it stale (the receipt can come before the head of its block)."""
    for item in sorted(t.reverted):
        batch = deps.journal.batch(item % EPOCH_ITEM)
        if batch is None or append_item(batch) != item:
            t.reverted.discard(item)  # replaced by a rebuild meanwhile
        elif deps.max_timestamp_drift is not None and t.head_time > batch.l1_timestamp + deps.max_timestamp_drift:
            log.warning("batch %d: its append reverted and its L1 time %d is more than %d s behind the head: asking the engine to rebuild it",
                        batch.index, batch.l1_timestamp, deps.max_timestamp_drift)
            if _ask_rebuild(deps, t, batch):
                t.reverted.discard(item)
            return


def _ask_rebuild(deps: ProposerDeps, t: _Tracker, batch: BatchRecord) -> bool:
    """Ask the engine (its inbox, without blocking: the engine may be sending to ours) to rebuild
    ``batch`` and its successors; False if the inbox is full (asked again at the next head). The
    engine ignores a request for a batch already replaced."""
    t.asked = (batch.index, batch.epoch)
    if deps.engine is not None:
        try:
            deps.engine.send_nowait(RebuildRequest(batch.index, batch.epoch))
        except trio.WouldBlock:
            return False
    return True
