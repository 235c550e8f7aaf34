"""A pool of worker processes for CPU work off the engine's thread, with several jobs in flight per worker.

    async with open_worker_pool(2) as pool:
        answers = await pool.map(check_orders, [chunk_a, chunk_b], domain)  # check_orders(domain, chunk)
        one = await pool.run_sync(compute_chunk, pairs)                      # trio-parallel's call shape

What the intake needs and trio-parallel does not give: trio-parallel runs one job per worker at a
time, so between a worker's answer and its next job the engine's event loop goes round about four
times, each round including the engine's whole turn (~1 ms), and each worker sat idle 40-57% of the
intake (docs/benchmarks.md, "In-process intake"). Here each worker is a persistent process reading a
stream of jobs from its own pipe and answering on another: the engine writes a job as soon as it has
one (up to `max_jobs` per worker are queued in the pipe), so a worker that finishes a chunk starts
the next one at once, whatever the engine's loop is doing. The engine's side is one reader task per
worker, which takes every answer that has arrived in one wake-up and wakes each waiting caller once
(a `map` over several chunks wakes its caller once, when its last chunk is answered).

The contract:
- **Functions**: any module-level function (named `module:qualname`, imported by the worker on first
  use); arguments and answers are pickled (protocol 5: any picklable value, arbitrary-size integers
  included; msgspec msgpack was measured 0.07 µs per order cheaper and cannot carry either). An
  exception the function raises is raised to the caller (or `WorkerError` with the remote traceback
  if it does not pickle); an argument that does not pickle raises here, before anything is sent.
- **Dispatch**: each chunk to the live worker with the fewest items in flight.
- **Backpressure**: at most `max_jobs` jobs in flight per worker; a caller beyond that waits (the
  memory held is bounded by `workers x max_jobs` chunks).
- **A worker that dies** (killed, out of memory, a crash in native code): the jobs it held fail with
  `WorkerLost` to their callers — and only those: answers are matched to jobs by id, never by
  position, so no caller gets another's answer — and a replacement is started. A job is not re-run
  by the pool: the caller decides (the mempool checks the chunk on its own thread instead), so a job
  that kills its worker cannot kill them all in turn. If replacements keep dying at start-up, the
  pool raises `WorkerPoolBroken` into the nursery that opened it (the node stops rather than hang).
- **Start-up** is complete when `open_worker_pool` returns: every worker has imported `preload` and
  said it is ready, so the first orders do not pay the interpreter's start.
- **Shutdown** (the block ends, or is cancelled): the pipes are closed, a worker ends at its next
  read or write, and any still running after `grace` seconds is killed; every process is reaped
  before `open_worker_pool` exits. A worker also ends by itself when the node dies (its pipe closes).
- **Accounting**: `stats()` asks each worker for its pid, CPU time and time spent inside jobs (busy
  fraction = busy / wall), measured in the worker itself.

Workers are fresh interpreters (`sys.executable`, the parent's `sys.path`), like multiprocessing's
`spawn`: no state of the engine is inherited. A fork server would only shorten the start (once, before
the node serves) and a replacement's; see docs/sequencer.md, "Worker pool".
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import os
import pickle
import struct
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import msgspec
import trio

__all__ = ["WorkerError", "WorkerLost", "WorkerPool", "WorkerPoolBroken", "WorkerStats", "open_worker_pool"]

# Each frame: the body's length, the job's id, (answers only) whether it succeeded; then the pickle.
# The id travels outside the pickle, so an answer that fails to unpickle still fails its own job.
REQUEST = struct.Struct("<IQ")
ANSWER = struct.Struct("<IQ?")
READ_SIZE = 1 << 20
READY = 0  # the job id of a worker's first answer: its pid, once it has imported `preload`
PROTOCOL = 5


class WorkerLost(RuntimeError):
    """The worker process running this job died before answering (the job may or may not have run)."""


class WorkerError(RuntimeError):
    """The function raised in the worker, and its exception could not be pickled back: its traceback."""


class WorkerPoolBroken(RuntimeError):
    """Replacement workers keep dying before they are ready: the pool cannot serve."""


class WorkerStats(msgspec.Struct, frozen=True):
    pid: int
    cpu: float  # the worker process's CPU seconds so far (`time.process_time` in it)
    busy: float  # seconds spent inside jobs so far (`time.perf_counter` around each call)
    jobs: int  # jobs answered so far


def function_name(fn: Callable) -> str:
    """`module:qualname` of a module-level function, checked to resolve back to `fn`."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        raise TypeError(f"{fn!r} is not a module-level function a worker can import")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    if target is not fn:
        raise TypeError(f"{module}:{qualname} does not name {fn!r}")
    return f"{module}:{qualname}"


