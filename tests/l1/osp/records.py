"""Hypothesis strategies for batch records built field by field, for the codec differential.

`records()` writes a record of any type (or an undefined one) the way spec/record_codec.py lays it out, but
each varint may be written minimally, with a trailing zero group (non-minimal), in more bytes than
its field allows, above its field's maximum, or cut short; tags get undefined flag bits, counts go
past their limits, and a record may lose or gain trailing bytes. The spec's decode_transaction and
the prover's decoder must classify every such record the same way (and agree on what it decodes to).
"""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import strategies as st

from optinode.spec.record_codec import (
    FLAG_LIQUIDATOR_REF,
    FLAG_MAKER_REF,
    FLAG_SIZE_OMITTED,
    FLAG_TAKER_REF,
    MAX_ZIGZAG_FUNDING,
    TYPE_DELEVERAGE,
    TYPE_DEPOSIT,
    TYPE_FORCED_WITHDRAW,
    TYPE_FUNDING_TICK,
    TYPE_LIQUIDATE,
    TYPE_ORACLE_PRICE,
    TYPE_TRADE,
    TYPE_WITHDRAW,
)
from optinode.spec.constants import MAX_ACCOUNT_ID, MAX_AMOUNT, MAX_NONCE, MAX_PRICE, MAX_SLOT_ID, MAX_TIMESTAMP, MAX_U32

Draw = Callable[[st.SearchStrategy[Any]], Any]


def minimal(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class Writer:
    def __init__(self, draw: Draw, small: tuple[int, ...]) -> None:
        self.draw = draw
        self.small = small  # plausible values (ids of existing accounts, the state's prices...)
        self.out = bytearray()
        self.hazards = draw(st.sampled_from([0, 0, 1, 1, 2]))  # how many varints to damage, at most

    def value(self, high: int) -> int:
        return self.draw(
            st.one_of(
                st.sampled_from(self.small),
                st.sampled_from([0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, high - 1, high]),
                st.integers(0, high),
            )
        )

    def varint(self, high: int, value: int | None = None) -> int:
        """Append a varint for a field with maximum `high`; returns the value (meaningful when written
        minimally)."""
        value = self.value(high) if value is None else value
        max_len = (high.bit_length() + 6) // 7
        how = "minimal"
        if self.hazards and self.draw(st.integers(0, 3)) == 0:
            self.hazards -= 1
            how = self.draw(st.sampled_from(["trailing-zero", "overlong", "above", "cut"]))
        data = minimal(value)
        if how == "trailing-zero":
            data = data[:-1] + bytes([data[-1] | 0x80, 0])
        elif how == "overlong":
            data = bytes([0x80]) * max_len + b"\x01"
        elif how == "above":
            data = minimal(self.draw(st.integers(high + 1, 2 ** (7 * max_len) - 1)))
        elif how == "cut":
            data = data[:-1] + bytes([data[-1] | 0x80])
        self.out += data
        return value

    def byte(self, value: int | None = None) -> None:
        self.out.append(self.draw(st.integers(0, 255)) if value is None else value)

    def signature(self, good: tuple[bytes, ...]) -> None:
        if good and self.draw(st.booleans()):
            self.out += self.draw(st.sampled_from(good))
        else:
            self.out += self.draw(st.binary(min_size=64, max_size=64))

    def order(self, good_signatures: tuple[bytes, ...]) -> int:
        self.varint(MAX_ACCOUNT_ID)
        self.byte(self.draw(st.sampled_from([0, 1, 2, 3, 4, 5, 0xFE, 0xFF])))  # market << 1 | is_buy
        size = self.varint(MAX_AMOUNT)
        self.varint(MAX_PRICE)
        self.varint(MAX_U32)
        self.varint(MAX_TIMESTAMP)
        self.varint(MAX_NONCE)
        self.signature(good_signatures)
        return size


@st.composite
def records(draw: Draw, small: tuple[int, ...] = (0, 1, 2, 3), good_signatures: tuple[bytes, ...] = ()) -> bytes:
    w = Writer(draw, small)
    kind = draw(st.sampled_from(list(range(16)) + list(range(1, 9)) * 3 + [TYPE_TRADE, TYPE_TRADE, TYPE_LIQUIDATE]))
    if kind == TYPE_TRADE:
        flags = draw(st.sampled_from([0, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80]))
    elif kind == TYPE_LIQUIDATE:
        flags = draw(st.sampled_from([0, 0x10, 0x10, 0x20, 0x90]))
    else:
        flags = draw(st.sampled_from([0] * 8 + [0x10, 0x40, 0x80]))
    w.byte(kind | flags)
    if kind == TYPE_DEPOSIT:
        w.varint(MAX_ACCOUNT_ID)
    elif kind == TYPE_TRADE:
        if flags & FLAG_MAKER_REF:
            w.varint(MAX_SLOT_ID)
        else:
            w.order(good_signatures)
        if flags & FLAG_TAKER_REF:
            w.varint(MAX_SLOT_ID)
            w.varint(MAX_AMOUNT)
        else:
            taker_size = w.order(good_signatures)
            if not flags & FLAG_SIZE_OMITTED:
                w.varint(MAX_AMOUNT, taker_size if draw(st.integers(0, 4)) == 0 else None)
    elif kind == TYPE_WITHDRAW:
        for high in (MAX_ACCOUNT_ID, MAX_AMOUNT, MAX_TIMESTAMP, MAX_NONCE):
            w.varint(high)
        w.signature(good_signatures)
    elif kind == TYPE_FORCED_WITHDRAW:
        pass
    elif kind == TYPE_ORACLE_PRICE:
        w.byte(draw(st.sampled_from([0, 1, 2, 255])))
        count = draw(st.sampled_from([0, 1, 2, 3, 32, 33]))
        w.byte(count)
        for _ in range(count if count <= 4 or draw(st.booleans()) else draw(st.integers(0, 4))):
            w.byte(draw(st.sampled_from([0, 1, 2, 3])))
            w.varint(MAX_PRICE)
            w.varint(MAX_TIMESTAMP)
            w.signature(good_signatures)
    elif kind == TYPE_FUNDING_TICK:
        w.varint(MAX_TIMESTAMP)
        count = draw(st.sampled_from([0, 1, 2, 3, 15, 16, 17]))
        w.byte(count)
        for _ in range(count if count <= 3 or draw(st.booleans()) else draw(st.integers(0, 3))):
            w.varint(MAX_ZIGZAG_FUNDING)
    elif kind == TYPE_LIQUIDATE:
        if flags & FLAG_LIQUIDATOR_REF:
            w.varint(MAX_SLOT_ID)
        else:
            w.order(good_signatures)
        w.varint(MAX_ACCOUNT_ID)
        w.varint(MAX_AMOUNT)
    elif kind == TYPE_DELEVERAGE:
        w.varint(MAX_ACCOUNT_ID)
        w.varint(MAX_ACCOUNT_ID)
        w.byte(draw(st.sampled_from([0, 1, 2, 255])))
        w.varint(MAX_AMOUNT)
    else:  # undefined type: any payload
        w.out += draw(st.binary(max_size=40))
    tail = draw(st.sampled_from(["keep"] * 16 + ["drop", "extra"]))
    if tail == "drop" and len(w.out) > 1:
        del w.out[-1]
    elif tail == "extra":
        w.out.append(draw(st.integers(0, 255)))
    return bytes(w.out)
