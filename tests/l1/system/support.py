"""Helpers for the system tests: the MockOneStepProver's "true" transition and honest/dishonest
players of the dispute game, driven from Python against anvil."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import eth_abi
import pytest
from web3.logs import DISCARD

from optinode.l1.contracts import (
    Phase,
    QueueEntries,
    Reverted,
    StateParts,
    System,
    error_selector,
    tx_proof,
)
from optinode.spec.game import compute_split_points
from optinode.spec.player import choose_first_disagreement
from optinode.spec.crypto import keccak

L1_ABI = "(uint64,bool,address,uint256,bool,address,uint256,uint256)"
ZERO_ADDRESS = "0x" + "00" * 20
# abi.encode(Witness) with every field empty: depositsDone = forcedDone = 0 (the mock ignores the rest)
EMPTY_WITNESS = eth_abi.encode(
    ["(bytes32,bytes32,bytes,uint64,uint64,(uint64,bytes,bytes32[])[],(uint64,bytes,bytes32[])[])"],
    [(b"\0" * 32, b"\0" * 32, b"", 0, 0, [], [])],
)
# ... and one the mock rejects as not authenticating (accountsRoot all ones)
BAD_WITNESS = eth_abi.encode(
    ["(bytes32,bytes32,bytes,uint64,uint64,(uint64,bytes,bytes32[])[],(uint64,bytes,bytes32[])[])"],
    [(b"\xff" * 32, b"\0" * 32, b"", 0, 0, [], [])],
)


def parts_for(tag: str) -> StateParts:
    """An arbitrary state-root preimage (distinct per tag)."""
    return StateParts(keccak(b"accounts" + tag.encode()), keccak(b"slots" + tag.encode()), keccak(b"globals" + tag.encode()), 0, 0)


def mock_l1(timestamp: int, deposit: tuple[str, int] | None = None) -> tuple:
    if deposit is None:
        return (timestamp, False, ZERO_ADDRESS, 0, False, ZERO_ADDRESS, 0, 0)
    return (timestamp, True, deposit[0], deposit[1], False, ZERO_ADDRESS, 0, 0)


def mock_step(pre: bytes, record: bytes, l1: tuple) -> bytes:
    """MockOneStepProver's default transition: keccak(abi.encode(pre, keccak(record), l1))."""
    return keccak(eth_abi.encode(["bytes32", "bytes32", L1_ABI], [pre, keccak(record), l1]))


def events(event: Any, receipt: Any) -> list[Any]:
    """The `event` logs of a receipt (other contracts' logs skipped)."""
    return list(event().process_receipt(receipt, errors=DISCARD))


def expect_revert(name: str, fn: Callable[[], object]) -> Reverted:
    with pytest.raises(Reverted) as info:
        fn()
    assert info.value.name == name, f"expected {name}, got {info.value}"
    if len(info.value.data) == 4:  # an error without arguments: exactly its selector
        assert info.value.data == error_selector(f"{name}()")
    return info.value


@dataclass
class MockBatch:
    """A posted batch and the true roots after each of its transactions under the mock prover.

    true_roots[i] is the state after i transactions; true_roots[0] is the parent's post-root. If the
    batch is valid, true_roots[n] is the posted root (the mock was told so with setResult)."""

    index: int
    records: list[bytes]
    posted_root: bytes
    true_roots: list[bytes]

    @property
    def valid(self) -> bool:
        return self.true_roots[-1] == self.posted_root


def post_mock_batch(
    system: System, proposer: str, records: Sequence[bytes], *, valid: bool, tag: str, parent_root: bytes | None = None
) -> MockBatch:
    """Append `records` and compute the mock truth; if `valid`, make the posted root the truth."""
    parts = parts_for(tag)
    index = system.append_batch(proposer, records, parts)
    batch = system.batch(index)
    pre = system.batch(index - 1)["stateRoot"] if parent_root is None else parent_root
    l1 = mock_l1(batch["timestamp"])
    roots = [pre]
    for record in records[:-1]:
        roots.append(mock_step(roots[-1], record, l1))
    if valid:
        system.prover.functions.setResult(roots[-1], parts.root()).transact({"from": proposer})
        roots.append(parts.root())
    else:
        roots.append(mock_step(roots[-1], records[-1], l1))
        assert roots[-1] != parts.root()
    return MockBatch(index, list(records), parts.root(), roots)


@dataclass
class Player:
    """Plays one side of a game from a view of the roots (`roots[i]` = root after i txs)."""

    system: System
    address: str
    roots: Callable[[int], bytes]
    moves: list[str] = field(default_factory=list)


def play_game(
    system: System,
    game_id: int,
    batch: MockBatch,
    proposer: Player,
    challenger: Player,
    *,
    step_by: str | None = None,
    entries: QueueEntries = QueueEntries(),
    witness: bytes = EMPTY_WITNESS,
) -> int:
    """Play bisection to the end and step; returns the final phase. The proposer posts the roots
    of its view, the challenger picks the first part where the posted roots differ from its view."""
    arity = system.params.arity
    while True:
        g = system.game_state(game_id)
        if g["phase"] == Phase.STEP:
            break
        assert g["phase"] in (Phase.BISECT, Phase.CHOOSE)
        points = compute_split_points(g["start"], g["end"], arity)
        posted = [proposer.roots(p) for p in points[1:-1]]
        if g["phase"] == Phase.BISECT:
            system.bisect(proposer.address, game_id, posted)
            proposer.moves.append("bisect")
        part = choose_first_disagreement(points, posted, challenger.roots)
        system.choose(challenger.address, game_id, posted, part)
        challenger.moves.append("choose")
    g = system.game_state(game_id)
    k = g["start"]
    system.step(step_by or challenger.address, game_id, batch.records[k], tx_proof(batch.records, k), witness, entries)
    return system.game_state(game_id)["phase"]