class _Batch:
    """The chunks of one `map` call: answers by position, and one wake-up when all are in (or one fails)."""

    __slots__ = ("results", "remaining", "error", "done")

    def __init__(self, count: int) -> None:
        self.results: list[Any] = [None] * count
        self.remaining = count
        self.error: BaseException | None = None
        self.done = trio.Event()

    def answer(self, index: int, ok: bool, value: Any) -> None:
        if self.done.is_set():
            return  # failed already; its caller has gone on
        if ok:
            self.results[index] = value
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()
        else:
            self.fail(value if isinstance(value, BaseException) else WorkerError(str(value)))

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class _Worker:
    __slots__ = ("process", "pid", "to_worker", "from_worker", "jobs", "items", "out", "flushing", "alive", "ready")

    def __init__(self, process: trio.Process, to_worker: int, from_worker: int) -> None:
        self.process = process
        self.pid = process.pid
        self.to_worker, self.from_worker = to_worker, from_worker  # our ends of its pipes (non-blocking)
        self.jobs: dict[int, tuple[_Batch, int, int]] = {}  # job id -> (batch, index, items)
        self.items = 0  # items in flight (the dispatch's measure of load)
        self.out = bytearray()  # frames the pipe did not take yet (written by the flusher task)
        self.flushing = trio.Event()
        self.alive = True
        self.ready = trio.Event()


