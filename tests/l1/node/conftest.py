"""Fixtures for the node's L1 pieces (follower, sender) against anvil.

    system      Bridge/Rollup/DisputeGame (mock prover) deployed inside an evm snapshot
    rpc         optinode.l1.rpc.RpcClient on anvil (retries bounded so a broken test fails fast)
    store       an in-memory store (the LevelDB backend is covered by tests/store)
    contracts   {address bytes: contract name} of the system, what the follower follows
"""

from __future__ import annotations

import pytest

from optinode.l1.contracts import System, SystemParams, deploy_system
from optinode.l1.rpc import RpcClient
from optinode.spec.crypto import keccak
from optinode.store.memory import open_memory


@pytest.fixture
def system(w3, deployer, accounts, snapshot) -> System:
    params = SystemParams(genesis_root=keccak(b"node tests"), proposers=(accounts[1].address,))
    return deploy_system(w3, deployer.address, params)


@pytest.fixture
def deployment_block(w3, system) -> int:
    return w3.eth.block_number


@pytest.fixture
def rpc(anvil) -> RpcClient:
    return RpcClient(anvil.url, retry_for=20.0)


@pytest.fixture
def store():
    s = open_memory()
    yield s
    s.close()


@pytest.fixture
def contracts(system) -> dict[bytes, str]:
    return {
        bytes.fromhex(system.bridge.address[2:]): "Bridge",
        bytes.fromhex(system.rollup.address[2:]): "Rollup",
        bytes.fromhex(system.game.address[2:]): "DisputeGame",
    }
