"""JSON form of spec types: msgspec structs with bytes as 0x-prefixed hex.

Used by `optinode spec apply`, the shared test vectors and the JSON-RPC API. Pure (no I/O).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_json_encoder = msgspec.json.Encoder()


def _hexify(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {(_hexify(k) if isinstance(k, bytes) else k): _hexify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_hexify(v) for v in value]
    return value


def _key(key: str) -> Any:
    # JSON object keys are strings; the spec's maps are keyed by integer ids.
    return int(key) if key.lstrip("-").isdecimal() else key


def _unhexify(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            raise msgspec.ValidationError(f"invalid hex string {value[:20]!r}") from None
    if isinstance(value, dict):
        return {_key(k): _unhexify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unhexify(v) for v in value]
    return value


def to_plain(obj: Any) -> Any:
    """Builtins (dict/list/int/str/bool) with bytes as 0x-hex and enums as their values."""
    return _hexify(msgspec.to_builtins(obj, builtin_types=(bytes, bytearray), order="deterministic"))


def from_plain(data: Any, kind: type[T]) -> T:
    """The inverse of `to_plain`: any string starting with 0x is read as hex bytes, decimal object
    keys as integers; no other coercion ("5" is not 5). Raises msgspec.ValidationError (with the
    offending path) on a shape mismatch. (msgspec would read a bytes field given a string without
    0x as base64: callers taking untrusted JSON should require the 0x form.)"""
    return msgspec.convert(_unhexify(data), kind, strict=True)


def to_json(obj: Any) -> bytes:
    return _json_encoder.encode(to_plain(obj))


def from_json(data: bytes | str, kind: type[T]) -> T:
    return from_plain(msgspec.json.decode(data), kind)
