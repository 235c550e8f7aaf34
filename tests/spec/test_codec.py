"""Batch codec (optinode/spec/record_codec.py, batch_framing.py, tx_tree.py; docs/codec.md): round trips, canonical encodings, garbage
tolerance, exact malformed cases, framing, and the transaction Merkle tree.

`_reference_decode` is a second, deliberately naive decoder written straight from docs/codec.md
(a cursor, minimality checked by re-encoding); the fast decoder must agree with it on every input.
"""

from __future__ import annotations

from typing import Any

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from optinode.spec.batch_framing import decode_batch, encode_batch, frame_records, split_records
from optinode.spec.record_codec import decode_transaction, encode_transaction
from optinode.spec.tx_tree import MAX_BATCH_TXS, TX_TREE_DEPTH, compute_tx_root, get_tx_proof, verify_tx_proof
from optinode.spec.constants import (
    MAX_ACCOUNT_ID,
    MAX_AMOUNT,
    MAX_FUNDING_INDEX,
    MAX_MARKETS,
    MAX_NONCE,
    MAX_ORACLES,
    MAX_PRICE,
    MAX_SLOT_ID,
    MAX_TIMESTAMP,
    MAX_U8,
    MAX_U32,
)
from optinode.spec.crypto import keccak, recover_signer
from optinode.spec.errors import EncodeError
from optinode.spec.merkle import MerkleTree
from optinode.spec.types import (
    CancelAll,
    CollectFees,
    Deleverage,
    Deposit,
    ForcedWithdraw,
    FundingTick,
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

TX_TYPES = (
    Deposit, Trade, Withdraw, ForcedWithdraw, OraclePrice, FundingTick, Liquidate, Deleverage, CancelAll, CollectFees, Malformed
)

# --- strategies ----------------------------------------------------------------------------------------


def bounded(high: int) -> st.SearchStrategy[int]:
    """In-range ints, biased towards small values and the varint byte boundaries."""
    edges = sorted({v for k in range(0, high.bit_length() + 7, 7) for v in (2**k - 1, 2**k) if v <= high} | {high})
    return st.one_of(st.integers(0, 300), st.sampled_from(edges), st.integers(0, high))


signatures = st.builds(
    lambda r, s, v: r + s.to_bytes(32, "big") + bytes((v,)),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**255 - 1),
    st.sampled_from((27, 28)),
)
orders = st.builds(
    Order,
    account_id=bounded(MAX_ACCOUNT_ID),
    market=st.integers(0, 127),
    is_buy=st.booleans(),
    size=bounded(MAX_AMOUNT),
    limit_price=bounded(MAX_PRICE),
    fee_rate=bounded(MAX_U32),
    expiry=bounded(MAX_TIMESTAMP),
    nonce=bounded(MAX_NONCE),
    signature=signatures,
)
slot_refs = st.builds(SlotRef, slot=bounded(MAX_SLOT_ID))
orders_or_refs = st.one_of(orders, slot_refs)


@st.composite
def trades(draw: st.DrawFn) -> Trade:
    maker = draw(orders_or_refs)
    taker = draw(orders_or_refs)
    # Half the time a full fill of a new taker, which takes the omitted-size encoding.
    if type(taker) is Order and draw(st.booleans()):
        size = taker.size
    else:
        size = draw(bounded(MAX_AMOUNT))
    return Trade(maker=maker, taker=taker, size=size)


price_samples = st.builds(
    PriceSample,
    oracle_index=st.integers(0, MAX_U8),
    price=bounded(MAX_PRICE),
    timestamp=bounded(MAX_TIMESTAMP),
    signature=signatures,
)
funding_indices = st.one_of(
    st.integers(-300, 300),
    st.sampled_from((MAX_FUNDING_INDEX, -MAX_FUNDING_INDEX, 63, -64, 64, -65)),
    st.integers(-MAX_FUNDING_INDEX, MAX_FUNDING_INDEX),
)

