"""Record codec: one transaction <-> one compact byte record (the payload behind a batch's length
prefix). Documented in docs/codec.md; mirrored by contracts/src/osp/OspCodec.sol byte for byte.

- A record is a tag byte (low nibble: type, high nibble: flags) followed by the type's fields.
  `decode_transaction` never raises: anything that does not decode exactly becomes
  `Malformed(data=record)`, an explicit, always-invalid transaction.
- Every transaction that is not `Malformed` has exactly one encoding (minimal varints, undefined flags
  zero, no trailing bytes, the Trade "size omitted" flag forced when it applies), so
  `encode_transaction(decode_transaction(r)) == r` whenever `r` decodes to a real transaction.

Integers are unsigned LEB128 ("varints"): ids, fees and nonces are small and prices and sizes rarely
need all 64 bits, so this removes the zero padding a fixed-width layout would post (and pay for) on L1.
The batch framing is in `batch_framing`, the transaction tree in `tx_tree`.
"""

from __future__ import annotations

from typing import Callable

from .constants import SIGNATURE_LEN
from .errors import DecodeError, EncodeError
from .fields import Bound, Count, describe, get_field_specs, get_varint_len
from .types import (
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
    OrderOrRef,
    PriceSample,
    SlotRef,
    Trade,
    Transaction,
    Withdraw,
)

__all__ = [
    "decode_transaction",
    "encode_transaction",
]

# --- protocol constants ------------------------------------------------------------------------------

# Record types (low nibble of the tag byte). 0x0 and 0xb-0xf are undefined and decode Malformed.
TYPE_DEPOSIT = 0x1
TYPE_TRADE = 0x2
TYPE_WITHDRAW = 0x3
TYPE_FORCED_WITHDRAW = 0x4
TYPE_ORACLE_PRICE = 0x5
TYPE_FUNDING_TICK = 0x6
TYPE_LIQUIDATE = 0x7
TYPE_DELEVERAGE = 0x8
TYPE_CANCEL_ALL = 0x9
TYPE_COLLECT_FEES = 0xA

# Flags (high nibble of the tag byte); a flag not defined for the record's type must be 0.
FLAG_MAKER_REF = 0x10  # Trade: the maker is a SlotRef
FLAG_TAKER_REF = 0x20  # Trade: the taker is a SlotRef
FLAG_SIZE_OMITTED = 0x40  # Trade: size omitted, it equals the new taker order's size
FLAG_LIQUIDATOR_REF = 0x10  # Liquidate: the liquidator is a SlotRef

COMPACT_SIGNATURE_LEN = SIGNATURE_LEN - 1  # EIP-2098: v folds into the top bit of s
_R_LEN = 32  # r, then yParity << 255 | s, each 32 bytes
_Y_PARITY_BIT = 0x80  # the top bit of the second word's first byte (the decoder spells it, for speed)
_V27 = b"\x1b"
_V28 = b"\x1c"


# --- field bounds, from the field table (spec/fields.py) ---------------------------------------------


# An unsigned integer field as the record stores it: (its maximum, the most bytes its varint may take,
# ceil(bits / 7)). A plain tuple, not a NamedTuple: the decoder unpacks one per multi-byte varint, and
# CPython unpacks an exact tuple fastest.
_Field = tuple[int, int]


def _fields(struct_type: type) -> dict[str, _Field]:
    """Every integer field of `struct_type`, with the bound its declaration names."""
    out = {}
    for spec in get_field_specs(struct_type):
        if spec.kind is int and type(spec.bound) is Bound:
            assert spec.bound.low == 0, f"{struct_type.__name__}.{spec.name} is signed: not a plain varint"
            out[spec.name] = (spec.bound.high, get_varint_len(spec.bound))
    return out


def _list_spec(struct_type: type, name: str) -> tuple[int, Bound | None]:
    """A list field of `struct_type`: the Count it declares, and the Bound of its items if they are ints."""
    spec = next(spec for spec in get_field_specs(struct_type) if spec.name == name)
    assert type(spec.bound) is Count and spec.item is not None
    return spec.bound.high, spec.item.bound if type(spec.item.bound) is Bound else None


