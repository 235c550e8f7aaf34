"""The prover's record decoder on the codec's boundaries: each record here sits on one side of a rule
of spec/record_codec.py (a count limit, a varint bound, minimality, a flag rule, the end of the record).
The spec's verdict and the prover's must be identical, MALFORMED or not."""

from __future__ import annotations

import pytest

from optinode.l1.osp import OneStep, call_one_step_batch
from optinode.spec.record_codec import decode_transaction, encode_transaction
from optinode.spec.constants import MAX_ACCOUNT_ID, MAX_AMOUNT, MAX_FUNDING_INDEX, MAX_NONCE, MAX_SLOT_ID
from optinode.spec.errors import ErrorCode
from optinode.spec.types import Deleverage, Deposit, FundingTick, Liquidate, Malformed, OraclePrice, SlotRef, Trade
from optinode.spec.witness import build_witness, execute_witness
from optinode.testing.vectors import base_world

from .records import minimal


def _cases() -> list[tuple[str, bytes, bool]]:
    """(name, record, malformed?)"""
    w = base_world()
    sample = w.sample(0, 0, 3 * 10**8, w.state.time + 1)
    order = w.order("carol", is_buy=False, size=10**9, limit_price=3 * 10**8)
    taker = w.order("bob", is_buy=True, size=5 * 10**8, limit_price=3 * 10**8)
    cases: list[tuple[str, bytes, bool]] = []

    def add(name: str, record: bytes, malformed: bool) -> None:
        cases.append((name, record, malformed))

    # counts
    add("funding 15 indices", encode_transaction(FundingTick(w.state.time + 5, (0,) * 15)), False)
    funding16 = encode_transaction(FundingTick(w.state.time + 5, (0,) * 16))
    add("funding 16 indices", funding16, False)
    count_at = len(funding16) - 17
    assert funding16[count_at] == 16
    add("funding 17 indices", funding16[:count_at] + bytes([17]) + funding16[count_at + 1 :] + b"\x00", True)
    oracle32 = encode_transaction(OraclePrice(0, (sample,) * 32))
    add("oracle 32 samples", oracle32, False)
    per_sample = (len(oracle32) - 3) // 32
    add("oracle 33 samples", oracle32[:2] + bytes([33]) + oracle32[3:] + oracle32[3 : 3 + per_sample], True)
    add("oracle count says 2, has 1", encode_transaction(OraclePrice(0, (sample,)))[:2] + bytes([2]) + encode_transaction(OraclePrice(0, (sample,)))[3:], True)
    # varint bounds and minimality
    add("deposit max id", encode_transaction(Deposit(MAX_ACCOUNT_ID)), False)
    add("deposit id above max", bytes([1]) + minimal(MAX_ACCOUNT_ID + 1), True)
    add("deposit id 0 non-minimal", bytes([1, 0x80, 0x00]), True)
    add("deposit id 127 in two bytes", bytes([1, 0xFF, 0x00]), True)
    add("deposit id 128", bytes([1]) + minimal(128), False)
    add("deposit id 6 bytes", bytes([1, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00]), True)
    add("deposit id cut", bytes([1, 0x81]), True)
    add("deleverage max size", encode_transaction(Deleverage(3, 2, 0, MAX_AMOUNT)), False)
    add("deleverage size 2^64", bytes([8, 3, 2, 0]) + minimal(MAX_AMOUNT + 1), True)
    add("deleverage size 11 bytes", bytes([8, 3, 2, 0]) + bytes([0x80] * 10) + b"\x01", True)
    add("funding index +max", encode_transaction(FundingTick(w.state.time + 5, (MAX_FUNDING_INDEX, -MAX_FUNDING_INDEX))), False)
    timestamp = minimal(w.state.time + 5)
    add("funding zigzag above max", bytes([6]) + timestamp + bytes([2]) + minimal(2 * MAX_FUNDING_INDEX + 1) + b"\x00", True)
    add("funding zigzag 2^128", bytes([6]) + timestamp + bytes([2]) + minimal(2**128) + b"\x00", True)
    add("liquidate slot max", encode_transaction(Liquidate(SlotRef(MAX_SLOT_ID), 3, 10**6)), False)
    add("liquidate slot above max", bytes([0x17]) + minimal(MAX_SLOT_ID + 1) + bytes([3, 1]), True)
    # flags
    trade = encode_transaction(Trade(order, taker, 5 * 10**8))
    assert trade[0] & 0x40  # the size is omitted: it equals the taker's
    add("trade size omitted", trade, False)
    add("trade explicit size equal to the taker's", bytes([trade[0] & ~0x40]) + trade[1:] + minimal(5 * 10**8), True)
    add("trade explicit size other", bytes([trade[0] & ~0x40]) + trade[1:] + minimal(10**8), False)
    add("trade flag 0x80", bytes([trade[0] | 0x80]) + trade[1:], True)
    ref = encode_transaction(Trade(SlotRef(0), SlotRef(1), 10**6))
    add("trade two refs", ref, False)
    add("trade taker ref with size omitted", bytes([ref[0] | 0x40]) + ref[1:], True)
    add("liquidate flag 0x20", bytes([0x27]) + encode_transaction(Liquidate(SlotRef(0), 3, 10**6))[1:], True)
    add("forced withdraw", bytes([4]), False)
    add("forced withdraw flag", bytes([0x14]), True)
    add("forced withdraw trailing byte", bytes([4, 0]), True)
    add("withdraw max nonce", encode_transaction(w.withdraw("bob", 10**6, nonce=MAX_NONCE)), False)
    # types and ends
    add("empty", b"", True)
    for kind in (0, 9, 10, 11, 12, 13, 14, 15):
        add(f"type {kind}", bytes([kind, 1, 2, 3]), True)
    add("deposit trailing byte", encode_transaction(Deposit(1)) + b"\x00", True)
    add("signature cut", trade[:-1], True)
    # signature forms (decode fine; the transition rejects them)
    bad_v = bytearray(trade)
    bad_v[-32] ^= 0x80  # flips yParity of the taker's signature: another key recovers
    add("trade yParity flipped", bytes(bad_v), False)
    return cases


CASES = _cases()


def test_codec_boundaries(w3, osp) -> None:
    w = base_world()
    w.queue_deposit("bob", 10**6)
    pre_root = w.root()
    items, expected = [], []
    for name, record, malformed in CASES:
        decoded = decode_transaction(record)
        assert (type(decoded) is Malformed) == malformed, name
        witness = build_witness(w.state, w.commitment, decoded, w.ctx)
        post_root, receipt = execute_witness(pre_root, witness, decoded, w.ctx)
        assert (receipt.code == ErrorCode.MALFORMED) == malformed, name
        items.append((pre_root, record, w.ctx, witness))
        expected.append(OneStep(post_root, int(receipt.code), receipt.applied))
    results = call_one_step_batch(w3, osp, items)
    wrong = [f"{c[0]}: prover {r!r}, spec {e!r}" for c, r, e in zip(CASES, results, expected) if r != e]
    assert not wrong, "\n".join(wrong)
