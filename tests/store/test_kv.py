"""The store interface, run on both backends (LevelDB and memory): see conftest.py."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optinode.store import keys
from optinode.store.codec import Codec
from optinode.store.errors import StoreClosed, StoreCorrupt, StoreForeign
from optinode.store.kv import FORMAT_MAGIC, FORMAT_VERSION, StoreFormat
from optinode.store.memory import open_memory

from tests.store.conftest import Backend

BLOCKS = keys.prefix_of(keys.Prefix.L1_BLOCK)


def user_items(store) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in store.iterate() if k != keys.FORMAT]


def test_put_get_delete(store) -> None:
    assert store.get(b"\x05a") is None
    store.put(b"\x05a", b"1")
    assert store.get(b"\x05a") == b"1"
    store.put(b"\x05a", b"2", sync=False)
    assert store.get(b"\x05a") == b"2"
    store.delete(b"\x05a")
    assert store.get(b"\x05a") is None
    store.delete(b"\x05missing")  # deleting what is not there is not an error


@pytest.mark.parametrize("sync", [True, False])
def test_write_batch_commits_all_on_success(store, sync: bool) -> None:
    store.put(b"\x05gone", b"x")
    with store.write_batch(sync=sync) as batch:
        for i in range(100):
            batch.put(keys.l1_block(i), bytes([i]))
        batch.delete(b"\x05gone")
        # nothing is visible before the batch ends
        assert store.get(keys.l1_block(0)) is None
        assert store.get(b"\x05gone") == b"x"
    assert [v for _, v in store.iterate(prefix=BLOCKS)] == [bytes([i]) for i in range(100)]
    assert store.get(b"\x05gone") is None


def test_write_batch_discarded_when_the_block_raises(store) -> None:
    store.put(b"\x05keep", b"old")
    with pytest.raises(RuntimeError, match="mid-batch"):
        with store.write_batch() as batch:
            batch.put(b"\x05keep", b"new")
            batch.put(b"\x05other", b"x")
            raise RuntimeError("mid-batch")
    assert store.get(b"\x05keep") == b"old"
    assert store.get(b"\x05other") is None


def test_keys_iterate_in_numeric_order(store) -> None:
    # Big-endian fixed width: 2 < 10 < 256 < 2**40 in byte order too (decimal text would put 10 first).
    numbers = [2**40, 256, 10, 2, 0, 2**64 - 1, 255]
    with store.write_batch() as batch:
        for n in numbers:
            batch.put(keys.l1_block(n), n.to_bytes(8, "big"))
    assert [keys.parse_l1_block(k) for k, _ in store.iterate(prefix=BLOCKS)] == sorted(numbers)
    assert [keys.parse_l1_block(k) for k, _ in store.iterate(prefix=BLOCKS, reverse=True)] == sorted(numbers, reverse=True)
    assert [keys.parse_l1_block(k) for k, _ in store.iterate(start=keys.l1_block(10), stop=keys.l1_block(2**40))] == [10, 255, 256]
    assert keys.parse_l1_block(store.last(BLOCKS)[0]) == 2**64 - 1
    assert store.last(keys.prefix_of(keys.Prefix.L1_EVENT)) is None


def test_prefix_iteration_stays_inside_the_prefix(store) -> None:
    address_a, address_b = b"\x01" * 20, b"\x02" * 20
    with store.write_batch() as batch:
        for item in (0, 1, 2**32):
            batch.put(keys.sender_item(address_a, item), b"a")
            batch.put(keys.sender_item(address_b, item), b"b")
        batch.put(keys.sender_nonce(address_a), b"n")
    got = [(keys.parse_sender_item(k), v) for k, v in store.iterate(prefix=keys.sender_items(address_a))]
    assert got == [(0, b"a"), (1, b"a"), (2**32, b"a")]


def test_prefix_and_range_together_is_a_bug(store) -> None:
    with pytest.raises(ValueError):
        list(store.iterate(prefix=BLOCKS, start=keys.l1_block(1)))


def test_writing_while_iterating(store) -> None:
    with store.write_batch() as batch:
        for i in range(10):
            batch.put(keys.l1_block(i), b"x")
    seen = []
    for key, _ in store.iterate(prefix=BLOCKS):
        seen.append(keys.parse_l1_block(key))
        store.delete(key)  # unwinding a range as it is read, as the follower does on a reorg
    assert seen == list(range(10))
    assert user_items(store) == []


def test_snapshot_is_a_consistent_view(store) -> None:
    store.put(b"\x05a", b"1")
    with store.snapshot() as snap:
        store.put(b"\x05a", b"2")
        store.put(b"\x05b", b"new")
        assert snap.get(b"\x05a") == b"1"
        assert snap.get(b"\x05b") is None
        assert [k for k, _ in snap.iterate(prefix=b"\x05")] == [b"\x05a"]
    assert store.get(b"\x05a") == b"2"
    with pytest.raises(StoreClosed):
        snap.get(b"\x05a")


def test_close_is_clean_and_idempotent(backend: Backend) -> None:
    store = backend.open()
    store.put(b"\x05a", b"1")
    store.close()
    store.close()
    assert store.closed
    for use in (lambda: store.get(b"\x05a"), lambda: store.put(b"\x05a", b"2"), lambda: list(store.iterate()), store.snapshot):
        with pytest.raises(StoreClosed):
            use()
    reopened = backend.open()
    assert reopened.get(b"\x05a") == b"1"


def test_format_marker_written_once_and_checked(backend: Backend) -> None:
    store = backend.open(identity="sequencer chain=31337")
    marker = msgspec.msgpack.decode(store.get(keys.FORMAT), type=StoreFormat)
    assert marker == StoreFormat(FORMAT_MAGIC, FORMAT_VERSION, "sequencer chain=31337")
    store.close()
    assert backend.open(identity="sequencer chain=31337").get(keys.FORMAT) is not None
    # An empty identity (a read-only tool) accepts any store.
    backend.close_all()
    backend.open(identity="")


def test_another_identity_is_refused(backend: Backend) -> None:
    backend.open(identity="sequencer chain=31337 rollup=0xaa").close()
    with pytest.raises(StoreForeign, match="belongs to 'sequencer chain=31337 rollup=0xaa'"):
        backend.open(identity="verifier chain=31337 rollup=0xaa")


def test_another_format_version_is_refused(backend: Backend) -> None:
    store = backend.open()
    store.put(keys.FORMAT, msgspec.msgpack.encode(StoreFormat(FORMAT_MAGIC, FORMAT_VERSION + 1, "")))
    store.close()
    with pytest.raises(StoreForeign, match=f"format version {FORMAT_VERSION + 1}, this optinode reads version {FORMAT_VERSION}"):
        backend.open()


def test_a_foreign_program_marker_is_refused(backend: Backend) -> None:
    store = backend.open()
    store.put(keys.FORMAT, msgspec.msgpack.encode(StoreFormat("other-app", 1, "")))
    store.close()
    with pytest.raises(StoreForeign, match="not an optinode store"):
        backend.open()


def test_data_without_marker_is_refused(backend: Backend) -> None:
    store = backend.open()
    store.put(b"some-other-apps-key", b"v")
    store.delete(keys.FORMAT)
    store.close()
    with pytest.raises(StoreForeign, match="without an optinode format marker"):
        backend.open()


def test_garbage_marker_is_corruption(backend: Backend) -> None:
    store = backend.open()
    store.put(keys.FORMAT, b"\xc1\xc1garbage")
    store.close()
    with pytest.raises(StoreCorrupt, match="format marker is unreadable"):
        backend.open()


class Record(msgspec.Struct, frozen=True):
    number: int
    hash: bytes


RECORD = Codec(Record)


def test_codec_round_trip_and_corrupt_value(store) -> None:
    store.put(keys.l1_block(7), RECORD.encode(Record(7, b"\xab" * 32)))
    assert store.get_value(keys.l1_block(7), RECORD) == Record(7, b"\xab" * 32)
    assert store.get_value(keys.l1_block(8), RECORD) is None
    store.put(keys.l1_block(9), b"\x93\x01")  # msgpack of a wrong shape
    with pytest.raises(StoreCorrupt, match=f"under key {keys.l1_block(9).hex()} is not a valid Record"):
        store.get_value(keys.l1_block(9), RECORD)


# --- the backends against a model ----------------------------------------------------------------

_key = st.binary(min_size=1, max_size=3).map(lambda b: b"\x05" + b)
_op = st.one_of(
    st.tuples(st.just("put"), _key, st.binary(max_size=4)),
    st.tuples(st.just("del"), _key, st.none()),
)
_step = st.tuples(st.lists(_op, max_size=6), st.booleans())  # (ops of one batch, does it fail?)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(_step, max_size=12), probe=st.tuples(_key, _key))
def test_matches_a_dict_model(backend: Backend, steps, probe) -> None:
    backend.close_all()
    store = open_memory() if backend.name == "memory" else None
    if store is None:
        import tempfile

        from optinode.store.db import open_store

        tmp = tempfile.mkdtemp(dir=backend.path.parent)
        store = open_store(f"{tmp}/db")
    model: dict[bytes, bytes] = {}
    try:
        for ops, fails in steps:
            try:
                with store.write_batch() as batch:
                    for op, key, value in ops:
                        batch.put(key, value) if op == "put" else batch.delete(key)
                    if fails:
                        raise KeyError("abort")
            except KeyError:
                continue
            for op, key, value in ops:
                if op == "put":
                    model[key] = value
                else:
                    model.pop(key, None)
        assert user_items(store) == sorted(model.items())
        lo, hi = sorted(probe)
        assert list(store.iterate(start=lo, stop=hi)) == sorted((k, v) for k, v in model.items() if lo <= k < hi)
        assert list(store.iterate(prefix=lo[:2], reverse=True)) == sorted(
            ((k, v) for k, v in model.items() if k.startswith(lo[:2])), reverse=True
        )
    finally:
        store.close()