valid_txs: st.SearchStrategy[Transaction] = st.one_of(
    st.builds(Deposit, account_id=bounded(MAX_ACCOUNT_ID)),
    trades(),
    st.builds(
        Withdraw,
        account_id=bounded(MAX_ACCOUNT_ID),
        amount=bounded(MAX_AMOUNT),
        expiry=bounded(MAX_TIMESTAMP),
        nonce=bounded(MAX_NONCE),
        signature=signatures,
    ),
    st.just(ForcedWithdraw()),
    st.builds(
        OraclePrice,
        market=st.integers(0, MAX_U8),
        samples=st.lists(price_samples, max_size=MAX_ORACLES).map(tuple),
    ),
    st.builds(
        FundingTick,
        timestamp=bounded(MAX_TIMESTAMP),
        indices=st.lists(funding_indices, max_size=MAX_MARKETS).map(tuple),
    ),
    st.builds(
        Liquidate, liquidator=orders_or_refs, liquidated_id=bounded(MAX_ACCOUNT_ID), size=bounded(MAX_AMOUNT)
    ),
    st.builds(
        Deleverage,
        deleveraged_id=bounded(MAX_ACCOUNT_ID),
        deleverager_id=bounded(MAX_ACCOUNT_ID),
        market=st.integers(0, MAX_U8),
        size=bounded(MAX_AMOUNT),
    ),
)
# Garbage that really is garbage: encodes as itself.
malformed_txs = st.binary(max_size=200).map(decode_transaction).filter(lambda tx: type(tx) is Malformed)
any_txs = st.one_of(valid_txs, malformed_txs)


@st.composite
def mutated_records(draw: st.DrawFn) -> bytes:
    """A valid record with one small edit: the inputs most likely to almost-decode."""
    record = bytearray(encode_transaction(draw(valid_txs)))
    edit = draw(st.sampled_from(("set", "xor", "delete", "insert", "truncate", "append", "tag")))
    position = draw(st.integers(0, max(len(record) - 1, 0)))
    byte = draw(st.integers(0, 255))
    if edit == "set" and record:
        record[position] = byte
    elif edit == "xor" and record:
        record[position] ^= 1 << draw(st.integers(0, 7))
    elif edit == "delete" and record:
        del record[position]
    elif edit == "insert":
        record.insert(position, byte)
    elif edit == "truncate":
        del record[position:]
    elif edit == "append":
        record.append(byte)
    elif edit == "tag" and record:
        record[0] = (record[0] & 0x0F) | (byte & 0xF0)  # same type, arbitrary flags
    return bytes(record)


# --- reference decoder ---------------------------------------------------------------------------------


