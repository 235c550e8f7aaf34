"""JSON form of spec types: msgspec structs with bytes as 0x-prefixed hex.

Used by `optinode spec apply`, the shared test vectors and the JSON-RPC API. Pure (no I/O).

Reading is strict, because the input is often hostile (docs/spec-apply.md):
- a byte field takes only a `0x`-prefixed hex string (lowercase `0x`; any case of hex digits) of
  whole bytes. msgspec alone would read a string without the prefix as base64, so that a 40-digit
  address became a 30-byte owner; here it is an error. Strings elsewhere are left alone.
- every field is then checked against the field table (`optinode.spec.fields`): integers within
  their Bound, byte strings of their Length (addresses 20, signatures 65, roots 32), lists within
  their Count.
- integer-keyed maps take canonical decimal keys only ("7", not "07" or "+7").
Every rejection is an `InvalidJson` whose message starts with the path of the field: `$.maker.size: ...`.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec

from .errors import InvalidInput
from .fields import find_field_error

__all__ = ["InvalidJson", "from_json", "from_plain", "to_json", "to_plain"]

T = TypeVar("T")

_json_encoder = msgspec.json.Encoder()
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_SHOWN = 20  # characters of a bad value quoted in a message


class InvalidJson(InvalidInput):
    """Plain data (usually decoded JSON) that does not describe a value of the requested type. The
    message starts with the path of the offending field."""


# --- writing -----------------------------------------------------------------------------------------


def _hexify(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {(_hexify(k) if isinstance(k, bytes) else k): _hexify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_hexify(v) for v in value]
    return value


def to_plain(obj: Any) -> Any:
    """Builtins (dict/list/int/str/bool) with bytes as 0x-hex and enums as their values."""
    return _hexify(msgspec.to_builtins(obj, builtin_types=(bytes, bytearray), order="deterministic"))


def to_json(obj: Any) -> bytes:
    return _json_encoder.encode(to_plain(obj))


# --- reading -----------------------------------------------------------------------------------------


def _strip(kind: Any) -> Any:
    return get_args(kind)[0] if get_origin(kind) is Annotated else kind


def _struct_members(kind: Any) -> tuple[type, ...]:
    members = get_args(kind) if get_origin(kind) is Union else (kind,)
    return tuple(m for m in members if isinstance(m, type) and hasattr(m, "__struct_fields__"))


def _pick_member(data: dict, members: tuple[type, ...]) -> type | None:
    """The struct a JSON object describes: the only candidate, or the one its tag names."""
    if len(members) == 1:
        return members[0]
    for member in members:
        config = member.__struct_config__
        if config.tag_field is not None and data.get(config.tag_field) == config.tag:
            return member
    return None  # msgspec reports the missing or unknown tag


def _shown(value: str) -> str:
    return repr(value[:_SHOWN] + ("…" if len(value) > _SHOWN else ""))


def _hex_bytes(value: str, path: str) -> bytes:
    if not value.startswith("0x"):
        shown = _shown(value)
        if value[:2] == "0X":
            raise InvalidJson(f"{path}: expected 0x-prefixed hex bytes, got {shown} (the prefix is a lowercase 0x)")
        raise InvalidJson(f"{path}: expected 0x-prefixed hex bytes, got {shown} (no 0x prefix)")
    body = value[2:]
    if len(body) % 2 or not _HEX_DIGITS.issuperset(body):
        raise InvalidJson(f"{path}: {_shown(value)} is not whole bytes of hex")
    return bytes.fromhex(body)


def _int_key(key: Any, path: str) -> Any:
    # JSON object keys are strings; the spec's maps are keyed by integer ids.
    if not isinstance(key, str):
        return key
    if key.isascii() and (key.isdigit() or key[:1] == "-" and key[1:].isdigit()) and str(int(key)) == key:
        return int(key)
    raise InvalidJson(f"{path}: key {_shown(key)} is not a canonical decimal integer")


def _unhex(data: Any, kind: Any, path: str) -> Any:
    """`data` with every string in a byte position turned into bytes and every integer key into an
    int, guided by the declared type `kind`. Anything that does not fit the type is left as it is
    for msgspec to report."""
    kind = _strip(kind)
    if kind is bytes:
        if isinstance(data, str):
            return _hex_bytes(data, path)
        if not isinstance(data, (bytes, bytearray)):  # here, so that the message has the exact path
            raise InvalidJson(f"{path}: expected 0x-prefixed hex bytes, got {type(data).__name__}")
        return data
    members = _struct_members(kind)
    if members:
        if not isinstance(data, dict):
            return data
        member = _pick_member(data, members)
        if member is None:
            return data
        hints = get_type_hints(member, include_extras=True)
        return {k: (_unhex(v, hints[k], f"{path}.{k}") if k in hints else v) for k, v in data.items()}
    origin, args = get_origin(kind), get_args(kind)
    if origin in (tuple, list, set, frozenset) and isinstance(data, list):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return [_unhex(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(data, args))] + data[len(args) :]
        item = args[0] if args else Any
        return [_unhex(v, item, f"{path}[{i}]") for i, v in enumerate(data)]
    if origin is dict and isinstance(data, dict):
        key_kind, value_kind = args
        out = {}
        for k, v in data.items():
            key = _int_key(k, path) if _strip(key_kind) is int else k
            out[key] = _unhex(v, value_kind, f"{path}[{k}]")
        return out
    return data


def _reworded(error: msgspec.ValidationError) -> str:
    """msgspec's "Expected X - at `$.path`" as "$.path: expected X"."""
    message, sep, where = str(error).rpartition(" - at `")
    if not sep:
        return f"$: {error}"
    return f"{where.rstrip('`')}: {message[:1].lower()}{message[1:]}"


def from_plain(data: Any, kind: type[T]) -> T:
    """The inverse of `to_plain`, strictly: byte fields only as 0x-hex, integer map keys as canonical
    decimals, no other coercion ("5" is not 5), and every field within its bound in the field table.
    Raises InvalidJson naming the offending field."""
    plain = _unhex(data, kind, "$")
    try:
        value = msgspec.convert(plain, kind, strict=True, builtin_types=(bytes, bytearray))
    except msgspec.ValidationError as error:
        raise InvalidJson(_reworded(error)) from None
    problem = find_field_error(value, kind, "$")
    if problem is not None:
        raise InvalidJson(problem)
    return value


def from_json(data: bytes | str, kind: type[T]) -> T:
    return from_plain(msgspec.json.decode(data), kind)
