"""The public API's params, decoded by type: the EIP-712 messages exactly as docs/eip712.md writes
them, and the positional params of the methods that take them, as msgspec frozen Structs.

    params = decode_params(request_params, SendOrderParams)    # RpcError -32602 naming the field
    order = to_order(params.order, to_signature(params.signature))

Why by type: msgspec checks the shape in C while it parses — the exact field names (no missing, no
unknown), JSON types, the uint8/uint32 bounds — so a batch of 50 `optinode_sendOrder` costs ~0.7 µs
per order to decode, against ~9 µs for decoding to dicts and walking every field in Python
(docs/benchmarks.md, "JSON-RPC server cost"). What msgspec cannot check is finished here: an integer
may be a JSON number or a decimal string (wallet JSON writes uint64 as strings), and a uint64's upper
bound (msgspec's bounds must fit an int64).

A value that does not fit is an `RpcError` -32602 whose message names the param and the field and
says what it must be ("order.size must be an integer in [0, 2^64) (a JSON number or a decimal
string)"), built from msgspec's error path and the field's declared type: one declaration, one set
of rules, the same words for a value msgspec refuses and one refused here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta, Struct

from optinode.errors import InvalidInput
from optinode.exchange.orders import TimeInForce
from optinode.spec.types import Order

__all__ = [
    "APPLICATION_ERROR", "INTERNAL_ERROR", "INVALID_PARAMS", "INVALID_REQUEST", "METHOD_NOT_FOUND", "PARSE_ERROR",
    "CancelAllMessage", "CancelOrderMessage", "OrderMessage", "RpcError", "SendOrderParams", "SendWithdrawParams",
    "decode_params", "params_error", "to_bytes", "to_order", "to_signature", "to_uint",
]

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR, APPLICATION_ERROR = -32700, -32600, -32601, -32602, -32603, -32000
U8_BOUND, U32_BOUND, U64_BOUND = 2**8, 2**32, 2**64
_DIGITS = len(str(U64_BOUND))  # a decimal string longer than any uint64 is refused before int() parses it


class RpcError(InvalidInput):
    """An expected refusal, answered as a JSON-RPC error (bugs are anything else)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def params_error(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


# --- field types ------------------------------------------------------------------------------------
# A JSON number (bounded by msgspec where the bound fits an int64) or a decimal string (checked by to_uint).
U8 = Union[Annotated[int, Meta(ge=0, lt=U8_BOUND)], str]
U32 = Union[Annotated[int, Meta(ge=0, lt=U32_BOUND)], str]
U64 = Union[Annotated[int, Meta(ge=0)], str]
HEX = str  # 0x-hex, its length checked by to_bytes (a regex in msgspec costs ~4 µs per signature)

_BOUNDS = {U8: U8_BOUND, U32: U32_BOUND, U64: U64_BOUND}


def _uint_rule(bound: int) -> str:
    return f"an integer in [0, 2^{bound.bit_length() - 1}) (a JSON number or a decimal string)"


def _rule(annotation: Any) -> str | None:
    """What a field of this type must be, in words (None: say what msgspec said)."""
    if annotation in _BOUNDS:
        return _uint_rule(_BOUNDS[annotation])
    if annotation is bool:
        return "true or false"
    if annotation is TimeInForce:
        names = [f'"{t.value}"' for t in TimeInForce]
        return f"{', '.join(names[:-1])} or {names[-1]}"
    if annotation is HEX:
        return "a 0x-hex string"
    return None


class _Message(Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    pass


class OrderMessage(_Message):
    """The EIP-712 `Order` message (docs/eip712.md), without its signature."""

    account_id: U32
    market: U8
    is_buy: bool
    size: U64
    limit_price: U64
    fee_rate: U32
    expiry: U64
    nonce: U64


class OrderOptions(_Message):
    """`optinode_sendOrder`'s unsigned options: they only restrict what the signed order allows."""

    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False


class WithdrawMessage(_Message):
    account_id: U32
    amount: U64
    expiry: U64
    nonce: U64


class CancelOrderMessage(_Message):
    account_id: U32
    order_hash: HEX


class CancelAllMessage(_Message):
    account_id: U32
    nonce_floor: U64  # (the EIP-712 type's field name: the signature covers it)


class SendOrderParams(Struct, frozen=True, array_like=True, forbid_unknown_fields=True, gc=False):  # (forbid: no extra params)
    """optinode_sendOrder(order, signature [, options])"""

    order: OrderMessage
    signature: HEX
    options: Union[OrderOptions, None] = None


class SendWithdrawParams(Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """optinode_sendWithdraw(withdraw, signature)"""

    withdraw: WithdrawMessage
    signature: HEX


# --- values msgspec cannot finish ---------------------------------------------------------------------


def to_uint(value: Any, name: str, bound: int = U64_BOUND) -> int:
    """A JSON integer or a decimal string in [0, bound)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _DIGITS:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < bound:
        raise params_error(f"{name} must be {_uint_rule(bound)}")
    return value


def to_bytes(value: Any, name: str, length: int) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 2 + 2 * length:
        raise params_error(f"{name} must be 0x-hex of {length} bytes")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise params_error(f"{name} must be 0x-hex of {length} bytes") from None


def to_signature(value: str) -> bytes:
    if len(value) == 132 and value.startswith("0x"):  # (the usual case, inline: to_bytes says what is wrong with any other)
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    return to_bytes(value, "signature", 65)


def to_order(m: OrderMessage, signature: bytes) -> Order:
    """The spec `Order` of a decoded message. (Inline checks, ~1 µs an order: the usual field is an
    int msgspec bounded, or a decimal string — what wallets write a uint64 as; to_uint says what is
    wrong with anything else.)"""
    a, mk, f, s, p, e, n = m.account_id, m.market, m.fee_rate, m.size, m.limit_price, m.expiry, m.nonce
    if type(s) is str and s.isdigit() and s.isascii() and len(s) <= _DIGITS:
        s = int(s)
    if type(p) is str and p.isdigit() and p.isascii() and len(p) <= _DIGITS:
        p = int(p)
    if type(e) is str and e.isdigit() and e.isascii() and len(e) <= _DIGITS:
        e = int(e)
    if type(n) is str and n.isdigit() and n.isascii() and len(n) <= _DIGITS:
        n = int(n)
    if (type(a) is not int or type(mk) is not int or type(f) is not int or type(s) is not int or type(p) is not int or type(e) is not int
            or type(n) is not int or s >= U64_BOUND or p >= U64_BOUND or e >= U64_BOUND or n >= U64_BOUND):
        a, mk = to_uint(a, "order.accountId", U32_BOUND), to_uint(mk, "order.market", U8_BOUND)  # (the first wrong field, in order)
        s, p = to_uint(s, "order.size"), to_uint(p, "order.limitPrice")
        f, e, n = to_uint(f, "order.feeRate", U32_BOUND), to_uint(e, "order.expiry"), to_uint(n, "order.nonce")
    return Order(a, mk, m.is_buy, s, p, f, e, n, signature)


def uints(message: _Message, name: str) -> dict[str, int]:
    """Every uint field of a decoded message, finished (by its Python name)."""
    out = {}
    for field in msgspec.structs.fields(message):
        bound = _BOUNDS.get(field.type)
        if bound is not None:
            out[field.name] = to_uint(getattr(message, field.name), f"{name}.{field.encode_name}", bound)
    return out


# --- msgspec's refusals, in the API's words ----------------------------------------------------------

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_STEP = re.compile(r"\[(\d+)\]|\.([^.\[]+)|\['([^']*)'\]")


def _struct_of(annotation: Any) -> type[Struct] | None:
    """The Struct a param's type is (or is optionally: ``Union[S, None]``)."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, Struct):
            return candidate
    return None


def _explain(error: msgspec.ValidationError, kind: type[Struct], usage: str, name: str | None = None) -> RpcError:
    """A -32602 naming the param and field msgspec refused, and what it must be."""
    match = _AT.match(str(error))
    what, path = (match["what"], match["path"] or "") if match else (str(error), "")
    steps = [int(i) if i else key or quoted for i, key, quoted in _STEP.findall(path)]
    if kind.__struct_config__.array_like:  # positional params: the first step is the param's index
        params = msgspec.structs.fields(kind)
        if not steps or not isinstance(steps[0], int) or steps[0] >= len(params):
            return params_error(f"usage: {usage}")
        param, steps = params[steps[0]], steps[1:]
        name, annotation = param.encode_name, param.type
    else:
        name, annotation = name or kind.__name__, kind
    struct = _struct_of(annotation)
    if struct is None:  # a plain value (a 0x-hex string)
        return params_error(f"{name} must be 0x-hex of 65 bytes" if name == "signature" else f"{name}: {what}")
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    if steps and steps[0] in fields:
        rule = _rule(fields[steps[0]].type)
        return params_error(f"{name}.{steps[0]} must be {rule}" if rule else f"{name}.{steps[0]}: {what}")
    exactly = "exactly" if all(f.required for f in fields.values()) else "at most"
    optional = "null or " if struct is not annotation else ""
    return params_error(f"{name} must be {optional}an object with {exactly} {', '.join(fields)} ({what})")


def decode_params(params: Any, kind: type[Struct], usage: str, name: str | None = None) -> Any:
    """Already-parsed JSON `params` (or one param, with its `name`) as `kind`, or a -32602 naming the field."""
    try:
        return msgspec.convert(params, kind)
    except msgspec.ValidationError as error:
        raise _explain(error, kind, usage, name) from None


# --- the hot path: a body that is only optinode_sendOrder requests -----------------------------------


class SendOrderRequest(Struct, frozen=True, gc=False):
    """One `optinode_sendOrder` request, envelope and params (other envelope keys are ignored, as
    `rpc._call` ignores them). ``gc=False`` here and in `SendOrderParams`: decoded JSON holds no
    reference cycle, and the collector need not walk the ~100 of these a batch keeps alive while
    its orders wait for the engine."""

    jsonrpc: Literal["2.0"]
    method: Literal["optinode_sendOrder"]
    params: SendOrderParams
    id: Union[int, float, str, None, msgspec.UnsetType] = msgspec.UNSET  # UNSET: a notification


# A body that is one such request or a batch of them, decoded in one pass; anything else (another
# method, a malformed request among them) fails and takes the general path, which answers each.
ORDER_REQUESTS = msgspec.json.Decoder(Union[list[SendOrderRequest], SendOrderRequest])
