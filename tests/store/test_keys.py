"""keys.py: distinct prefixes, numeric order = byte order, components that do not fit are bugs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optinode.store import keys

u64 = st.integers(0, keys.U64_MAX)
u32 = st.integers(0, keys.U32_MAX)


def test_prefixes_are_distinct_bytes() -> None:
    values = [p.value for p in keys.Prefix]
    assert len(values) == len(set(values))
    assert all(0 <= v <= 0xFF for v in values)
    assert keys.FORMAT[0] == keys.Prefix.META


@given(a=st.tuples(u64, u32), b=st.tuples(u64, u32))
def test_event_keys_sort_like_their_numbers(a, b) -> None:
    ka, kb = keys.l1_event(*a), keys.l1_event(*b)
    assert (ka < kb) == (a < b)
    assert keys.parse_l1_event(ka) == a
    assert ka >= keys.l1_events_from(a[0])
    assert len(ka) == 13


@given(n=u64)
def test_block_key_round_trip(n: int) -> None:
    assert keys.parse_l1_block(keys.l1_block(n)) == n


@pytest.mark.parametrize("bad", [-1, 2**64])
def test_out_of_width_components_are_refused(bad: int) -> None:
    with pytest.raises(ValueError):
        keys.l1_block(bad)
    with pytest.raises(ValueError):
        keys.sender_item(b"\x00" * 20, bad)


def test_address_component_must_be_20_bytes() -> None:
    with pytest.raises(ValueError):
        keys.sender_nonce(b"\x00" * 19)


def test_prefix_end() -> None:
    assert keys.prefix_end(b"\x02") == b"\x03"
    assert keys.prefix_end(b"\x02\xff") == b"\x03"
    assert keys.prefix_end(b"\xff\xff") is None


@given(a=st.tuples(u64, st.binary(min_size=32, max_size=32)), b=st.tuples(u64, st.binary(min_size=32, max_size=32)))
def test_order_prune_keys_sort_by_time_and_parse_back(a, b) -> None:
    ka, kb = keys.order_prune(*a), keys.order_prune(*b)
    assert (ka < kb) == (a < b)
    assert keys.parse_order_prune(ka) == a
    assert keys.order_prune_before(a[0]) <= ka < keys.order_prune_before(a[0] + 1) if a[0] < keys.U64_MAX else True


def test_order_keys_take_32_byte_hashes() -> None:
    assert len(keys.order(b"\x01" * 32)) == 33
    with pytest.raises(ValueError):
        keys.order(b"\x01" * 31)
