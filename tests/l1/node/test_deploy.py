"""`optinode l1 deploy` against anvil, as a subprocess: the deployment file, checked against L1 state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from eth_account import Account

from optinode.config import load_config
from optinode.l1 import events
from optinode.l1.artifacts import load_artifact
from optinode.l1.deploy import DeploymentError, load_deployment
from optinode.l1.follower import Follower
from optinode.l1.rpc import RpcClient
from optinode.spec.commitment import compute_state_root
from optinode.spec.eip712 import compute_domain_separator
from optinode.spec.genesis import create_genesis_state
from optinode.store.memory import open_memory

REPO = Path(__file__).resolve().parents[3]
DEVNET = REPO / "configs" / "devnet.toml"


def optinode(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optinode.cli.main", *args],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def deployed(anvil, snapshot, tmp_path):
    out = tmp_path / "deployment.json"
    key = anvil.private_keys[0]
    result = optinode("l1", "deploy", "--config", str(DEVNET), "--rpc", anvil.url, "--out", str(out), env={"OPTINODE_DEPLOYER_KEY": key})
    assert result.returncode == 0, result.stderr
    assert key[2:] not in result.stdout + result.stderr
    return load_deployment(out), result.stdout


def test_deploy_writes_a_file_that_matches_the_chain(deployed, w3, anvil) -> None:
    deployment, stdout = deployed
    config = load_config(DEVNET)
    c = deployment.contracts
    for address in (c.token, c.bridge, c.rollup, c.game, c.prover):
        assert len(w3.eth.get_code(address)) > 0
    assert deployment.verifying_contract == c.rollup
    assert deployment.deployer == Account.from_key(anvil.private_keys[0]).address
    rollup = w3.eth.contract(address=c.rollup, abi=load_artifact("Rollup")["abi"])
    bridge = w3.eth.contract(address=c.bridge, abi=load_artifact("Bridge")["abi"])
    assert "0x" + bytes(rollup.functions.getBatch(0).call()[0]).hex() == deployment.genesis_root
    assert rollup.functions.batchCount().call() == 1
    assert bridge.functions.rollup().call() == c.rollup
    # the genesis commits to the domain with verifyingContract = the deployed Rollup
    genesis = deployment.genesis(config)
    assert genesis.verifying_contract == bytes.fromhex(c.rollup[2:])
    state = create_genesis_state(genesis)
    assert "0x" + compute_state_root(state).hex() == deployment.genesis_root
    assert deployment.domain_separator == "0x" + compute_domain_separator(anvil.chain_id, bytes.fromhex(c.rollup[2:])).hex()
    # the genesis time is the L1 time just before the Rollup was created (its batch 0 timestamp)
    assert w3.eth.get_block(deployment.deployment_block)["timestamp"] <= genesis.time == deployment.genesis_time
    assert deployment.genesis_time <= rollup.functions.getBatch(0).call()[3]
    assert deployment.params == config.l1
    assert c.rollup in stdout and deployment.genesis_root in stdout
    # deployed code fits EIP-170 without anvil's escape
    assert all(len(w3.eth.get_code(a)) <= 24_576 for a in (c.bridge, c.rollup, c.game, c.prover))


@pytest.mark.trio
async def test_a_follower_from_the_deployment_block_sees_the_genesis(deployed, anvil) -> None:
    deployment, _ = deployed
    c = deployment.contracts
    assert deployment.followed_contracts() == {
        bytes.fromhex(a[2:]): n for a, n in ((c.bridge, "Bridge"), (c.rollup, "Rollup"), (c.game, "DisputeGame"))
    }
    node = load_config(DEVNET).node
    store = open_memory(deployment.store_identity("verifier"))
    follower = Follower.for_deployment(RpcClient(anvil.url, retry_for=20), store, deployment, node)
    assert (follower.start_block, follower.window, follower.max_range) == (deployment.deployment_block, node.reorg_window, node.log_block_range)
    with trio.fail_after(30):
        outputs, _ = await follower.poll()
    finalized = [e for e in outputs if isinstance(e, events.BatchFinalized)]
    assert [(e.index, "0x" + e.state_root.hex()) for e in finalized] == [(0, deployment.genesis_root)]


def test_a_config_that_is_not_the_deployed_one_is_refused(deployed, tmp_path) -> None:
    deployment, _ = deployed
    other = tmp_path / "other.toml"
    other.write_text(DEVNET.read_text().replace("price = 300_000_000", "price = 310_000_000"))
    with pytest.raises(DeploymentError, match="not the one the rollup was deployed with"):
        deployment.genesis(load_config(other))


@pytest.mark.parametrize(
    "edit, env, problem",
    [
        (None, "none", "node.keys.deployer: environment variable OPTINODE_DEPLOYER_KEY is not set"),
        (("chain_id = 31337", "chain_id = 5"), "key", "the endpoint is chain 31337, the config's genesis.chain_id is 5"),
        (("[l1]", "[l1_removed]"), "key", "unknown key `l1_removed`"),
        (None, "poor", "has no ETH"),
    ],
)
def test_deploy_errors_are_one_line_exit_2(edit, env, problem, anvil, snapshot, tmp_path) -> None:
    config = tmp_path / "c.toml"
    text = DEVNET.read_text()
    if edit:
        text = text.replace(*edit)
    config.write_text(text)
    key = {"none": "", "key": anvil.private_keys[0], "poor": "0x" + "42" * 32}[env]
    environ = {"OPTINODE_DEPLOYER_KEY": key}
    result = optinode("l1", "deploy", "--config", str(config), "--rpc", anvil.url, "--out", str(tmp_path / "d.json"), env=environ)
    assert result.returncode == 2, result.stderr
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "d.json").exists()


def test_an_existing_deployment_file_is_not_overwritten(tmp_path) -> None:
    out = tmp_path / "deployment.json"
    out.write_text("{}")
    result = optinode("l1", "deploy", "--config", str(DEVNET), "--out", str(out), env={"OPTINODE_DEPLOYER_KEY": "0x" + "11" * 32})
    assert result.returncode == 2 and "exists" in result.stderr and "--force" in result.stderr
    assert out.read_text() == "{}"


def test_a_bad_deployment_file(tmp_path) -> None:
    path = tmp_path / "d.json"
    with pytest.raises(DeploymentError, match="cannot read"):
        load_deployment(path)
    path.write_text('{"format": "optinode-deployment-v1"}')
    with pytest.raises(DeploymentError, match="not an optinode deployment file"):
        load_deployment(path)
