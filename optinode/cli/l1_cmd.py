"""`optinode l1 …`: the rollup's L1 side.

    optinode l1 deploy --config configs/devnet.toml --rpc http://127.0.0.1:8545 [--out deployment.json]

`deploy` deploys DevToken (devnets, unless ``[l1] token`` is set), the one-step prover, Bridge, Rollup
and DisputeGame with the config's ``[l1]`` parameters, from the key of ``[node.keys] deployer``, and
writes the deployment file (addresses, deployment block, genesis root and time, EIP-712 domain
separator with ``verifyingContract`` = the Rollup) that the node commands read. The work is in
`optinode.l1.deploy`; bad input (config, key, chain mismatch, an unreachable endpoint) exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from optinode.cli.exits import fail, reject
from optinode.errors import InvalidInput

app = typer.Typer(name="l1", help="The rollup's L1 contracts: deploy them.", no_args_is_help=True, add_completion=False)


@app.command("deploy")
def deploy_command(
    config: Annotated[Path, typer.Option("--config", help="Config TOML with the genesis, l1 and node.keys (deployer) sections.")],
    rpc: Annotated[Optional[str], typer.Option("--rpc", help="L1 JSON-RPC URL (default: node.l1_rpc / node.l1_rpc_env).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the deployment file.")] = Path("deployment.json"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing deployment file.")] = False,
) -> None:
    """Deploy the rollup's contracts and write the deployment file."""
    if out.exists() and not force:
        # Nodes read this file to find the contracts: a second deploy must not replace it by accident.
        fail(f"{out} exists (a deployment the nodes may be using); choose another --out or pass --force")
    from web3 import Web3

    from optinode.config import load_config, load_key, resolve_l1_rpc
    from optinode.l1.deploy import deploy, write_deployment

    try:
        loaded = load_config(config)
        url = resolve_l1_rpc(loaded.node, rpc)
        secret = load_key(loaded.node, "deployer", base_dir=config.parent)
    except InvalidInput as error:
        reject(error)
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    if not w3.is_connected():
        fail(f"cannot reach the L1 endpoint {url}")
    try:
        deployment = deploy(w3, secret.account(), loaded, config_bytes=config.read_bytes())
    except InvalidInput as error:
        reject(error)
    write_deployment(out, deployment)
    c = deployment.contracts
    typer.echo(f"deployed on chain {deployment.chain_id} from block {deployment.deployment_block} by {deployment.deployer}")
    for name in ("token", "bridge", "rollup", "game", "prover"):
        typer.echo(f"  {name:<8} {getattr(c, name)}")
    typer.echo(f"  genesis root {deployment.genesis_root} (time {deployment.genesis_time})")
    typer.echo(f"  EIP-712 domain separator {deployment.domain_separator} (verifyingContract {deployment.verifying_contract})")
    typer.echo(f"wrote {out}")
