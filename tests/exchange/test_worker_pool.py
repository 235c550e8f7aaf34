"""The intake's worker pool (optinode/exchange/worker_pool.py), with real worker processes: answers
equal to the function run here, in order; errors to their own caller; a worker killed with SIGKILL
fails only the jobs it held and is replaced; cancellation and shutdown leave no process behind;
in-flight work is bounded."""

from __future__ import annotations

import operator
import os
import signal
import time

import msgspec
import pytest
import trio

from optinode.exchange import mempool
from optinode.exchange.mempool import Limits, open_intake_pool
from optinode.exchange.worker_pool import WorkerError, WorkerLost, open_worker_pool

from tests.exchange.test_mempool import funded

pytestmark = pytest.mark.trio


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a reaped process is gone from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def slow_sum(pause: float, chunk: list[int]) -> tuple[int, int]:
    """A job that takes `pause` seconds: (the worker's pid, the chunk's sum)."""
    time.sleep(pause)
    return os.getpid(), sum(chunk)


class Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickles, but does not unpickle: two required arguments
        super().__init__(f"{a}-{b}")


def raise_unpicklable(chunk: list) -> None:
    raise Unpicklable(1, 2)


def signed_chunks(count: int, size: int) -> tuple[bytes, list[list[tuple]]]:
    w = funded()
    names = ("alice", "bob", "carol")
    orders = [w.order(names[i % 3]) for i in range(count)]
    broken = msgspec.structs.replace(orders[5], signature=b"\x00" * 64 + b"\x1b")
    forged = w.order("carol", signer="alice")
    out_of_range = msgspec.structs.replace(orders[7], size=2**64)
    fields = [msgspec.structs.astuple(o) for o in orders + [broken, forged, out_of_range]]
    return w.domain, [fields[i:i + size] for i in range(0, len(fields), size)]


async def test_answers_equal_the_checks_run_here_and_in_order() -> None:
    domain, chunks = signed_chunks(60, 7)  # 9 chunks of uneven sizes over 2 workers, several queued in each
    async with open_intake_pool(Limits(workers=2, jobs_per_worker=3)) as pool:
        answers = await pool.map(mempool.check_orders, chunks, domain)
        assert await pool.run_sync(operator.add, 2, 3) == 5
        pids = {s.pid for s in await pool.stats()}
    assert answers == [mempool.check_orders(domain, chunk) for chunk in chunks]
    assert answers[-1][-3][1] is None  # the broken signature: no signer
    assert isinstance(answers[-1][-1], str) and "size" in answers[-1][-1]  # out of range, from a value msgpack could not carry
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)


async def test_both_workers_take_work_and_report_their_busy_time() -> None:
    async with open_worker_pool(2, max_jobs=4) as pool:
        before = {s.pid: s for s in await pool.stats()}
        answers = await pool.map(slow_sum, [[i] for i in range(8)], 0.05)
        after = {s.pid: s for s in await pool.stats()}
    assert [total for _, total in answers] == list(range(8))
    assert {pid for pid, _ in answers} == set(before)  # least loaded first: both used
    for pid in before:
        assert after[pid].jobs - before[pid].jobs == 5  # 4 of its chunks and the second stats call
        assert 0.19 < after[pid].busy - before[pid].busy < 1.0


async def test_errors_go_to_their_own_caller() -> None:
    async with open_worker_pool(1) as pool:
        with pytest.raises(ZeroDivisionError):
            await pool.run_sync(operator.truediv, 1, 0)
        with pytest.raises(WorkerError, match="does not pickle"):
            await pool.map(raise_unpicklable, [[1]])
        with pytest.raises(TypeError, match="module-level"):
            await pool.run_sync(lambda: 0)
        with pytest.raises(Exception, match="pickle"):  # an argument that does not pickle: raised here, nothing sent
            await pool.run_sync(operator.add, lambda: 0, 1)
        assert not pool.workers[0].jobs
        assert await pool.run_sync(operator.mul, 6, 7) == 42  # the worker is still serving