class WorkerPool:
    """Made by `open_worker_pool`; see the module's docstring."""

    def __init__(self, nursery: trio.Nursery, count: int, *, max_jobs: int, preload: Sequence[str], grace: float,
                 max_restarts: int, nice: int = 0) -> None:
        if count < 1 or max_jobs < 1:
            raise ValueError("a pool needs at least one worker and one job in flight per worker")
        self.nursery, self.count, self.max_jobs = nursery, count, max_jobs
        self.preload, self.grace, self.max_restarts, self.nice = tuple(preload), grace, max_restarts, nice
        self.workers: list[_Worker] = []  # live ones
        self.every: list[_Worker] = []  # every worker started and not yet reaped (for shutdown)
        self.ids = itertools.count(1)
        self.names: dict[Callable, str] = {}
        self.space = trio.lowlevel.ParkingLot()  # callers waiting for a worker with room
        self.closed = False
        self.replaced = 0  # workers replaced after a death (for tests and metrics)
        self._failed_starts = 0

    # --- the caller's side ----------------------------------------------------------------------

    async def map(self, fn: Callable, chunks: Sequence[Any], *args: Any) -> list[Any]:
        """`[fn(*args, chunk) for chunk in chunks]`, the chunks spread over the workers, the answers in
        order. Raises what `fn` raised (for the first chunk that failed), or `WorkerLost`."""
        return await self._run(fn, [(*args, chunk) for chunk in chunks], [len(chunk) for chunk in chunks])

    async def run_sync(self, fn: Callable, *args: Any, limiter: Any = None) -> Any:
        """`fn(*args)` in a worker: trio-parallel's `run_sync` call shape, so code written for a
        `trio_parallel.WorkerContext` runs here unchanged (`limiter` is ignored: the pool bounds its
        own work)."""
        return (await self._run(fn, [args], [1]))[0]

    async def stats(self) -> list[WorkerStats]:
        """Each live worker's own accounting, asked of each (answered after the jobs queued before it)."""
        batch = _Batch(len(self.workers))
        frames = [(worker, next(self.ids)) for worker in self.workers]
        for index, (worker, job_id) in enumerate(frames):
            self._send(worker, job_id, self._frame(job_id, _STATS, ()), batch, index, 0)
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.results

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    async def _run(self, fn: Callable, calls: list[tuple], items: list[int]) -> list[Any]:
        if not calls:
            await trio.lowlevel.checkpoint()
            return []
        name = self.names.get(fn) or self.names.setdefault(fn, function_name(fn))
        ids = [next(self.ids) for _ in calls]
        frames = [self._frame(job_id, name, call) for job_id, call in zip(ids, calls)]  # raises before any is sent
        batch = _Batch(len(calls))
        for index, (job_id, frame, count) in enumerate(zip(ids, frames, items)):
            self._send(await self._least_loaded(), job_id, frame, batch, index, count)
        await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.results

    @staticmethod
    def _frame(job_id: int, name: str, args: tuple) -> bytes:
        body = pickle.dumps((name, args), PROTOCOL)
        return REQUEST.pack(len(body), job_id) + body

    async def _least_loaded(self) -> _Worker:
        while True:
            if self.closed:
                raise trio.ClosedResourceError("the worker pool is closed")
            best = None
            for worker in self.workers:
                if len(worker.jobs) < self.max_jobs and (best is None or worker.items < best.items):
                    best = worker
            if best is not None:
                return best
            await self.space.park()  # backpressure: woken when a worker answers, or a new one is ready

    def _send(self, worker: _Worker, job_id: int, frame: bytes, batch: _Batch, index: int, items: int) -> None:
        worker.jobs[job_id] = (batch, index, items)
        worker.items += items
        if worker.out:  # frames already waiting: keep the order, the flusher writes them
            worker.out += frame
            return
        try:
            written = os.write(worker.to_worker, frame)
        except BlockingIOError:
            written = 0
        except OSError:  # the worker is gone: its reader fails the job when it sees the pipe close
            return
        if written < len(frame):
            worker.out += memoryview(frame)[written:]
            worker.flushing.set()

    # --- the pool's tasks ------------------------------------------------------------------------

    async def _start_worker(self) -> _Worker:
        to_read, to_worker = os.pipe()
        from_worker, to_write = os.pipe()
        code = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
                "from optinode.exchange.worker_pool import worker_main; worker_main(json.loads(sys.argv[2]), int(sys.argv[3]))")
        try:
            process = await trio.lowlevel.open_process(
                [sys.executable, "-c", code, json.dumps(sys.path), json.dumps(self.preload), str(self.nice)],
                stdin=to_read, stdout=to_write, start_new_session=True)  # a terminal's Ctrl-C is the node's to handle
        except BaseException:
            for fd in (to_read, to_worker, from_worker, to_write):
                os.close(fd)
            raise
        os.close(to_read)
        os.close(to_write)
        os.set_blocking(to_worker, False)
        os.set_blocking(from_worker, False)
        worker = _Worker(process, to_worker, from_worker)
        self.every.append(worker)
        self.nursery.start_soon(self._read, worker)
        self.nursery.start_soon(self._flush, worker)
        return worker

    async def start(self) -> None:
        started = [await self._start_worker() for _ in range(self.count)]
        for worker in started:
            await worker.ready.wait()
            if not worker.alive:
                raise WorkerPoolBroken(f"worker {worker.pid} died before it was ready (exit {worker.process.returncode})")
            self.workers.append(worker)

    async def _read(self, worker: _Worker) -> None:
        """Take every answer that has arrived, in one wake-up; on end of stream, the worker died."""
        buffer = bytearray()
        fd = worker.from_worker
        try:
            while True:
                try:
                    await trio.lowlevel.wait_readable(fd)
                except (trio.ClosedResourceError, OSError):
                    break
                eof = False
                while True:
                    try:
                        data = os.read(fd, READ_SIZE)
                    except BlockingIOError:
                        break
                    except OSError:
                        eof = True
                        break
                    if not data:
                        eof = True
                        break
                    buffer += data
                    if len(data) < READ_SIZE:
                        break
                start = 0
                freed = False
                while len(buffer) - start >= ANSWER.size:
                    size, job_id, ok = ANSWER.unpack_from(buffer, start)
                    end = start + ANSWER.size + size
                    if end > len(buffer):
                        break
                    body = memoryview(buffer)[start + ANSWER.size:end]
                    start = end
                    try:
                        value = pickle.loads(body)
                    except Exception as error:  # noqa: BLE001 - the job's failure, not the pool's
                        ok, value = False, WorkerError(f"the worker's answer does not unpickle here: {error!r}")
                    finally:
                        body.release()
                    if job_id == READY:
                        worker.ready.set()
                        continue
                    job = worker.jobs.pop(job_id, None)
                    if job is not None:
                        batch, index, items = job
                        worker.items -= items
                        batch.answer(index, ok, value)
                        freed = True
                del buffer[:start]
                if freed:
                    self.space.unpark_all()
                if eof:
                    break
        finally:
            await self._lost(worker)

    async def _flush(self, worker: _Worker) -> None:
        """Write what the pipe did not take at once (a full pipe: the worker is `max_jobs` behind)."""
        while worker.alive:
            await worker.flushing.wait()
            worker.flushing = trio.Event()
            while worker.out and worker.alive:
                try:
                    await trio.lowlevel.wait_writable(worker.to_worker)
                    written = os.write(worker.to_worker, worker.out)
                except BlockingIOError:
                    continue
                except (trio.ClosedResourceError, OSError):
                    return  # gone: the reader fails its jobs
                del worker.out[:written]

    async def _lost(self, worker: _Worker) -> None:
        """The worker's answers stopped: fail the jobs it held, reap it, start a replacement."""
        was_ready = worker.ready.is_set()
        worker.alive = False
        worker.ready.set()  # anyone waiting on its start learns it died
        worker.flushing.set()
        if worker in self.workers:
            self.workers.remove(worker)
        jobs, worker.jobs, worker.items = worker.jobs, {}, 0
        with trio.CancelScope(shield=True):
            self._close_fds(worker)
            with trio.move_on_after(self.grace):
                await worker.process.wait()
            if worker.process.returncode is None:
                worker.process.kill()
                await worker.process.wait()
        if worker in self.every:
            self.every.remove(worker)
        error = WorkerLost(f"worker process {worker.pid} died (exit {worker.process.returncode}) before answering")
        for batch, _, _ in jobs.values():
            batch.fail(error)
        self.space.unpark_all()
        if self.closed:
            return
        self._failed_starts = 0 if was_ready else self._failed_starts + 1
        if self._failed_starts > self.max_restarts:
            raise WorkerPoolBroken(f"{self._failed_starts} replacement workers died before they were ready")
        self.nursery.start_soon(self._replace)

    async def _replace(self) -> None:
        await trio.sleep(min(5.0, 0.05 * 2 ** self._failed_starts) if self._failed_starts else 0)
        if self.closed:
            return
        worker = await self._start_worker()
        await worker.ready.wait()
        if worker.alive and not self.closed:
            self.workers.append(worker)
            self.replaced += 1
            self.space.unpark_all()

    def _close_fds(self, worker: _Worker) -> None:
        for attribute in ("to_worker", "from_worker"):
            fd = getattr(worker, attribute)
            if fd >= 0:
                trio.lowlevel.notify_closing(fd)
                os.close(fd)
                setattr(worker, attribute, -1)

    async def aclose(self) -> None:
        """Close every pipe (a worker ends at its next read or write), kill what outlives `grace`, reap all."""
        self.closed = True
        self.space.unpark_all()
        workers = list(self.every)
        for worker in workers:
            worker.alive = False
            worker.flushing.set()
            self._close_fds(worker)
        with trio.move_on_after(self.grace):
            for worker in workers:
                await worker.process.wait()
        for worker in workers:
            if worker.process.returncode is None:
                worker.process.kill()
        for worker in workers:
            await worker.process.wait()


