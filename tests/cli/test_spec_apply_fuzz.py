"""Hostile files for `optinode spec apply`: whatever the bytes, loading either succeeds or raises an
`InvalidInput` (exit 2) — never another exception, which the CLI would report as a bug (exit 70).

Structure-aware: the committed examples with leaves replaced by arbitrary JSON values, plus raw bytes.
A loaded pre-state and transaction list must then also run (nothing but receipts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, strategies as st

from optinode.cli import spec_apply
from optinode.errors import InvalidInput
from optinode.spec.commitment import compute_state_root

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PRE = json.loads((EXAMPLES / "pre.json").read_text())
TXS = json.loads((EXAMPLES / "txs.json").read_text())
L1 = json.loads((EXAMPLES / "l1.json").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**300), 2**300),
    st.sampled_from([0, 1, -1, 2**64, 2**256, "0x", "0x00", "0x" + "00" * 20, "0x" + "ff" * 65, "0xabc", "0X11", "11" * 20, "", "Deposit"]),
    st.text(max_size=20),
    st.floats(allow_nan=True),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def leaf_paths(node: Any, path: tuple = ()) -> list[tuple]:
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else None
    if children is None:
        return [path]
    return [path] + [p for key, child in children for p in leaf_paths(child, (*path, key))]


def mutate(document: Any, data: st.DataObject) -> Any:
    document = json.loads(json.dumps(document))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in leaf_paths(document) if p]
        if not paths:
            return data.draw(values)
        path = data.draw(st.sampled_from(paths))
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = data.draw(values)
    return document


def load(loader, document: Any) -> Any:
    try:
        return loader(json.dumps(document).encode(), "input.json")
    except InvalidInput:
        return None


@given(st.data())
def test_mutated_inputs_load_or_are_rejected(data: st.DataObject) -> None:
    state = load(spec_apply.load_pre, mutate(PRE, data))
    txs = load(spec_apply.load_txs, mutate(TXS, data))
    ctx = load(spec_apply.load_l1, mutate(L1, data))
    if state is not None and txs is not None and ctx is not None:
        spec_apply.apply_all(state, txs, ctx)
        compute_state_root(state)


@given(st.binary(max_size=64))
def test_raw_bytes_load_or_are_rejected(raw: bytes) -> None:
    for loader in (spec_apply.load_pre, spec_apply.load_txs, spec_apply.load_l1):
        try:
            loader(raw, "input.json")
        except InvalidInput:
            pass
