"""Heap freezer: keeps the garbage collector's full passes short while the books, the order history
and the memos grow (docs/sequencer.md, "Interpreter settings").

`runtime.freeze_heap` takes the start-up heap out of the collector's passes once the node is up. What
the node keeps alive after that (resting orders, seen hashes, history records, memo entries) would
otherwise be walked again by every full collection: measured 9–35 ms pauses on the engine's thread at
2,000 orders/s against the 5 ms acknowledgement budget, while none of the node's 444 collections in
that run found any cyclic garbage (docs/benchmarks.md, "Full collections"). So every `interval` the
survivors are frozen too (`gc.freeze` is a list splice, O(1)): a full collection then walks only what
was allocated since. Reference counting still frees frozen objects; only a reference cycle frozen
while alive and dropped later stays, which the measurement says the node does not make.
"""

from __future__ import annotations

import gc

import trio

__all__ = ["REFREEZE_EVERY", "run"]

REFREEZE_EVERY = 1.0  # seconds: a full pass then walks about one second's survivors


async def run(interval: float = REFREEZE_EVERY, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Freeze the collector's survivors every `interval` seconds until cancelled."""
    task_status.started()
    while True:
        await trio.sleep(interval)
        gc.freeze()
