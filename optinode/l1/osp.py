"""The Solidity one-step prover from Python: ABI encoding, deployment and calls (docs/one-step-prover.md).

    osp = deploy_osp(w3, deployer)                      # OspTrade, OspAccounts, OspMarket, OneStepProver
    post_root, code, applied = call_one_step(w3, osp, pre_root, record, ctx, witness)

`witness` is an `optinode.spec.witness.Witness` and `ctx` the spec's `L1Context`: the L1 inputs are
the queue entries at the witness's counters (what DisputeGame reads from Bridge). A call the prover
reverts raises `OneStepReverted` with the custom error's name (`WitnessProofMismatch`, ...).
`call_one_step_batch` sends many calls in one JSON-RPC batch (differential tests).

Synchronous web3: under trio run these through `trio.to_thread.run_sync`.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import eth_abi
from web3 import Web3

from optinode.l1.artifacts import load_artifact
from optinode.spec.crypto import keccak
from optinode.spec.types import L1Context
from optinode.spec.witness import Witness

__all__ = [
    "EXECUTE_SIGNATURE",
    "L1_INPUTS_ABI",
    "OSP_CONTRACTS",
    "OneStep",
    "OneStepReverted",
    "WITNESS_ABI",
    "call_one_step",
    "call_one_step_batch",
    "decode_revert",
    "deploy_osp",
    "encode_call",
    "encode_witness",
    "estimate_one_step_gas",
    "l1_inputs",
]

WITNESS_ABI = "(bytes32,bytes32,bytes,uint64,uint64,(uint64,bytes,bytes32[])[],(uint64,bytes,bytes32[])[])"
L1_INPUTS_ABI = "(uint64,bool,address,uint256,bool,address,uint256,uint256)"
EXECUTE_SIGNATURE = f"executeOneStep(bytes32,bytes,{L1_INPUTS_ABI},bytes)"
EXECUTE_SELECTOR = keccak(EXECUTE_SIGNATURE.encode())[:4]
OSP_CONTRACTS = ("OspTrade", "OspAccounts", "OspMarket", "OneStepProver")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class OneStep:
    """What executeOneStep returned."""

    post_root: bytes
    code: int
    applied: bool

    def astuple(self) -> tuple[bytes, int, bool]:
        return self.post_root, self.code, self.applied


class OneStepReverted(Exception):
    """executeOneStep reverted: `name` is the custom error (e.g. "WitnessMissingLeaf"), `args` its values."""

    def __init__(self, name: str | None, args: tuple[Any, ...], data: bytes) -> None:
        self.name = name
        self.error_args = args
        self.data = data
        label = f"{name}{args}" if name else ("0x" + data.hex() if data else "<no data>")
        super().__init__(f"executeOneStep reverted: {label}")


# --- encoding ------------------------------------------------------------------------------------------


def encode_witness(witness: Witness) -> bytes:
    """abi.encode(Witness) as IOneStepProver documents it (a dynamic struct: head at offset 0x20)."""
    value = (
        witness.accounts_root,
        witness.slots_root,
        witness.globals,
        witness.deposits_done,
        witness.forced_done,
        [(p.index, p.leaf, list(p.siblings)) for p in witness.accounts],
        [(p.index, p.leaf, list(p.siblings)) for p in witness.slots],
    )
    return eth_abi.encode([WITNESS_ABI], [value])


def l1_inputs(ctx: L1Context, deposits_done: int, forced_done: int) -> tuple:
    """The L1Inputs struct (as a tuple) for a transaction run at these queue counters: the deposit and
    forced-withdrawal entries at exactly those indices, when the context has them."""
    deposit = ctx.deposits.get(deposits_done)
    forced = ctx.forced.get(forced_done)
    return (
        ctx.l1_timestamp,
        deposit is not None,
        Web3.to_checksum_address(deposit.owner) if deposit else ZERO_ADDRESS,
        deposit.amount if deposit else 0,
        forced is not None,
        Web3.to_checksum_address(forced.requester) if forced else ZERO_ADDRESS,
        forced.account_id if forced else 0,
        forced.amount if forced else 0,
    )


def encode_call(pre_root: bytes, record: bytes, ctx: L1Context, witness: Witness) -> bytes:
    """Calldata of executeOneStep(preRoot, record, l1, abi.encode(witness))."""
    l1 = l1_inputs(ctx, witness.deposits_done, witness.forced_done)
    args = eth_abi.encode(["bytes32", "bytes", L1_INPUTS_ABI, "bytes"], [pre_root, record, l1, encode_witness(witness)])
    return EXECUTE_SELECTOR + args


def decode_result(data: bytes) -> OneStep:
    post_root, code, applied = eth_abi.decode(["bytes32", "uint8", "bool"], data)
    return OneStep(post_root, code, applied)


@cache
def _errors() -> dict[bytes, tuple[str, list[str]]]:
    """selector -> (name, argument types) for every error the prover contracts can raise."""
    known: dict[bytes, tuple[str, list[str]]] = {}
    for name in OSP_CONTRACTS:
        for item in load_artifact(name)["abi"]:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                known[keccak(f"{item['name']}({','.join(types)})".encode())[:4]] = (item["name"], types)
    known[keccak(b"MalformedEncoding()")[:4]] = ("MalformedEncoding", [])
    known[keccak(b"Panic(uint256)")[:4]] = ("Panic", ["uint256"])
    known[keccak(b"Error(string)")[:4]] = ("Error", ["string"])
    return known


def decode_revert(data: bytes) -> OneStepReverted:
    """The named error in a revert's data (name None when unknown or empty)."""
    entry = _errors().get(data[:4]) if len(data) >= 4 else None
    if entry is None:
        return OneStepReverted(None, (), data)
    name, types = entry
    try:
        args = tuple(eth_abi.decode(types, data[4:]))
    except Exception:  # noqa: BLE001 - malformed error data: keep the name
        args = ()
    return OneStepReverted(name, args, data)


