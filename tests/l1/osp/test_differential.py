"""Differential: the Solidity one-step prover and the spec's execute_witness agree, transaction by
transaction, on random states and transactions of every type, valid and invalid.

Each hypothesis example is a random scenario from tests/spec/strategies.py (funded traders, then a mix
of trades, slot continuations, oracle prices, funding ticks, withdrawals, forced withdrawals, liquidations,
deleverages and malformed records, each possibly broken in one specific way). It is replayed on the
spec; before each transaction the witness is built against the current state and both sides execute
the transaction's record from it. On top of that, each record spawns mutants drawn by hypothesis (a
flipped byte, a truncation, an extra byte, other flags, a corrupted signature, random bytes), each run
with a witness built for what the mutant decodes to. All calls of an example go to anvil in one
JSON-RPC batch. The spec's answer (post_root, code, applied), or its WitnessError, must be exactly the
prover's result, or a named Witness* revert.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optinode.l1.osp import OneStep, OneStepReverted, call_one_step_batch
from optinode.spec.commitment import Commitment
from optinode.spec.record_codec import decode_transaction, encode_transaction
from optinode.spec.errors import EncodeError, WitnessError
from optinode.spec.transition import state_transition
from optinode.spec.types import Transaction
from optinode.spec.witness import build_witness, execute_witness
from tests.spec import strategies

MIN_TRANSACTIONS = 1_000
EXAMPLES = 120
TOTALS: dict[str, Any] = {"calls": 0, "applied": 0, "invalid": 0, "witness_errors": 0, "types": {}, "codes": set()}

SIGNATURE_TYPES = {0x2, 0x3, 0x5, 0x7}  # records that end with (or contain) a compact signature


@st.composite
def mutants(draw: Any, record: bytes) -> list[bytes]:
    """0-2 variants of a record: each a single, specific kind of damage."""
    out = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["flip", "truncate", "append", "flags", "signature", "random", "type"]))
        data = bytearray(record)
        if kind == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif kind == "truncate" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif kind == "append":
            data.append(draw(st.integers(0, 255)))
        elif kind == "flags" and data:
            data[0] = (data[0] & 0x0F) | (draw(st.integers(0, 15)) << 4)
        elif kind == "type" and data:
            data[0] = (data[0] & 0xF0) | draw(st.integers(0, 15))
        elif kind == "signature" and data and data[0] & 0x0F in SIGNATURE_TYPES and len(data) > 64:
            # a byte of the last signature: r, s, or the yParity bit
            i = len(data) - 64 + draw(st.integers(0, 63))
            data[i] ^= draw(st.sampled_from([0x01, 0x80, 0xFF]))
        else:
            data = bytearray(draw(st.binary(max_size=120)))
        out.append(bytes(data))
    return out


def spec_result(pre_root: bytes, witness, tx: Transaction, ctx) -> OneStep | str:
    try:
        post_root, receipt = execute_witness(pre_root, witness, tx, ctx)
    except WitnessError:
        return "witness-error"
    return OneStep(post_root, int(receipt.code), receipt.applied)


def run_scenario(w3, osp: str, scenario, draw: Any) -> int:
    state = scenario.genesis_state()
    commitment = Commitment.from_state(state)
    ctx = scenario.ctx
    items, expected, kinds = [], [], []
    for tx in scenario.txs:
        pre_root = commitment.update(state)
        try:
            records = [encode_transaction(tx)]
        except EncodeError:
            records = []  # not representable in a batch (the strategies' out-of-range transactions)
        if records:
            records += draw(mutants(records[0]))
        for record in records:
            decoded = decode_transaction(record)
            witness = build_witness(state, commitment, decoded, ctx)
            items.append((pre_root, record, ctx, witness))
            expected.append(spec_result(pre_root, witness, decoded, ctx))
            kinds.append(type(decoded).__name__)
        state_transition(state, tx, ctx)
    results = call_one_step_batch(w3, osp, items)
    for item, want, got, kind in zip(items, expected, results, kinds):
        context = f"{kind} record 0x{item[1].hex()}"
        if want == "witness-error":
            assert isinstance(got, OneStepReverted) and got.name and got.name.startswith("Witness"), (context, got)
            TOTALS["witness_errors"] += 1
        else:
            assert got == want, (context, got, want)
            TOTALS["applied" if want.applied else "invalid"] += 1
            TOTALS["codes"].add(want.code)
        TOTALS["types"][kind] = TOTALS["types"].get(kind, 0) + 1
    TOTALS["calls"] += len(items)
    return len(items)


def test_differential_against_spec(w3, osp) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(scenario=strategies.scenarios(min_txs=20, max_txs=40), data=st.data())
    def check(scenario, data) -> None:
        run_scenario(w3, osp, scenario, data.draw)

    check()
    print(
        f"\ndifferential: {TOTALS['calls']} transactions ({TOTALS['applied']} applied, {TOTALS['invalid']} invalid, "
        f"{TOTALS['witness_errors']} witness errors); per type {dict(sorted(TOTALS['types'].items()))}; "
        f"{len(TOTALS['codes'])} distinct codes"
    )
    assert TOTALS["calls"] >= MIN_TRANSACTIONS
    assert set(TOTALS["types"]) >= {
        "Deposit", "Trade", "Withdraw", "ForcedWithdraw", "OraclePrice", "FundingTick", "Liquidate", "Deleverage", "Malformed"
    }


WALK_EXAMPLES = 100


def test_differential_edge_walks(w3, osp) -> None:
    """Walks aimed at the numeric edges (tests/l1/osp/walks.py): flips, exact closes, fills at the margin
    limit, 100% fees, funding at the rate bound, withdrawals of exactly the free margin, liquidation band
    edges, partial deleverages."""
    from .walks import walks

    totals = {"calls": 0, "codes": set(), "types": {}}

    @settings(max_examples=WALK_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(steps=walks())
    def check(steps) -> None:
        results = call_one_step_batch(w3, osp, [s.item for s in steps])
        for s, got in zip(steps, results):
            context = f"{s.kind} record 0x{s.record.hex()}"
            if s.expected == "witness-error":
                assert isinstance(got, OneStepReverted) and got.name and got.name.startswith("Witness"), (context, got)
            else:
                assert got == OneStep(*s.expected), (context, got, s.expected)
                totals["codes"].add(s.expected[1])
            totals["types"][s.kind] = totals["types"].get(s.kind, 0) + 1
        totals["calls"] += len(steps)

    check()
    print(f"\nedge walks: {totals['calls']} transactions; per type {dict(sorted(totals['types'].items()))}; codes {sorted(totals['codes'])}")
    TOTALS["calls"] += totals["calls"]
    assert totals["calls"] >= 2_000


RECORD_EXAMPLES = 100


def _compact(signature: bytes) -> bytes:
    """EIP-2098: r ‖ (yParity << 255 | s)."""
    return signature[:32] + bytes([signature[32] | (0x80 if signature[64] == 28 else 0)]) + signature[33:64]


def test_differential_records(w3, osp) -> None:
    """Records written field by field with every decoding hazard (tests/l1/osp/records.py): non-minimal,
    overlong, out-of-range and cut varints, undefined flags and types, counts past their limits, missing
    or extra bytes, signatures real or random. Both decoders must classify them alike, and the rest of
    the transition must agree too."""
    from optinode.testing.vectors import base_world

    from .records import records

    world = base_world()
    world.queue_deposit("bob", 5 * 10**6)
    world.queue_forced("carol", 10**6)
    order = world.order("carol", is_buy=False, size=10**9, limit_price=3 * 10**8)
    withdraw = world.withdraw("bob", 10**6)
    good = (_compact(order.signature), _compact(withdraw.signature))
    pre_root = world.root()
    state, commitment, ctx = world.state, world.commitment, world.ctx
    totals = {"calls": 0, "malformed": 0}

    @settings(max_examples=RECORD_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(batch=st.lists(records(small=(0, 1, 2, 3, 10**9, 3 * 10**8), good_signatures=good), min_size=20, max_size=30))
    def check(batch: list[bytes]) -> None:
        items, expected = [], []
        for record in batch:
            decoded = decode_transaction(record)
            witness = build_witness(state, commitment, decoded, ctx)
            items.append((pre_root, record, ctx, witness))
            expected.append(spec_result(pre_root, witness, decoded, ctx))
        for item, want, got in zip(items, expected, call_one_step_batch(w3, osp, items)):
            context = f"record 0x{item[1].hex()} decodes to {decode_transaction(item[1])!r}"
            if want == "witness-error":
                assert isinstance(got, OneStepReverted) and got.name and got.name.startswith("Witness"), (context, got)
            else:
                assert got == want, (context, got, want)
                totals["malformed"] += want.code == 1
        totals["calls"] += len(items)

    check()
    print(f"\nrecords: {totals['calls']} records, {totals['malformed']} malformed")
    TOTALS["calls"] += totals["calls"]
    assert totals["calls"] >= 1_500
    assert 0.2 < totals["malformed"] / totals["calls"] < 0.9
