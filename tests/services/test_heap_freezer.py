"""The heap freezer takes what survives out of the collector's passes every interval, and stops
cleanly when cancelled."""

from __future__ import annotations

import gc

import pytest
import trio

from optinode.services import heap_freezer


@pytest.mark.trio
async def test_survivors_are_frozen_each_interval_then_the_task_stops(autojump_clock) -> None:
    gc.unfreeze()  # (start from nothing frozen; the end puts everything back)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(heap_freezer.run, 1.0)
            survivor = [object()]  # a container: tracked by the collector until frozen
            await trio.sleep(0.5)
            assert gc.get_freeze_count() == 0 and any(o is survivor for o in gc.get_objects())
            await trio.sleep(1.0)
            assert gc.get_freeze_count() > 0 and not any(o is survivor for o in gc.get_objects())
            nursery.cancel_scope.cancel()
        later = [object()]
        await trio.sleep(5.0)
        assert any(o is later for o in gc.get_objects())  # no freeze after the cancellation
    finally:
        gc.unfreeze()
