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


def _unhexify(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("0x"):
        return bytes.fromhex(value[2:])
    if isinstance(value, dict):
        return {k: _unhexify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unhexify(v) for v in value]
    return value


def to_plain(obj: Any) -> Any:
    """Builtins (dict/list/int/str/bool) with bytes as 0x-hex and enums as their values."""
    return _hexify(msgspec.to_builtins(obj, builtin_types=(bytes, bytearray), order="deterministic"))


def from_plain(data: Any, kind: type[T]) -> T:
    """The inverse of `to_plain`: any string starting with 0x is read as hex bytes.
    Raises msgspec.ValidationError (with the offending path) on a shape mismatch."""
    return msgspec.convert(_unhexify(data), kind, strict=False)


def to_json(obj: Any) -> bytes:
    return _json_encoder.encode(to_plain(obj))


def from_json(data: bytes | str, kind: type[T]) -> T:
    return from_plain(msgspec.json.decode(data), kind)
