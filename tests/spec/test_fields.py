"""The field table (optinode/spec/fields.py): each field's bound is declared once, and everything that
checks a field agrees with that declaration.

- Completeness: every integer field of a wire type names a Bound, every byte field a Length (but
  `Malformed.data`, which is any bytes), every list a Count.
- Agreement, field by field at its boundary: `is_well_formed`, the record encoder, the record decoder
  and `serde.from_plain` all accept the bound and refuse one past it.
- No literal: no module outside the table (fields.py and the constants it reads) spells a field
  bound as a number in a comparison or a check; a literal that is a format constant (LEB128's 0x80)
  says so with a `# format:` comment on its line.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import msgspec
import pytest

from optinode.spec import fields, serde
from optinode.spec.constants import MAX_U8
from optinode.spec.errors import EncodeError
from optinode.spec.fields import Bound, Count, Length, get_field_specs
from optinode.spec.record_codec import _put_varint, decode_transaction, encode_transaction
from optinode.spec.transition import is_well_formed
from optinode.spec.types import (
    CancelAll,
    CollectFees,
    Deleverage,
    Deposit,
    DepositEntry,
    ForcedEntry,
    ForcedWithdraw,
    FundingTick,
    L1Context,
    Liquidate,
    Malformed,
    OraclePrice,
    Order,
    PriceSample,
    SlotRef,
    Trade,
    Transaction,
    Withdraw,
)

REPO = Path(__file__).resolve().parents[2]
WIRE_TYPES = [*get_args(Transaction), Order, SlotRef, PriceSample, DepositEntry, ForcedEntry, L1Context]
SIG = bytes(range(1, 33)) * 2 + b"\x1b"  # r, s < 2^255 (top bit clear), v = 27: encodable
ORDER = Order(account_id=3, market=5, is_buy=True, size=7, limit_price=11, fee_rate=13, expiry=17, nonce=19, signature=SIG)
BASES: list[Transaction] = [
    Deposit(account_id=59),
    Trade(maker=ORDER, taker=SlotRef(slot=23), size=29),
    Trade(maker=SlotRef(slot=31), taker=ORDER, size=37),
    Withdraw(account_id=41, amount=43, expiry=47, nonce=53, signature=SIG),
    ForcedWithdraw(),
    OraclePrice(market=3, samples=(PriceSample(oracle_index=1, price=83, timestamp=89, signature=SIG),)),
    FundingTick(timestamp=97, indices=(5, -3)),
    Liquidate(liquidator=ORDER, liquidated_id=61, size=67),
    Liquidate(liquidator=SlotRef(slot=101), liquidated_id=61, size=67),
    Deleverage(deleveraged_id=71, deleverager_id=73, market=2, size=79),
    CancelAll(account_id=103, nonce_floor=107, signature=SIG),
    CollectFees(account_id=109),
]


# --- completeness --------------------------------------------------------------------------------------


@pytest.mark.parametrize("struct_type", WIRE_TYPES, ids=lambda t: t.__name__)
def test_every_wire_field_declares_its_bound(struct_type: type) -> None:
    for spec in get_field_specs(struct_type):
        where = f"{struct_type.__name__}.{spec.name}"
        if spec.kind is int:
            assert type(spec.bound) is Bound, f"{where}: an int field without a Bound"
        elif spec.kind is bytes and struct_type is not Malformed:
            assert type(spec.bound) is Length, f"{where}: a bytes field without a Length"
        elif spec.item is not None:
            assert type(spec.bound) is Count, f"{where}: a list field without a Count"
            if spec.item.kind is int:
                assert type(spec.item.bound) is Bound, f"{where}: list items without a Bound"


# Byte fields whose length really varies.
VARIABLE_BYTES = {"types.Malformed.data", "witness.LeafProof.leaf", "witness.Witness.globals"}


def test_every_byte_field_of_the_spec_declares_its_length() -> None:
    # Addresses, signatures and roots anywhere in the spec's structs (state, genesis, witness, game...),
    # not only the wire types: serde checks a Length only where one is declared.
    import importlib
    import pkgutil

    import optinode.spec

    undeclared = []
    for info in pkgutil.iter_modules(optinode.spec.__path__):
        module = importlib.import_module(f"optinode.spec.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, msgspec.Struct) and value.__module__ == module.__name__:
                for spec in get_field_specs(value):
                    kinds = [spec] + ([spec.item] if spec.item else [])
                    name = f"{info.name}.{value.__name__}.{spec.name}"
                    if any(k.kind is bytes and type(k.bound) is not Length for k in kinds) and name not in VARIABLE_BYTES:
                        undeclared.append(name)
    assert not undeclared, f"byte fields without a Length in the field table: {undeclared}"


def test_byte_fields_of_the_record_fill_their_byte() -> None:
    # The decoder reads these as one raw byte (Order.market as 7 bits of one), so the table's bound must
    # be exactly what the byte can hold: a tighter bound would let the decoder produce a value the table
    # forbids, a looser one could not be encoded.
    def bound(struct_type: type, name: str) -> Bound:
        return next(s.bound for s in get_field_specs(struct_type) if s.name == name)

    assert bound(OraclePrice, "market") == Bound(0, MAX_U8)
    assert bound(PriceSample, "oracle_index") == Bound(0, MAX_U8)
    assert bound(Deleverage, "market") == Bound(0, MAX_U8)
    assert bound(Order, "market") == Bound(0, MAX_U8 >> 1)  # market << 1 | is_buy


def test_varint_fields_need_no_range_check_in_one_byte() -> None:
    # record_codec._varint returns a one-byte varint (0..0x7f) without comparing it to the maximum.
    byte_fields = {(OraclePrice, "market"), (PriceSample, "oracle_index"), (Deleverage, "market"), (Order, "market")}
    for struct_type in WIRE_TYPES:
        for spec in get_field_specs(struct_type):
            if spec.kind is int and (struct_type, spec.name) not in byte_fields and struct_type not in (DepositEntry, ForcedEntry, L1Context):
                assert spec.bound.high >= 0x7F, f"{struct_type.__name__}.{spec.name}"


# --- agreement at every boundary -------------------------------------------------------------------------


def _bounded_paths(value: Any, kind: Any, path: tuple = ()) -> list[tuple[tuple, Bound]]:
    """Every integer inside `value` with the Bound its declaration names, as (path, bound)."""
    bound = None
    if get_origin(kind) is Annotated:
        kind, *extras = get_args(kind)
        bound = next((e for e in extras if isinstance(e, (Bound, Length, Count))), None)
    if hasattr(type(value), "__struct_fields__"):
        out = []
        for spec, name in zip(get_field_specs(type(value)), type(value).__struct_fields__):
            annotation = Annotated[spec.kind, spec.bound] if spec.bound is not None else spec.kind
            out += _bounded_paths(getattr(value, name), annotation, (*path, name))
        return out
    if type(value) is tuple:
        return [p for index, item in enumerate(value) for p in _bounded_paths(item, get_args(kind)[0], (*path, index))]
    if type(value) is int and type(bound) is Bound:
        return [(path, bound)]
    return []


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    if type(value) is tuple:
        return value[:head] + (_replace(value[head], tuple(rest), new),) + value[head + 1 :]
    return msgspec.structs.replace(value, **{head: _replace(getattr(value, head), tuple(rest), new)})


def _json_path(path: tuple) -> str:
    return "$" + "".join(f"[{p}]" if type(p) is int else f".{p}" for p in path)


def _varint(value: int) -> bytes:
    out = bytearray()
    _put_varint(out, value)  # the encoder's own LEB128 (its format is test_codec.py's business)
    return bytes(out)


CASES = [
    pytest.param(base, path, bound, id=f"{type(base).__name__}{index}:{'.'.join(map(str, path))}")
    for index, base in enumerate(BASES)
    for path, bound in _bounded_paths(base, type(base))
]


def test_every_bounded_field_is_covered() -> None:
    covered = {(type(b), p[0]) for b, p, _ in (c.values for c in CASES)}
    for base in BASES:
        for spec in get_field_specs(type(base)):
            if spec.kind is int:
                assert (type(base), spec.name) in covered


@pytest.mark.parametrize("base,path,bound", CASES)
def test_all_checks_agree_with_the_table(base: Transaction, path: tuple, bound: Bound) -> None:
    at_high = _replace(base, path, bound.high)
    past_high = _replace(base, path, bound.high + 1)
    below_low = _replace(base, path, bound.low - 1)

    # transition.is_well_formed
    assert is_well_formed(at_high)
    assert not is_well_formed(past_high) and not is_well_formed(below_low)

    # the record encoder, and the decoder on what it wrote
    record = encode_transaction(at_high)
    assert decode_transaction(record) == at_high
    for outside in (past_high, below_low):
        with pytest.raises(EncodeError):
            encode_transaction(outside)

    # the record decoder on one past the bound, written by hand where the field is a varint
    zigzag = bound.low < 0
    written = _varint(2 * bound.high if zigzag else bound.high)
    if bound.high >= 0x7F and record.count(written) == 1:
        patched = record.replace(written, _varint(2 * bound.high + 2 if zigzag else bound.high + 1))
        assert type(decode_transaction(patched)) is Malformed
    else:  # a field stored in one byte (market, oracle index): one past its bound cannot be written
        assert bound.high in (MAX_U8, MAX_U8 >> 1), (path, bound)

    # serde
    assert serde.from_plain(serde.to_plain(at_high), Transaction) == at_high
    for outside in (past_high, below_low):
        with pytest.raises(serde.InvalidJson) as raised:
            serde.from_plain(serde.to_plain(outside), Transaction)
        assert str(raised.value).startswith(_json_path(path) + ": "), str(raised.value)


@pytest.mark.parametrize(
    "base,field,item",
    [
        (BASES[5], "samples", BASES[5].samples[0]),
        (BASES[6], "indices", 0),
    ],
    ids=["OraclePrice.samples", "FundingTick.indices"],
)
def test_list_counts_agree_with_the_table(base: Transaction, field: str, item: Any) -> None:
    high = next(s.bound.high for s in get_field_specs(type(base)) if s.name == field)
    full = msgspec.structs.replace(base, **{field: (item,) * high})
    over = msgspec.structs.replace(base, **{field: (item,) * (high + 1)})
    assert is_well_formed(full) and not is_well_formed(over)
    record = encode_transaction(full)
    assert decode_transaction(record) == full
    with pytest.raises(EncodeError):
        encode_transaction(over)
    # By hand, one item more than the count allows: the count byte (after the tag and one one-byte field)
    # raised by one, and one more copy of the (identical) items appended.
    assert record[2] == high
    item = record[3 : 3 + (len(record) - 3) // high]
    assert type(decode_transaction(record[:2] + bytes((high + 1,)) + record[3:] + item)) is Malformed
    with pytest.raises(serde.InvalidJson, match=rf"^\$\.{field}: expected at most {high} items"):
        serde.from_plain(serde.to_plain(over), Transaction)


def test_the_rendered_range_checks_are_current() -> None:
    # transition.is_well_formed runs the checks in spec/well_formed.py, rendered from the table.
    rendered = fields.render_range_checks(tuple(t for t in get_args(Transaction) if t is not Malformed))
    committed = (REPO / "optinode" / "spec" / "well_formed.py").read_text()
    assert committed == rendered, "the field table changed: run scripts/generate_well_formed.py"


def test_every_transaction_type_has_a_base_case() -> None:
    # So that a new transaction type is checked at every field's boundary as soon as it exists.
    assert {type(b) for b in BASES} == set(get_args(Transaction)) - {Malformed}


# --- no literal bound outside the table ----------------------------------------------------------------

# The table, the constants it reads, and the range checks rendered from it.
TABLE_MODULES = {"optinode/spec/fields.py", "optinode/spec/constants.py", "optinode/spec/well_formed.py"}


def _bound_values() -> set[int]:
    """Every number that spells a field bound: each Bound's ends (and one past them, as `< 2**64`
    spells u64), each Length, each Count (and one past)."""
    values: set[int] = set()
    marks = [get_args(alias)[1] for alias in vars(fields).values() if get_origin(alias) is Annotated]
    for struct_type in WIRE_TYPES:
        for spec in get_field_specs(struct_type):
            marks += [m for m in (spec.bound, spec.item.bound if spec.item else None) if m is not None]
    for mark in marks:
        if type(mark) is Bound:
            values |= {mark.high, mark.high + 1} | ({-mark.low, -mark.low + 1} if mark.low < 0 else set())
        elif type(mark) is Length:
            values.add(mark.size)
        elif type(mark) is Count:
            values |= {mark.high, mark.high + 1}
    return values


BOUND_VALUES = _bound_values()


def _number(node: ast.AST) -> int | None:
    """The value of an integer literal or a constant expression of literals (2**64 - 1, 1 << 32)."""
    if not isinstance(node, (ast.Constant, ast.BinOp, ast.UnaryOp)):
        return None
    if any(isinstance(n, ast.Name) for n in ast.walk(node)):
        return None
    try:
        value = eval(compile(ast.Expression(node), "<literal>", "eval"), {"__builtins__": {}})  # literals only
    except Exception:
        return None
    return value if type(value) is int else None


def literal_bounds(source: str, filename: str = "<source>") -> list[str]:
    """Every field bound spelled as a literal in a comparison or in a check_*/require* call."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1].lstrip("_").startswith(("check", "require")):
            operands = list(node.args)
        else:
            continue
        for operand in operands:
            value = _number(operand)
            if value is not None and abs(value) in BOUND_VALUES and "# format:" not in lines[operand.lineno - 1]:
                found.append(f"{filename}:{operand.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize(
    "source",
    [
        'market = _check_int(order.market, 0x7F, "order.market")',  # the literal this test was written for
        "if len(signature) != 65: pass",
        "ok = 0 < size < 2**64",
        "ok = len(owner) == 20",
        "ok = count <= 32",
        "ok = -(2**127 - 1) <= index",
        "require(fee <= 4294967295, ErrorCode.INVALID_ORDER)",
    ],
)
def test_the_checker_finds_a_literal_bound(source: str) -> None:
    assert literal_bounds(source)


@pytest.mark.parametrize(
    "source",
    [
        "if b < 0x80:  # format: LEB128's more-follows bit\n    pass",
        "ok = len(owner) == ADDRESS_LEN",
        "ok = size <= MAX_AMOUNT",
        "x = data[i + 32]",  # an offset, not a comparison
        "ok = value < 1000",
    ],
)
def test_the_checker_accepts_named_bounds(source: str) -> None:
    assert literal_bounds(source) == []


def test_no_module_outside_the_table_spells_a_field_bound() -> None:
    found = []
    for path in sorted((REPO / "optinode").rglob("*.py")):
        name = path.relative_to(REPO).as_posix()
        if name not in TABLE_MODULES:
            found += literal_bounds(path.read_text(), name)
    assert not found, "name these bounds from optinode/spec/fields.py or constants.py:\n" + "\n".join(found)
