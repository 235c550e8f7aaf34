"""Fixtures for the one-step prover tests (the anvil fixtures come from tests/l1/conftest.py).

    osp        (session)  address of a deployed OneStepProver (with OspTrade, OspAccounts, OspMarket)
    vectors    (session)  the shared tests/vectors/**.json cases, parsed: list[Vector]

The prover is `view`, so nothing here changes chain state after the deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from web3 import Web3

from optinode.l1.osp import deploy_osp
from optinode.spec.serde import from_plain
from optinode.spec.types import L1Context
from optinode.spec.witness import Witness
from optinode.testing.vectors import VECTORS_DIR


# `pytest --hypothesis-profile=osp-no-shrink`: report the first failing example without shrinking it
# (each shrink step replays a whole scenario on anvil; useful when checking that a change is caught).
settings.register_profile("osp-no-shrink", deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])


@dataclass(frozen=True)
class Vector:
    name: str  # "trade/ok_slot_maker"
    tx_type: str  # "Trade"
    pre_root: bytes
    record: bytes
    ctx: L1Context
    witness: Witness
    post_root: bytes
    code: int
    applied: bool

    @property
    def item(self) -> tuple[bytes, bytes, L1Context, Witness]:
        return self.pre_root, self.record, self.ctx, self.witness


def load_vectors() -> list[Vector]:
    out = []
    for path in sorted(VECTORS_DIR.rglob("*.json")):
        v = json.loads(path.read_text())
        out.append(
            Vector(
                name=f"{path.parent.name}/{path.stem}",
                tx_type=v["tx"]["type"],
                pre_root=bytes.fromhex(v["pre_root"][2:]),
                record=bytes.fromhex(v["record"][2:]),
                ctx=from_plain(v["l1"], L1Context),
                witness=from_plain(v["witness"], Witness),
                post_root=bytes.fromhex(v["expected"]["post_root"][2:]),
                code=v["expected"]["code"],
                applied=v["expected"]["applied"],
            )
        )
    return out


@pytest.fixture(scope="session")
def osp(w3: Web3, deployer) -> str:
    return deploy_osp(w3, deployer)


@pytest.fixture(scope="session")
def vectors() -> list[Vector]:
    return load_vectors()
