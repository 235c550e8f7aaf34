"""Batch framing: a batch is the concatenation of `length-prefix ‖ record` for each transaction.
Documented in docs/codec.md; mirrored by contracts/src/lib/BatchFraming.sol (`split_records`).

Framing never fails: a truncated record is still a record, and it decodes to `Malformed` (see
`record_codec`). Nothing depends on the framing bytes themselves: the transaction tree (`tx_tree`)
is over the records.
"""

from __future__ import annotations

from typing import Sequence

from .errors import EncodeError
from .record_codec import decode_transaction, encode_transaction
from .tx_tree import MAX_BATCH_TXS
from .types import Transaction

__all__ = [
    "MAX_RECORD_LEN",
    "decode_batch",
    "encode_batch",
    "frame_records",
    "split_records",
]

MAX_RECORD_LEN = 0x7FFF  # the longest length a two-byte prefix can carry


def split_records(data: bytes) -> list[bytes]:
    """Cut a batch into its records. Each record is prefixed by its length L: one byte if L < 0x80,
    else two bytes 0x80 | L >> 8, L & 0xff. Never fails: a two-byte prefix cut off at the end reads as
    L = 0, and a record running past the end is truncated (it then decodes Malformed)."""
    if type(data) is not bytes:
        data = bytes(data)
    records = []
    append = records.append
    n = len(data)
    i = 0
    while i < n:
        b = data[i]
        if b < 0x80:  # format: a one-byte length prefix
            length = b
            i += 1
        elif i + 1 < n:
            length = ((b & 0x7F) << 8) | data[i + 1]
            i += 2
        else:
            length = 0
            i += 1
        append(data[i : i + length])  # a slice stops at the end of data by itself
        i += length
    return records


def decode_batch(data: bytes) -> list[Transaction]:
    """Every record of a batch, decoded. Never raises."""
    return [decode_transaction(record) for record in split_records(data)]


def frame_records(records: Sequence[bytes]) -> bytes:
    """Concatenate records, each behind the shortest length prefix. Raises EncodeError for a record
    longer than MAX_RECORD_LEN or more than MAX_BATCH_TXS records."""
    if len(records) > MAX_BATCH_TXS:
        raise EncodeError(f"a batch holds at most {MAX_BATCH_TXS} transactions")
    out = bytearray()
    for record in records:
        length = len(record)
        if length < 0x80:  # format: fits a one-byte prefix
            out.append(length)
        elif length <= MAX_RECORD_LEN:
            out.append(0x80 | length >> 8)
            out.append(length & 0xFF)
        else:
            raise EncodeError(f"record of {length} bytes exceeds MAX_RECORD_LEN")
        out += record
    return bytes(out)


def encode_batch(txs: Sequence[Transaction]) -> bytes:
    """The framed batch: each transaction's record behind its shortest length prefix."""
    return frame_records([encode_transaction(tx) for tx in txs])