class _Bad(Exception):
    pass


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise _Bad("truncated")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def uvarint(self, high: int) -> int:
        start = self.pos
        value, shift = 0, 0
        while True:
            b = self.byte()
            value += (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
            if self.pos - start >= (high.bit_length() + 6) // 7:
                raise _Bad("too long")
        if _leb128(value) != self.data[start : self.pos]:
            raise _Bad("not minimal")
        if value > high:
            raise _Bad("too big")
        return value

    def signature(self) -> bytes:
        r = self.take(32)
        vs = int.from_bytes(self.take(32), "big")
        return r + (vs % 2**255).to_bytes(32, "big") + bytes((27 + (vs >> 255),))

    def order(self) -> Order:
        account_id = self.uvarint(MAX_ACCOUNT_ID)
        market_side = self.byte()
        return Order(
            account_id=account_id,
            market=market_side // 2,
            is_buy=market_side % 2 == 1,
            size=self.uvarint(MAX_AMOUNT),
            limit_price=self.uvarint(MAX_PRICE),
            fee_rate=self.uvarint(MAX_U32),
            expiry=self.uvarint(MAX_TIMESTAMP),
            nonce=self.uvarint(MAX_NONCE),
            signature=self.signature(),
        )


def _reference_decode(record: bytes) -> Transaction:
    c = _Cursor(record)
    try:
        tag = c.byte()
        kind, flags = tag % 16, tag // 16 * 16
        allowed = {0x2: 0x10 | 0x20 | 0x40, 0x7: 0x10}.get(kind, 0)
        if flags & ~allowed:
            raise _Bad("flag")
        tx: Any
        if kind == 0x1:
            tx = Deposit(account_id=c.uvarint(MAX_ACCOUNT_ID))
        elif kind == 0x2:
            maker = SlotRef(slot=c.uvarint(MAX_SLOT_ID)) if flags & 0x10 else c.order()
            taker = SlotRef(slot=c.uvarint(MAX_SLOT_ID)) if flags & 0x20 else c.order()
            if flags & 0x40:
                if isinstance(taker, SlotRef):
                    raise _Bad("omitted size needs a new taker")
                size = taker.size
            else:
                size = c.uvarint(MAX_AMOUNT)
                if isinstance(taker, Order) and size == taker.size:
                    raise _Bad("not canonical")
            tx = Trade(maker=maker, taker=taker, size=size)
        elif kind == 0x3:
            tx = Withdraw(
                account_id=c.uvarint(MAX_ACCOUNT_ID),
                amount=c.uvarint(MAX_AMOUNT),
                expiry=c.uvarint(MAX_TIMESTAMP),
                nonce=c.uvarint(MAX_NONCE),
                signature=c.signature(),
            )
        elif kind == 0x4:
            tx = ForcedWithdraw()
        elif kind == 0x5:
            market = c.byte()
            count = c.byte()
            if count > MAX_ORACLES:
                raise _Bad("count")
            samples = []
            for _ in range(count):
                samples.append(
                    PriceSample(
                        oracle_index=c.byte(),
                        price=c.uvarint(MAX_PRICE),
                        timestamp=c.uvarint(MAX_TIMESTAMP),
                        signature=c.signature(),
                    )
                )
            tx = OraclePrice(market=market, samples=tuple(samples))
        elif kind == 0x6:
            timestamp = c.uvarint(MAX_TIMESTAMP)
            count = c.byte()
            if count > MAX_MARKETS:
                raise _Bad("count")
            indices = []
            for _ in range(count):
                zz = c.uvarint(2**200)
                x = zz // 2 if zz % 2 == 0 else -(zz // 2) - 1
                if abs(x) > MAX_FUNDING_INDEX:
                    raise _Bad("funding index")
                indices.append(x)
            tx = FundingTick(timestamp=timestamp, indices=tuple(indices))
        elif kind == 0x7:
            liquidator = SlotRef(slot=c.uvarint(MAX_SLOT_ID)) if flags & 0x10 else c.order()
            tx = Liquidate(
                liquidator=liquidator, liquidated_id=c.uvarint(MAX_ACCOUNT_ID), size=c.uvarint(MAX_AMOUNT)
            )
        elif kind == 0x8:
            tx = Deleverage(
                deleveraged_id=c.uvarint(MAX_ACCOUNT_ID),
                deleverager_id=c.uvarint(MAX_ACCOUNT_ID),
                market=c.byte(),
                size=c.uvarint(MAX_AMOUNT),
            )
        elif kind == 0x9:
            tx = CancelAll(account_id=c.uvarint(MAX_ACCOUNT_ID), nonce_floor=c.uvarint(MAX_NONCE), signature=c.signature())
        elif kind == 0xA:
            tx = CollectFees(account_id=c.uvarint(MAX_ACCOUNT_ID))
        else:
            raise _Bad("type")
        if c.pos != len(record):
            raise _Bad("trailing")
        return tx
    except _Bad:
        return Malformed(data=record)


def check_record(record: bytes) -> Transaction:
    """Shared properties of any decoded record: a Transaction, equal to the reference decoding, and
    canonical (re-encodes to exactly the same bytes)."""
    tx = decode_transaction(record)
    assert type(tx) in TX_TYPES
    assert tx == _reference_decode(record)
    if type(tx) is Malformed:
        assert tx.data == record and type(tx.data) is bytes
    assert encode_transaction(tx) == record
    return tx


# --- round trips and canonical form ---------------------------------------------------------------------


@given(any_txs)
def test_transaction_round_trip(tx: Transaction) -> None:
    record = encode_transaction(tx)
    assert decode_transaction(record) == tx
    check_record(record)


@given(st.lists(any_txs, max_size=20))
def test_batch_round_trip(txs: list[Transaction]) -> None:
    data = encode_batch(txs)
    assert decode_batch(data) == txs
    assert split_records(data) == [encode_transaction(tx) for tx in txs]


@settings(max_examples=400)
@given(mutated_records())
def test_near_valid_records_decode_canonically(record: bytes) -> None:
    check_record(record)


@settings(max_examples=300)
@given(st.integers(0, 255), st.binary(max_size=120))
def test_random_records_never_raise(tag: int, body: bytes) -> None:
    check_record(bytes((tag,)) + body)
    check_record(body)


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_random_batches_never_raise(data: bytes) -> None:
    txs = decode_batch(data)
    assert all(type(tx) in TX_TYPES for tx in txs)
    assert txs == [_reference_decode(r) for r in split_records(data)]
    for tx in txs:  # whatever came out, the codec can post it again
        assert decode_transaction(encode_transaction(tx)) == tx


def test_decode_accepts_bytes_like() -> None:
    record = encode_transaction(Deposit(account_id=300))
    assert decode_transaction(bytearray(record)) == Deposit(account_id=300)
    assert decode_transaction(memoryview(b"\x00")) == Malformed(data=b"\x00")
    assert type(decode_transaction(bytearray(b"\xff")).data) is bytes  # type: ignore[union-attr]


# --- exact encodings ------------------------------------------------------------------------------------

SIG27 = bytes(range(1, 33)) + bytes((0x7F,)) + bytes(31) + b"\x1b"
SIG28 = bytes(range(1, 33)) + bytes((0x7F,)) + bytes(31) + b"\x1c"


def test_varint_and_deposit_bytes() -> None:
    assert encode_transaction(Deposit(account_id=0)) == b"\x01\x00"
    assert encode_transaction(Deposit(account_id=127)) == b"\x01\x7f"
    assert encode_transaction(Deposit(account_id=128)) == b"\x01\x80\x01"
    assert encode_transaction(Deposit(account_id=300)) == b"\x01\xac\x02"
    assert encode_transaction(Deposit(account_id=MAX_ACCOUNT_ID)) == b"\x01\xff\xff\xff\xff\x0f"
    assert encode_transaction(ForcedWithdraw()) == b"\x04"


def test_compact_signature() -> None:
    withdraw = Withdraw(account_id=1, amount=2, expiry=3, nonce=4, signature=SIG27)
    assert encode_transaction(withdraw) == b"\x03\x01\x02\x03\x04" + SIG27[:64]
    withdraw28 = Withdraw(account_id=1, amount=2, expiry=3, nonce=4, signature=SIG28)
    assert encode_transaction(withdraw28) == b"\x03\x01\x02\x03\x04" + SIG28[:32] + b"\xff" + SIG28[33:64]
    assert decode_transaction(encode_transaction(withdraw28)) == withdraw28


def test_real_signature_survives_compact_form() -> None:
    key = PrivateKey(b"\x11" * 32)
    digest = keccak(b"withdraw")
    raw = key.sign_recoverable(digest, hasher=None)
    signature = raw[:64] + bytes((27 + raw[64],))
    address = keccak(key.public_key.format(compressed=False)[1:])[12:]
    withdraw = Withdraw(account_id=7, amount=1, expiry=2, nonce=3, signature=signature)
    tx = decode_transaction(encode_transaction(withdraw))
    assert isinstance(tx, Withdraw) and tx.signature == signature
    assert recover_signer(digest, tx.signature) == address


def test_funding_tick_zigzag() -> None:
    tick = FundingTick(timestamp=1, indices=(0, -1, 1, -2, 63, -64, 64))
    assert encode_transaction(tick) == b"\x06\x01\x07" + b"\x00\x01\x02\x03\x7e\x7f\x80\x01"
    extremes = FundingTick(timestamp=0, indices=(MAX_FUNDING_INDEX, -MAX_FUNDING_INDEX))
    assert decode_transaction(encode_transaction(extremes)) == extremes


def test_trade_flags() -> None:
    order = Order(
        account_id=5, market=3, is_buy=True, size=10, limit_price=7, fee_rate=0, expiry=9, nonce=1, signature=SIG27
    )
    order_bytes = b"\x05\x07\x0a\x07\x00\x09\x01" + SIG27[:64]
    assert encode_transaction(Trade(maker=SlotRef(slot=2), taker=order, size=10)) == b"\x52\x02" + order_bytes
    assert encode_transaction(Trade(maker=SlotRef(slot=2), taker=order, size=4)) == b"\x12\x02" + order_bytes + b"\x04"
    assert encode_transaction(Trade(maker=order, taker=SlotRef(slot=2), size=10)) == b"\x22" + order_bytes + b"\x02\x0a"
    assert encode_transaction(Trade(maker=SlotRef(slot=1), taker=SlotRef(slot=2), size=3)) == b"\x32\x01\x02\x03"
    # The omitted-size flag follows the taker only, never the maker.
    assert encode_transaction(Trade(maker=order, taker=SlotRef(slot=2), size=10))[0] & 0x40 == 0
    assert encode_transaction(Liquidate(liquidator=SlotRef(slot=2), liquidated_id=1, size=3)) == b"\x17\x02\x01\x03"
    liquidate = Liquidate(liquidator=order, liquidated_id=1, size=3)
    assert encode_transaction(liquidate) == b"\x07" + order_bytes + b"\x01\x03"


def test_worked_example_in_docs() -> None:
    """docs/codec.md: a new taker order fully filled against a resting maker is 92 bytes framed."""
    taker = Order(
        account_id=50_000,  # 3 bytes
        market=0,  # 1 byte with the side
        is_buy=True,
        size=500_000_000,  # 0.5 ETH in 1e-9 ETH: 5 bytes
        limit_price=300_000_000,  # 3,000 USD: 5 bytes
        fee_rate=500,  # 0.05 %: 2 bytes
        expiry=1_800_000_000,  # 5 bytes
        nonce=1_000,  # 2 bytes
        signature=SIG28,  # 64 bytes
    )
    order_len = 3 + 1 + 5 + 5 + 2 + 5 + 2 + 64
    full = Trade(maker=SlotRef(slot=1_000_000), taker=taker, size=500_000_000)
    assert len(encode_transaction(full)) == 1 + 3 + order_len == 91
    assert len(encode_batch([full])) == 92
    partial = Trade(maker=SlotRef(slot=1_000_000), taker=taker, size=200_000_000)
    assert len(encode_batch([partial])) == 96
    both_resting = Trade(maker=SlotRef(slot=1_000_000), taker=SlotRef(slot=1_000_001), size=200_000_000)
    assert len(encode_batch([both_resting])) == 12


# --- malformed records ----------------------------------------------------------------------------------

WITHDRAW = encode_transaction(Withdraw(account_id=1, amount=2, expiry=3, nonce=4, signature=SIG27))
ORDER = Order(
    account_id=5, market=3, is_buy=False, size=10, limit_price=7, fee_rate=0, expiry=9, nonce=1, signature=SIG27
)
ORDER_BYTES = encode_transaction(Trade(maker=SlotRef(slot=0), taker=ORDER, size=10))[2:]
U64_OVER = b"\x80" * 9 + b"\x02"  # 2^64 in ten bytes


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x01\x85\x00", id="non-minimal varint"),
        pytest.param(b"\x01\x80\x00", id="non-minimal zero"),
        pytest.param(b"\x01\x80\x80\x80\x80\x80\x01", id="overlong u32 varint"),
        pytest.param(b"\x01\x80\x80\x80\x80\x80", id="unterminated varint"),
        pytest.param(b"\x01\x80\x80\x80\x80\x10", id="account id 2^32"),
        pytest.param(b"\x03\x01" + U64_OVER + b"\x03\x04" + SIG27[:64], id="amount 2^64"),
        pytest.param(b"\x03\x01" + b"\x80" * 10 + b"\x01\x03\x04" + SIG27[:64], id="overlong u64 varint"),
        pytest.param(
            b"\x22\x05\x07\x0a\x07\x80\x80\x80\x80\x10\x09\x01" + SIG27[:64] + b"\x02\x01", id="fee rate 2^32"
        ),
        pytest.param(b"\x00", id="type 0"),
        pytest.param(b"\x09\x01", id="type 9"),
        pytest.param(b"\x0f", id="type f"),
        pytest.param(b"\x11\x01", id="undefined flag deposit"),
        pytest.param(b"\x84", id="undefined flag forced withdraw"),
        pytest.param(b"\xb2\x01\x02\x03", id="trade flag 0x80"),
        pytest.param(b"\x27\x01\x02\x03", id="liquidate flag 0x20"),
        pytest.param(b"\x01\x05\x00", id="trailing byte"),
        pytest.param(b"\x04\x00", id="forced withdraw trailing byte"),
        pytest.param(WITHDRAW[:-1], id="truncated signature"),
        pytest.param(b"\x72\x01\x02", id="omitted size with ref taker"),
        pytest.param(b"\x72\x01\x02\x03", id="omitted size with ref taker and size"),
        pytest.param(b"\x12\x02" + ORDER_BYTES + b"\x0a", id="explicit size equal to new taker size"),
        pytest.param(
            b"\x05\x00" + bytes((MAX_ORACLES + 1,)) + (b"\x00\x01\x01" + SIG27[:64]) * (MAX_ORACLES + 1),
            id="too many oracle samples",
        ),
        pytest.param(
            b"\x06\x00" + bytes((MAX_MARKETS + 1,)) + b"\x00" * (MAX_MARKETS + 1), id="too many funding indices"
        ),
        pytest.param(b"\x06\x00\x01" + b"\xff" * 18 + b"\x03", id="zigzag 2^128 - 1"),
        pytest.param(b"\x08\x01\x02\x03", id="deleverage truncated"),
    ],
)
def test_malformed(record: bytes) -> None:
    assert decode_transaction(record) == Malformed(data=record)
    assert _reference_decode(record) == Malformed(data=record)
    assert encode_transaction(Malformed(data=record)) == record


