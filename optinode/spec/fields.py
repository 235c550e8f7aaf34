"""The field table: the bound of every field of the wire and input types, declared once.

A field's type in `types.py` (and the byte fields of `state.py`, `genesis.py`, `witness.py`) is one of
the aliases below, so the struct declaration says both what a field holds and how far it may go:

    Annotated[int, Bound(low, high)]          an integer in [low, high]
    Annotated[bytes, Length(n)]               a byte string of exactly n bytes
    Annotated[tuple[X, ...], Count(high)]     at most `high` items

Everything that checks a field reads its bound from here, through `get_field_specs`:
- `serde.from_plain` rejects JSON with a field out of its bound or of the wrong length, naming the field;
- `record_codec` encodes and decodes every integer within its field's bound (a varint takes at most
  `get_varint_len(bound)` bytes), every list within its count;
- `transition.is_well_formed` checks the integer fields of a transaction built some other way, with
  checks rendered from the table into `well_formed.py` (generated; see `render_range_checks`).

msgspec's own `Meta(ge=, le=)` cannot hold a bound above 2^63 (our amounts are u64, funding indices
i128), hence the table's own markers; msgspec ignores them, so constructing a struct costs nothing.
The numbers themselves are the typed constants of `constants.py`; no other module spells a field bound
as a literal (tests/spec/test_fields.py checks).
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated, Any, Callable, NamedTuple, Union, get_args, get_origin, get_type_hints

from .constants import (
    ADDRESS_LEN,
    HASH_LEN,
    MAX_ACCOUNT_ID,
    MAX_AMOUNT,
    MAX_FUNDING_INDEX,
    MAX_NONCE,
    MAX_ORDER_MARKET,
    MAX_PRICE,
    MAX_SLOT_ID,
    MAX_TIMESTAMP,
    MAX_U8,
    MAX_U32,
    MAX_U256,
    SIGNATURE_LEN,
)

__all__ = [
    "AccountId",
    "Address",
    "Amount",
    "Bound",
    "Count",
    "FeeRate",
    "FieldSpec",
    "FundingIndex",
    "Hash32",
    "L1Uint",
    "Length",
    "MarketByte",
    "Nonce",
    "OracleIndex",
    "OrderMarket",
    "Price",
    "Signature",
    "SlotId",
    "Timestamp",
    "find_field_error",
    "describe",
    "get_field_specs",
    "render_range_checks",
    "get_validator",
    "get_varint_len",
]


class Bound(NamedTuple):
    """An integer field's inclusive range."""

    low: int
    high: int


class Length(NamedTuple):
    """A byte field's exact length."""

    size: int


class Count(NamedTuple):
    """A list field's largest number of items."""

    high: int


# --- the table -------------------------------------------------------------------------------------

AccountId = Annotated[int, Bound(0, MAX_ACCOUNT_ID)]
SlotId = Annotated[int, Bound(0, MAX_SLOT_ID)]
Amount = Annotated[int, Bound(0, MAX_AMOUNT)]  # deposits, withdrawals, order and fill sizes
Price = Annotated[int, Bound(0, MAX_PRICE)]
FeeRate = Annotated[int, Bound(0, MAX_U32)]  # parts per FRACTION_ONE; a rate above 100% is INVALID_ORDER
Timestamp = Annotated[int, Bound(0, MAX_TIMESTAMP)]
Nonce = Annotated[int, Bound(0, MAX_NONCE)]
OrderMarket = Annotated[int, Bound(0, MAX_ORDER_MARKET)]  # shares a byte with the side in a record
MarketByte = Annotated[int, Bound(0, MAX_U8)]  # a market id posted as one byte (uint8 in EIP-712)
OracleIndex = Annotated[int, Bound(0, MAX_U8)]
FundingIndex = Annotated[int, Bound(-MAX_FUNDING_INDEX, MAX_FUNDING_INDEX)]
# An L1 queue entry's uint256: the spec, not the decoder, rejects one too big for the state (INVALID_AMOUNT).
L1Uint = Annotated[int, Bound(0, MAX_U256)]

