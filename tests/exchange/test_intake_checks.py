"""`mempool.check_orders`, the stateless checks a worker runs on each order (process or thread):
for any field values, the field problem exactly when the spec's field table names one, else the
spec's EIP-712 digest and signer. What the worker is handed is `msgspec.structs.astuple(order)`,
so the test goes through that form too."""

from __future__ import annotations

import pickle

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from optinode.exchange.mempool import check_orders
from optinode.spec.crypto import compute_signer
from optinode.spec.eip712 import compute_order_digest
from optinode.spec.fields import find_field_error
from optinode.spec.types import Order
from optinode.testing.world import World

W = World()
W.deposit("alice", 10**9)
BASE = [W.order("alice", nonce=n) for n in range(4)] + [W.order("alice", signer="bob")]

odd_value = st.one_of(
    st.integers(-2**70, 2**70), st.sampled_from([0, 1, 127, 128, 255, 2**32 - 1, 2**32, 2**64 - 1, 2**64, -1]),
    st.booleans(), st.none(), st.floats(allow_nan=False), st.text(max_size=3),
    st.binary(max_size=70), st.sampled_from([b"\x00" * 65, b"\x1b" * 65]),
)


@settings(max_examples=300, deadline=None)
@given(base=st.sampled_from(BASE), changes=st.dictionaries(st.sampled_from(Order.__struct_fields__), odd_value, max_size=3))
def test_check_orders_is_the_field_table_then_digest_and_signer(base: Order, changes: dict) -> None:
    order = msgspec.structs.replace(base, **changes)
    fields = pickle.loads(pickle.dumps([msgspec.structs.astuple(order)]))  # as a worker process gets it
    [answer] = check_orders(W.domain, fields)
    problem = find_field_error(order, Order)
    if problem is not None:
        assert answer == problem
    else:
        digest = compute_order_digest.__wrapped__(W.domain, order)
        assert answer == (digest, compute_signer(digest, order.signature))