def test_boundaries_decode() -> None:
    most_samples = (b"\x00\x01\x01" + SIG27[:64]) * MAX_ORACLES
    assert isinstance(decode_transaction(b"\x05\x00" + bytes((MAX_ORACLES,)) + most_samples), OraclePrice)
    assert isinstance(decode_transaction(b"\x06\x00" + bytes((MAX_MARKETS,)) + b"\x00" * MAX_MARKETS), FundingTick)
    assert decode_transaction(b"\x01\xff\xff\xff\xff\x0f") == Deposit(account_id=MAX_ACCOUNT_ID)
    u64_max = b"\xff" * 9 + b"\x01"
    assert decode_transaction(b"\x03\x01" + u64_max + b"\x03\x04" + SIG27[:64]) == Withdraw(
        account_id=1, amount=MAX_AMOUNT, expiry=3, nonce=4, signature=SIG27
    )
    assert decode_transaction(b"\x06\x00\x01" + b"\xfe" + b"\xff" * 17 + b"\x03") == FundingTick(
        timestamp=0, indices=(MAX_FUNDING_INDEX,)
    )


# --- encode errors --------------------------------------------------------------------------------------


def _order(**changes: Any) -> Order:
    fields = {f: getattr(ORDER, f) for f in ORDER.__struct_fields__}
    fields.update(changes)
    return Order(**fields)


