"""Python bindings for the rollup's L1 contracts: Bridge, Rollup and DisputeGame (docs/contracts.md).

Deploying the system (`deploy_system`), appending batches, playing the dispute game, and the
byte-level helpers both sides need (queue hash chains, witness ABI, split points). Synchronous
web3 calls: under trio run them through `trio.to_thread.run_sync`.

    system = deploy_system(w3, deployer, SystemParams(genesis_root=root, proposers=(proposer,)))
    index = system.append_batch(proposer, records, parts)
    game_id = system.open_game(challenger, index)

Transactions are sent from accounts the node has unlocked (anvil's). A reverted call raises
`Reverted` carrying the custom error's name, decoded from every compiled artifact's ABI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import eth_abi
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from optinode.l1.osp import WITNESS_ABI, encode_witness  # one witness encoding for the game and the prover
from optinode.l1.artifacts import artifact_names, load_artifact
from optinode.spec.batch_framing import frame_records
from optinode.spec.commitment import compute_state_root_from_parts
from optinode.spec.tx_tree import get_tx_proof
from optinode.spec.crypto import keccak
from optinode.spec.game import Phase  # DisputeGame.Phase: the same enum, numbered alike

__all__ = [
    "BURN_ADDRESS",
    "Phase",
    "QueueEntries",
    "Reverted",
    "StateParts",
    "System",
    "SystemParams",
    "WITNESS_ABI",
    "deploy_contract",
    "deploy_system",
    "deposit_acc",
    "encode_witness",
    "error_name",
    "error_selector",
    "forced_acc",
    "increase_time",
    "predict_create_address",
    "transact",
    "tx_proof",
]

BURN_ADDRESS = "0x000000000000000000000000000000000000dEaD"


# --- errors -------------------------------------------------------------------------------------------


class Reverted(Exception):
    """A transaction or call reverted. `name` is the custom error's name when it is known, `values`
    its decoded arguments (what explains it, e.g. ClockExpired(spent, left))."""

    def __init__(self, name: str | None, data: bytes, message: str = "") -> None:
        self.name = name
        self.data = data
        self.values = error_args(data)
        shown = f"{name}({', '.join(map(str, self.values))})" if self.values else (name or "0x" + data[:4].hex())
        super().__init__(f"reverted with {shown} {message}".strip())


def error_selector(signature: str) -> bytes:
    """The 4-byte selector of an error signature such as ``"WrongBond()"``."""
    return keccak(signature.encode())[:4]


@cache
def _error_table() -> dict[bytes, tuple[str, tuple[str, ...]]]:
    """selector -> (error name, argument types), from every compiled contract's ABI."""
    table: dict[bytes, tuple[str, tuple[str, ...]]] = {
        error_selector("Error(string)"): ("Error", ("string",)),
        error_selector("Panic(uint256)"): ("Panic", ("uint256",)),
    }
    for name in artifact_names():
        for item in load_artifact(name)["abi"]:
            if item.get("type") == "error":
                types = tuple(_abi_type(i) for i in item["inputs"])
                table[error_selector(f"{item['name']}({','.join(types)})")] = (item["name"], types)
    return table


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + item["type"][5:]
    return item["type"]


def error_name(data: bytes) -> str | None:
    """The custom error a revert's data names (from every compiled contract), or None."""
    entry = _error_table().get(bytes(data[:4])) if len(data) >= 4 else None
    return entry[0] if entry else None


def error_args(data: bytes) -> tuple[Any, ...]:
    """The decoded arguments of the custom error in a revert's data (empty if unknown or malformed)."""
    entry = _error_table().get(bytes(data[:4])) if len(data) >= 4 else None
    if entry is None or not entry[1]:
        return ()
    try:
        values = eth_abi.decode(list(entry[1]), bytes(data[4:]))
    except Exception:  # noqa: BLE001 - revert data is hostile input: undecodable means "no values"
        return ()
    return tuple(Web3.to_checksum_address(v) if t == "address" else v for t, v in zip(entry[1], values))


def _revert_data(exc: Exception) -> bytes:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    return b""


