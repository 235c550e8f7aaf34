"""The key-value interface both backends implement (`db.LevelStore`, `memory.MemoryStore`).

    with store.write_batch() as batch:      # atomic: all of it or none of it, fsynced (sync=True)
        batch.put(keys.l1_block(n), BLOCK.encode(block))
        batch.delete(keys.l1_block(old))
    value = store.get(key)
    for key, value in store.iterate(prefix=keys.prefix_of(Prefix.L1_BLOCK)): ...
    with store.snapshot() as snap:          # a consistent read view while writes go on
        snap.get(key); snap.iterate(start=a, stop=b)

A write batch commits when its ``with`` block ends normally and is discarded when it raises, so
writes that belong together (an event and the position after it) land together or not at all.

Opening checks the format marker (`check_format`): a new directory gets one, a directory written
by another format, program or deployment is refused with `StoreForeign`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType
from typing import Self, TypeVar

import msgspec

from optinode.store import keys
from optinode.store.codec import Codec
from optinode.store.errors import StoreCorrupt, StoreForeign

T = TypeVar("T")

FORMAT_MAGIC = "optinode-store"
# 2: the sequencer's checkpoints became incremental rows (docs/sequencer.md, "Checkpoints"); a version-1
# directory's checkpoints do not decode, so it is refused with this message rather than StoreCorrupt.
FORMAT_VERSION = 2


class StoreFormat(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The marker under `keys.FORMAT`. ``identity`` names what the directory belongs to (for
    example ``"sequencer chain=31337 rollup=0x…"``) so a data dir is never reused for another."""

    magic: str
    version: int
    identity: str


_FORMAT_DECODER = msgspec.msgpack.Decoder(StoreFormat)
_FORMAT_ENCODER = msgspec.msgpack.Encoder()


class WriteBatch(ABC):
    @abstractmethod
    def put(self, key: bytes, value: bytes) -> None: ...

    @abstractmethod
    def delete(self, key: bytes) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self._commit()
        else:
            self._discard()

    @abstractmethod
    def _commit(self) -> None: ...

    @abstractmethod
    def _discard(self) -> None: ...


class Reader(ABC):
    """What a store and a snapshot of it both answer."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None: ...

    @abstractmethod
    def iterate(
        self, *, prefix: bytes | None = None, start: bytes | None = None, stop: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Items in key order (``reverse``: descending); ``prefix`` or the half-open range
        ``[start, stop)`` (each end optional), not both."""

    def get_value(self, key: bytes, codec: Codec[T]) -> T | None:
        data = self.get(key)
        return None if data is None else codec.decode(data, key=key)

    def last(self, prefix: bytes) -> tuple[bytes, bytes] | None:
        """The item with the highest key under ``prefix`` (None if there is none)."""
        for item in self.iterate(prefix=prefix, reverse=True):
            return item
        return None


class Snapshot(Reader):
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...


class KV(Reader):
    @abstractmethod
    def write_batch(self, *, sync: bool = True) -> WriteBatch: ...

    @abstractmethod
    def snapshot(self) -> Snapshot: ...

    @abstractmethod
    def close(self) -> None:
        """Flush and release the database; idempotent. Any later use raises `StoreClosed`."""

    @property
    @abstractmethod
    def closed(self) -> bool: ...

    def put(self, key: bytes, value: bytes, *, sync: bool = True) -> None:
        with self.write_batch(sync=sync) as batch:
            batch.put(key, value)

    def delete(self, key: bytes, *, sync: bool = True) -> None:
        with self.write_batch(sync=sync) as batch:
            batch.delete(key)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_range_args(prefix: bytes | None, start: bytes | None, stop: bytes | None) -> None:
    if prefix is not None and (start is not None or stop is not None):
        raise ValueError("iterate: give a prefix or a start/stop range, not both")


def check_format(store: KV, identity: str, source: str) -> StoreFormat:
    """Write the format marker into an empty store, or check the one that is there."""
    raw = store.get(keys.FORMAT)
    if raw is None:
        for _ in store.iterate():
            raise StoreForeign(
                f"{source}: a LevelDB database without an optinode format marker (another program's data?); "
                "point --data-dir at an empty or optinode directory"
            )
        marker = StoreFormat(FORMAT_MAGIC, FORMAT_VERSION, identity)
        store.put(keys.FORMAT, _FORMAT_ENCODER.encode(marker))
        return marker
    try:
        marker = _FORMAT_DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise StoreCorrupt(f"{source}: the store's format marker is unreadable; the directory is damaged or not optinode's") from None
    if marker.magic != FORMAT_MAGIC:
        raise StoreForeign(f"{source}: not an optinode store (marker {marker.magic!r})")
    if marker.version != FORMAT_VERSION:
        raise StoreForeign(
            f"{source}: store format version {marker.version}, this optinode reads version {FORMAT_VERSION}; "
            "use a matching optinode or a new data directory (and resync from L1)"
        )
    if identity and marker.identity and marker.identity != identity:
        raise StoreForeign(
            f"{source}: this data directory belongs to {marker.identity!r}, not {identity!r}; "
            "use a separate --data-dir per node and deployment"
        )
    return marker

