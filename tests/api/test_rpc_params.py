"""The typed params decoder (services/rpc_params.py): it accepts exactly what docs/api.md says, refuses
the rest with -32602 naming the param and field, and the batch fast path (a body of sendOrders
decoded by type in one pass) answers exactly as the general path (decoded JSON, then each request)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from optinode.exchange.orders import Placement, TimeInForce
from optinode.services import rpc
from optinode.services.rpc_params import INVALID_PARAMS, ORDER_REQUESTS, RpcError
from optinode.spec.types import Order

SIGNATURE = "0x" + "ab" * 65
ORDER = {"accountId": 7, "market": 0, "isBuy": True, "size": "500000000", "limitPrice": 300000000, "feeRate": 500,
         "expiry": "1700086400", "nonce": "1"}
BOUNDS = {"accountId": 2**32, "market": 2**8, "size": 2**64, "limitPrice": 2**64, "feeRate": 2**32, "expiry": 2**64, "nonce": 2**64}


def reference_uint(value, bound):
    """docs/api.md: a JSON number or a decimal string, in the type's range (None: refused)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if type(value) is int and 0 <= value < bound:
        return value
    return None


def reference(params):
    """What optinode_sendOrder's params mean, written from docs/api.md alone (None: -32602)."""
    if not isinstance(params, list) or not 2 <= len(params) <= 3:
        return None
    order, signature, options = params[0], params[1], params[2] if len(params) == 3 else None
    if not isinstance(order, dict) or set(order) != {*BOUNDS, "isBuy"} or type(order["isBuy"]) is not bool:
        return None
    values = {k: reference_uint(order[k], b) for k, b in BOUNDS.items()}
    if None in values.values():
        return None
    if not (isinstance(signature, str) and signature.startswith("0x") and len(signature) == 132):
        return None
    try:
        raw = bytes.fromhex(signature[2:])
    except ValueError:
        return None
    tif, reduce_only = TimeInForce.GTC, False
    if options is not None:
        if not isinstance(options, dict) or set(options) - {"timeInForce", "reduceOnly"}:
            return None
        if options.get("timeInForce", "gtc") not in ("gtc", "ioc", "post_only") or type(options.get("reduceOnly", False)) is not bool:
            return None
        tif, reduce_only = TimeInForce(options.get("timeInForce", "gtc")), options.get("reduceOnly", False)
    v = values
    return Placement(Order(v["accountId"], v["market"], order["isBuy"], v["size"], v["limitPrice"], v["feeRate"], v["expiry"],
                           v["nonce"], raw), tif, reduce_only)


def placement_or_error(params):
    try:
        return rpc._placement(params)
    except RpcError as refusal:
        assert refusal.code == INVALID_PARAMS
        return refusal.message