_DEPOSIT = _fields(Deposit)
_ORDER = _fields(Order)
_SLOT_REF = _fields(SlotRef)
_TRADE = _fields(Trade)
_WITHDRAW = _fields(Withdraw)
_ORACLE_PRICE = _fields(OraclePrice)
_SAMPLE = _fields(PriceSample)
_FUNDING_TICK = _fields(FundingTick)
_LIQUIDATE = _fields(Liquidate)
_DELEVERAGE = _fields(Deleverage)
_CANCEL_ALL = _fields(CancelAll)
_COLLECT_FEES = _fields(CollectFees)
MAX_SAMPLES, _ = _list_spec(OraclePrice, "samples")
MAX_INDICES, _FUNDING_INDEX = _list_spec(FundingTick, "indices")
assert _FUNDING_INDEX is not None and _FUNDING_INDEX.low == -_FUNDING_INDEX.high  # zigzag needs it symmetric
# Zigzag image of the largest |funding index|: zz(x) = 2x (x >= 0), -2x - 1 (x < 0).
MAX_ZIGZAG_FUNDING = 2 * _FUNDING_INDEX.high
_ZIGZAG: _Field = (MAX_ZIGZAG_FUNDING, get_varint_len(Bound(0, MAX_ZIGZAG_FUNDING)))


# --- decoding ----------------------------------------------------------------------------------------
#
# Written for speed, because the verifier decodes every batch: index arithmetic over `bytes`, fields
# read straight into positional struct constructors. A read past the end raises IndexError, which
# `decode_transaction` turns into Malformed exactly like an explicit DecodeError (slices never raise,
# so every slice is length-checked explicitly).


def _varint(data: bytes, i: int, field: _Field) -> tuple[int, int]:
    """Minimal unsigned LEB128 at data[i], within `field` = (maximum, most bytes) (every
    varint field's maximum is >= 0x7f, so a single byte never needs the range check; test_fields
    checks it). Returns (value, next index)."""
    b = data[i]
    if b < 0x80:  # format: LEB128's "more follows" bit (literals here: this runs ~20 times per trade)
        return b, i + 1
    high, max_len = field
    value = b & 0x7F
    shift = 7
    end = i + max_len
    i += 1
    while True:
        if i >= end:
            raise DecodeError("varint longer than its field allows")
        b = data[i]
        i += 1
        if b < 0x80:  # format: the last byte of the varint
            if b == 0:
                raise DecodeError("non-minimal varint (trailing zero group)")
            value |= b << shift
            if value > high:
                raise DecodeError("varint above the field's maximum")
            return value, i
        value |= (b & 0x7F) << shift
        shift += 7


def _signature(data: bytes, i: int) -> tuple[bytes, int]:
    """EIP-2098 compact signature: r (32 bytes), then yParity << 255 | s (32 bytes). Expanded to the
    65-byte r ‖ s ‖ v (v = 27 + yParity) the rest of the spec uses. Any 64 bytes decode; whether the
    signature is usable (r, s ranges, low s, recovery) is the state transition's business."""
    end = i + COMPACT_SIGNATURE_LEN
    if end > len(data):
        raise DecodeError("truncated signature")
    top = data[i + 32]  # the first byte of yParity << 255 | s
    if top < 0x80:  # format: yParity = 0
        return data[i:end] + _V27, end
    return data[i : i + 32] + bytes((top & 0x7F,)) + data[i + 33 : end] + _V28, end


def _order(data: bytes, i: int) -> tuple[Order, int]:
    """A new signed order. The market and side share a byte (market << 1 | is_buy)."""
    account_id, i = _varint(data, i, _ORDER["account_id"])
    market_side = data[i]
    size, i = _varint(data, i + 1, _ORDER["size"])
    limit_price, i = _varint(data, i, _ORDER["limit_price"])
    fee_rate, i = _varint(data, i, _ORDER["fee_rate"])
    expiry, i = _varint(data, i, _ORDER["expiry"])
    nonce, i = _varint(data, i, _ORDER["nonce"])
    signature, i = _signature(data, i)
    order = Order(
        account_id, market_side >> 1, (market_side & 1) == 1, size, limit_price, fee_rate, expiry, nonce, signature
    )
    return order, i


def _slot_ref(data: bytes, i: int) -> tuple[SlotRef, int]:
    """A resting order continued by its slot id: a few bytes instead of ~90 for the signed order."""
    slot, i = _varint(data, i, _SLOT_REF["slot"])
    return SlotRef(slot), i


