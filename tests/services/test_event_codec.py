"""The store's event codec carries uint256 fields wider than msgpack's 64 bits (found by
tests/l1/sequencer/test_forced_stale.py: one Bridge.requestForcedCancelAll or requestForcedDeleverage
made every node's follower raise OverflowError storing the event, and stop)."""

from __future__ import annotations

import pytest

from optinode.l1 import events
from optinode.spec.constants import FORCED_CANCEL_ALL, FORCED_DELEVERAGE
from optinode.store.errors import StoreCorrupt

WHERE = dict(block_number=7, block_hash=b"\x01" * 32, log_index=3, tx_hash=b"\x02" * 32, address=b"\x03" * 20)


@pytest.mark.parametrize("amount", [1, 2**64 - 1, 2**64, FORCED_CANCEL_ALL | 500, FORCED_DELEVERAGE | 1 << 72 | 5, 2**256 - 1])
def test_a_forced_request_of_any_uint256_word_round_trips(amount) -> None:
    event = events.TYPES["ForcedWithdrawalRequested"](index=4, requester=b"\x04" * 20, account_id=9, amount=amount, acc=b"\x05" * 32, **WHERE)
    assert events.EVENT_CODEC.decode(events.EVENT_CODEC.encode(event)) == event


def test_a_credit_above_18_ether_round_trips_and_plain_events_keep_their_encoding() -> None:
    credited = events.TYPES["Credited"](to=b"\x06" * 20, amount=100 * 10**18, **WHERE)
    assert events.EVENT_CODEC.decode(events.EVENT_CODEC.encode(credited)) == credited
    small = events.TYPES["Credited"](to=b"\x06" * 20, amount=10**18, **WHERE)
    import msgspec

    assert events.EVENT_CODEC.encode(small) == msgspec.msgpack.encode(small)  # what stores written before hold


def test_garbage_is_reported_as_corruption() -> None:
    with pytest.raises(StoreCorrupt):
        events.EVENT_CODEC.decode(b"\xc1")
    with pytest.raises(StoreCorrupt):
        events.EVENT_CODEC.decode(b"\xd4\x09\x00")  # an extension this codec never writes