def transact(w3: Web3, fn: Any, sender: str, *, value: int = 0, gas: int | None = None) -> Any:
    """Send a contract call from an unlocked account and wait for its receipt. Raises `Reverted`
    (with the custom error's name) if it would revert or did revert."""
    tx: dict[str, Any] = {"from": sender, "value": value}
    if gas is not None:
        tx["gas"] = gas
    try:
        tx_hash = fn.transact(tx)
    except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
        data = _revert_data(exc)
        raise Reverted(error_name(data), data, str(exc)) from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    if receipt["status"] != 1:
        # Sent with an explicit gas limit (no estimate): replay it to learn the error.
        try:
            fn.call({**tx, "gas": receipt["gasUsed"] if gas is None else gas}, block_identifier=receipt["blockNumber"] - 1)
        except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
            data = _revert_data(exc)
            raise Reverted(error_name(data), data, f"transaction {tx_hash.hex()} failed") from exc
        raise Reverted(None, b"", f"transaction {tx_hash.hex()} failed (out of gas?)")
    return receipt


def increase_time(w3: Web3, seconds: int) -> None:
    """Move the node's clock forward and mine a block (anvil/hardhat RPC)."""
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


# --- deployment ------------------------------------------------------------------------------------------


def predict_create_address(sender: str, nonce: int) -> str:
    """The address a CREATE from `sender` with `nonce` deploys to: keccak(rlp([sender, nonce]))[12:]."""
    raw = bytes.fromhex(sender[2:])

    def rlp_int(n: int) -> bytes:
        if n == 0:
            return b"\x80"
        if n < 0x80:  # format: RLP, a single byte below 0x80 is its own encoding
            return bytes((n,))
        body = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes((0x80 + len(body),)) + body

    payload = bytes((0x80 + 20,)) + raw + rlp_int(nonce)
    return Web3.to_checksum_address(keccak(bytes((0xC0 + len(payload),)) + payload)[12:])


def deploy_contract(w3: Web3, name: str, *args: Any, sender: str) -> Contract:
    """Deploy the compiled contract `name` from `sender` and return a bound Contract."""
    art = load_artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    try:
        tx_hash = factory.constructor(*args).transact({"from": sender})
    except (ContractCustomError, ContractLogicError) as exc:
        data = _revert_data(exc)
        raise Reverted(error_name(data), data, f"deploying {name}") from exc
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise Reverted(None, b"", f"deploying {name} failed")
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


@dataclass(frozen=True)
class SystemParams:
    """Deployment parameters (docs/contracts.md explains each)."""

    genesis_root: bytes
    proposers: tuple[str, ...]
    challenge_window: int = 3600
    proposer_bond: int = 10**18
    challenger_bond: int = 10**17
    slash_reward_bps: int = 5000
    # seconds a batch's declared L1 timestamp may lag its append block (Rollup.maxTimestampDrift)
    max_timestamp_drift: int = 1800
    genesis_time: int = 0  # the genesis state's time: batch 0's L1 timestamp (<= the deploy block's)
    clock: int = 1800
    arity: int = 16
    forced_deadline: int = 86_400
    deposit_deadline: int = 86_400
    # DisputeGame requires both deadlines >= challenge_window + 2 * clock + inclusion_margin
    inclusion_margin: int = 3600
    claim_period: int = 86_400  # escape claims after a freeze (Bridge.claimPeriod)


@dataclass(frozen=True)
class StateParts:
    """The preimage of a state root."""

    accounts_root: bytes
    slots_root: bytes
    globals_hash: bytes
    deposits_done: int
    forced_done: int

    def root(self) -> bytes:
        return compute_state_root_from_parts(*self.as_tuple())

    def as_tuple(self) -> tuple[bytes, bytes, bytes, int, int]:
        return (self.accounts_root, self.slots_root, self.globals_hash, self.deposits_done, self.forced_done)


@dataclass(frozen=True)
class QueueEntries:
    """The queue entries a one-step proof may read (DisputeGame.QueueEntries)."""

    deposit_owner: str = "0x" + "00" * 20
    deposit_amount: int = 0
    forced_requester: str = "0x" + "00" * 20
    forced_account_id: int = 0
    forced_amount: int = 0

    def as_tuple(self) -> tuple[str, int, str, int, int]:
        return (
            Web3.to_checksum_address(self.deposit_owner),
            self.deposit_amount,
            Web3.to_checksum_address(self.forced_requester),
            self.forced_account_id,
            self.forced_amount,
        )


