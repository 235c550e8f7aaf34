"""A real sequencer on a real anvil, for the end-to-end tests and bench/crash_proposer.py.

    chain = DevChain.deploy(anvil.url, tmp_path)           # `optinode l1 deploy` as a subprocess
    node = chain.start_sequencer(tmp_path / "seq")          # `optinode sequencer` as a subprocess
    node.submit(tx)                                         # the devnet admin JSON-RPC method
    chain.deposit(user, amount); chain.mine(6)              # L1 actions (anvil_* only here, in tooling)
    batches = chain.l1_batches()                            # what L1 holds: calldata records and roots
    chain.replay(batches)                                   # a clean replay of L1 with the spec

Everything asserted is read from L1 (events, calldata, contract state); the node's own view is used
only to wait for it (`node.status()`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import eth_abi
import requests
from web3 import Web3

from optinode.config import Config, load_config
from optinode.l1.anvil import DEFAULT_PRIVATE_KEYS, free_port
from optinode.l1.artifacts import load_artifact
from optinode.l1.contracts import transact
from optinode.l1.deploy import Deployment, load_deployment
from optinode.spec import serde
from optinode.spec.batch_framing import split_records
from optinode.spec.commitment import Commitment
from optinode.spec.genesis import create_genesis_state
from optinode.spec.record_codec import decode_transaction
from optinode.spec.transition import state_transition
from optinode.spec.types import DepositEntry, ForcedEntry, L1Context, Receipt, Transaction

REPO = Path(__file__).resolve().parents[2]
DEVNET = REPO / "configs" / "devnet.toml"
DEPLOYER_KEY = DEFAULT_PRIVATE_KEYS[0]
PROPOSER_KEY = DEFAULT_PRIVATE_KEYS[1]  # configs/devnet.toml's [l1] proposers


def optinode_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OPTINODE_DEPLOYER_KEY": DEPLOYER_KEY, "OPTINODE_PROPOSER_KEY": PROPOSER_KEY}


def optinode_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "optinode.cli.main", *args]


@dataclass
class L1Batch:
    index: int
    records: list[bytes]
    state_root: bytes
    timestamp: int
    deposits_done: int
    forced_done: int
    tx_hash: bytes


class AdminError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


class Sequencer:
    """One `optinode sequencer` process."""

    def __init__(self, chain: DevChain, data_dir: Path, *, crash_at: str | None = None, log_path: Path | None = None,
                 fault: str | None = None, api: bool = False) -> None:
        self.chain = chain
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or data_dir.with_suffix(".log")
        args = ["sequencer", "--config", str(chain.config_path), "--deployment", str(chain.deployment_path), "--data-dir", str(data_dir),
                "--rpc", chain.url, "--admin-port", str(self.port)]
        self.api_url: str | None = None  # the public JSON-RPC (docs/api.md), when asked for
        if api:
            api_port = free_port()
            self.api_url = f"http://127.0.0.1:{api_port}/"
            args += ["--api-port", str(api_port)]
        if crash_at:
            args += ["--crash-at", crash_at]
        if fault:
            args += ["--fault", fault]
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(optinode_command(*args), env=optinode_env(), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)

    def call(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        reply = requests.post(self.url, json=body, timeout=timeout).json()
        if "error" in reply:
            raise AdminError(reply["error"])
        return reply["result"]

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the sequencer exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                self.call("optinode_adminStatus", timeout=2)
                if self.api_url is not None:  # the public API starts after the admin one (its worker pool first)
                    requests.post(self.api_url, json={"jsonrpc": "2.0", "id": 1, "method": "optinode_status"}, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"the sequencer did not answer within {timeout} s:\n{self.log_tail()}")

    def status(self) -> dict[str, Any]:
        return self.call("optinode_adminStatus")

    def submit(self, tx: Transaction) -> dict[str, Any]:
        return self.call("optinode_adminSubmit", serde.to_plain(tx))

    def claim(self, account_id: int, batch_index: int | None = None) -> dict[str, Any]:
        params = [account_id] if batch_index is None else [account_id, batch_index]
        return self.call("optinode_adminWithdrawalClaim", *params)

    def wait_for(self, predicate: Any, what: str, timeout: float = 60.0, *, mine_every: float | None = None) -> Any:
        deadline = time.monotonic() + timeout
        last_mine = time.monotonic()
        while time.monotonic() < deadline:
            try:
                value = predicate()
            except requests.RequestException:
                value = None  # the node is gone (checked below) or busy
            if value:
                return value
            if self.process.poll() is not None:
                raise RuntimeError(f"the sequencer exited ({self.process.returncode}) while waiting for {what}:\n{self.log_tail()}")
            if mine_every is not None and time.monotonic() - last_mine > mine_every:
                self.chain.mine(1)
                last_mine = time.monotonic()
            time.sleep(0.1)
        raise TimeoutError(f"waited {timeout} s for {what}:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_tail(self, n: int = 6000) -> str:
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode(errors="replace")


class DevChain:
    """A deployed rollup on an anvil node, and L1-side reads and actions for tests."""

    def __init__(self, url: str, config_path: Path, deployment_path: Path) -> None:
        self.url = url
        self.config_path = config_path
        self.deployment_path = deployment_path
        self.config: Config = load_config(config_path)
        self.deployment: Deployment = load_deployment(deployment_path)
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        c = self.deployment.contracts
        self.token = self.w3.eth.contract(address=c.token, abi=load_artifact("DevToken")["abi"])
        self.bridge = self.w3.eth.contract(address=c.bridge, abi=load_artifact("Bridge")["abi"])
        self.rollup = self.w3.eth.contract(address=c.rollup, abi=load_artifact("Rollup")["abi"])
        self.genesis = self.deployment.genesis(self.config)

    @classmethod
    def deploy(cls, url: str, workdir: Path, config_text: str | None = None) -> DevChain:
        workdir.mkdir(parents=True, exist_ok=True)
        config_path = workdir / "config.toml"
        config_path.write_text(DEVNET.read_text() if config_text is None else config_text)
        out = workdir / "deployment.json"
        result = subprocess.run(optinode_command("l1", "deploy", "--config", str(config_path), "--rpc", url, "--out", str(out)),
                                env=optinode_env(), capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"optinode l1 deploy failed:\n{result.stderr}")
        return cls(url, config_path, out)

    def start_sequencer(self, data_dir: Path, **kwargs: Any) -> Sequencer:
        node = Sequencer(self, data_dir, **kwargs)
        node.wait_ready()
        return node

    # --- L1 actions (anvil's unlocked accounts) ---------------------------------------------------

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        reply = self.w3.provider.make_request(method, params or [])
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def travel(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])
        self.mine(1)

    def deposit(self, user: str, amount: int, owner: str | None = None) -> None:
        transact(self.w3, self.token.functions.mint(user, amount), user)
        transact(self.w3, self.token.functions.approve(self.bridge.address, amount), user)
        transact(self.w3, self.bridge.functions.deposit(owner or user, amount), user)

    def request_forced(self, user: str, account_id: int, amount: int) -> None:
        transact(self.w3, self.bridge.functions.requestForcedWithdrawal(account_id, amount), user)

    def claim(self, user: str, claim: dict[str, Any]) -> Any:
        parts = (claim["accounts_root"], claim["slots_root"], claim["globals_hash"], claim["deposits_done"], claim["forced_done"])
        proof = (claim["account_id"], claim["leaf"], claim["siblings"])
        return transact(self.w3, self.bridge.functions.claimWithdrawal(claim["batch_index"], parts, proof), user)

    # --- L1 reads ---------------------------------------------------------------------------------

    def batch_count(self) -> int:
        return self.rollup.functions.batchCount().call()

    def finalized_count(self) -> int:
        return self.rollup.functions.finalizedCount().call()

    def _logs(self, event: Any) -> list[Any]:
        return event.get_logs(from_block=self.deployment.deployment_block, to_block="latest")

    def l1_batches(self) -> list[L1Batch]:
        """Every live batch after genesis, from the BatchAppended events and their transactions' calldata."""
        count = self.batch_count()  # before the logs: a batch appended in between is not missing from them
        appended = {e["args"]["index"]: e for e in self._logs(self.rollup.events.BatchAppended())}
        batches = []
        for index in range(1, count):
            event = appended[index]
            tx = self.w3.eth.get_transaction(event["transactionHash"])
            data = bytes(tx["input"])
            args = eth_abi.decode(["bytes", "bytes32", "bytes32", "bytes32", "uint64", "uint64", "uint64"], data[4:])
            on_chain = self.rollup.functions.getBatch(index).call()
            batches.append(L1Batch(index, split_records(args[0]), bytes(on_chain[0]), on_chain[3], on_chain[6], on_chain[7],
                                   bytes(event["transactionHash"])))
        return batches

    def append_transactions(self) -> list[bytes]:
        """Every appendBatch transaction ever mined (a batch posted twice would show here twice)."""
        return [bytes(e["transactionHash"]) for e in self._logs(self.rollup.events.BatchAppended())]

    def queues(self) -> tuple[dict[int, DepositEntry], dict[int, ForcedEntry]]:
        deposits = {e["args"]["index"]: DepositEntry(bytes.fromhex(e["args"]["owner"][2:]), e["args"]["amount"])
                    for e in self._logs(self.bridge.events.Deposited())}
        forced = {e["args"]["index"]: ForcedEntry(bytes.fromhex(e["args"]["requester"][2:]), e["args"]["accountId"], e["args"]["amount"])
                  for e in self._logs(self.bridge.events.ForcedWithdrawalRequested())}
        return deposits, forced

    def replay(self, batches: list[L1Batch]) -> tuple[list[bytes], list[list[tuple[Transaction, Receipt]]], Any]:
        """Replay L1's batches with the spec from the deployed genesis, as a verifier would: the roots
        after each batch, each batch's transactions with their receipts, and the final state."""
        deposits, forced = self.queues()
        state = create_genesis_state(self.genesis)
        commitment = Commitment.from_state(state)
        roots, receipts = [], []
        for batch in batches:
            ctx = L1Context(batch.timestamp, deposits=deposits, forced=forced)
            applied = []
            for record in batch.records:
                tx = decode_transaction(record)
                applied.append((tx, state_transition(state, tx, ctx)))
            receipts.append(applied)
            roots.append(commitment.update(state))
        return roots, receipts, state

