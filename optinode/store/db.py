"""LevelDB (plyvel) behind the `kv.KV` interface.

    store = open_store(data_dir / "db", identity="sequencer chain=31337 rollup=0x…")
    try: ...
    finally: store.close()

Opening turns every way a directory can be unusable into one `StoreError` line that says what to
do: a path that is a file, a non-empty directory that is not LevelDB (refused rather than turned
into one), a database another process holds open, corruption LevelDB reports (``paranoid_checks``
is on), a LevelDB without optinode's format marker, another format version, or another identity.

Writes go through `write_batch` (LevelDB's WriteBatch, applied atomically: after a crash either
every put/delete of a batch is there or none is) with ``sync=True`` by default, i.e. fsync before
the batch returns; pass ``sync=False`` only for data that can be re-derived (a crash may lose the
last unsynced batches, never half of one).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import plyvel

from optinode.store.errors import StoreClosed, StoreCorrupt, StoreError, StoreForeign, StoreLocked
from optinode.store.keys import prefix_end
from optinode.store.kv import KV, Snapshot, StoreFormat, WriteBatch, check_format, check_range_args

__all__ = ["LevelStore", "open_store"]


def _message(error: Exception) -> str:
    text = error.args[0] if error.args else str(error)
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _iterate(source: plyvel.DB | plyvel.Snapshot, prefix: bytes | None, start: bytes | None, stop: bytes | None, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
    check_range_args(prefix, start, stop)
    if prefix is not None:
        start, stop = prefix, prefix_end(prefix)
    try:
        yield from _iterate_raw(source, start, stop, reverse)
    except plyvel.CorruptionError as error:
        raise StoreCorrupt(f"LevelDB reports corruption while reading: {_message(error)}") from None


def _iterate_raw(source: plyvel.DB | plyvel.Snapshot, start: bytes | None, stop: bytes | None, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
    if not reverse:
        kwargs = {k: v for k, v in (("start", start), ("stop", stop)) if v is not None}
        with source.iterator(**kwargs) as it:
            yield from it
        return
    # plyvel 1.5.1 (LevelDB 1.22) loses items in reverse iteration with a lower bound: with the keys
    # {a, b}, ``iterator(start=b, reverse=True)`` yields nothing when b is the last key of the
    # database (tests/store/test_kv.py::test_matches_a_dict_model found it). Only the upper bound goes
    # to plyvel; the lower one is applied here.
    kwargs = {"reverse": True} if stop is None else {"reverse": True, "stop": stop}
    with source.iterator(**kwargs) as it:
        for key, value in it:
            if start is not None and key < start:
                return
            yield key, value


def _get(source: plyvel.DB | plyvel.Snapshot, key: bytes) -> bytes | None:
    try:
        return source.get(key)
    except plyvel.CorruptionError as error:
        raise StoreCorrupt(f"LevelDB reports corruption reading key {key.hex()}: {_message(error)}") from None


class _LevelBatch(WriteBatch):
    def __init__(self, db: plyvel.DB, sync: bool) -> None:
        self._batch = db.write_batch(sync=sync)

    def put(self, key: bytes, value: bytes) -> None:
        self._batch.put(key, value)

    def delete(self, key: bytes) -> None:
        self._batch.delete(key)

    def _commit(self) -> None:
        try:
            self._batch.write()
        except RuntimeError as error:
            raise StoreClosed(f"write after close: {error}") from None

    def _discard(self) -> None:
        self._batch.clear()


class _LevelSnapshot(Snapshot):
    def __init__(self, snapshot: plyvel.Snapshot) -> None:
        self._snapshot: plyvel.Snapshot | None = snapshot

    def _live(self) -> plyvel.Snapshot:
        if self._snapshot is None:
            raise StoreClosed("snapshot used after close")
        return self._snapshot

    def get(self, key: bytes) -> bytes | None:
        return _get(self._live(), key)

    def iterate(self, *, prefix=None, start=None, stop=None, reverse=False) -> Iterator[tuple[bytes, bytes]]:  # type: ignore[no-untyped-def]
        return _iterate(self._live(), prefix, start, stop, reverse)

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None


class LevelStore(KV):
    def __init__(self, db: plyvel.DB, path: Path) -> None:
        self._db = db
        self.path = path
        self.format: StoreFormat | None = None

    def _live(self) -> plyvel.DB:
        if self._db.closed:
            raise StoreClosed(f"{self.path}: store used after close")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        return _get(self._live(), key)

    def iterate(self, *, prefix=None, start=None, stop=None, reverse=False) -> Iterator[tuple[bytes, bytes]]:  # type: ignore[no-untyped-def]
        return _iterate(self._live(), prefix, start, stop, reverse)

    def write_batch(self, *, sync: bool = True) -> WriteBatch:
        return _LevelBatch(self._live(), sync)

    def snapshot(self) -> Snapshot:
        return _LevelSnapshot(self._live().snapshot())

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()  # LevelDB flushes its memtable log; synced batches are already on disk

    @property
    def closed(self) -> bool:
        return self._db.closed


def _check_directory(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise StoreForeign(f"{path}: exists and is not a directory; give a directory for the store")
    if path.is_dir():
        entries = os.listdir(path)
        if entries and "CURRENT" not in entries:
            raise StoreForeign(
                f"{path}: a non-empty directory that is not a LevelDB database ({len(entries)} entries, no CURRENT file); "
                "refusing to create a store inside it: choose an empty or new directory"
            )


def open_store(path: str | os.PathLike[str], *, identity: str = "", create: bool = True) -> LevelStore:
    """Open (or create, if ``create``) the store at ``path`` and check its format marker."""
    path = Path(path)
    _check_directory(path)
    if not create and not (path / "CURRENT").exists():
        raise StoreError(f"{path}: no store here (expected an existing optinode data directory)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = plyvel.DB(str(path), create_if_missing=create, paranoid_checks=True)
    except plyvel.CorruptionError as error:
        raise StoreCorrupt(
            f"{path}: LevelDB reports corruption ({_message(error)}); restore it from a backup, or move it away and resync from L1"
        ) from None
    except plyvel.IOError as error:
        text = _message(error)
        if "lock" in text.lower():
            raise StoreLocked(f"{path}: in use by another process ({text}); stop the other node first") from None
        raise StoreError(f"{path}: cannot open: {text}") from None
    except plyvel.Error as error:
        raise StoreError(f"{path}: cannot open: {_message(error)}") from None
    except OSError as error:
        raise StoreError(f"{path}: cannot open: {error.strerror or error}") from None
    store = LevelStore(db, path)
    try:
        store.format = check_format(store, identity, str(path))
    except BaseException:
        store.close()
        raise
    return store