@dataclass
class System:
    """The deployed contracts and a few helpers that send transactions to them."""

    w3: Web3
    token: Contract
    bridge: Contract
    rollup: Contract
    game: Contract
    prover: Contract
    params: SystemParams
    gas: dict[str, int] = field(default_factory=dict)

    def _send(self, label: str, fn: Any, sender: str, value: int = 0, gas: int | None = None) -> Any:
        receipt = transact(self.w3, fn, sender, value=value, gas=gas)
        self.gas[label] = self.gas.get(label, 0) + receipt["gasUsed"]
        return receipt

    # Bridge
    def deposit(self, sender: str, owner: str, amount: int, *, mint: bool = True) -> int:
        if mint:
            transact(self.w3, self.token.functions.mint(sender, amount), sender)
        transact(self.w3, self.token.functions.approve(self.bridge.address, amount), sender)
        index = self.bridge.functions.depositCount().call()
        self._send("deposit", self.bridge.functions.deposit(Web3.to_checksum_address(owner), amount), sender)
        return index

    def request_forced(self, sender: str, account_id: int, amount: int) -> int:
        index = self.bridge.functions.forcedCount().call()
        self._send("requestForcedWithdrawal", self.bridge.functions.requestForcedWithdrawal(account_id, amount), sender)
        return index

    def freeze(self, sender: str) -> Any:
        return self._send("freeze", self.bridge.functions.freeze(), sender)

    def register_claim(
        self, sender: str, globals_: bytes, parts: StateParts, proof: tuple[int, bytes, Sequence[bytes]]
    ) -> Any:
        """Register an account's escape claim (claim phase) under the last finalized root `parts`."""
        account_id, leaf, siblings = proof
        fn = self.bridge.functions.registerClaim(
            globals_, parts.accounts_root, parts.slots_root, parts.deposits_done, parts.forced_done,
            (account_id, leaf, list(siblings)),
        )
        return self._send("registerClaim", fn, sender)

    def escape(self, sender: str, account_id: int) -> Any:
        """Pay a registered claim (payout phase)."""
        return self._send("escape", self.bridge.functions.escape(account_id), sender)

    # Rollup
    def release_frozen_bonds(self, sender: str, max_count: int = 2**256 - 1) -> Any:
        return self._send("releaseFrozenBonds", self.rollup.functions.releaseFrozenBonds(max_count), sender)

    def append_batch(
        self, sender: str, records: Sequence[bytes] | bytes, parts: StateParts, *, value: int | None = None,
        gas: int | None = None, l1_timestamp: int | None = None, parent_root: bytes | None = None,
    ) -> int:
        """Append framed `records` (or raw batch bytes) with the post-state preimage `parts`, declaring
        `l1_timestamp` as the batch's L1 time (default: the latest block's, which the next block's
        cannot precede) and `parent_root` as the state root it builds on (default: the tip's)."""
        data = records if isinstance(records, (bytes, bytearray)) else frame_records(list(records))
        index = self.rollup.functions.batchCount().call()
        if l1_timestamp is None:
            l1_timestamp = self.w3.eth.get_block("latest")["timestamp"]
        if parent_root is None:
            parent_root = self.batch(index - 1)["stateRoot"]
        fn = self.rollup.functions.appendBatch(bytes(data), *parts.as_tuple(), l1_timestamp, parent_root)
        self._send("appendBatch", fn, sender, self.params.proposer_bond if value is None else value, gas)
        return index

    def finalize(self, sender: str, index: int) -> Any:
        return self._send("finalize", self.rollup.functions.finalize(index), sender)

    def batch(self, index: int) -> dict[str, Any]:
        names = (
            "stateRoot", "txRoot", "id", "timestamp", "txCount", "openGames",
            "depositsDone", "forcedDone", "depositQueueLength", "forcedQueueLength", "appendedAt",
        )
        return dict(zip(names, self.rollup.functions.getBatch(index).call()))

    # DisputeGame
    def open_game(self, sender: str, batch_index: int, *, value: int | None = None) -> int:
        game_id = self.game.functions.gameCount().call()
        value = self.params.challenger_bond if value is None else value
        self._send("open", self.game.functions.open(batch_index), sender, value)
        return game_id

    def bisect(self, sender: str, game_id: int, roots: Sequence[bytes]) -> Any:
        return self._send("bisect", self.game.functions.bisect(game_id, list(roots)), sender)

    def choose(self, sender: str, game_id: int, roots: Sequence[bytes], part: int) -> Any:
        return self._send("choose", self.game.functions.choose(game_id, list(roots), part), sender)

    def step(
        self,
        sender: str,
        game_id: int,
        record: bytes,
        tx_proof: Sequence[bytes],
        witness: bytes,
        entries: QueueEntries = QueueEntries(),
    ) -> Any:
        fn = self.game.functions.step(game_id, record, list(tx_proof), witness, entries.as_tuple())
        return self._send("step", fn, sender)

    def timeout(self, sender: str, game_id: int) -> Any:
        return self._send("timeout", self.game.functions.timeout(game_id), sender)

    def cancel(self, sender: str, game_id: int) -> Any:
        return self._send("cancel", self.game.functions.cancel(game_id), sender)

    def game_state(self, game_id: int) -> dict[str, Any]:
        names = (
            "batchIndex", "batchId", "start", "end", "challenger", "turnStart", "phase", "proposer",
            "proposerTimeLeft", "challengerTimeLeft", "startRoot", "endRoot", "rootsHash",
        )
        return dict(zip(names, self.game.functions.getGame(game_id).call()))