async def test_a_killed_worker_fails_only_its_jobs_and_is_replaced() -> None:
    async with open_worker_pool(2, max_jobs=4) as pool:
        victim, survivor = pool.workers
        results: dict[str, object] = {}

        async def call(name: str, chunk: list[int]) -> None:
            try:
                results[name] = await pool.map(slow_sum, [chunk], 0.5)
            except WorkerLost as lost:
                results[name] = lost

        async with trio.open_nursery() as nursery:
            for i in range(4):  # least loaded: 0 and 2 to the first worker, 1 and 3 to the second
                nursery.start_soon(call, f"job{i}", [i])
                await trio.sleep(0.01)
            assert len(victim.jobs) == 2 and len(survivor.jobs) == 2
            os.kill(victim.pid, signal.SIGKILL)
        assert isinstance(results["job0"], WorkerLost) and isinstance(results["job2"], WorkerLost)
        assert str(victim.pid) in str(results["job0"])
        assert results["job1"] == [(survivor.pid, 1)] and results["job3"] == [(survivor.pid, 3)]
        with trio.fail_after(20):
            while pool.replaced < 1:
                await trio.sleep(0.05)
        assert len(pool.workers) == 2 and victim.pid not in pool.pids and not alive(victim.pid)
        replacement = next(w for w in pool.workers if w is not survivor)
        answers = await pool.map(slow_sum, [[10], [20], [30]], 0.0)
        assert [total for _, total in answers] == [10, 20, 30]
        assert replacement.pid in {s.pid for s in await pool.stats()}
        pids = pool.pids
    assert not any(alive(pid) for pid in pids)


async def test_cancellation_with_jobs_in_flight_leaves_no_process() -> None:
    pids: list[int] = []
    with trio.move_on_after(2) as scope:
        async with open_worker_pool(2, max_jobs=4, grace=0.2) as pool:
            pids.extend(pool.pids)
            async with trio.open_nursery() as nursery:
                for i in range(8):
                    nursery.start_soon(pool.map, slow_sum, [[i]], 30.0)  # never finish by themselves
                await trio.sleep(0.5)
                scope.cancel()
    assert scope.cancelled_caught and len(pids) == 2
    assert not any(alive(pid) for pid in pids)


async def test_workers_end_when_their_node_dies() -> None:
    """No pool left to close them (the node was SIGKILLed): a worker ends when its pipe closes."""
    async with open_worker_pool(1) as pool:
        worker = pool.workers[0]
        pool._close_fds(worker)  # what the kernel does to a dead node's ends of the pipes
        with trio.fail_after(10):
            await worker.process.wait()
        assert worker.process.returncode == 0


async def test_in_flight_work_is_bounded() -> None:
    async with open_worker_pool(2, max_jobs=2) as pool:
        most = 0
        done = []

        async def call(i: int) -> None:
            done.append(await pool.map(slow_sum, [[i]], 0.1))

        async with trio.open_nursery() as nursery:
            for i in range(12):
                nursery.start_soon(call, i)
            while len(done) < 12:
                most = max(most, sum(len(w.jobs) for w in pool.workers))
                assert all(len(w.jobs) <= 2 for w in pool.workers)
                await trio.sleep(0.01)
        assert most == 4 and sorted(r[0][1] for r in done) == list(range(12))


async def test_frames_larger_than_a_pipe_cross_in_pieces() -> None:
    """A job or an answer bigger than the pipe's buffer (64 KiB) is written in pieces (the flusher
    task) and read back across several reads, among other jobs' frames."""
    async with open_worker_pool(2, max_jobs=4) as pool:
        big = b"\x01" * 3_000_000
        lengths, blob, small = await pool.run_sync(len, big), await pool.run_sync(bytes, 2_000_000), None

        async def many() -> list:
            return await pool.map(sum, [[i, 1] for i in range(20)])

        async with trio.open_nursery() as nursery:
            results: list = []

            async def keep(fn, *args) -> None:
                results.append(await fn(*args))

            nursery.start_soon(keep, pool.map, len, [big, big[:70_000], b"", big[:1]])
            nursery.start_soon(keep, many)
        small = next(r for r in results if len(r) == 20)
    assert lengths == 3_000_000 and blob == bytes(2_000_000)
    assert [3_000_000, 70_000, 0, 1] in results and small == [i + 1 for i in range(20)]


async def test_workers_can_yield_the_core_to_the_engine() -> None:
    """`nice`: the workers' scheduling niceness (`Limits.worker_nice`), above the engine's own."""
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    async with open_intake_pool(Limits(workers=1, worker_nice=5)) as pool:
        assert os.getpriority(os.PRIO_PROCESS, pool.pids[0]) == min(19, mine + 5)
