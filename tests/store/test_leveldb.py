"""LevelDB-only behaviour: unusable directories give one clear error; write batches survive SIGKILL
all-or-nothing (a child process is killed mid-write and the store reopened)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from optinode.store import keys
from optinode.store.db import open_store
from optinode.store.errors import StoreCorrupt, StoreError, StoreForeign, StoreLocked

REPO = Path(__file__).resolve().parents[2]


def test_a_file_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreForeign, match="is not a directory"):
        open_store(tmp_path / "f")


def test_a_non_leveldb_directory_is_refused_not_reused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("someone's files")
    with pytest.raises(StoreForeign, match="not a LevelDB database"):
        open_store(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]  # nothing created in it


def test_missing_store_when_create_is_false(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store here"):
        open_store(tmp_path / "db", create=False)


def test_a_store_in_use_is_refused(tmp_path: Path) -> None:
    first = open_store(tmp_path / "db")
    try:
        with pytest.raises(StoreLocked, match="in use by another process"):
            open_store(tmp_path / "db")
    finally:
        first.close()
    open_store(tmp_path / "db").close()  # usable again once released


def test_corrupt_current_file(tmp_path: Path) -> None:
    open_store(tmp_path / "db").close()
    (tmp_path / "db" / "CURRENT").write_text("MANIFEST-999999\n")
    with pytest.raises(StoreCorrupt, match="LevelDB reports corruption"):
        open_store(tmp_path / "db")


def test_corrupt_table_file_is_detected(tmp_path: Path) -> None:
    store = open_store(tmp_path / "db")
    with store.write_batch() as batch:
        for i in range(2000):
            batch.put(keys.l1_block(i), os.urandom(100))
    store._db.compact_range()  # force the data into an .ldb table file
    store.close()
    tables = sorted((tmp_path / "db").glob("*.ldb"))
    assert tables, "compaction wrote no table file"
    data = bytearray(tables[0].read_bytes())
    data[100:200] = b"\x00" * 100
    tables[0].write_bytes(bytes(data))
    reopened = open_store(tmp_path / "db")  # the table's blocks are checked when read
    try:
        with pytest.raises(StoreCorrupt, match="corruption"):
            for _ in reopened.iterate():
                pass
    finally:
        reopened.close()


# --- crash consistency ----------------------------------------------------------------------------

BATCH_KEYS = 64

CHILD = textwrap.dedent(
    """
    import sys
    from optinode.store import keys
    from optinode.store.db import open_store
    store = open_store(sys.argv[1])
    sync = sys.argv[2] == "1"
    n = 0
    while True:
        with store.write_batch(sync=sync) as batch:
            for j in range({keys}):
                batch.put(keys.l1_event(n, j), (n * 1000 + j).to_bytes(8, "big") * 64)
            batch.put(keys.L1_HEAD, n.to_bytes(8, "big"))
        print(n, flush=True)   # n is durable (sync) / written (no sync) from here on
        n += 1
    """
).format(keys=BATCH_KEYS)


@pytest.mark.parametrize("sync", [True, False])
def test_sigkill_mid_write_leaves_whole_batches(tmp_path: Path, sync: bool) -> None:
    rng = random.Random(9)
    for trial in range(4):
        path = tmp_path / f"db{trial}"
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), "1" if sync else "0"],
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            text=True,
        )
        acked = -1
        target = rng.randint(3, 40)
        while acked < target:
            line = child.stdout.readline()
            assert line, "the writer died on its own"
            acked = int(line)
        os.kill(child.pid, signal.SIGKILL)  # lands somewhere inside a later batch
        child.wait()
        child.stdout.close()

        store = open_store(path)
        try:
            head = int.from_bytes(store.get(keys.L1_HEAD), "big")
            assert head >= acked, "an acknowledged batch was lost"
            per_block: dict[int, int] = {}
            for key, value in store.iterate(prefix=keys.prefix_of(keys.Prefix.L1_EVENT)):
                block, j = keys.parse_l1_event(key)
                assert value == (block * 1000 + j).to_bytes(8, "big") * 64
                per_block[block] = per_block.get(block, 0) + 1
            # every batch up to the head is whole; nothing of a later (torn) batch is there
            assert sorted(per_block) == list(range(head + 1))
            assert set(per_block.values()) == {BATCH_KEYS}
        finally:
            store.close()
