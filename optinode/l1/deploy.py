"""`optinode l1 deploy`: deploy the rollup from a config and write the deployment file every node
command reads.

    deployment = deploy(w3, account, config)          # sync web3: a one-shot tool, not a service
    write_deployment(path, deployment)
    deployment = load_deployment(path)                # DeploymentError for a bad file
    genesis = deployment.genesis(config)              # the genesis the deployed root commits to

Order of work, and why:

1. The endpoint's chain id must be the config's ``genesis.chain_id`` (orders are signed for it).
2. The collateral: ``l1.token`` if given; otherwise a DevToken, only on a devnet chain id (its mint is
   open to everyone).
3. The real one-step prover (`osp.deploy_osp`: the per-type contracts and the entry point).
4. The genesis commits to the EIP-712 domain, whose ``verifyingContract`` is the Rollup, which takes
   the genesis root in its constructor: the Rollup's address is predicted from the deployer's nonce
   (CREATE), the genesis is built with it (and ``time`` = the latest L1 block's timestamp, the time
   of the genesis prices), its root computed, then Bridge, Rollup and DisputeGame are deployed
   (`contracts.deploy_system`, which checks the prediction). The deployed Rollup's batch 0 must hold
   that root.

Transactions are signed locally (web3's signing middleware) with the deployer key, so the same
command deploys to anvil or to a public testnet; only standard ``eth_*`` calls are made.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import msgspec
from web3 import Web3

from optinode.config import Config, L1Section, parse_address, to_checksum_address
from optinode.errors import InvalidInput
from optinode.l1.contracts import SystemParams, deploy_contract, deploy_system, predict_create_address
from optinode.l1.osp import deploy_osp
from optinode.spec.commitment import compute_state_root
from optinode.spec.eip712 import compute_domain_separator
from optinode.spec.genesis import Genesis, create_genesis_state

__all__ = ["DEVNET_CHAIN_IDS", "Deployment", "DeploymentError", "deploy", "load_deployment", "write_deployment"]

DEVNET_CHAIN_IDS = frozenset({31337, 1337})
FORMAT = "optinode-deployment-v1"


class DeploymentError(InvalidInput):
    """A deployment file that cannot be used, or a deployment the config and the chain refuse."""


class Contracts(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    token: str
    bridge: str
    rollup: str
    game: str
    prover: str


class Deployment(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    format: str = FORMAT
    chain_id: int
    deployer: str
    deployment_block: int  # the first block with one of our contracts: followers start here
    contracts: Contracts
    verifying_contract: str  # = contracts.rollup (the EIP-712 domain)
    domain_separator: str  # 0x hex
    genesis_time: int
    genesis_root: str  # 0x hex; the Rollup's batch 0
    params: L1Section
    config_sha256: str  # of the config file's bytes at deploy time (informational)

    def followed_contracts(self) -> dict[bytes, str]:
        """{address: contract name} of what the L1 follower reads."""
        c = self.contracts
        return {parse_address(c.bridge): "Bridge", parse_address(c.rollup): "Rollup", parse_address(c.game): "DisputeGame"}

    def store_identity(self, role: str) -> str:
        """The store's identity for a node of ``role`` on this deployment: a data directory is never
        reused by another role or deployment (optinode.store.kv.check_format)."""
        return f"{role} chain={self.chain_id} rollup={self.contracts.rollup}"

    def genesis(self, config: Config) -> Genesis:
        """The genesis of ``config`` as deployed (verifying contract and time from here); refuses a
        config whose genesis does not produce the deployed root."""
        genesis = deployed_genesis(config, parse_address(self.verifying_contract), self.genesis_time)
        root = compute_state_root(create_genesis_state(genesis))
        if "0x" + root.hex() != self.genesis_root:
            raise DeploymentError(
                f"the config's [genesis] gives root 0x{root.hex()}, the deployment has {self.genesis_root}: "
                "this config is not the one the rollup was deployed with"
            )
        if config.genesis.chain_id != self.chain_id:
            raise DeploymentError(f"the config is for chain {config.genesis.chain_id}, the deployment for chain {self.chain_id}")
        return genesis


def deployed_genesis(config: Config, rollup: bytes, time: int) -> Genesis:
    return msgspec.structs.replace(config.genesis.to_genesis(), verifying_contract=rollup, time=time)


def deploy(w3: Web3, account: Any, config: Config, *, config_bytes: bytes = b"") -> Deployment:
    """Deploy everything ``config`` describes from ``account`` (an eth-account LocalAccount)."""
    from web3.middleware import SignAndSendRawMiddlewareBuilder

    if config.l1 is None:
        raise DeploymentError("the config has no [l1] section (the contracts' parameters)")
    l1 = config.l1
    chain_id = w3.eth.chain_id
    if chain_id != config.genesis.chain_id:
        raise DeploymentError(f"the endpoint is chain {chain_id}, the config's genesis.chain_id is {config.genesis.chain_id}")
    if l1.token is None and chain_id not in DEVNET_CHAIN_IDS:
        raise DeploymentError(f"l1.token is required on chain {chain_id}: a DevToken (open mint) is deployed on devnets only")
    if w3.eth.get_balance(account.address) == 0:
        raise DeploymentError(f"the deployer {account.address} has no ETH on chain {chain_id}")
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), name="optinode-signer", layer=0)
    try:
        sender = account.address
        first_block = w3.eth.block_number + 1
        token = None
        if l1.token is None:
            token = deploy_contract(w3, "DevToken", "Dev USD", "dUSD", sender=sender)
        else:
            token = w3.eth.contract(address=l1.token, abi=[])
            if not w3.eth.get_code(l1.token):
                raise DeploymentError(f"l1.token {l1.token} has no code on chain {chain_id}")
        prover_address = deploy_osp(w3, sender)
        prover = w3.eth.contract(address=prover_address, abi=[])
        # Rollup = the second contract deploy_system creates (Bridge, Rollup, DisputeGame).
        rollup = predict_create_address(sender, w3.eth.get_transaction_count(sender) + 1)
        genesis_time = w3.eth.get_block("latest")["timestamp"]
        genesis = deployed_genesis(config, bytes.fromhex(rollup[2:]), genesis_time)
        root = compute_state_root(create_genesis_state(genesis))
        # [l1] names each contract parameter as SystemParams does: copy them by name.
        shared = {f.name: getattr(l1, f.name) for f in dataclasses.fields(SystemParams)
                  if f.name not in ("genesis_root", "proposers", "genesis_time")}
        # batch 0's L1 time is the genesis state's: the first batch's declared time cannot precede it
        params = SystemParams(genesis_root=root, proposers=tuple(l1.proposers), genesis_time=genesis_time, **shared)
        system = deploy_system(w3, sender, params, token=token, prover=prover)
    finally:
        w3.middleware_onion.remove("optinode-signer")
    if system.rollup.address != rollup:
        raise RuntimeError(f"Rollup deployed at {system.rollup.address}, predicted {rollup}")
    if system.batch(0)["stateRoot"] != root:
        raise RuntimeError("the deployed Rollup's genesis root differs from the one computed")
    return Deployment(
        chain_id=chain_id,
        deployer=sender,
        deployment_block=first_block,
        contracts=Contracts(
            token=to_checksum_address(parse_address(token.address)),
            bridge=system.bridge.address,
            rollup=system.rollup.address,
            game=system.game.address,
            prover=prover_address,
        ),
        verifying_contract=system.rollup.address,
        domain_separator="0x" + compute_domain_separator(chain_id, bytes.fromhex(rollup[2:])).hex(),
        genesis_time=genesis_time,
        genesis_root="0x" + root.hex(),
        params=l1,
        config_sha256=hashlib.sha256(config_bytes).hexdigest(),
    )


def write_deployment(path: str | Path, deployment: Deployment) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(deployment), indent=2) + b"\n")
    tmp.replace(path)  # never a half-written deployment file


_DECODER = msgspec.json.Decoder(Deployment)


def load_deployment(path: str | Path) -> Deployment:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DeploymentError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        deployment = _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise DeploymentError(f"{path}: not an optinode deployment file: {error}") from None
    if deployment.format != FORMAT:
        raise DeploymentError(f"{path}: deployment format {deployment.format!r}, this optinode reads {FORMAT!r}")
    return deployment
