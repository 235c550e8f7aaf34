"""Input loading and output for `optinode spec apply` (formats: docs/spec-apply.md).

Reading files, parsing JSON and converting it to spec types happen here; every rule a pre-state must
meet is the spec's (`state_check.check_state`, `genesis.check_genesis`) and every transaction rule is
`state_transition`'s. Each loader raises `InputError` (an `InvalidInput`) naming the input; nothing
here catches a bug: an exception that is not an `InvalidInput` propagates to `cli.main.main`, which
prints its traceback and exits with the internal-error status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import typer

from optinode.errors import InvalidInput
from optinode.spec import serde
from optinode.spec.batch_framing import decode_batch
from optinode.spec.errors import ErrorCode
from optinode.spec.genesis import Genesis, create_genesis_state
from optinode.spec.state import State
from optinode.spec.state_check import check_state
from optinode.spec.transition import state_transition
from optinode.spec.types import L1Context, Receipt, Transaction


class InputError(InvalidInput):
    """A file or stdin given to `optinode spec apply` is unreadable or invalid; one line naming it."""


# --- reading inputs ----------------------------------------------------------------------------------


def read_input(source: str, label: str, stdin_used: list[str]) -> tuple[bytes, str]:
    """The bytes of a file, or of stdin for `-` (at most one input may be stdin). Returns (data, name)."""
    if source == "-":
        if stdin_used:
            raise InputError(f"{label}: stdin (-) is already used by {stdin_used[0]}")
        stdin_used.append(label)
        return typer.get_binary_stream("stdin").read(), f"{label} (stdin)"
    try:
        return Path(source).read_bytes(), source
    except OSError as error:
        raise InputError(f"{label}: cannot read {source}: {error.strerror or error}") from None


def parse_json(data: bytes, name: str) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as error:
        raise InputError(f"{name}: invalid JSON: {error}") from None


def convert(plain: Any, kind: Any, name: str) -> Any:
    """serde's strict reading (byte fields only as 0x-hex, every field within the field table's bound);
    its message already names the field."""
    try:
        return serde.from_plain(plain, kind)
    except serde.InvalidJson as error:
        raise InputError(f"{name}: {error}") from None


def load_pre(data: bytes, name: str) -> State:
    """`{"genesis": {...}}` or a serialized State (or, for convenience, a TOML config file)."""
    if name.endswith(".toml"):
        from optinode.config import parse_config

        # ConfigError's message already names the file.
        return create_genesis_state(parse_config(data, name).genesis.to_genesis())
    plain = parse_json(data, name)
    if not isinstance(plain, dict):
        raise InputError(f'{name}: expected a JSON object: {{"genesis": {{...}}}} or a state')
    if "genesis" in plain:
        if len(plain) != 1:
            extra = sorted(k for k in plain if k != "genesis")
            raise InputError(f'{name}: a genesis pre-state has only the "genesis" key (also got {extra})')
        genesis = convert(plain["genesis"], Genesis, f"{name}: genesis")
        try:
            return create_genesis_state(genesis)
        except InvalidInput as error:  # InvalidGenesis
            raise InputError(f"{name}: genesis: {error}") from None
    state = convert(plain, State, name)
    try:
        check_state(state)
    except InvalidInput as error:  # InvalidState
        raise InputError(f"{name}: {error}") from None
    return state


class _Batch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    batch: bytes  # the bytes of a batch as posted to L1


def load_txs(data: bytes, name: str) -> list[Transaction]:
    """A JSON list of transactions, or `{"batch": "0x…"}` (records that do not decode become Malformed)."""
    plain = parse_json(data, name)
    if isinstance(plain, list):
        return convert(plain, list[Transaction], name)
    if isinstance(plain, dict) and set(plain) == {"batch"}:
        return decode_batch(convert(plain, _Batch, name).batch)
    raise InputError(f'{name}: expected a JSON list of transactions or {{"batch": "0x…"}}')


def load_l1(data: bytes, name: str) -> L1Context:
    plain = parse_json(data, name)
    if not isinstance(plain, dict):
        raise InputError(f"{name}: expected a JSON object (an L1Context)")
    return convert(plain, L1Context, name)


# --- running and printing --------------------------------------------------------------------------------


def apply_all(state: State, txs: list[Transaction], ctx: L1Context) -> list[Receipt]:
    """Apply in order. An invalid transaction is a receipt, not an exception: the pre-state passed
    `check_state`, so anything `state_transition` raises is a spec bug and is left to propagate."""
    return [state_transition(state, tx, ctx) for tx in txs]


def status_of(receipt: Receipt) -> str:
    """OK; rejected (applied with a non-OK code: a forced withdrawal consumed but refused); invalid."""
    if receipt.code == ErrorCode.OK:
        return "OK"
    return "rejected" if receipt.applied else "invalid"


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {"code": int(receipt.code), "name": ErrorCode(receipt.code).name, "applied": receipt.applied}


def canonical_post(state: State) -> State:
    """The post-state without the commitment's bookkeeping (which leaves changed)."""
    state.dirty_accounts = set()
    state.dirty_slots = set()
    return state


def result_json(receipts: list[Receipt], root: bytes, post: State) -> bytes:
    return msgspec.json.encode(
        {"receipts": [receipt_json(r) for r in receipts], "state_root": "0x" + root.hex(), "post": serde.to_plain(post)}
    )


def result_lines(txs: list[Transaction], receipts: list[Receipt], root: bytes) -> list[str]:
    """One line per transaction (index, type, status, code name unless OK), then the state root."""
    width = max((len(type(tx).__name__) for tx in txs), default=0)
    lines = []
    for index, (tx, receipt) in enumerate(zip(txs, receipts)):
        line = f"{index:>4}  {type(tx).__name__:<{width}}  {status_of(receipt):<8}"
        if receipt.code != ErrorCode.OK:
            line += f"  {ErrorCode(receipt.code).name}"
        lines.append(line.rstrip())
    lines.append(f"state_root 0x{root.hex()}")
    return lines