@contextlib.asynccontextmanager
async def open_worker_pool(count: int = 2, *, max_jobs: int = 4, preload: Sequence[str] = (), grace: float = 1.0,
                           max_restarts: int = 5, nice: int = 0) -> AsyncIterator[WorkerPool]:
    """A started pool of `count` workers (each has imported `preload` and is ready); closed, every
    process reaped, when the block ends — also when it is cancelled. `max_jobs`: jobs in flight per
    worker (measured: docs/benchmarks.md, "Worker pool")."""
    async with trio.open_nursery() as nursery:
        pool = WorkerPool(nursery, count, max_jobs=max_jobs, preload=preload, grace=grace, max_restarts=max_restarts, nice=nice)
        try:
            await pool.start()
            yield pool
        finally:
            with trio.CancelScope(shield=True):
                await pool.aclose()
            nursery.cancel_scope.cancel()


# --- the worker's side ---------------------------------------------------------------------------

_busy = 0.0
_jobs = 0


def worker_stats() -> WorkerStats:
    """Run in a worker by `WorkerPool.stats`."""
    return WorkerStats(os.getpid(), time.process_time(), _busy, _jobs)


_STATS = f"{__name__}:worker_stats"


def _resolve(name: str, functions: dict[str, Callable]) -> Callable:
    fn = functions.get(name)
    if fn is None:
        module, _, qualname = name.partition(":")
        fn = importlib.import_module(module)
        for part in qualname.split("."):
            fn = getattr(fn, part)
        functions[name] = fn
    return fn  # type: ignore[return-value]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _answer(job_id: int, ok: bool, value: Any) -> bytes:
    try:
        body = pickle.dumps(value, PROTOCOL)
        if not ok:
            pickle.loads(body)  # an exception that pickles but does not unpickle (required arguments)
    except Exception:  # noqa: BLE001 - an answer or exception that does not travel: say so, as text
        text = "".join(traceback.format_exception(value)) if isinstance(value, BaseException) else repr(value)[:2000]
        ok, body = False, pickle.dumps(WorkerError(f"the worker's answer does not pickle: {text}"), PROTOCOL)
    return ANSWER.pack(len(body), job_id, ok) + body


