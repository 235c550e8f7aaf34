"""Batch data is always on L1 (issue 8, finding 1; DESIGN safety property 7).

A verifier with a standard (non-archive) node reads a batch from the input of the transaction that
appended it. A proposer that is a contract, or an EOA delegated with EIP-7702 (anvil's default
hardfork has it), could build the batch in memory and call `Rollup.appendBatch` from its own code:
the Rollup would store a correct transaction root for bytes that no transaction input contains, and
nobody could challenge the batch. The Rollup now accepts an append only as the transaction's
top-level call from an account without code, so the batch bytes are the transaction's input.
"""

from __future__ import annotations

from eth_account import Account
from web3 import Web3

from optinode.l1.contracts import SystemParams, deploy_contract, deploy_system, increase_time, transact
from optinode.spec.batch_framing import frame_records, split_records
from optinode.spec.tx_tree import compute_tx_root

from .conftest import GENESIS_ROOT, PARAMS
from .support import events, expect_revert, parts_for

BOND = PARAMS["proposer_bond"]


def rebuild_from_input(system, tx_hash) -> list[bytes] | None:
    """What a verifier does: the batch's records from the input of the appending transaction, or
    None if that input is not a call of Rollup.appendBatch."""
    tx = system.w3.eth.get_transaction(tx_hash)
    if tx["to"] != system.rollup.address:
        return None
    fn, args = system.rollup.decode_function_input(tx["input"])
    if fn.fn_name != "appendBatch":
        return None
    return split_records(args["data"])


def _system(w3, deployer, proposer: str):
    params = SystemParams(genesis_root=GENESIS_ROOT, proposers=(proposer,), **PARAMS)
    return deploy_system(w3, deployer.address, params)


def _relay_call(relay, system, seed: bytes):
    parts = parts_for("relay")
    return relay.functions.relay(system.rollup.address, seed, parts.as_tuple())


def test_a_direct_append_is_rebuildable_from_its_input(system, proposer) -> None:
    records = [bytes((0x04,)), b"\x01\x07", b"garbage" * 3]
    index = system.append_batch(proposer, records, parts_for("direct"))
    (log,) = system.rollup.events.BatchAppended().get_logs(from_block=system.w3.eth.block_number)
    rebuilt = rebuild_from_input(system, log.transactionHash)
    assert rebuilt == records and compute_tx_root(rebuilt) == system.batch(index)["txRoot"]


def test_a_relay_contract_cannot_append(w3, deployer, proposer, snapshot) -> None:
    relay = deploy_contract(w3, "BatchRelay", sender=deployer.address)
    system = _system(w3, deployer, relay.address)  # the relay itself is the whitelisted proposer
    err = expect_revert("CalldataUnavailable", lambda: transact(w3, _relay_call(relay, system, b"\x11" * 32), proposer, value=BOND))
    assert err.values == (relay.address, proposer, len(w3.eth.get_code(relay.address)))
    assert system.rollup.functions.batchCount().call() == 1


def test_a_7702_delegated_proposer_cannot_append(w3, deployer, accounts, snapshot) -> None:
    eoa = accounts[1]
    relay = deploy_contract(w3, "BatchRelay", sender=deployer.address)
    system = _system(w3, deployer, eoa.address)
    call = _relay_call(relay, system, b"\x22" * 32)
    nonce = w3.eth.get_transaction_count(eoa.address)
    # the EOA delegates to the relay's code and, in the same transaction, calls itself
    auth = Account.sign_authorization({"chainId": w3.eth.chain_id, "address": relay.address, "nonce": nonce + 1}, eoa.key)
    tx = {
        "type": 4,
        "chainId": w3.eth.chain_id,
        "nonce": nonce,
        "to": eoa.address,
        "value": BOND,
        "data": call._encode_transaction_data(),
        "gas": 3_000_000,
        "maxFeePerGas": 10 * w3.eth.gas_price + 10**9,
        "maxPriorityFeePerGas": 10**9,
        "authorizationList": [auth],
    }
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(eoa.sign_transaction(tx).raw_transaction))
    code = w3.eth.get_code(eoa.address)
    assert code == bytes.fromhex("ef0100") + bytes.fromhex(relay.address[2:])  # delegated
    assert receipt["status"] == 0, "the Rollup accepted a batch whose bytes are in no transaction input"
    assert system.rollup.functions.batchCount().call() == 1
    # the reason, replayed as a call at the same state
    err = expect_revert(
        "CalldataUnavailable",
        lambda: transact(w3, system.rollup.functions.appendBatch(b"\x01\x04", *parts_for("x").as_tuple(), _latest_time(w3), system.batch(0)["stateRoot"]), eoa.address, value=BOND),
    )
    assert err.values == (eoa.address, eoa.address, len(code))
    # with the delegation cleared (authorization to the zero address), the EOA appends directly again
    nonce = w3.eth.get_transaction_count(eoa.address)
    clear = Account.sign_authorization({"chainId": w3.eth.chain_id, "address": "0x" + "00" * 20, "nonce": nonce + 1}, eoa.key)
    tx = {**tx, "nonce": nonce, "value": 0, "data": b"", "authorizationList": [clear]}
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(eoa.sign_transaction(tx).raw_transaction))
    assert w3.eth.get_code(eoa.address) == b""
    receipt = transact(w3, system.rollup.functions.appendBatch(frame_records([b"\x04"]), *parts_for("y").as_tuple(), _latest_time(w3), system.batch(0)["stateRoot"]), eoa.address, value=BOND)
    (ev,) = events(system.rollup.events.BatchAppended, receipt)
    assert rebuild_from_input(system, receipt["transactionHash"]) == [b"\x04"]
    assert Web3.to_checksum_address(ev.args.proposer) == eoa.address


def test_every_accepted_batch_is_rebuildable(system, proposer) -> None:
    # the finality path does not care how a batch arrived: every BatchAppended of a run is checked
    for i in range(3):
        system.append_batch(proposer, [bytes((0x04,))] * (i + 1), parts_for(f"r{i}"))
    increase_time(system.w3, system.params.challenge_window)
    for log in system.rollup.events.BatchAppended().get_logs(from_block=0):
        records = rebuild_from_input(system, log.transactionHash)
        assert records is not None and compute_tx_root(records) == log.args.txRoot


def _latest_time(w3) -> int:
    """A declared batch L1 time the next block accepts (the latest block's)."""
    return w3.eth.get_block("latest")["timestamp"]