def typed_placement_or_error(params):
    """The same params through the fast path: the whole request decoded by type from JSON."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "optinode_sendOrder", "params": params}).encode()
    try:
        typed = ORDER_REQUESTS.decode(body)
    except Exception:  # noqa: BLE001 - not fast-path material: the general path answers it
        return None
    return placement_or_error(typed.params)


scalars = (st.none() | st.booleans() | st.integers(min_value=-3, max_value=2**66) | st.floats(allow_nan=False)
           | st.sampled_from(["0", "007", "18446744073709551615", "18446744073709551616", "1e3", "-1", " 1", "", "0x10", "١", "12.0"]))
field_values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=3), scalars, max_size=2)


@st.composite
def send_order_params(draw):
    order = dict(ORDER)
    for key in draw(st.lists(st.sampled_from(sorted(ORDER)), max_size=3, unique=True)):
        order[key] = draw(field_values)
    for key in draw(st.lists(st.sampled_from(sorted(ORDER)), max_size=1)):
        del order[key]
    if draw(st.booleans()) and draw(st.booleans()):
        order[draw(st.sampled_from(["extra", "signature", "accountid"]))] = 1
    signature = draw(st.sampled_from([SIGNATURE, SIGNATURE.upper().replace("0X", "0x"), "0x" + "zz" * 65, "0x12", SIGNATURE[2:] + "00"]) | scalars)
    params = [draw(st.sampled_from([order, order, order, 5, [order], None])), signature]
    options = draw(st.none() | st.just({}) | st.fixed_dictionaries({}, optional={
        "timeInForce": st.sampled_from(["gtc", "ioc", "post_only", "GTC", "fok"]) | scalars, "reduceOnly": scalars}) | scalars)
    if draw(st.booleans()):
        params.append(options)
    if draw(st.booleans()) and draw(st.booleans()):
        params = params[: draw(st.integers(0, 4))] + [1] * draw(st.integers(0, 2))
    return params


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(params=send_order_params())
@example(params=[ORDER, SIGNATURE, None, 1])  # (one param too many: msgspec ignores trailing array items unless told)
def test_send_order_params_mean_what_the_docs_say_on_both_paths(params) -> None:
    expected = reference(params)
    general = placement_or_error(params)
    if expected is None:
        assert isinstance(general, str) and general, (params, general)  # a -32602 with a message
    else:
        assert general == expected, (params, general)
    typed = typed_placement_or_error(params)
    if typed is not None:  # the fast path took it: the same placement, or the same refusal
        assert typed == general, (params, typed, general)


@pytest.mark.parametrize(("change", "named"), [
    ({"isBuy": "true"}, "order.isBuy must be true or false"),
    ({"size": -1}, "order.size must be an integer in [0, 2^64)"),
    ({"size": "18446744073709551616"}, "order.size must be an integer in [0, 2^64)"),
    ({"nonce": 2**64}, "order.nonce must be an integer in [0, 2^64)"),
    ({"market": 256}, "order.market must be an integer in [0, 2^8)"),
    ({"feeRate": 1.5}, "order.feeRate must be an integer in [0, 2^32)"),
    ({"accountId": "0x01"}, "order.accountId must be an integer in [0, 2^32)"),
    ({"extra": 1}, "unknown field `extra`"),
    ({"expiry": None}, "order.expiry must be"),
])
def test_a_bad_order_field_is_named_in_the_error(change, named) -> None:
    with pytest.raises(RpcError) as refused:
        rpc._placement([{**ORDER, **change}, SIGNATURE])
    assert refused.value.code == INVALID_PARAMS and named in refused.value.message


@pytest.mark.parametrize(("params", "named"), [
    ([{k: v for k, v in ORDER.items() if k != "nonce"}, SIGNATURE], "missing required field `nonce`"),
    ([ORDER, "0x12"], "signature must be 0x-hex of 65 bytes"),
    ([ORDER, SIGNATURE, {"timeInForce": "fok"}], 'options.timeInForce must be "gtc", "ioc" or "post_only"'),
    ([ORDER, SIGNATURE, {"reduceOnly": "yes"}], "options.reduceOnly must be true or false"),
    ([ORDER], "usage: optinode_sendOrder(order, signature [, options])"),
    ([ORDER, SIGNATURE, None, 1], "usage: optinode_sendOrder"),
    ([5, SIGNATURE], "order must be an object with exactly accountId, market, isBuy, size, limitPrice, feeRate, expiry, nonce"),
])
def test_bad_params_are_named_in_the_error(params, named) -> None:
    with pytest.raises(RpcError) as refused:
        rpc._placement(params)
    assert refused.value.code == INVALID_PARAMS and named in refused.value.message


def test_the_fast_path_takes_only_bodies_of_send_orders() -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "optinode_sendOrder", "params": [ORDER, SIGNATURE]}
    assert rpc._typed_orders(json.dumps([request] * 3).encode()) is not None
    assert rpc._typed_orders(json.dumps(request).encode()) is not None
    for other in ([], [request] * (rpc.MAX_BATCH + 1), [request, {**request, "method": "optinode_getBook"}], [{**request, "id": True}],
                  [{**request, "jsonrpc": "1.0"}], [{**request, "params": [{**ORDER, "x": 1}, SIGNATURE]}]):
        assert rpc._typed_orders(json.dumps(other).encode()) is None, other
    assert rpc._typed_orders(b"[" * 10_000) is None and rpc._typed_orders(b"\xff") is None
    huge = json.dumps([{**request, "params": [{**ORDER, "size": 7}, SIGNATURE]}]).replace('"size": 7', '"size": 1' + "0" * 5000).encode()
    typed = rpc._typed_orders(huge)  # (a 5,001-digit integer: over Python's int parsing limit)
    if typed is not None:
        with pytest.raises(RpcError):
            rpc._placement(typed[0].params)


def test_withdraw_and_cancel_messages_are_typed_too() -> None:
    from optinode.services.rpc_params import CancelAllMessage, SendWithdrawParams, decode_params, uints

    withdraw = {"accountId": "3", "amount": 10, "expiry": "99", "nonce": 1}
    decoded = decode_params([withdraw, SIGNATURE], SendWithdrawParams, "usage")
    assert uints(decoded.withdraw, "withdraw") == {"account_id": 3, "amount": 10, "expiry": 99, "nonce": 1}
    for params, named in (([withdraw, SIGNATURE, 1], "usage: usage"), ([{**withdraw, "amount": True}, SIGNATURE], "withdraw.amount must be"),
                          ([{**withdraw, "to": "0x"}, SIGNATURE], "unknown field `to`")):
        with pytest.raises(RpcError) as refused:
            decode_params(params, SendWithdrawParams, "usage")
        assert named in refused.value.message
    with pytest.raises(RpcError) as refused:
        uints(decode_params({**withdraw, "amount": "18446744073709551616"}, type(decoded.withdraw), "usage", "withdraw"), "withdraw")
    assert "withdraw.amount must be an integer in [0, 2^64)" in refused.value.message
    with pytest.raises(RpcError) as refused:
        decode_params({"accountId": 1, "nonceFloor": "x", "orderHash": 2}, CancelAllMessage, "usage", "cancel")
    assert "unknown field `orderHash`" in refused.value.message