def worker_main(preload: Sequence[str], nice: int = 0) -> None:
    """A worker's loop: read a job, run it, write its answer, until the pipe closes."""
    global _busy, _jobs
    if nice:
        os.nice(nice)
    requests, answers = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a stray print goes to stderr, not into the answers
    sys.stdout = sys.stderr
    for module in preload:
        importlib.import_module(module)
    functions: dict[str, Callable] = {}
    _write_all(answers, _answer(READY, True, os.getpid()))
    stream = os.fdopen(requests, "rb", buffering=READ_SIZE)
    clock = time.perf_counter
    try:
        while True:
            header = stream.read(REQUEST.size)
            if len(header) < REQUEST.size:
                return  # the engine closed the pipe: shut down
            size, job_id = REQUEST.unpack(header)
            body = stream.read(size)
            if len(body) < size:
                return
            start = clock()
            try:
                name, args = pickle.loads(body)
                frame = _answer(job_id, True, _resolve(name, functions)(*args))
            except Exception as error:  # noqa: BLE001 - the caller's to handle
                frame = _answer(job_id, False, error)
            _busy += clock() - start
            _jobs += 1
            _write_all(answers, frame)
    except (BrokenPipeError, KeyboardInterrupt):
        return


if __name__ == "__main__":  # pragma: no cover - started by WorkerPool
    worker_main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else [], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
