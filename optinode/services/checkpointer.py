"""The checkpoint lane: writes each cut's checkpoint off the engine's path.

    lane = CheckpointLane(journal, history)
    nursery.start(run, lane)                      # the writer task (engine.run starts it)
    await lane.submit(record, header, delta)      # after the batch record is durable; returns at once
    await lane.flushed()                          # every submitted checkpoint written (a rebuild waits)

A cut makes two writes. The **batch boundary** (its record without roots: small, synced, in log
order) is the engine's: once it is durable the batch's log range is fixed. Once the root is computed
(behind the engine, `Engine.background`), the **complete record and the checkpoint** (the header,
the rows that changed, their undo record: O(what changed) but thousands of rows for a full batch)
come here and are written in cut order by one task on a worker thread, while the engine goes on
matching and acknowledging; then the batch goes to the proposer. Nothing depends on a checkpoint being durable: a restart reads the last one written
and replays the log after it, re-cutting at the recorded batch boundaries and writing the missing
checkpoints (`Engine.__init__`); so these writes are not synced (the next synced log write carries
them to disk), only atomic. On cancellation (shutdown) the lane writes what is queued, shielded.

Without the writer task (an engine driven directly, as benches and some tests do) `submit` writes
at once on a worker thread.
"""

from __future__ import annotations

from typing import Any

import trio

from optinode.services.journal import BatchRecord, Checkpoint, CheckpointDelta, Journal

__all__ = ["CheckpointLane", "run"]

QUEUE = 16  # cuts waiting to be written before the engine waits (back-pressure when the disk lags)


class CheckpointLane:
    def __init__(self, journal: Journal, history: Any = None) -> None:
        self.journal = journal
        self.history = history  # the order history: finished orders past retention are pruned with each checkpoint
        self._send, self._receive = trio.open_memory_channel[tuple[BatchRecord, Checkpoint, CheckpointDelta]](QUEUE)
        self.running = False
        self.queued = 0
        self._idle = trio.Event()
        self._idle.set()

    def write(self, record: BatchRecord, header: Checkpoint, delta: CheckpointDelta) -> None:
        """(On a worker thread.)"""
        self.journal.write_checkpoint(record, header, delta)
        if self.history is not None:
            self.history.prune(record.l1_timestamp)  # (unsynced: a crash only delays it)

    async def submit(self, record: BatchRecord, header: Checkpoint, delta: CheckpointDelta) -> None:
        if not self.running:
            await trio.to_thread.run_sync(self.write, record, header, delta)
            return
        self.queued += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        await self._send.send((record, header, delta))

    async def flushed(self) -> None:
        """Return once every submitted checkpoint is written."""
        while self.queued:
            await self._idle.wait()

    def _done(self) -> None:
        self.queued -= 1
        if not self.queued:
            self._idle.set()


async def run(lane: CheckpointLane, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    lane.running = True
    task_status.started()
    try:
        async for item in lane._receive:
            await trio.to_thread.run_sync(lane.write, *item)
            lane._done()
    finally:
        lane.running = False
        with trio.CancelScope(shield=True):  # shutdown: what is queued is written (a crash would re-derive it)
            while True:
                try:
                    item = lane._receive.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                await trio.to_thread.run_sync(lane.write, *item)
                lane._done()