@pytest.mark.parametrize(
    "tx",
    [
        pytest.param(Withdraw(account_id=1, amount=2, expiry=3, nonce=4, signature=SIG27[:64]), id="64-byte signature"),
        pytest.param(Withdraw(account_id=1, amount=2, expiry=3, nonce=4, signature=SIG27[:64] + b"\x00"), id="v=0"),
        pytest.param(Withdraw(account_id=1, amount=2, expiry=3, nonce=4, signature=SIG27[:64] + b"\x1d"), id="v=29"),
        pytest.param(
            Withdraw(account_id=1, amount=2, expiry=3, nonce=4, signature=SIG27[:32] + b"\x80" + SIG27[33:]),
            id="s >= 2^255",
        ),
        pytest.param(
            Withdraw(account_id=1, amount=2, expiry=3, nonce=4, signature=bytearray(SIG27)), id="bytearray signature"
        ),
        pytest.param(Deposit(account_id=MAX_ACCOUNT_ID + 1), id="account id too big"),
        pytest.param(Deposit(account_id=-1), id="negative"),
        pytest.param(Deposit(account_id=True), id="bool for int"),
        pytest.param(Deposit(account_id=10**5000), id="an int too big to print"),
        pytest.param(Trade(maker=SlotRef(slot=1), taker=_order(market=128), size=1), id="order market 128"),
        pytest.param(Trade(maker=SlotRef(slot=1), taker=_order(is_buy=1), size=1), id="int side"),
        pytest.param(Trade(maker=SlotRef(slot=1), taker=_order(fee_rate=MAX_U32 + 1), size=1), id="fee rate"),
        pytest.param(Trade(maker=SlotRef(slot=MAX_SLOT_ID + 1), taker=ORDER, size=1), id="slot too big"),
        pytest.param(Trade(maker=SlotRef(slot=1), taker=ORDER, size=MAX_AMOUNT + 1), id="size too big"),
        pytest.param(Trade(maker=Deposit(account_id=1), taker=ORDER, size=1), id="maker not an order"),
        pytest.param(OraclePrice(market=256, samples=()), id="oracle market"),
        pytest.param(OraclePrice(market=1, samples=[]), id="samples list"),
        pytest.param(
            OraclePrice(market=1, samples=(PriceSample(oracle_index=0, price=1, timestamp=1, signature=SIG27),) * 33),
            id="too many samples",
        ),
        pytest.param(FundingTick(timestamp=1, indices=(MAX_FUNDING_INDEX + 1,)), id="funding index"),
        pytest.param(FundingTick(timestamp=1, indices=(0,) * (MAX_MARKETS + 1)), id="too many indices"),
        pytest.param(Deleverage(deleveraged_id=1, deleverager_id=2, market=256, size=1), id="deleverage market"),
        pytest.param(Malformed(data=b"\x01\x05"), id="malformed that decodes"),
        pytest.param(Malformed(data=bytearray(b"\x00")), id="malformed bytearray"),
        pytest.param(SlotRef(slot=1), id="not a transaction"),
    ],
)
def test_encode_errors(tx: Any) -> None:
    with pytest.raises(EncodeError):
        encode_transaction(tx)