def deploy_system(
    w3: Web3,
    sender: str,
    params: SystemParams,
    *,
    token: Contract | None = None,
    prover: Contract | None = None,
) -> System:
    """Deploy DevToken (unless `token`), MockOneStepProver (unless `prover`), then Bridge, Rollup and
    DisputeGame wired to each other. Bridge and Rollup learn their peers' addresses before those
    exist (CREATE addresses from the sender's nonce); each constructor checks the wiring."""
    if token is None:
        token = deploy_contract(w3, "DevToken", "Dev USD", "dUSD", sender=sender)
    if prover is None:
        prover = deploy_contract(w3, "MockOneStepProver", sender=sender)
    nonce = w3.eth.get_transaction_count(sender)
    rollup_address = predict_create_address(sender, nonce + 1)
    game_address = predict_create_address(sender, nonce + 2)
    bridge = deploy_contract(
        w3,
        "Bridge",
        token.address,
        rollup_address,
        params.forced_deadline,
        params.deposit_deadline,
        params.claim_period,
        sender=sender,
    )
    rollup = deploy_contract(
        w3,
        "Rollup",
        bridge.address,
        game_address,
        (
            params.genesis_root,
            params.challenge_window,
            params.proposer_bond,
            params.slash_reward_bps,
            params.max_timestamp_drift,
            params.genesis_time,
            [Web3.to_checksum_address(p) for p in params.proposers],
        ),
        sender=sender,
    )
    game = deploy_contract(
        w3,
        "DisputeGame",
        rollup.address,
        prover.address,
        params.arity,
        params.challenger_bond,
        params.clock,
        params.inclusion_margin,
        sender=sender,
    )
    if rollup.address != rollup_address or game.address != game_address:
        raise RuntimeError("contract addresses differ from the predicted ones (concurrent transactions from the deployer?)")
    return System(w3=w3, token=token, bridge=bridge, rollup=rollup, game=game, prover=prover, params=params)


# --- protocol helpers ----------------------------------------------------------------------------------


def deposit_acc(prev: bytes, owner: bytes, amount: int) -> bytes:
    """Bridge deposit hash chain: keccak(prev ‖ owner ‖ uint256 amount)."""
    return keccak(prev + owner + amount.to_bytes(32, "big"))


def forced_acc(prev: bytes, requester: bytes, account_id: int, amount: int) -> bytes:
    """Bridge forced-request hash chain: keccak(prev ‖ requester ‖ uint256 accountId ‖ uint256 amount)."""
    return keccak(prev + requester + account_id.to_bytes(32, "big") + amount.to_bytes(32, "big"))


def tx_proof(records: Sequence[bytes], k: int) -> list[bytes]:
    """Siblings of record k in the batch's transaction tree, as the `bytes32[]` DisputeGame.step takes
    (`optinode.spec.tx_tree.get_tx_proof`)."""
    return list(get_tx_proof(records, k))