Address = Annotated[bytes, Length(ADDRESS_LEN)]  # an L1 account
Signature = Annotated[bytes, Length(SIGNATURE_LEN)]  # r ‖ s ‖ v
Hash32 = Annotated[bytes, Length(HASH_LEN)]  # a keccak256 digest: roots, the EIP-712 domain separator


# --- reading the table -------------------------------------------------------------------------------


class FieldSpec(NamedTuple):
    """One field of a struct as the table declares it. `kind` is the field's type with `Annotated`
    removed (int, bool, bytes, a Struct, a Union of Structs, tuple[X, ...], dict[K, V]); `item` is the
    spec of a tuple's items; `bound` is the field's Bound, Length or Count, or None."""

    name: str
    kind: Any
    bound: Bound | Length | Count | None
    item: FieldSpec | None = None


def _spec(name: str, annotation: Any) -> FieldSpec:
    bound = None
    if get_origin(annotation) is Annotated:
        annotation, *extras = get_args(annotation)
        marks = [e for e in extras if isinstance(e, (Bound, Length, Count))]
        bound = marks[0] if marks else None
    item = None
    if get_origin(annotation) is tuple:
        args = get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _spec(f"{name}[]", args[0])
    return FieldSpec(name, annotation, bound, item)


_SPECS: dict[type, tuple[FieldSpec, ...]] = {}


def get_field_specs(struct_type: type) -> tuple[FieldSpec, ...]:
    """The fields of a msgspec Struct in declaration order, each with its bound from the table."""
    specs = _SPECS.get(struct_type)
    if specs is None:
        hints = _annotations(struct_type)
        specs = tuple(_spec(name, hints[name]) for name in struct_type.__struct_fields__)
        _SPECS[struct_type] = specs
    return specs


def describe(value: object) -> str:
    """A value for an error message: an int wider than any field (MAX_U256) by its size, since str() of
    an int of more than 4300 digits raises ValueError; anything else by its repr."""
    if type(value) is int and value.bit_length() > MAX_U256.bit_length():
        return f"an int of {value.bit_length()} bits"
    return repr(value)


