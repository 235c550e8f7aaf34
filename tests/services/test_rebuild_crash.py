"""SIGKILL in the middle of a rebuild (docs/sequencer.md, "Rebuilding batches"): after L1 discarded
batches 2.., the engine's process is killed (a) with the rollback computed in memory and its journal
rewrite not yet written (crash point ``engine.rebuilding``), (b) half-way through the rewrite's
write batch (after some of its puts: a real SIGKILL inside ``Journal.rewrite``), (c) with the rewrite
durable and the proposer not told (``engine.rebuilt``). On the same LevelDB store, a restart that
re-reads the discard event from the follower's store must rebuild exactly once — (a) and (b) from the
old journal, left whole, (c) not again — ending with the same batches, state and queue counters as
a run that never crashed; a second reading of the event changes nothing. The anvil test with a real
lost game is tests/l1/sequencer/test_lost_game.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio

from optinode.l1 import events
from optinode.services.journal import Journal
from optinode.spec.commitment import compute_state_root
from optinode.store.db import open_store
from optinode.testing.world import World

from tests.services.conftest import FakeL1
from tests.services.test_engine import Harness
from tests.services.test_rebuild import _received

REPO = Path(__file__).resolve().parents[2]

# The child: an engine on LevelDB with batches 1..3 cut and a pending entry, then L1's discard of
# batches 2.. and a head; MODE decides where it is killed. (A module-level script: it imports the
# same fixtures as this file, and prints nothing the parent relies on.)
CHILD = textwrap.dedent('''
    import os, signal, sys
    import trio
    import trio.testing
    from optinode.services import faults as faults_mod
    from optinode.services.journal import Journal
    from optinode.store import db as db_mod
    from optinode.store.db import open_store
    from optinode.testing.world import World
    from tests.services.conftest import FakeL1
    from tests.services.test_engine import Harness
    from tests.services.test_rebuild_crash import discard_event, history

    path, mode = sys.argv[1], sys.argv[2]
    store = open_store(path, identity="test")

    async def main():
        async with trio.open_nursery() as nursery:
            h = Harness(store, nursery)
            h.engine.faults = faults_mod.Faults(mode) if mode.startswith("engine.") else faults_mod.NO_FAULTS
            await h.start()
            world = World()
            l1 = FakeL1(store, world)
            await history(h, world, l1)
            if mode == "mid-rewrite":
                rewrite, puts = Journal.rewrite, [0]
                def killing_put(self, key, value, _put=db_mod._LevelBatch.put):
                    _put(self, key, value)
                    puts[0] += 1
                    if puts[0] == 5:  # some deletes and puts of the rewrite are in the batch, not all
                        os.kill(os.getpid(), signal.SIGKILL)
                def armed(self, *args, **kwargs):
                    db_mod._LevelBatch.put = killing_put
                    return rewrite(self, *args, **kwargs)
                Journal.rewrite = armed
            await h.send(discard_event(l1), l1.head(1))
            raise SystemExit("the rebuild finished without the crash")

    trio.run(main)
''')


def discard_event(l1: FakeL1):
    """Rollup.BatchesDiscarded(2, 4): one event, at one L1 position, whichever run reads it (deep enough
    by the time the engine sees it: rolled back for at once)."""
    return events.BatchesDiscarded(from_index=2, to_index=4, challenger=b"\x01" * 20, block_number=100, block_hash=b"\x00" * 32,
                                   log_index=7, tx_hash=b"\x00" * 32, address=b"\x00" * 20)


async def history(h: Harness, world: World, l1: FakeL1) -> None:
    """The same commands in every run: deposits (batch 1), a withdrawal and a forced request (batch 2),
    a trade (batch 3), a pending withdrawal."""
    from optinode.testing.world import ETH_UNIT, USD

    from tests.services.conftest import CONFIRMATIONS
    from tests.services.test_engine import funded

    await funded(h, world, l1)
    assert (await h.cut()).index == 1
    await h.submitter.submit(world.withdraw("alice", 10 * USD))
    await h.send(l1.forced("bob", 1, 20 * USD), l1.head(CONFIRMATIONS + 1))
    assert (await h.cut()).index == 2
    await h.submitter.submit(world.trade("bob", "alice", ETH_UNIT // 10))
    assert (await h.cut()).index == 3
    await h.submitter.submit(world.withdraw("bob", 5 * USD))


def _snapshot(store) -> dict:
    journal = Journal(store)
    return {"batches": list(journal.batches()), "entries": list(journal.entries()), "mark": journal.rebuild_mark()}


async def _restart_and_follow(store, l1: FakeL1) -> tuple[Harness, list]:
    """What a restarted sequencer does: the engine from the store, the follower's stored events
    (the discard among them) absorbed, then new heads; returns what it handed the proposer."""
    async with trio.open_nursery() as nursery:
        h = Harness(store, nursery)
        h.engine.absorb(discard_event(l1))
        await h.start()
        await h.send(l1.head(1))
        await h.send(discard_event(l1), l1.head(1))  # read again (another restart, a re-emitted event): nothing more
        out = await _received(h)
        nursery.cancel_scope.cancel()
    return h, out


def _reference(tmp_path) -> tuple[dict, bytes]:
    """A run that never crashed: the batches, entries and root after handling the discard."""
    store = open_store(tmp_path / "reference", identity="test")
    try:
        async def run():
            async with trio.open_nursery() as nursery:
                h = await Harness(store, nursery).start()
                world = World()
                l1 = FakeL1(store, world)
                await history(h, world, l1)
                await h.send(discard_event(l1), l1.head(1))
                nursery.cancel_scope.cancel()
            return compute_state_root(h.engine.state)

        root = trio.run(run)
        return _snapshot(store), root
    finally:
        store.close()


@pytest.mark.parametrize("mode", ["engine.rebuilding", "mid-rewrite", "engine.rebuilt"])
def test_a_sigkill_during_a_rebuild_then_a_restart_rebuilds_exactly_once(tmp_path, mode) -> None:
    path = tmp_path / "db"
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stdout[-3000:] + child.stderr[-3000:]
    store = open_store(path, identity="test")
    try:
        after_crash = _snapshot(store)
        if mode == "engine.rebuilt":
            assert after_crash["mark"].epoch == 1 and [b.epoch for b in after_crash["batches"]] == [0, 1]
        else:  # the old journal, whole: three batches of epoch 0, no rebuild mark, no entry marked dropped
            assert after_crash["mark"].epoch == 0 and [(b.index, b.epoch) for b in after_crash["batches"]] == [(1, 0), (2, 0), (3, 0)]
            assert not any(e.dropped for e in after_crash["entries"])
        world = World()
        l1 = FakeL1(store, world)
        l1.number += 100  # (the heads the restarted node sees come after the crash's)
        l1.time += 1200
        h, handed = trio.run(_restart_and_follow, store, l1)
        rebuilt = [m for m in handed if type(m).__name__ == "Rebuilt"]
        assert len(rebuilt) == (0 if mode == "engine.rebuilt" else 1)  # exactly once over both runs
        final = _snapshot(store)
        assert final["mark"].epoch == 1 and len(final["mark"].discards) == 1
        reference, root = _reference(tmp_path)
        # the same rebuilt history as a run that never crashed (times aside: the restart's heads are later)
        assert [(b.index, b.first_seq, b.end_seq, b.record_count, b.deposits_done, b.forced_done) for b in final["batches"]] == \
               [(b.index, b.first_seq, b.end_seq, b.record_count, b.deposits_done, b.forced_done) for b in reference["batches"]]
        assert [(e.seq, e.records, e.dropped) for e in final["entries"]] == [(e.seq, e.records, e.dropped) for e in reference["entries"]]
        state = h.engine.state
        assert compute_state_root(state) == root
        assert state.deposits_done == 2 and state.forced_done == 1  # each queue entry consumed once
        assert state.accounts[0].withdrawn == 10_000_000 and state.accounts[1].withdrawn == 25_000_000
    finally:
        store.close()


def test_the_crash_points_exist() -> None:
    from optinode.services.faults import POINTS

    assert {"engine.rebuilding", "engine.rebuilt"} <= set(POINTS)
