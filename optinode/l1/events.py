"""Typed L1 events of the rollup's contracts: one frozen msgspec Struct per event, built once from
the compiled ABIs (so they cannot drift from the Solidity), decoded from raw logs.

    ev = decode_log(contracts, log)     # -> events.Deposited(index=0, from_=b"…", owner=b"…", amount=…, acc=b"…",
                                        #                     block_number=…, block_hash=…, log_index=…, tx_hash=…, address=…)
    isinstance(ev, events.Deposited)
    EVENT_CODEC.encode(ev) / EVENT_CODEC.decode(raw)   # tagged msgpack, for the store

Field names are the ABI's in snake_case (``from`` becomes ``from_``); ``uint*`` are ints, ``address``
20 bytes, ``bytes32`` 32 bytes, ``bytes32[]`` a tuple of them. Every event also carries where it was
found (`L1Event`'s fields).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any, Union

import eth_abi
import msgspec

from optinode.errors import InvalidInput
from optinode.l1.artifacts import load_artifact
from optinode.l1.rpc import Log
from optinode.spec.crypto import keccak
from optinode.store.codec import Codec
from optinode.store.errors import StoreCorrupt

CONTRACTS = ("Bridge", "Rollup", "DisputeGame")


class L1Event(msgspec.Struct, frozen=True, kw_only=True):
    block_number: int
    block_hash: bytes
    log_index: int
    tx_hash: bytes
    address: bytes  # the emitting contract


def _snake(name: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return snake + "_" if keyword.iskeyword(snake) else snake


def _python_type(abi_type: str) -> Any:
    if abi_type.endswith("[]"):
        return tuple[_python_type(abi_type[:-2]), ...]
    if abi_type.startswith(("uint", "int")):
        return int
    if abi_type == "bool":
        return bool
    if abi_type == "address" or abi_type.startswith("bytes"):
        return bytes
    raise TypeError(f"no Python type for ABI type {abi_type}")


def _python_value(abi_type: str, value: Any) -> Any:
    if abi_type.endswith("[]"):
        return tuple(_python_value(abi_type[:-2], v) for v in value)
    if abi_type == "address":
        return bytes.fromhex(value[2:])
    return value


class _EventSpec:
    __slots__ = ("contract", "name", "type", "indexed", "unindexed")

    def __init__(self, contract: str, entry: dict[str, Any]) -> None:
        self.contract = contract
        self.name = entry["name"]
        inputs = entry["inputs"]
        fields = [(_snake(i["name"]), _python_type(i["type"])) for i in inputs]
        self.type = msgspec.defstruct(
            self.name, fields, bases=(L1Event,), kw_only=True, frozen=True, tag=self.name, module=__name__
        )
        self.indexed = [(_snake(i["name"]), i["type"]) for i in inputs if i["indexed"]]
        self.unindexed = [(_snake(i["name"]), i["type"]) for i in inputs if not i["indexed"]]

    def decode(self, log: Log) -> L1Event:
        values: dict[str, Any] = {}
        for (name, abi_type), topic in zip(self.indexed, log.topics[1:], strict=True):
            values[name] = _python_value(abi_type, eth_abi.decode([abi_type], topic)[0])
        decoded = eth_abi.decode([t for _, t in self.unindexed], log.data)
        for (name, abi_type), value in zip(self.unindexed, decoded):
            values[name] = _python_value(abi_type, value)
        return self.type(
            block_number=log.block_number,
            block_hash=log.block_hash,
            log_index=log.log_index,
            tx_hash=log.tx_hash,
            address=log.address,
            **values,
        )


def _signature(entry: dict[str, Any]) -> str:
    def canonical(item: dict[str, Any]) -> str:
        if item["type"].startswith("tuple"):
            return "(" + ",".join(canonical(c) for c in item["components"]) + ")" + item["type"][5:]
        return item["type"]

    return f"{entry['name']}({','.join(canonical(i) for i in entry['inputs'])})"


_SPECS: dict[tuple[str, bytes], _EventSpec] = {}
TYPES: dict[str, type[L1Event]] = {}
for _contract in CONTRACTS:
    for _entry in load_artifact(_contract)["abi"]:
        if _entry["type"] == "event" and not _entry.get("anonymous"):
            _spec = _EventSpec(_contract, _entry)
            if _spec.name in TYPES:
                raise RuntimeError(f"event name {_spec.name} is used by two contracts; events are keyed by name")
            _SPECS[(_contract, keccak(_signature(_entry).encode()))] = _spec
            TYPES[_spec.name] = _spec.type

AnyEvent = Union[tuple(TYPES.values())]  # type: ignore[valid-type]

_WIDE_INT = 1  # msgpack extension code: an integer outside msgpack's 64 bits, as 33 bytes two's complement


def _wide_int(code: int, data: memoryview) -> int:
    if code != _WIDE_INT:
        raise ValueError(f"unknown msgpack extension {code}")
    return int.from_bytes(data, "big", signed=True)


class EventCodec(Codec[Any]):
    """The store's codec of events. A ``uint256`` field can exceed msgpack's 64-bit integers: the
    amount word of a forced cancel-all or deleverage (FORCED_CANCEL_ALL, FORCED_DELEVERAGE, above
    2^255), a bond or credit above 18.4 ETH. Such a value is stored as an extension and the event
    decoded through the untyped form; every other event keeps the plain (and faster) encoding, so
    stores written before stay readable. (Before, the follower raised OverflowError storing the
    event of one ``Bridge.requestForcedCancelAll`` and every node following L1 stopped.)"""

    __slots__ = ("_untyped",)

    def __init__(self, type_: Any) -> None:
        super().__init__(type_)
        self._untyped = msgspec.msgpack.Decoder(ext_hook=_wide_int)

    def encode(self, value: Any) -> bytes:
        wide = {name: msgspec.msgpack.Ext(_WIDE_INT, v.to_bytes(33, "big", signed=True))
                for name in value.__struct_fields__
                if type(v := getattr(value, name)) is int and not -(2**63) <= v < 2**64}  # format: msgpack's integers
        return super().encode(msgspec.structs.replace(value, **wide) if wide else value)

    def decode(self, data: bytes, *, key: bytes = b"") -> Any:
        try:
            return self._decoder.decode(data)
        except msgspec.ValidationError:
            pass  # (an extension: a wide integer)
        except msgspec.DecodeError:
            return super().decode(data, key=key)  # reports it as corruption
        try:
            return msgspec.convert(self._untyped.decode(data), self.type)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            raise StoreCorrupt(f"stored value under key {key.hex() or '?'} is not a valid L1 event: {error}") from None


EVENT_CODEC: Codec[Any] = EventCodec(AnyEvent)  # tagged by the event name


def __getattr__(name: str) -> type[L1Event]:
    """``events.Deposited`` and the like."""
    try:
        return TYPES[name]
    except KeyError:
        raise AttributeError(name) from None


class UnknownLog(InvalidInput):
    """A log from one of our addresses that no ABI event matches (or whose data does not decode):
    hostile or unexpected L1 data, skipped with a warning."""


def decode_log(contracts: Mapping[bytes, str], log: Log) -> L1Event:
    """The typed event of ``log``; ``contracts`` maps each followed address to its contract name."""
    contract = contracts.get(log.address)
    if contract is None or not log.topics:
        raise UnknownLog(f"log {log.log_index} of block {log.block_number} is not from a followed contract event")
    spec = _SPECS.get((contract, log.topics[0]))
    if spec is None:
        raise UnknownLog(f"{contract} log with unknown topic 0x{log.topics[0].hex()}")
    try:
        return spec.decode(log)
    except (eth_abi.exceptions.DecodingError, ValueError, TypeError) as error:
        raise UnknownLog(f"{contract}.{spec.name} log does not decode: {error}") from None
