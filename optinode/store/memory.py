"""The store interface in memory, for unit tests: same semantics as `db.LevelStore` (sorted keys,
atomic batches, snapshots, closed-after-close), no durability."""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedDict

from optinode.store.errors import StoreClosed
from optinode.store.keys import prefix_end
from optinode.store.kv import KV, Snapshot, StoreFormat, WriteBatch, check_format, check_range_args

__all__ = ["MemoryStore", "open_memory"]


def _iterate(data: SortedDict, prefix: bytes | None, start: bytes | None, stop: bytes | None, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
    check_range_args(prefix, start, stop)
    if prefix is not None:

        start, stop = prefix, prefix_end(prefix)
    # irange over a snapshot list of keys: a caller may write while iterating the live store.
    for key in list(data.irange(start, stop, inclusive=(True, False), reverse=reverse)):
        if key in data:
            yield key, data[key]


class _MemoryBatch(WriteBatch):
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self._ops.append((bytes(key), bytes(value)))

    def delete(self, key: bytes) -> None:
        self._ops.append((bytes(key), None))

    def _commit(self) -> None:
        data = self._store._live()
        for key, value in self._ops:  # nothing between these lines can fail: all-or-nothing
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self._ops = []

    def _discard(self) -> None:
        self._ops = []


class _MemoryReader:
    _data: SortedDict | None
    _what = "memory store"

    def _live(self) -> SortedDict:
        if self._data is None:
            raise StoreClosed(f"{self._what} used after close")
        return self._data

    def get(self, key: bytes) -> bytes | None:
        return self._live().get(key)

    def iterate(self, *, prefix=None, start=None, stop=None, reverse=False):  # type: ignore[no-untyped-def]
        return _iterate(self._live(), prefix, start, stop, reverse)


class _MemorySnapshot(_MemoryReader, Snapshot):
    _what = "snapshot"

    def __init__(self, data: SortedDict) -> None:
        self._data = data.copy()

    def close(self) -> None:
        self._data = None


class MemoryStore(_MemoryReader, KV):
    def __init__(self, data: SortedDict | None = None) -> None:
        # ``data`` lets a test "reopen" the same contents, as a restart would find them on disk.
        self._data = data if data is not None else SortedDict()
        self.format: StoreFormat | None = None

    def write_batch(self, *, sync: bool = True) -> WriteBatch:
        self._live()
        return _MemoryBatch(self)

    def snapshot(self) -> Snapshot:
        return _MemorySnapshot(self._live())

    def close(self) -> None:
        self._data = None

    @property
    def closed(self) -> bool:
        return self._data is None

    @property
    def contents(self) -> SortedDict:
        """The underlying mapping (to reopen it in a test as `MemoryStore(contents)`)."""
        return self._live()


def open_memory(identity: str = "", data: SortedDict | None = None) -> MemoryStore:
    store = MemoryStore(data)
    store.format = check_format(store, identity, "memory store")
    return store
