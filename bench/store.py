"""Benchmark of the LevelDB store: what a synced write batch costs (the latency floor of an
acknowledgement, and why group commit matters), unsynced throughput, and range reads.

    .venv/bin/python bench/store.py [--batches 300] [--dir /path/on/the/disk/to/measure]

Last line: one JSON object with
  sync_batch_ms_p50 / sync_batch_ms_p99  one synced batch of `--keys` 100-byte values (fsync each)
  sync_keys_per_s                        keys per second in synced batches of `--keys`
  nosync_keys_per_s                      the same batches unsynced
  group_commit_keys_per_s                one synced batch of 1,000 keys per fsync (group commit)
  range_read_keys_per_s                  a prefix scan over everything written
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optinode.store import keys  # noqa: E402
from optinode.store.db import open_store  # noqa: E402

VALUE = bytes(range(100))


def write_batches(store, start: int, batches: int, per_batch: int, sync: bool) -> list[float]:
    latencies = []
    n = start
    for _ in range(batches):
        t0 = time.perf_counter()
        with store.write_batch(sync=sync) as batch:
            for _ in range(per_batch):
                batch.put(keys.l1_event(n // 65536, n % 65536), VALUE)
                n += 1
        latencies.append(time.perf_counter() - t0)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--keys", type=int, default=10, help="keys per batch")
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = open_store(Path(tmp) / "db")
        try:
            synced = write_batches(store, 0, args.batches, args.keys, True)
            offset = args.batches * args.keys
            unsynced = write_batches(store, offset, args.batches, args.keys, False)
            offset *= 2
            group = write_batches(store, offset, max(1, args.batches // 10), 1000, True)
            written = offset + max(1, args.batches // 10) * 1000
            t0 = time.perf_counter()
            count = sum(1 for _ in store.iterate(prefix=keys.prefix_of(keys.Prefix.L1_EVENT)))
            scan = time.perf_counter() - t0
            assert count == written
        finally:
            store.close()
    ms = sorted(x * 1000 for x in synced)
    result = {
        "sync_batch_ms_p50": round(statistics.median(ms), 3),
        "sync_batch_ms_p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 3),
        "sync_keys_per_s": round(args.batches * args.keys / sum(synced)),
        "nosync_keys_per_s": round(args.batches * args.keys / sum(unsynced)),
        "group_commit_keys_per_s": round(len(group) * 1000 / sum(group)),
        "range_read_keys_per_s": round(count / scan),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
