"""SIGINT/SIGTERM cancel a node's root nursery (its ``finally`` then closes the store)."""

from __future__ import annotations

import logging
import signal

import trio

log = logging.getLogger("optinode.services.signals")


async def stop_on_signal(scope: trio.CancelScope, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            log.info("%s: shutting down", signal.Signals(signum).name)
            scope.cancel()
            return
