"""Load generators for bench/sequencer.py's JSON-RPC figures: separate client processes, each with
several keep-alive HTTP/1.1 connections (plain `http.client`, no optinode code), posting
pre-encoded JSON-RPC batch bodies to the node on 127.0.0.1.

- `closed_loop`: every connection posts its bodies one after the other as fast as the node
  answers (the peak);
- `open_loop`: connections post on a fixed schedule (a given rate), and each request's latency is
  measured from its *scheduled* time, so a node that falls behind is charged for the wait
  (no coordinated omission).

Each answer is checked: every order in it must be acknowledged (a result, no error)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from multiprocessing import get_context


def _post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, float]:
    """Post one batch: the number of orders acknowledged (asserts every one was) and the
    `perf_counter` time its answer was read, before the client parses it (the node's latency, not
    the client's JSON decode: ~0.2 ms for 50 answers in CPython)."""
    connection.request("POST", "/", body=body, headers={"content-type": "application/json"})
    response = connection.getresponse()
    raw = response.read()
    answered = time.perf_counter()
    answers = json.loads(raw)
    errors = [a["error"] for a in answers if "error" in a]
    assert response.status == 200 and not errors, errors[:3]
    return len(answers), answered


def _client(port: int, bodies: list[list[bytes]], start_at: float, interval: float | None, out, detail: bool = False,
            index: int = 0, lanes: int = 1) -> None:
    """One process: a thread per connection; `interval` None = closed loop, else seconds between
    the sends of one connection (the lanes of all processes evenly offset). With `detail`, each lane also
    reports (due, sent, answered) `perf_counter` times per request (the clock is the machine's
    monotonic one, comparable with the server's: bench/ack_trace.py)."""
    results: list[tuple[float, float, list[float], int, list]] = [None] * len(bodies)  # type: ignore[list-item]

    def connection_main(k: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()
        latencies, acked, times = [], 0, []
        while time.time() < start_at:
            time.sleep(0.0005)
        # every lane's schedule from the same origin (start_at on this clock), not from when its own
        # thread woke: the lanes stay evenly offset whatever each wake-up's delay
        began = start_at - time.time() + time.perf_counter() if interval is not None else time.perf_counter()
        # lane j of all the processes' lanes sends at j/lanes of the interval: evenly spread, none in phase
        offset = 0.0 if interval is None else interval * (index * len(bodies) + k) / lanes
        for n, body in enumerate(bodies[k]):
            if interval is not None:
                due = began + offset + n * interval
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            else:
                due = time.perf_counter()
            sent = time.perf_counter()
            got, answered = _post(connection, body)
            acked += got
            latencies.append(answered - due)
            if detail:
                times.append((due, sent, answered))
        results[k] = (began, time.perf_counter(), latencies, acked, times)
        connection.close()

    cpu = time.process_time()  # (after this process's start-up imports)
    threads = [threading.Thread(target=connection_main, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    offset = time.time() - time.perf_counter()
    out.put(([(r[0] + offset, r[1] + offset, r[2], r[3], r[4]) for r in results], time.process_time() - cpu, index))


def run_clients(port: int, bodies: list[bytes], *, processes: int, connections: int, rate: float | None = None,
                detail: bool = False) -> dict:
    """Spread `bodies` over processes × connections and run them (closed loop, or `rate` requests/s
    in all). Returns elapsed seconds, orders acknowledged, the per-request latencies (seconds) and
    the clients' CPU seconds (all their processes); with `detail`, ``times``: per body index,
    its (due, sent, answered) `perf_counter` times."""
    ctx = get_context("spawn")
    queue = ctx.Queue()
    lanes = processes * connections
    per_lane = [bodies[i::lanes] for i in range(lanes)]
    interval = None if rate is None else lanes / rate
    start_at = time.time() + 1.5  # after the client processes have started
    procs = [ctx.Process(target=_client, args=(port, per_lane[p * connections:(p + 1) * connections], start_at, interval, queue, detail, p, lanes))
             for p in range(processes)]
    for p in procs:
        p.start()
    reports = sorted((queue.get() for _ in procs), key=lambda r: r[2])  # (in process order: lane = its index)
    for p in procs:
        p.join()
    lanes_done = [lane for lanes_of, _, _ in reports for lane in lanes_of]
    began = min(lane[0] for lane in lanes_done)
    ended = max(lane[1] for lane in lanes_done)
    result = {"elapsed": ended - began, "acked": sum(lane[3] for lane in lanes_done),
              "latencies": sorted(x for lane in lanes_done for x in lane[2]), "client_cpu": sum(cpu for _, cpu, _ in reports)}
    if detail:  # lane i posted bodies i, i + lanes, ...
        times: list = [None] * len(bodies)
        for lane, (*_, lane_times) in enumerate(lanes_done):
            for n, t in enumerate(lane_times):
                times[lane + n * lanes] = t
        result["times"] = times
    return result


def worker_cpu_sample(pause: float) -> tuple[int, float]:
    """(pid, CPU seconds so far) of the worker process this runs in; it first waits `pause` so that
    calls made at once land on different workers."""
    import os

    time.sleep(pause)
    return os.getpid(), time.process_time()