def test_batch_limits() -> None:
    with pytest.raises(EncodeError):
        frame_records([b"\x00" * 0x8000])
    with pytest.raises(EncodeError):
        encode_batch([ForcedWithdraw()] * (MAX_BATCH_TXS + 1))
    long_record = b"\x05\x00" + b"\x00" * 0x7FFD  # 0x7fff bytes: the longest that frames
    assert frame_records([long_record])[:2] == b"\xff\xff"


# --- framing ------------------------------------------------------------------------------------------


def test_split_records() -> None:
    assert split_records(b"") == []
    assert split_records(b"\x00") == [b""]
    assert split_records(b"\x02\x01\x05\x01\x04") == [b"\x01\x05", b"\x04"]
    assert split_records(b"\x80\x02\x01\x05") == [b"\x01\x05"]  # non-shortest prefix: still read
    assert split_records(b"\x85") == [b""]  # two-byte prefix cut off at the end
    assert split_records(b"\x01\x04\x85") == [b"\x04", b""]
    assert split_records(b"\x05\x01\x02") == [b"\x01\x02"]  # truncated record
    assert split_records(b"\x81\x00" + b"\x04" * 256 + b"\x02\x01\x05") == [b"\x04" * 256, b"\x01\x05"]
    assert decode_batch(b"\x02\x01\x05\x81") == [Deposit(account_id=5), Malformed(data=b"")]
    assert decode_batch(b"\x05\x01\x85") == [Malformed(data=b"\x01\x85")]
    # The cut-off tail is decoded as it stands, so it may still be a valid record: framing is not
    # canonical (the tx root, over records, is unaffected).
    assert decode_batch(b"\x05\x01\x02") == [Deposit(account_id=2)]


