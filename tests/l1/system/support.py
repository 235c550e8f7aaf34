"""Helpers for the system tests: the MockOneStepProver's "true" transition, honest/dishonest
players of the dispute game driven from Python against anvil, pinned block times and reverts on
the pending block, and `Books`: the spec's bond ledger next to the chain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import eth_abi
import pytest
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD

from optinode.l1.contracts import (
    BURN_ADDRESS,
    Phase,
    QueueEntries,
    Reverted,
    StateParts,
    System,
    error_name,
    error_selector,
    transact,
    tx_proof,
)
from optinode.spec import bonds
from optinode.spec.game import compute_split_points
from optinode.spec.player import choose_first_disagreement
from optinode.spec.crypto import keccak

L1_ABI = "(uint64,bool,address,uint256,bool,address,uint256,uint256)"
ZERO_ADDRESS = "0x" + "00" * 20
WITNESS_TYPE = "(bytes32,bytes32,bytes,uint64,uint64,(uint64,bytes,bytes32[])[],(uint64,bytes,bytes32[])[])"
# abi.encode(Witness) with every field empty: depositsDone = forcedDone = 0 (the mock ignores the rest)
EMPTY_WITNESS = eth_abi.encode([WITNESS_TYPE], [(b"\0" * 32, b"\0" * 32, b"", 0, 0, [], [])])
# ... and one the mock rejects as not authenticating (accountsRoot all ones)
BAD_WITNESS = eth_abi.encode([WITNESS_TYPE], [(b"\xff" * 32, b"\0" * 32, b"", 0, 0, [], [])])


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


# --- time and reverts on the pending block --------------------------------------------------------------


def pin_time(system: System, now: int) -> None:
    """The next block (the next transaction, under automine) gets timestamp `now`."""
    system.w3.provider.make_request("evm_setNextBlockTimestamp", [now])


def latest_time(system: System) -> int:
    return system.w3.eth.get_block("latest")["timestamp"]


def pending_revert(fn: Any, sender: str, value: int = 0) -> bytes | None:
    """None if the call succeeds on the pending block (at the pinned time), else the revert data."""
    try:
        fn.call({"from": sender, "value": value}, block_identifier="pending")
    except (ContractCustomError, ContractLogicError) as exc:
        data = exc.data if isinstance(exc.data, str) else ""
        return bytes.fromhex(data[2:]) if data.startswith("0x") else b""
    return None


def pending_error(fn: Any, sender: str, value: int = 0) -> str | None:
    """None if the call succeeds on the pending block, else the custom error's name."""
    raw = pending_revert(fn, sender, value)
    return None if raw is None else (error_name(raw) or f"unknown: 0x{raw.hex()}")


# --- the bond ledger next to the chain --------------------------------------------------------------------


@dataclass
class Books:
    """The spec's bond ledger (`optinode.spec.bonds`) kept next to the chain, and the checks that
    they agree: every bond (state, share per game), each party's credit, the burned total and the
    ETH each contract holds."""

    system: System
    ledger: bonds.Ledger
    parties: list[str]
    burned_before: int

    @classmethod
    def open(cls, system: System, parties: Sequence[str]) -> Books:
        p = system.params
        ledger = bonds.genesis_ledger(bonds.BondParams(p.proposer_bond, p.challenger_bond, p.slash_reward_bps))
        return cls(system, ledger, list(parties), system.w3.eth.get_balance(BURN_ADDRESS))

    def check(self) -> None:
        w3, rollup, ledger = self.system.w3, self.system.rollup, self.ledger
        for batch_id, bond in ledger.bonds.items():
            proposer, index, state, per_game = rollup.functions.bonds(batch_id).call()
            chain, spec = (proposer, index, state, per_game), (bond.proposer, bond.batch_index, int(bond.state), bond.reward_per_game)
            assert chain == spec, f"bond of batch id {batch_id}: chain (proposer, index, state, reward per game) {chain}, spec {spec}"
        for who in self.parties:
            assert rollup.functions.credits(who).call() == ledger.credits.get(who, 0), who
        assert w3.eth.get_balance(BURN_ADDRESS) - self.burned_before == ledger.burned
        assert w3.eth.get_balance(rollup.address) == bonds.get_rollup_held(ledger)
        assert w3.eth.get_balance(self.system.game.address) == bonds.get_game_held(ledger)
        assert w3.eth.get_balance(self.system.bridge.address) == ledger.escaped

    def forfeit(self, batch_id: int, sender: str) -> bool:
        """forfeitBond(batch_id) through both: the same error, or both settle. True if it settled."""
        fn = self.system.rollup.functions.forfeitBond(batch_id)
        try:
            after = bonds.process_forfeit_bond(self.ledger, batch_id)
            expected = None
        except bonds.BondRuleError as exc:
            after, expected = self.ledger, exc.code.value
        assert pending_error(fn, sender) == expected, (batch_id, expected)
        if expected is None:
            transact(self.system.w3, fn, sender)
            self.ledger = after
        return expected is None

    def withdraw(self, who: str) -> int:
        """withdrawCredit() from `who` through both: the same error, or both pay the same amount (to
        the wei, gas accounted). Returns the amount."""
        w3, fn = self.system.w3, self.system.rollup.functions.withdrawCredit()
        try:
            after, amount = bonds.process_withdraw(self.ledger, who)
            expected = None
        except bonds.BondRuleError as exc:
            after, amount, expected = self.ledger, 0, exc.code.value
        assert pending_error(fn, who) == expected, (who, expected)
        if expected is None:
            before = w3.eth.get_balance(who)
            receipt = transact(w3, fn, who)
            assert w3.eth.get_balance(who) == before + amount - receipt["gasUsed"] * receipt["effectiveGasPrice"]
            self.ledger = after
        return amount

    def settle(self, sender: str) -> None:
        """Forfeit every bond both sides can forfeit, then withdraw every credit, through both."""
        for batch_id in list(self.ledger.bonds):
            self.forfeit(batch_id, sender)
        for who in self.parties:
            self.withdraw(who)
        self.check()