def get_varint_len(bound: Bound) -> int:
    """Bytes an unsigned LEB128 varint of a field with this bound may take: ceil(bits / 7)."""
    return max(1, (bound.high.bit_length() + 6) // 7)


def _struct_types(kind: Any) -> tuple[type, ...]:
    """The Struct types a field may hold: itself, or the members of a Union; () for anything else."""
    members = get_args(kind) if get_origin(kind) is Union else (kind,)
    return tuple(m for m in members if isinstance(m, type) and hasattr(m, "__struct_fields__"))


# --- the range checks of is_well_formed, rendered as code --------------------------------------------
#
# `transition.is_well_formed` runs for every transaction, so its checks are plain chained comparisons
# (`0 <= v.size <= 18446744073709551615 and ...`), as fast as hand-written ones. They are not written by
# hand: `render_range_checks` writes them from the table into `spec/well_formed.py`
# (scripts/generate_well_formed.py), and tests/spec/test_fields.py fails while that file differs
# from what the table renders. A field added or a bound changed in types.py is one regeneration.

_GENERATED_HEADER = '''"""Range checks of `transition.is_well_formed`, one per struct: every integer field within its Bound
and every list within its Count, as the field table (spec/fields.py) declares them in types.py.

GENERATED by scripts/generate_well_formed.py from `fields.render_range_checks`; do not edit.
tests/spec/test_fields.py fails while this file differs from what the table renders.
"""

from __future__ import annotations

from .types import {types}
'''


def _number(value: int) -> str:
    """A bound as code: 2**k - 1 where it is one (CPython folds it into a constant when compiling)."""
    if value < 0:
        return f"-({_number(-value)})" if value < -MAX_U8 else str(value)
    if value > MAX_U8 and value & (value + 1) == 0:
        return f"2**{value.bit_length()} - 1"
    return str(value)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _struct_checks(spec: FieldSpec, value: str) -> str | None:
    """The check of one field of a struct, as an expression over `value`, or None if it has none."""
    members = _struct_types(spec.kind)
    if members:
        # A union of structs (an Order or a SlotRef): the type picks the member's check.
        alternatives = " or ".join(f"type({value}) is {m.__name__} and _{_snake(m.__name__)}({value})" for m in members)
        return f"({alternatives})" if len(members) > 1 else alternatives
    if spec.kind is int and type(spec.bound) is Bound:
        return f"{_number(spec.bound.low)} <= {value} <= {_number(spec.bound.high)}"
    if spec.item is not None:
        parts = []
        if type(spec.bound) is Count:
            parts.append(f"len({value}) <= {spec.bound.high}")
        item = spec.item
        if item.kind is int and type(item.bound) is Bound:
            parts.append(f"all({_number(item.bound.low)} <= x <= {_number(item.bound.high)} for x in {value})")
        elif _struct_types(item.kind):
            check = _struct_checks(FieldSpec("x", item.kind, item.bound), "x")
            parts.append(f"all({check} for x in {value})")
        return " and ".join(parts) if parts else None
    return None


def _reachable(roots: tuple[type, ...]) -> list[type]:
    """`roots` and every struct their fields hold, each once, nested ones first."""
    out: list[type] = []

    def visit(struct_type: type) -> None:
        if struct_type in out:
            return
        for spec in get_field_specs(struct_type):
            for member in _struct_types(spec.kind) + (_struct_types(spec.item.kind) if spec.item else ()):
                visit(member)
        out.append(struct_type)

    for root in roots:
        visit(root)
    return out


def render_range_checks(transaction_types: tuple[type, ...]) -> str:
    """The source of spec/well_formed.py: a `_<struct>(v) -> bool` per struct reachable from
    `transaction_types`, and RANGE_CHECKS, the check of each transaction type."""
    structs = _reachable(transaction_types)
    lines = [_GENERATED_HEADER.format(types=", ".join(sorted(t.__name__ for t in structs)))]
    for struct_type in structs:
        checks = [c for c in (_struct_checks(spec, f"v.{spec.name}") for spec in get_field_specs(struct_type)) if c]
        lines.append(f"\ndef _{_snake(struct_type.__name__)}(v: {struct_type.__name__}) -> bool:")
        if not checks:
            lines.append("    return True\n")
        elif len(checks) == 1:
            lines.append(f"    return {checks[0]}\n")
        else:
            lines.append("    return (\n        " + "\n        and ".join(checks) + "\n    )\n")
    lines.append("\nRANGE_CHECKS = {")
    lines += [f"    {t.__name__}: _{_snake(t.__name__)}," for t in transaction_types]
    lines.append("}\n")
    return "\n".join(lines)


# --- the full check: types as well as bounds ---------------------------------------------------------
#
# `find_field_error` walks a value against its declared type. The walk is compiled once per type into
# nested closures (one per field) that build no string unless something is wrong, so the record
# encoder can afford it on every transaction. A validator returns None, or the problem with the path
# below the value ("size: expected ..."; "[3]: ..."), to which each enclosing level prefixes its own.

Validator = Callable[[Any], "str | None"]


def find_field_error(value: Any, kind: Any, path: str = "") -> str | None:
    """The first way `value` is not a `kind` as the table declares it, as "<path>: <problem>", or
    None. Exact types (an int is not a bool, bytes are not a bytearray, a list field is a tuple) as
    well as every Bound, Length and Count, through nested structs, tuples, lists, dicts and sets.
    The record encoder and `serde.from_plain` report what this finds."""
    problem = get_validator(kind)(value)
    if problem is None:
        return None
    if not path:
        return problem.lstrip(".")
    return path + problem if problem[0] in ".[" else f"{path}: {problem}"


_VALIDATORS: dict[Any, Validator] = {}


def get_validator(kind: Any) -> Validator:
    validator = _VALIDATORS.get(kind)
    if validator is None:
        validator = _compile(kind)
        _VALIDATORS[kind] = validator
    return validator


def _within(where: str, problem: str) -> str:
    """`problem` (found below `where`) as seen from one level up."""
    return where + problem if problem[0] in ".[" else f"{where}: {problem}"


def _compile(kind: Any) -> Validator:
    bound = None
    if get_origin(kind) is Annotated:
        kind, *extras = get_args(kind)
        marks = [e for e in extras if isinstance(e, (Bound, Length, Count))]
        bound = marks[0] if marks else None
    members = _struct_types(kind)
    if members:
        return _compile_struct(members)
    if kind is int:
        return _compile_int(bound if type(bound) is Bound else None)
    if kind is bytes:
        return _compile_bytes(bound.size if type(bound) is Length else None)
    if kind is bool or kind is str:

        def check_exact(value: Any) -> str | None:
            return None if type(value) is kind else f"expected {kind.__name__}, got {type(value).__name__}"

        return check_exact
    origin, args = get_origin(kind), get_args(kind)
    if origin in (tuple, list, set):
        high = bound.high if type(bound) is Count else None
        return _compile_collection(origin, high, get_validator(args[0]) if args else None)
    if origin is dict:
        return _compile_dict(get_validator(args[0]), get_validator(args[1]))
    return lambda value: None  # enums and anything else the table does not describe


def _compile_int(bound: Bound | None) -> Validator:
    if bound is None:
        return lambda value: None if type(value) is int else f"expected an int, got {type(value).__name__}"
    low, high = bound

    def check_int(value: Any) -> str | None:
        if type(value) is int and low <= value <= high:
            return None
        if type(value) is not int:
            return f"expected an int, got {type(value).__name__}"
        return f"expected an int in [{low}, {high}], got {describe(value)}"

    return check_int


def _compile_bytes(size: int | None) -> Validator:
    def check_bytes(value: Any) -> str | None:
        if type(value) is not bytes:
            return f"expected bytes, got {type(value).__name__}"
        if size is not None and len(value) != size:
            return f"expected {size} bytes, got {len(value)}"
        return None

    return check_bytes


def _compile_collection(origin: type, high: int | None, check_item: Validator | None) -> Validator:
    def check_collection(value: Any) -> str | None:
        if type(value) is not origin:
            return f"expected a {origin.__name__}, got {type(value).__name__}"
        if high is not None and len(value) > high:
            return f"expected at most {high} items, got {len(value)}"
        if check_item is not None:
            for index, item in enumerate(value):
                problem = check_item(item)
                if problem is not None:
                    return _within(f"[{index}]", problem)
        return None

    return check_collection


def _compile_dict(check_key: Validator, check_value: Validator) -> Validator:
    def check_dict(value: Any) -> str | None:
        if type(value) is not dict:
            return f"expected a dict, got {type(value).__name__}"
        for key, item in value.items():
            problem = check_key(key) or check_value(item)
            if problem is not None:
                return _within(f"[{key!r}]", problem)
        return None

    return check_dict


def _compile_struct(members: tuple[type, ...]) -> Validator:
    names = " or ".join(m.__name__ for m in members)
    fields: dict[type, tuple[tuple[str, Callable[[Any], Any], Validator], ...]] = {}
    for member in members:
        hints = _annotations(member)
        fields[member] = tuple(
            (name, attrgetter(name), get_validator(hints[name])) for name in member.__struct_fields__
        )

    def check_struct(value: Any) -> str | None:
        member_fields = fields.get(type(value))
        if member_fields is None:
            return f"expected {names}, got {type(value).__name__}"
        for name, get, check in member_fields:
            problem = check(get(value))
            if problem is not None:
                return _within("." + name, problem)
        return None

    return check_struct


_HINTS: dict[type, dict[str, Any]] = {}


def _annotations(struct_type: type) -> dict[str, Any]:
    hints = _HINTS.get(struct_type)
    if hints is None:
        hints = get_type_hints(struct_type, include_extras=True)
        _HINTS[struct_type] = hints
    return hints