def _decode_deposit(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    account_id, i = _varint(data, i, _DEPOSIT["account_id"])
    return Deposit(account_id), i


def _decode_trade(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    # Flags pick SlotRef vs new order per side, and let a full fill of a new taker omit the size.
    if flags & 0x80:
        raise DecodeError("undefined flag")
    maker: OrderOrRef
    taker: OrderOrRef
    if flags & FLAG_MAKER_REF:
        maker, i = _slot_ref(data, i)
    else:
        maker, i = _order(data, i)
    if flags & FLAG_TAKER_REF:
        if flags & FLAG_SIZE_OMITTED:
            raise DecodeError("size omitted, but the taker is a slot reference")
        taker, i = _slot_ref(data, i)
        size, i = _varint(data, i, _TRADE["size"])
    else:
        new_taker, i = _order(data, i)
        taker = new_taker
        if flags & FLAG_SIZE_OMITTED:
            size = new_taker.size
        else:
            size, i = _varint(data, i, _TRADE["size"])
            if size == new_taker.size:
                raise DecodeError("explicit size equal to the new taker's size (must use the omitted-size flag)")
    return Trade(maker, taker, size), i


def _decode_withdraw(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    account_id, i = _varint(data, i, _WITHDRAW["account_id"])
    amount, i = _varint(data, i, _WITHDRAW["amount"])
    expiry, i = _varint(data, i, _WITHDRAW["expiry"])
    nonce, i = _varint(data, i, _WITHDRAW["nonce"])
    signature, i = _signature(data, i)
    return Withdraw(account_id, amount, expiry, nonce, signature), i


def _decode_forced_withdraw(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    # Everything comes from the L1 forced-withdrawal queue; the record only marks the position.
    if flags:
        raise DecodeError("undefined flag")
    return ForcedWithdraw(), i


def _decode_oracle_price(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    market = data[i]
    count = data[i + 1]
    if count > MAX_SAMPLES:
        raise DecodeError("more samples than OraclePrice.samples allows")
    i += 2
    samples = []
    for _ in range(count):
        oracle_index = data[i]
        price, i = _varint(data, i + 1, _SAMPLE["price"])
        timestamp, i = _varint(data, i, _SAMPLE["timestamp"])
        signature, i = _signature(data, i)
        samples.append(PriceSample(oracle_index, price, timestamp, signature))
    return OraclePrice(market, tuple(samples)), i


def _decode_funding_tick(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    # Indices are signed and usually small relative to 2^127: zigzag keeps them short either way.
    if flags:
        raise DecodeError("undefined flag")
    timestamp, i = _varint(data, i, _FUNDING_TICK["timestamp"])
    count = data[i]
    if count > MAX_INDICES:
        raise DecodeError("more indices than FundingTick.indices allows")
    i += 1
    indices = []
    for _ in range(count):
        zz, i = _varint(data, i, _ZIGZAG)
        indices.append(-((zz + 1) >> 1) if zz & 1 else zz >> 1)
    return FundingTick(timestamp, tuple(indices)), i


def _decode_liquidate(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags & ~FLAG_LIQUIDATOR_REF:
        raise DecodeError("undefined flag")
    liquidator: OrderOrRef
    if flags:
        liquidator, i = _slot_ref(data, i)
    else:
        liquidator, i = _order(data, i)
    liquidated_id, i = _varint(data, i, _LIQUIDATE["liquidated_id"])
    size, i = _varint(data, i, _LIQUIDATE["size"])
    return Liquidate(liquidator, liquidated_id, size), i


def _decode_deleverage(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    deleveraged_id, i = _varint(data, i, _DELEVERAGE["deleveraged_id"])
    deleverager_id, i = _varint(data, i, _DELEVERAGE["deleverager_id"])
    market = data[i]
    size, i = _varint(data, i + 1, _DELEVERAGE["size"])
    return Deleverage(deleveraged_id, deleverager_id, market, size), i


def _decode_cancel_all(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    account_id, i = _varint(data, i, _CANCEL_ALL["account_id"])
    nonce_floor, i = _varint(data, i, _CANCEL_ALL["nonce_floor"])
    signature, i = _signature(data, i)
    return CancelAll(account_id, nonce_floor, signature), i


def _decode_collect_fees(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    account_id, i = _varint(data, i, _COLLECT_FEES["account_id"])
    return CollectFees(account_id), i


_Decoder = Callable[[bytes, int, int], tuple[Transaction, int]]

# Indexed by the tag's low nibble; None = undefined type.
_DECODERS: tuple[_Decoder | None, ...] = (
    None,
    _decode_deposit,
    _decode_trade,
    _decode_withdraw,
    _decode_forced_withdraw,
    _decode_oracle_price,
    _decode_funding_tick,
    _decode_liquidate,
    _decode_deleverage,
    _decode_cancel_all,
    _decode_collect_fees,
    None,
    None,
    None,
    None,
    None,
)


def decode_transaction(record: bytes) -> Transaction:
    """The transaction a record (payload without its length prefix) encodes; `Malformed(data=record)`
    for anything that does not decode exactly (empty, unknown type, undefined flag, field out of range,
    non-minimal varint, truncated, trailing bytes). Never raises for bytes-like input."""
    if type(record) is not bytes:
        record = bytes(record)
    try:
        tag = record[0]
        decoder = _DECODERS[tag & 0x0F]
        if decoder is not None:
            tx, end = decoder(record, 1, tag & 0xF0)
            if end == len(record):
                return tx
    except (DecodeError, IndexError):
        pass
    return Malformed(record)


# --- encoding ----------------------------------------------------------------------------------------
#
# Strict about types (int, not bool; bytes, not bytearray; tuples for sequences) so that
# decode(encode(tx)) == tx and the decoded transaction behaves identically in the state transition.


def _check_int(value: object, field: _Field, name: str) -> int:
    if type(value) is not int or not 0 <= value <= field[0]:
        raise EncodeError(f"{name} must be an int in [0, {field[0]}], got {describe(value)}")
    return value


def _put_varint(out: bytearray, value: int) -> None:
    """Unsigned LEB128, minimal by construction: 7 bits per byte, low group first, high bit = more."""
    while value >= 0x80:  # format: more than 7 bits left
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_signature(out: bytearray, signature: object, name: str) -> None:
    """EIP-2098 compact form: v (27/28) folds into the top bit of s, which is always clear for a
    low-s signature, so a 65-byte signature costs 64 bytes and the contract re-expands it cheaply."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_LEN:
        raise EncodeError(f"{name}: signature must be {SIGNATURE_LEN} bytes r ‖ s ‖ v")
    v = signature[COMPACT_SIGNATURE_LEN]
    if v not in (27, 28):
        raise EncodeError(f"{name}: signature v must be 27 or 28, got {v}")
    if signature[_R_LEN] & _Y_PARITY_BIT:
        raise EncodeError(f"{name}: signature s must be < 2^255 to fit the compact form")
    if v == 27:
        out += signature[:COMPACT_SIGNATURE_LEN]
    else:
        out += signature[:_R_LEN]
        out.append(signature[_R_LEN] | _Y_PARITY_BIT)
        out += signature[_R_LEN + 1 : COMPACT_SIGNATURE_LEN]


def _check_order(order: Order) -> None:
    """Raise the EncodeError naming the first field of `order` the record cannot carry."""
    _check_int(order.account_id, _ORDER["account_id"], "order.account_id")
    _check_int(order.market, _ORDER["market"], "order.market")
    if type(order.is_buy) is not bool:
        raise EncodeError(f"order.is_buy must be a bool, got {order.is_buy!r}")
    for name in _ORDER_VARINTS:
        _check_int(getattr(order, name), _ORDER[name], f"order.{name}")


_ORDER_VARINTS = ("size", "limit_price", "fee_rate", "expiry", "nonce")  # after the market byte, in record order
_MAX_ACCOUNT_ID, _MAX_ORDER_MARKET, _MAX_SIZE, _MAX_PRICE, _MAX_FEE_RATE, _MAX_EXPIRY, _MAX_NONCE = (
    _ORDER[name][0] for name in ("account_id", "market", *_ORDER_VARINTS)
)


def _put_order(out: bytearray, order: Order) -> None:
    # One test of every field (a Trade's new orders are encoded at every first fill, on the engine's
    # thread); only an order that fails it is checked field by field, for the error's name.
    account_id, market, size, limit_price = order.account_id, order.market, order.size, order.limit_price
    fee_rate, expiry, nonce = order.fee_rate, order.expiry, order.nonce
    if not (
        type(account_id) is int and 0 <= account_id <= _MAX_ACCOUNT_ID
        and type(market) is int and 0 <= market <= _MAX_ORDER_MARKET
        and type(order.is_buy) is bool
        and type(size) is int and 0 <= size <= _MAX_SIZE
        and type(limit_price) is int and 0 <= limit_price <= _MAX_PRICE
        and type(fee_rate) is int and 0 <= fee_rate <= _MAX_FEE_RATE
        and type(expiry) is int and 0 <= expiry <= _MAX_EXPIRY
        and type(nonce) is int and 0 <= nonce <= _MAX_NONCE
    ):
        _check_order(order)
    _put_varint(out, account_id)
    out.append(market << 1 | order.is_buy)  # the market shares a byte with the side
    for value in (size, limit_price, fee_rate, expiry, nonce):
        while value >= 0x80:  # format: more than 7 bits left (_put_varint inline: five in a row)
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    _put_signature(out, order.signature, "order")


def _put_order_or_ref(out: bytearray, order: object, ref_flag: int, name: str) -> int:
    """Append a new order or a slot reference; return `ref_flag` if it was a reference, else 0."""
    if type(order) is SlotRef:
        _put_varint(out, _check_int(order.slot, _SLOT_REF["slot"], f"{name}.slot"))
        return ref_flag
    if type(order) is Order:
        _put_order(out, order)
        return 0
    raise EncodeError(f"{name} must be an Order or a SlotRef, got {type(order).__name__}")


def _encode_deposit(tx: Deposit) -> bytes:
    out = bytearray((TYPE_DEPOSIT,))
    _put_varint(out, _check_int(tx.account_id, _DEPOSIT["account_id"], "account_id"))
    return bytes(out)


def _encode_trade(tx: Trade) -> bytes:
    # A maker or taker already resting in the state is sent as its slot id, not re-signed. The size is
    # omitted exactly when it equals a new taker's size (the common "taker fully filled" case), and
    # that choice is forced so the record stays canonical.
    out = bytearray(1)
    flags = _put_order_or_ref(out, tx.maker, FLAG_MAKER_REF, "maker")
    flags |= _put_order_or_ref(out, tx.taker, FLAG_TAKER_REF, "taker")
    size = _check_int(tx.size, _TRADE["size"], "size")
    if type(tx.taker) is Order and size == tx.taker.size:
        flags |= FLAG_SIZE_OMITTED
    else:
        _put_varint(out, size)
    out[0] = TYPE_TRADE | flags
    return bytes(out)


def _encode_withdraw(tx: Withdraw) -> bytes:
    out = bytearray((TYPE_WITHDRAW,))
    _put_varint(out, _check_int(tx.account_id, _WITHDRAW["account_id"], "account_id"))
    _put_varint(out, _check_int(tx.amount, _WITHDRAW["amount"], "amount"))
    _put_varint(out, _check_int(tx.expiry, _WITHDRAW["expiry"], "expiry"))
    _put_varint(out, _check_int(tx.nonce, _WITHDRAW["nonce"], "nonce"))
    _put_signature(out, tx.signature, "withdraw")
    return bytes(out)


def _encode_forced_withdraw(tx: ForcedWithdraw) -> bytes:
    # No payload: the request's fields are on L1, in the forced-withdrawal queue.
    return bytes((TYPE_FORCED_WITHDRAW,))


def _encode_oracle_price(tx: OraclePrice) -> bytes:
    # Market and oracle index are single bytes (both are uint8 in the signed EIP-712 struct).
    out = bytearray((TYPE_ORACLE_PRICE,))
    out.append(_check_int(tx.market, _ORACLE_PRICE["market"], "market"))
    if type(tx.samples) is not tuple or len(tx.samples) > MAX_SAMPLES:
        raise EncodeError(f"samples must be a tuple of at most {MAX_SAMPLES} PriceSample")
    out.append(len(tx.samples))
    for sample in tx.samples:
        if type(sample) is not PriceSample:
            raise EncodeError(f"samples must hold PriceSample, got {type(sample).__name__}")
        out.append(_check_int(sample.oracle_index, _SAMPLE["oracle_index"], "sample.oracle_index"))
        _put_varint(out, _check_int(sample.price, _SAMPLE["price"], "sample.price"))
        _put_varint(out, _check_int(sample.timestamp, _SAMPLE["timestamp"], "sample.timestamp"))
        _put_signature(out, sample.signature, "sample")
    return bytes(out)


def _encode_funding_tick(tx: FundingTick) -> bytes:
    # zigzag (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) keeps small negative indices short.
    out = bytearray((TYPE_FUNDING_TICK,))
    _put_varint(out, _check_int(tx.timestamp, _FUNDING_TICK["timestamp"], "timestamp"))
    if type(tx.indices) is not tuple or len(tx.indices) > MAX_INDICES:
        raise EncodeError(f"indices must be a tuple of at most {MAX_INDICES} ints")
    out.append(len(tx.indices))
    for index in tx.indices:
        if type(index) is not int or not _FUNDING_INDEX.low <= index <= _FUNDING_INDEX.high:
            raise EncodeError(f"funding index must be an int in [{_FUNDING_INDEX.low}, {_FUNDING_INDEX.high}], got {describe(index)}")
        _put_varint(out, 2 * index if index >= 0 else -2 * index - 1)
    return bytes(out)


def _encode_liquidate(tx: Liquidate) -> bytes:
    out = bytearray(1)
    flags = _put_order_or_ref(out, tx.liquidator, FLAG_LIQUIDATOR_REF, "liquidator")
    _put_varint(out, _check_int(tx.liquidated_id, _LIQUIDATE["liquidated_id"], "liquidated_id"))
    _put_varint(out, _check_int(tx.size, _LIQUIDATE["size"], "size"))
    out[0] = TYPE_LIQUIDATE | flags
    return bytes(out)


def _encode_deleverage(tx: Deleverage) -> bytes:
    out = bytearray((TYPE_DELEVERAGE,))
    _put_varint(out, _check_int(tx.deleveraged_id, _DELEVERAGE["deleveraged_id"], "deleveraged_id"))
    _put_varint(out, _check_int(tx.deleverager_id, _DELEVERAGE["deleverager_id"], "deleverager_id"))
    out.append(_check_int(tx.market, _DELEVERAGE["market"], "market"))
    _put_varint(out, _check_int(tx.size, _DELEVERAGE["size"], "size"))
    return bytes(out)


def _encode_cancel_all(tx: CancelAll) -> bytes:
    out = bytearray((TYPE_CANCEL_ALL,))
    _put_varint(out, _check_int(tx.account_id, _CANCEL_ALL["account_id"], "account_id"))
    _put_varint(out, _check_int(tx.nonce_floor, _CANCEL_ALL["nonce_floor"], "nonce_floor"))
    _put_signature(out, tx.signature, "cancel_all")
    return bytes(out)


def _encode_collect_fees(tx: CollectFees) -> bytes:
    out = bytearray((TYPE_COLLECT_FEES,))
    _put_varint(out, _check_int(tx.account_id, _COLLECT_FEES["account_id"], "account_id"))
    return bytes(out)


def _encode_malformed(tx: Malformed) -> bytes:
    # Posted as is, provided it really is undecodable: otherwise the verifier would read a different
    # transaction than the one the sequencer meant.
    data = tx.data
    if type(data) is not bytes:
        raise EncodeError("Malformed.data must be bytes")
    if type(decode_transaction(data)) is not Malformed:
        raise EncodeError("Malformed.data decodes to a valid transaction")
    return data


_ENCODERS: dict[type, Callable[..., bytes]] = {
    Deposit: _encode_deposit,
    Trade: _encode_trade,
    Withdraw: _encode_withdraw,
    ForcedWithdraw: _encode_forced_withdraw,
    OraclePrice: _encode_oracle_price,
    FundingTick: _encode_funding_tick,
    Liquidate: _encode_liquidate,
    Deleverage: _encode_deleverage,
    CancelAll: _encode_cancel_all,
    CollectFees: _encode_collect_fees,
    Malformed: _encode_malformed,
}


def encode_transaction(tx: Transaction) -> bytes:
    """The record payload of `tx` (no length prefix). Raises EncodeError for a transaction the format
    cannot represent: a field out of range or of the wrong type, an order market above 127, a signature
    that is not 65 bytes with v in {27, 28} and s < 2^255, or Malformed data that would decode."""
    encoder = _ENCODERS.get(type(tx))
    if encoder is None:
        raise EncodeError(f"not a transaction: {type(tx).__name__}")
    return encoder(tx)
