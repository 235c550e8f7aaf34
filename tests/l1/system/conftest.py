"""Fixtures for the rollup system tests (Bridge, Rollup, DisputeGame on anvil).

    system      a fresh deployment (DevToken, MockOneStepProver, Bridge, Rollup, DisputeGame) with
                `PARAMS`, inside an evm snapshot reverted after the test
    make_system make_system(**param_overrides, prover=None, genesis_root=None) for other parameters
    proposer, challenger, challenger2, users   addresses (anvil's unlocked accounts 1, 2, 3, 4..9)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from optinode.l1.contracts import System, SystemParams, deploy_system
from optinode.spec.crypto import keccak

GENESIS_ROOT = keccak(b"optinode test genesis")
PARAMS = dict(
    challenge_window=3600,
    proposer_bond=10**18,
    challenger_bond=3 * 10**17,
    slash_reward_bps=5000,
    clock=1800,
    arity=16,
    forced_deadline=2 * 86_400,
    deposit_deadline=3 * 86_400,
)


@pytest.fixture
def proposer(accounts) -> str:
    return accounts[1].address


@pytest.fixture
def challenger(accounts) -> str:
    return accounts[2].address


@pytest.fixture
def challenger2(accounts) -> str:
    return accounts[3].address


@pytest.fixture
def users(accounts) -> list[str]:
    return [a.address for a in accounts[4:]]


@pytest.fixture
def make_system(w3, deployer, proposer, snapshot) -> Callable[..., System]:
    def make(*, prover: Any = None, genesis_root: bytes = GENESIS_ROOT, **overrides: Any) -> System:
        params = SystemParams(genesis_root=genesis_root, proposers=(proposer,), **{**PARAMS, **overrides})
        return deploy_system(w3, deployer.address, params, prover=prover)

    return make


@pytest.fixture
def system(make_system) -> System:
    return make_system()
