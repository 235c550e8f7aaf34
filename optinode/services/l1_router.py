"""The L1 router: one follower, two consumers (three with the dispute player: game events, heads, reorgs). Queue entries go to the engine, batch events to the
proposer, heads and reorgs to both (each unwinds what it derived); a discard of our batches to all
three (the engine rebuilds them from the last valid checkpoint, the proposer re-posts). Bounded channels both ways: a
slow consumer slows the follower, nothing is dropped."""

from __future__ import annotations

from typing import Any

import trio

from optinode.l1 import events
from optinode.l1.follower import Head, Reorg

_ENGINE = (events.Deposited, events.ForcedWithdrawalRequested)
_PROPOSER = (events.BatchAppended, events.BatchFinalized)
_GAMES = (events.GameOpened, events.Bisected, events.Chosen, events.Stepped, events.GameResolved, events.BatchesDiscarded)


async def run(
    outputs: trio.MemoryReceiveChannel[Any],
    engine: trio.MemorySendChannel[Any],
    proposer: trio.MemorySendChannel[Any],
    player: trio.MemorySendChannel[Any] | None = None,  # the dispute player defending our batches
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started()
    async with outputs, engine, proposer:
        async for output in outputs:
            if isinstance(output, (Head, Reorg)):
                await engine.send(output)
                await proposer.send(output)
                if player is not None:
                    await player.send(output)
            elif isinstance(output, _GAMES):
                if player is not None:
                    await player.send(output)
                if isinstance(output, events.BatchesDiscarded):  # the engine rolls back, the proposer re-posts
                    await engine.send(output)
                    await proposer.send(output)
            elif isinstance(output, _ENGINE):
                await engine.send(output)
            elif isinstance(output, _PROPOSER):
                await proposer.send(output)
