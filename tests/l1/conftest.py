"""Fixtures for tests against a real L1: a local anvil node started by pytest.

    anvil     (session)   optinode.l1.anvil.Anvil: the running node (url, port, chain_id, rpc())
    w3        (session)   web3.Web3 connected over HTTP to it
    accounts  (session)   list[LocalAccount]: anvil's 10 default funded accounts
    deployer  (session)   accounts[0]
    deploy    (session)   deploy(name, *args, sender=None) -> web3 Contract, from contracts/artifacts
    snapshot  (function)  evm_snapshot before the test, evm_revert after it; yields the snapshot id

The chain is shared by the whole session (one anvil per xdist worker): a test that changes
state it does not own should request ``snapshot``. Missing anvil is an error, never a skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from optinode.l1.anvil import Anvil, AnvilNotFound, find_anvil, run_anvil
from optinode.l1.artifacts import load_artifact


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/l1/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.l1)


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    try:
        binary = find_anvil()
    except AnvilNotFound as exc:
        pytest.fail(f"L1 tests need anvil: {exc}", pytrace=False)
    with run_anvil(binary=binary) as node:
        yield node


@pytest.fixture(scope="session")
def w3(anvil: Anvil) -> Web3:
    web3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))
    assert web3.is_connected(), f"cannot reach anvil at {anvil.url}"
    return web3


@pytest.fixture(scope="session")
def accounts(anvil: Anvil) -> list[LocalAccount]:
    return [Account.from_key(k) for k in anvil.private_keys]


@pytest.fixture(scope="session")
def deployer(accounts: list[LocalAccount]) -> LocalAccount:
    return accounts[0]


@pytest.fixture(scope="session")
def deploy(w3: Web3, deployer: LocalAccount) -> Callable[..., Contract]:
    """``deploy("DevToken", "USD Coin", "USDC", sender=acct)``: deploy and return the contract.

    The transaction is sent from ``sender`` (default: ``deployer``), an account anvil
    unlocks. Fails the test if the deployment reverts.
    """

    def _deploy(name: str, *args: Any, sender: LocalAccount | str | None = None) -> Contract:
        art = load_artifact(name)
        if art["bytecode"] in ("", "0x"):
            raise ValueError(f"{name} has no bytecode (an interface or abstract contract?)")
        frm = sender if isinstance(sender, str) else (sender or deployer).address
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx_hash = factory.constructor(*args).transact({"from": frm})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1, f"deploying {name} reverted: {receipt}"
        return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    return _deploy


@pytest.fixture
def snapshot(anvil: Anvil) -> Iterator[str]:
    snap_id = anvil.rpc("evm_snapshot")
    try:
        yield snap_id
    finally:
        assert anvil.rpc("evm_revert", [snap_id]) is True, "evm_revert failed"
