"""Every key the node stores, in one place: the only module that knows key layouts.

A key is one prefix byte (the table) followed by fixed-width big-endian unsigned integers (and,
where a table needs one, a fixed-width byte string such as a 20-byte address). Fixed width and
big-endian mean that LevelDB's byte order is numeric order, so ``table(n) .. table(m)`` is a range
scan and the last key of a prefix is the highest number (py-evm's schema uses decimal text, which
does not sort; we do not).

Prefix ranges are reserved per subsystem so that new tables never collide:

==========  ===================================================================
0x00        store metadata (format marker)
0x01-0x0f   L1 follower: position, block hashes, events by block
0x10-0x1f   L1 sender: transactions per key and per logical item
0x20-0x3f   sequencer engine: command log, checkpoints
0x40-0x5f   batches (posted / pending / final)
0x60-0x7f   verifier and dispute player
==========  ===================================================================

Adding a table: a new ``Prefix`` member in its subsystem's range, a builder (and a parser if
something iterates over it), and a line in the test that checks prefixes are distinct.
"""

from __future__ import annotations

from enum import IntEnum

from optinode.spec.constants import ADDRESS_LEN

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1


class Prefix(IntEnum):
    META = 0x00
    L1_HEAD = 0x01  # () -> follower position: the last block fully read (number, hash)
    L1_BLOCK = 0x02  # (u64 number) -> the block's hash and parent hash as read
    L1_EVENT = 0x03  # (u64 block, u32 log index) -> one decoded contract event
    SENDER_NONCE = 0x10  # (address) -> next nonce this node will use for the key
    SENDER_ITEM = 0x11  # (address, u64 item id) -> the send record of one logical item
    SENDER_BY_NONCE = 0x12  # (address, u64 nonce) -> item id using that nonce
    LOG_ENTRY = 0x20  # (u64 seq) -> one accepted command with its transactions (the sequencer's log)
    CHECKPOINT = 0x21  # (u64 batch index) -> the checkpoint header after that batch: next log seq, L1 time, the state's globals
    REBUILD = 0x22  # () -> the sequencer's rebuild epoch and the L1 discards it rolled back for
    CHECKPOINT_ROW = 0x23  # (u8 table, id) -> one account / slot / resting order / seen order / floor after the last cut
    CHECKPOINT_UNDO = 0x24  # (u64 batch index) -> the rows that batch's cut overwrote, as they were before it
    ORDER = 0x28  # (32-byte order hash) -> an accepted order's history: status, reason, fills (exchange/history.py)
    ORDER_PRUNE = 0x29  # (u64 L1 time, 32-byte order hash) -> b"": a finished order's record may be deleted after that time
    BATCH = 0x40  # (u64 batch index) -> a cut batch: its log range and post-state preimage
    BATCH_FINAL = 0x41  # () -> the highest batch index known final on L1
    VERIFIED_BATCH = 0x60  # (u64 batch index) -> a live batch as L1 holds it (raw data, posted root) and the replay's verdict
    VERIFIER_CHECKPOINT = 0x61  # (u64 batch index) -> the honest spec state after that batch (and which append it follows)
    VERIFIER_DECODED = 0x62  # (u64 batch index) -> the batch's transactions decoded and their recovered signers (and which append)


# --- encoding ------------------------------------------------------------------------------------


def _u(value: int, width: int) -> bytes:
    # A key outside its width is a bug in the caller, not bad input: it would alias another key.
    if not 0 <= value < 1 << (8 * width):
        raise ValueError(f"key component {value} does not fit in {width} bytes")
    return value.to_bytes(width, "big")


def _addr(address: bytes) -> bytes:
    if len(address) != ADDRESS_LEN:
        raise ValueError(f"an address key component is {ADDRESS_LEN} bytes, got {len(address)}")
    return address


def prefix_of(prefix: Prefix) -> bytes:
    """The bytes every key of a table starts with (for prefix iteration)."""
    return bytes([prefix])


# --- metadata ------------------------------------------------------------------------------------

FORMAT = bytes([Prefix.META]) + b"optinode-store-format"


# --- L1 follower ---------------------------------------------------------------------------------

L1_HEAD = bytes([Prefix.L1_HEAD])


def l1_block(number: int) -> bytes:
    return bytes([Prefix.L1_BLOCK]) + _u(number, 8)


def parse_l1_block(key: bytes) -> int:
    return int.from_bytes(key[1:9], "big")


def l1_event(block: int, log_index: int) -> bytes:
    return bytes([Prefix.L1_EVENT]) + _u(block, 8) + _u(log_index, 4)


def l1_events_from(block: int) -> bytes:
    """The first key of the events of ``block`` and later blocks (a range start)."""
    return bytes([Prefix.L1_EVENT]) + _u(block, 8)


def parse_l1_event(key: bytes) -> tuple[int, int]:
    return int.from_bytes(key[1:9], "big"), int.from_bytes(key[9:13], "big")


# --- L1 sender -----------------------------------------------------------------------------------


def sender_nonce(address: bytes) -> bytes:
    return bytes([Prefix.SENDER_NONCE]) + _addr(address)