def test_shortest_prefix() -> None:
    assert frame_records([b"\x04" * 0x7F])[:1] == b"\x7f"
    assert frame_records([b"\x04" * 0x80])[:2] == b"\x80\x80"
    assert frame_records([b"\x04" * 0x1234])[:2] == b"\x92\x34"
    for length in (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF):
        assert split_records(frame_records([b"\x04" * length, b"\x01\x02"])) == [b"\x04" * length, b"\x01\x02"]


# --- transaction tree ---------------------------------------------------------------------------------


def _merkle_tree_root(records: list[bytes]) -> MerkleTree:
    tree = MerkleTree(TX_TREE_DEPTH)
    tree.update({k: keccak(record) for k, record in enumerate(records)})
    return tree


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7, 1000])
def test_tx_root_matches_merkle_tree(n: int) -> None:
    records = [encode_transaction(Deposit(account_id=k)) for k in range(n)]
    tree = _merkle_tree_root(records)
    assert compute_tx_root(records) == tree.root()
    for k in {0, n // 2, max(n - 1, 0), n, MAX_BATCH_TXS - 1}:
        assert get_tx_proof(records, k) == tree.proof(k)


def test_tx_proofs() -> None:
    records = [encode_transaction(tx) for tx in (Deposit(account_id=1), ForcedWithdraw(), Deposit(account_id=2))]
    records += [b"", b"\x00garbage"]
    root = compute_tx_root(records)
    for k, record in enumerate(records):
        siblings = get_tx_proof(records, k)
        assert len(siblings) == TX_TREE_DEPTH
        assert verify_tx_proof(root, k, record, siblings)
        assert not verify_tx_proof(root, k, record + b"\x00", siblings)  # wrong record
        assert not verify_tx_proof(root, k ^ 1, record, siblings)  # wrong index
        assert not verify_tx_proof(root, k + 2**TX_TREE_DEPTH, record, siblings)  # out of range
        assert not verify_tx_proof(root, k, record, siblings[:-1])  # short proof
    # An absent position holds no record, not even the empty one.
    assert not verify_tx_proof(root, len(records), b"", get_tx_proof(records, len(records)))
    assert not verify_tx_proof(root, 0, records[1], get_tx_proof(records, 0))


def test_tx_root_full_batch() -> None:
    records = [k.to_bytes(3, "big") for k in range(MAX_BATCH_TXS)]
    root = compute_tx_root(records)
    assert root == _merkle_tree_root(records).root()
    k = MAX_BATCH_TXS - 1
    assert verify_tx_proof(root, k, records[k], get_tx_proof(records, k))
    with pytest.raises(ValueError):
        compute_tx_root(records + [b""])
