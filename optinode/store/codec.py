"""Values in the store are msgspec Structs encoded as msgpack; each codec is built once per type.

    HEAD = Codec(L1Position)          # at import time, once
    store.put(keys.L1_HEAD, HEAD.encode(position))
    position = store.get_value(keys.L1_HEAD, HEAD)

A value that does not decode is corruption (the node wrote every value itself), reported as
`StoreCorrupt` naming the key, never a msgspec traceback.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from optinode.store.errors import StoreCorrupt

T = TypeVar("T")

# One encoder for every type: msgspec encoders are not type-specific, and building one per call is
# the cost we avoid.
_ENCODER = msgspec.msgpack.Encoder()


class Codec(Generic[T]):
    __slots__ = ("type", "_decoder")

    def __init__(self, type_: type[T]) -> None:
        self.type = type_
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(type_)

    def encode(self, value: T) -> bytes:
        return _ENCODER.encode(value)

    def decode(self, data: bytes, *, key: bytes = b"") -> T:
        try:
            return self._decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise StoreCorrupt(
                f"stored value under key {key.hex() or '?'} is not a valid {self.type.__name__}: {error}"
            ) from None

    def __repr__(self) -> str:
        return f"Codec({self.type.__name__})"