def sender_item(address: bytes, item: int) -> bytes:
    return bytes([Prefix.SENDER_ITEM]) + _addr(address) + _u(item, 8)


def sender_items(address: bytes) -> bytes:
    """The prefix of one key's send records."""
    return bytes([Prefix.SENDER_ITEM]) + _addr(address)


def parse_sender_item(key: bytes) -> int:
    return int.from_bytes(key[21:29], "big")


def sender_by_nonce(address: bytes, nonce: int) -> bytes:
    return bytes([Prefix.SENDER_BY_NONCE]) + _addr(address) + _u(nonce, 8)


def sender_by_nonce_prefix(address: bytes) -> bytes:
    return bytes([Prefix.SENDER_BY_NONCE]) + _addr(address)


def parse_sender_by_nonce(key: bytes) -> int:
    return int.from_bytes(key[21:29], "big")


# --- sequencer engine and batches ----------------------------------------------------------------


def log_entry(seq: int) -> bytes:
    return bytes([Prefix.LOG_ENTRY]) + _u(seq, 8)


def parse_log_entry(key: bytes) -> int:
    return int.from_bytes(key[1:9], "big")


def checkpoint(batch_index: int) -> bytes:
    return bytes([Prefix.CHECKPOINT]) + _u(batch_index, 8)


def parse_checkpoint(key: bytes) -> int:
    return int.from_bytes(key[1:9], "big")


class Row(IntEnum):
    """The tables of the incremental checkpoint (`CHECKPOINT_ROW`): one row per leaf of the state and
    per entry of the matcher's memory, rewritten only when it changed (docs/sequencer.md, "Checkpoints")."""

    ACCOUNT = 1  # (u32 account id) -> the spec Account
    SLOT = 2  # (u64 slot id) -> the spec Slot
    RESTING = 3  # (32-byte order hash) -> a resting order (RestingSnapshot)
    SEEN = 4  # (32-byte order hash) -> u64 expiry: an accepted order not yet expired (replay protection)
    FLOOR = 5  # (u32 account id) -> the account's cancel-all nonce floor in the book


def checkpoint_row(table: Row, ident: int | bytes) -> bytes:
    """A row key: table byte, then the id (fixed-width big-endian, or a 32-byte hash)."""
    width = {Row.ACCOUNT: 4, Row.SLOT: 8, Row.FLOOR: 4}.get(table)
    part = _hash32(ident) if width is None else _u(ident, width)  # type: ignore[arg-type]
    return bytes([Prefix.CHECKPOINT_ROW, table]) + part


def checkpoint_rows(table: Row) -> bytes:
    """The prefix of one row table."""
    return bytes([Prefix.CHECKPOINT_ROW, table])


def parse_checkpoint_row(key: bytes) -> tuple[Row, int | bytes]:
    table = Row(key[1])
    return table, key[2:] if table in (Row.RESTING, Row.SEEN) else int.from_bytes(key[2:], "big")


def checkpoint_undo(batch_index: int) -> bytes:
    return bytes([Prefix.CHECKPOINT_UNDO]) + _u(batch_index, 8)


def parse_checkpoint_undo(key: bytes) -> int:
    return int.from_bytes(key[1:9], "big")


ORDER_HASH_LEN = 32


def _hash32(order_hash: bytes) -> bytes:
    if len(order_hash) != ORDER_HASH_LEN:
        raise ValueError(f"an order hash key component is {ORDER_HASH_LEN} bytes, got {len(order_hash)}")
    return order_hash


def order(order_hash: bytes) -> bytes:
    return bytes([Prefix.ORDER]) + _hash32(order_hash)


def order_prune(at: int, order_hash: bytes) -> bytes:
    return bytes([Prefix.ORDER_PRUNE]) + _u(at, 8) + _hash32(order_hash)


def order_prune_before(at: int) -> bytes:
    """The first prune key at time ``at`` (a range stop: everything before it is due)."""
    return bytes([Prefix.ORDER_PRUNE]) + _u(at, 8)


def parse_order_prune(key: bytes) -> tuple[int, bytes]:
    return int.from_bytes(key[1:9], "big"), key[9:41]


REBUILD = bytes([Prefix.REBUILD])


def batch(index: int) -> bytes:
    return bytes([Prefix.BATCH]) + _u(index, 8)


BATCH_FINAL = bytes([Prefix.BATCH_FINAL])


# --- verifier -----------------------------------------------------------------------------------


def verified_batch(index: int) -> bytes:
    return bytes([Prefix.VERIFIED_BATCH]) + _u(index, 8)


def parse_verified_batch(key: bytes) -> int:
    return int.from_bytes(key[1:9], "big")


def verifier_checkpoint(index: int) -> bytes:
    return bytes([Prefix.VERIFIER_CHECKPOINT]) + _u(index, 8)


def verifier_decoded(index: int) -> bytes:
    return bytes([Prefix.VERIFIER_DECODED]) + _u(index, 8)


# --- ranges --------------------------------------------------------------------------------------


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no such key)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
