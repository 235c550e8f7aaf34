"""A deployed rollup and a running `optinode sequencer` subprocess on the session's anvil."""

from __future__ import annotations

import pytest
from eth_account import Account

from optinode.testing.seqnode import DevChain
from optinode.testing.world import World
from optinode.wallet import Key


@pytest.fixture
def chain(anvil, snapshot, tmp_path) -> DevChain:
    return DevChain.deploy(anvil.url, tmp_path / "chain")


@pytest.fixture
def node(chain, tmp_path):
    seq = chain.start_sequencer(tmp_path / "seq")
    yield seq
    code = seq.stop()
    assert code == 0, f"the sequencer did not shut down cleanly ({code}):\n{seq.log_tail()}"


@pytest.fixture
def users(anvil) -> dict[str, str]:
    """alice and bob: anvil accounts 2 and 3 (their L1 keys sign their L2 orders too)."""
    return {"alice": Account.from_key(anvil.private_keys[2]).address, "bob": Account.from_key(anvil.private_keys[3]).address}


@pytest.fixture
def world(chain, anvil) -> World:
    """The test driver on the deployed genesis (its domain separator), with the users' L1 keys."""
    keys = {"alice": Key(bytes.fromhex(anvil.private_keys[2][2:])), "bob": Key(bytes.fromhex(anvil.private_keys[3][2:]))}
    return World(chain.genesis, keys=keys)