# --- deployment ------------------------------------------------------------------------------------------


def _deploy(w3: Web3, name: str, sender: str, *args: Any) -> str:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx_hash = factory.constructor(*args).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise RuntimeError(f"deploying {name} reverted: {receipt}")
    return receipt["contractAddress"]


def deploy_osp(w3: Web3, sender: Any) -> str:
    """Deploy the per-type contracts and the OneStepProver entry that calls them; returns its address.

    `sender` is an address (str) or an object with `.address` that the node has unlocked."""
    frm = sender if isinstance(sender, str) else sender.address
    trade = _deploy(w3, "OspTrade", frm)
    accounts = _deploy(w3, "OspAccounts", frm)
    market = _deploy(w3, "OspMarket", frm)
    return _deploy(w3, "OneStepProver", frm, trade, accounts, market)


# --- calls ---------------------------------------------------------------------------------------------


def _revert_data(error: Any) -> bytes:
    data = error.get("data") if isinstance(error, dict) else None
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    return b""


def _rpc_batch(w3: Web3, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    url = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        replies = json.loads(response.read())
    by_id = {reply["id"]: reply for reply in replies}
    return [by_id[i] for i in range(len(calls))]


def _call_params(osp_address: str, data: bytes, gas: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {"to": osp_address, "data": "0x" + data.hex()}
    if gas is not None:
        params["gas"] = hex(gas)
    return params


def call_one_step_batch(
    w3: Web3,
    osp_address: str,
    items: Sequence[tuple[bytes, bytes, L1Context, Witness]],
    *,
    gas: int | None = 30_000_000,
    chunk: int = 200,
) -> list[OneStep | OneStepReverted]:
    """eth_call executeOneStep for each (pre_root, record, ctx, witness), in JSON-RPC batches of `chunk`."""
    out: list[OneStep | OneStepReverted] = []
    for start in range(0, len(items), chunk):
        calls = [
            ("eth_call", [_call_params(osp_address, encode_call(*item), gas), "latest"]) for item in items[start : start + chunk]
        ]
        for reply in _rpc_batch(w3, calls):
            if "error" in reply:
                out.append(decode_revert(_revert_data(reply["error"])))
            else:
                out.append(decode_result(bytes.fromhex(reply["result"][2:])))
    return out


def call_one_step(
    w3: Web3, osp_address: str, pre_root: bytes, record: bytes, ctx: L1Context, witness: Witness
) -> tuple[bytes, int, bool]:
    """(post_root, code, applied) from the Solidity prover; raises OneStepReverted."""
    result = call_one_step_batch(w3, osp_address, [(pre_root, record, ctx, witness)])[0]
    if isinstance(result, OneStepReverted):
        raise result
    return result.astuple()


def estimate_one_step_gas(
    w3: Web3, osp_address: str, pre_root: bytes, record: bytes, ctx: L1Context, witness: Witness
) -> int:
    """eth_estimateGas of a transaction calling executeOneStep directly: intrinsic gas (21,000 plus
    calldata) and execution. Raises OneStepReverted."""
    data = encode_call(pre_root, record, ctx, witness)
    [reply] = _rpc_batch(w3, [("eth_estimateGas", [_call_params(osp_address, data, None)])])
    if "error" in reply:
        raise decode_revert(_revert_data(reply["error"]))
    return int(reply["result"], 16)
