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

from .constants import (
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
from .errors import DecodeError, EncodeError
from .types import (
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

# Record types (low nibble of the tag byte). 0x0 and 0x9-0xf are undefined and decode Malformed.
TYPE_DEPOSIT = 0x1
TYPE_TRADE = 0x2
TYPE_WITHDRAW = 0x3
TYPE_FORCED_WITHDRAW = 0x4
TYPE_ORACLE_PRICE = 0x5
TYPE_FUNDING_TICK = 0x6
TYPE_LIQUIDATE = 0x7
TYPE_DELEVERAGE = 0x8

# Flags (high nibble of the tag byte); a flag not defined for the record's type must be 0.
FLAG_MAKER_REF = 0x10  # Trade: the maker is a SlotRef
FLAG_TAKER_REF = 0x20  # Trade: the taker is a SlotRef
FLAG_SIZE_OMITTED = 0x40  # Trade: size omitted, it equals the new taker order's size
FLAG_LIQUIDATOR_REF = 0x10  # Liquidate: the liquidator is a SlotRef

COMPACT_SIGNATURE_LEN = 64
# Zigzag image of the largest |funding index|: zz(x) = 2x (x >= 0), -2x - 1 (x < 0).
MAX_ZIGZAG_FUNDING = 2 * MAX_FUNDING_INDEX

_S_MASK = (1 << 255) - 1
_V27 = b"\x1b"
_V28 = b"\x1c"


# --- decoding ----------------------------------------------------------------------------------------
#
# Written for speed, because the verifier decodes every batch: index arithmetic over `bytes`, fields
# read straight into positional struct constructors. A read past the end raises IndexError, which
# `decode_transaction` turns into Malformed exactly like an explicit DecodeError (slices never raise,
# so every slice is length-checked explicitly).


def _varint(data: bytes, i: int, high: int, max_len: int) -> tuple[int, int]:
    """Minimal unsigned LEB128 at data[i], at most `max_len` bytes and <= `high` (every field's
    maximum is >= 0x7f, so a single byte never needs the range check). Returns (value, next index)."""
    b = data[i]
    if b < 0x80:
        return b, i + 1
    value = b & 0x7F
    shift = 7
    end = i + max_len
    i += 1
    while True:
        if i >= end:
            raise DecodeError("varint longer than its field allows")
        b = data[i]
        i += 1
        if b < 0x80:
            if b == 0:
                raise DecodeError("non-minimal varint (trailing zero group)")
            value |= b << shift
            if value > high:
                raise DecodeError("varint above the field's maximum")
            return value, i
        value |= (b & 0x7F) << shift
        shift += 7


# Bytes each bounded field may take: ceil(bits / 7).
_LEN_ACCOUNT = (MAX_ACCOUNT_ID.bit_length() + 6) // 7  # 5
_LEN_SLOT = (MAX_SLOT_ID.bit_length() + 6) // 7  # 5
_LEN_AMOUNT = (MAX_AMOUNT.bit_length() + 6) // 7  # 10
_LEN_PRICE = (MAX_PRICE.bit_length() + 6) // 7  # 10
_LEN_TIMESTAMP = (MAX_TIMESTAMP.bit_length() + 6) // 7  # 10
_LEN_NONCE = (MAX_NONCE.bit_length() + 6) // 7  # 10
_LEN_U32 = (MAX_U32.bit_length() + 6) // 7  # 5
_LEN_ZIGZAG = (MAX_ZIGZAG_FUNDING.bit_length() + 6) // 7  # 19


def _signature(data: bytes, i: int) -> tuple[bytes, int]:
    """EIP-2098 compact signature: r (32 bytes), then yParity << 255 | s (32 bytes). Expanded to the
    65-byte r ‖ s ‖ v (v = 27 + yParity) the rest of the spec uses. Any 64 bytes decode; whether the
    signature is usable (r, s ranges, low s, recovery) is the state transition's business."""
    end = i + COMPACT_SIGNATURE_LEN
    if end > len(data):
        raise DecodeError("truncated signature")
    high = data[i + 32]
    if high < 0x80:
        return data[i:end] + _V27, end
    return data[i : i + 32] + bytes((high & 0x7F,)) + data[i + 33 : end] + _V28, end


def _order(data: bytes, i: int) -> tuple[Order, int]:
    """A new signed order. The market and side share a byte (market << 1 | is_buy)."""
    account_id, i = _varint(data, i, MAX_ACCOUNT_ID, _LEN_ACCOUNT)
    market_side = data[i]
    size, i = _varint(data, i + 1, MAX_AMOUNT, _LEN_AMOUNT)
    limit_price, i = _varint(data, i, MAX_PRICE, _LEN_PRICE)
    fee_rate, i = _varint(data, i, MAX_U32, _LEN_U32)
    expiry, i = _varint(data, i, MAX_TIMESTAMP, _LEN_TIMESTAMP)
    nonce, i = _varint(data, i, MAX_NONCE, _LEN_NONCE)
    signature, i = _signature(data, i)
    order = Order(
        account_id, market_side >> 1, (market_side & 1) == 1, size, limit_price, fee_rate, expiry, nonce, signature
    )
    return order, i


def _slot_ref(data: bytes, i: int) -> tuple[SlotRef, int]:
    """A resting order continued by its slot id: a few bytes instead of ~90 for the signed order."""
    slot, i = _varint(data, i, MAX_SLOT_ID, _LEN_SLOT)
    return SlotRef(slot), i


def _decode_deposit(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    account_id, i = _varint(data, i, MAX_ACCOUNT_ID, _LEN_ACCOUNT)
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
        size, i = _varint(data, i, MAX_AMOUNT, _LEN_AMOUNT)
    else:
        new_taker, i = _order(data, i)
        taker = new_taker
        if flags & FLAG_SIZE_OMITTED:
            size = new_taker.size
        else:
            size, i = _varint(data, i, MAX_AMOUNT, _LEN_AMOUNT)
            if size == new_taker.size:
                raise DecodeError("explicit size equal to the new taker's size (must use the omitted-size flag)")
    return Trade(maker, taker, size), i


def _decode_withdraw(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    account_id, i = _varint(data, i, MAX_ACCOUNT_ID, _LEN_ACCOUNT)
    amount, i = _varint(data, i, MAX_AMOUNT, _LEN_AMOUNT)
    expiry, i = _varint(data, i, MAX_TIMESTAMP, _LEN_TIMESTAMP)
    nonce, i = _varint(data, i, MAX_NONCE, _LEN_NONCE)
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
    if count > MAX_ORACLES:
        raise DecodeError("more samples than MAX_ORACLES")
    i += 2
    samples = []
    for _ in range(count):
        oracle_index = data[i]
        price, i = _varint(data, i + 1, MAX_PRICE, _LEN_PRICE)
        timestamp, i = _varint(data, i, MAX_TIMESTAMP, _LEN_TIMESTAMP)
        signature, i = _signature(data, i)
        samples.append(PriceSample(oracle_index, price, timestamp, signature))
    return OraclePrice(market, tuple(samples)), i


def _decode_funding_tick(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    # Indices are signed and usually small relative to 2^127: zigzag keeps them short either way.
    if flags:
        raise DecodeError("undefined flag")
    timestamp, i = _varint(data, i, MAX_TIMESTAMP, _LEN_TIMESTAMP)
    count = data[i]
    if count > MAX_MARKETS:
        raise DecodeError("more indices than MAX_MARKETS")
    i += 1
    indices = []
    for _ in range(count):
        zz, i = _varint(data, i, MAX_ZIGZAG_FUNDING, _LEN_ZIGZAG)
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
    liquidated_id, i = _varint(data, i, MAX_ACCOUNT_ID, _LEN_ACCOUNT)
    size, i = _varint(data, i, MAX_AMOUNT, _LEN_AMOUNT)
    return Liquidate(liquidator, liquidated_id, size), i


def _decode_deleverage(data: bytes, i: int, flags: int) -> tuple[Transaction, int]:
    if flags:
        raise DecodeError("undefined flag")
    deleveraged_id, i = _varint(data, i, MAX_ACCOUNT_ID, _LEN_ACCOUNT)
    deleverager_id, i = _varint(data, i, MAX_ACCOUNT_ID, _LEN_ACCOUNT)
    market = data[i]
    size, i = _varint(data, i + 1, MAX_AMOUNT, _LEN_AMOUNT)
    return Deleverage(deleveraged_id, deleverager_id, market, size), i


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
    None,
    None,
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


def _check_int(value: object, high: int, name: str) -> int:
    if type(value) is not int or not 0 <= value <= high:
        raise EncodeError(f"{name} must be an int in [0, {high}], got {value!r}")
    return value


def _put_varint(out: bytearray, value: int) -> None:
    """Unsigned LEB128, minimal by construction: 7 bits per byte, low group first, high bit = more."""
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_signature(out: bytearray, signature: object, name: str) -> None:
    """EIP-2098 compact form: v (27/28) folds into the top bit of s, which is always clear for a
    low-s signature, so a 65-byte signature costs 64 bytes and the contract re-expands it cheaply."""
    if type(signature) is not bytes or len(signature) != 65:
        raise EncodeError(f"{name}: signature must be 65 bytes r ‖ s ‖ v")
    v = signature[64]
    if v not in (27, 28):
        raise EncodeError(f"{name}: signature v must be 27 or 28, got {v}")
    if signature[32] >= 0x80:
        raise EncodeError(f"{name}: signature s must be < 2^255 to fit the compact form")
    if v == 27:
        out += signature[:64]
    else:
        out += signature[:32]
        out.append(signature[32] | 0x80)
        out += signature[33:64]


def _put_order(out: bytearray, order: Order) -> None:
    _put_varint(out, _check_int(order.account_id, MAX_ACCOUNT_ID, "order.account_id"))
    market = _check_int(order.market, 0x7F, "order.market")  # shares a byte with the side
    if type(order.is_buy) is not bool:
        raise EncodeError(f"order.is_buy must be a bool, got {order.is_buy!r}")
    out.append(market << 1 | order.is_buy)
    _put_varint(out, _check_int(order.size, MAX_AMOUNT, "order.size"))
    _put_varint(out, _check_int(order.limit_price, MAX_PRICE, "order.limit_price"))
    _put_varint(out, _check_int(order.fee_rate, MAX_U32, "order.fee_rate"))
    _put_varint(out, _check_int(order.expiry, MAX_TIMESTAMP, "order.expiry"))
    _put_varint(out, _check_int(order.nonce, MAX_NONCE, "order.nonce"))
    _put_signature(out, order.signature, "order")


def _put_order_or_ref(out: bytearray, order: object, ref_flag: int, name: str) -> int:
    """Append a new order or a slot reference; return `ref_flag` if it was a reference, else 0."""
    if type(order) is SlotRef:
        _put_varint(out, _check_int(order.slot, MAX_SLOT_ID, f"{name}.slot"))
        return ref_flag
    if type(order) is Order:
        _put_order(out, order)
        return 0
    raise EncodeError(f"{name} must be an Order or a SlotRef, got {type(order).__name__}")


def _encode_deposit(tx: Deposit) -> bytes:
    out = bytearray((TYPE_DEPOSIT,))
    _put_varint(out, _check_int(tx.account_id, MAX_ACCOUNT_ID, "account_id"))
    return bytes(out)


def _encode_trade(tx: Trade) -> bytes:
    # A maker or taker already resting in the state is sent as its slot id, not re-signed. The size is
    # omitted exactly when it equals a new taker's size (the common "taker fully filled" case), and
    # that choice is forced so the record stays canonical.
    out = bytearray(1)
    flags = _put_order_or_ref(out, tx.maker, FLAG_MAKER_REF, "maker")
    flags |= _put_order_or_ref(out, tx.taker, FLAG_TAKER_REF, "taker")
    size = _check_int(tx.size, MAX_AMOUNT, "size")
    if type(tx.taker) is Order and size == tx.taker.size:
        flags |= FLAG_SIZE_OMITTED
    else:
        _put_varint(out, size)
    out[0] = TYPE_TRADE | flags
    return bytes(out)


def _encode_withdraw(tx: Withdraw) -> bytes:
    out = bytearray((TYPE_WITHDRAW,))
    _put_varint(out, _check_int(tx.account_id, MAX_ACCOUNT_ID, "account_id"))
    _put_varint(out, _check_int(tx.amount, MAX_AMOUNT, "amount"))
    _put_varint(out, _check_int(tx.expiry, MAX_TIMESTAMP, "expiry"))
    _put_varint(out, _check_int(tx.nonce, MAX_NONCE, "nonce"))
    _put_signature(out, tx.signature, "withdraw")
    return bytes(out)


def _encode_forced_withdraw(tx: ForcedWithdraw) -> bytes:
    # No payload: the request's fields are on L1, in the forced-withdrawal queue.
    return bytes((TYPE_FORCED_WITHDRAW,))


def _encode_oracle_price(tx: OraclePrice) -> bytes:
    # Market and oracle index are single bytes (both are uint8 in the signed EIP-712 struct).
    out = bytearray((TYPE_ORACLE_PRICE,))
    out.append(_check_int(tx.market, MAX_U8, "market"))
    if type(tx.samples) is not tuple or len(tx.samples) > MAX_ORACLES:
        raise EncodeError(f"samples must be a tuple of at most {MAX_ORACLES} PriceSample")
    out.append(len(tx.samples))
    for sample in tx.samples:
        if type(sample) is not PriceSample:
            raise EncodeError(f"samples must hold PriceSample, got {type(sample).__name__}")
        out.append(_check_int(sample.oracle_index, MAX_U8, "sample.oracle_index"))
        _put_varint(out, _check_int(sample.price, MAX_PRICE, "sample.price"))
        _put_varint(out, _check_int(sample.timestamp, MAX_TIMESTAMP, "sample.timestamp"))
        _put_signature(out, sample.signature, "sample")
    return bytes(out)


def _encode_funding_tick(tx: FundingTick) -> bytes:
    # zigzag (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...) keeps small negative indices short.
    out = bytearray((TYPE_FUNDING_TICK,))
    _put_varint(out, _check_int(tx.timestamp, MAX_TIMESTAMP, "timestamp"))
    if type(tx.indices) is not tuple or len(tx.indices) > MAX_MARKETS:
        raise EncodeError(f"indices must be a tuple of at most {MAX_MARKETS} ints")
    out.append(len(tx.indices))
    for index in tx.indices:
        if type(index) is not int or not -MAX_FUNDING_INDEX <= index <= MAX_FUNDING_INDEX:
            raise EncodeError(f"funding index must be an int with |x| <= MAX_FUNDING_INDEX, got {index!r}")
        _put_varint(out, 2 * index if index >= 0 else -2 * index - 1)
    return bytes(out)


def _encode_liquidate(tx: Liquidate) -> bytes:
    out = bytearray(1)
    flags = _put_order_or_ref(out, tx.liquidator, FLAG_LIQUIDATOR_REF, "liquidator")
    _put_varint(out, _check_int(tx.liquidated_id, MAX_ACCOUNT_ID, "liquidated_id"))
    _put_varint(out, _check_int(tx.size, MAX_AMOUNT, "size"))
    out[0] = TYPE_LIQUIDATE | flags
    return bytes(out)


def _encode_deleverage(tx: Deleverage) -> bytes:
    out = bytearray((TYPE_DELEVERAGE,))
    _put_varint(out, _check_int(tx.deleveraged_id, MAX_ACCOUNT_ID, "deleveraged_id"))
    _put_varint(out, _check_int(tx.deleverager_id, MAX_ACCOUNT_ID, "deleverager_id"))
    out.append(_check_int(tx.market, MAX_U8, "market"))
    _put_varint(out, _check_int(tx.size, MAX_AMOUNT, "size"))
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
