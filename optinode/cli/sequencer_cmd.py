"""`optinode sequencer`: run the sequencer node (docs/sequencer.md).

    optinode sequencer --config configs/devnet.toml --deployment deployment.json --data-dir data/seq \\
        [--rpc URL] [--admin-port 8600] [--api-port 8545] [--crash-at engine.cut:3]

Builds the settings (config, deployment, proposer key from ``[node.keys] proposer``) and calls
`trio.run`; the node itself is `optinode.services.sequencer`. ``--admin-port`` (the devnet admin
JSON-RPC endpoint) and ``--crash-at`` (fault injection; also ``OPTINODE_CRASH_AT``) are refused
unless the deployment's chain is a devnet. Bad input exits 2 with one line; SIGINT/SIGTERM stop the
node cleanly (exit 0).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from optinode.cli.exits import fail, reject
from optinode.cli.node_inputs import LOG_FORMAT_HELP
from optinode.errors import InvalidInput


def sequencer(
    config: Annotated[Path, typer.Option("--config", help="Config TOML: genesis, node settings, the proposer key source.")],
    deployment: Annotated[Path, typer.Option("--deployment", help="The deployment file `optinode l1 deploy` wrote.")],
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Store directory (default: node.data_dir).")] = None,
    rpc: Annotated[Optional[str], typer.Option("--rpc", help="L1 JSON-RPC URL (default: node.l1_rpc / node.l1_rpc_env).")] = None,
    admin_port: Annotated[Optional[int], typer.Option("--admin-port", help="Devnet only: serve the admin JSON-RPC on 127.0.0.1:PORT.")] = None,
    api_port: Annotated[Optional[int], typer.Option("--api-port", help="Serve the public JSON-RPC/WebSocket API (docs/api.md) on 127.0.0.1:PORT.")] = None,
    crash_at: Annotated[Optional[str], typer.Option("--crash-at", help="Devnet only: SIGKILL at a named point (NAME[:N]).")] = None,
    fault: Annotated[Optional[str], typer.Option("--fault", help="Devnet only: corrupt:BATCH:TX posts a wrong root and defends it; "
                                                                 "censor:0xADDRESS ignores that address (its submissions, its forced requests).")] = None,
    log_format: Annotated[Optional[str], typer.Option("--log-format", help=LOG_FORMAT_HELP)] = None,
) -> None:
    """Run the sequencer: consume L1 queues, apply transactions, post and finalize batches."""
    import trio

    from optinode.cli.node_inputs import load_node_inputs
    from optinode.config import load_key
    from optinode.l1.deploy import DEVNET_CHAIN_IDS
    from optinode.services.faults import Faults
    from optinode.services.market_services import load_market_keys
    from optinode.services.sequencer import SequencerSettings, run_sequencer
    from optinode.store.errors import StoreError

    try:
        loaded, deployed, url = load_node_inputs(config, deployment, rpc, log_format)
        key = load_key(loaded.node, "proposer", base_dir=config.parent)
        faults = Faults.parse(crash_at or os.environ.get("OPTINODE_CRASH_AT"), chain_id=deployed.chain_id)
        faults.with_fault(fault, chain_id=deployed.chain_id)
        market_keys = load_market_keys(loaded.market_services, deployed.genesis(loaded).oracles,
                                       devnet=deployed.chain_id in DEVNET_CHAIN_IDS, base_dir=config.parent)
    except InvalidInput as error:
        reject(error)
    if admin_port is not None and deployed.chain_id not in DEVNET_CHAIN_IDS:
        fail(f"--admin-port is refused on chain {deployed.chain_id}: the admin endpoint is for devnets only")
    if deployed.params is None or key.address not in deployed.params.proposers:
        fail(f"the proposer key {key.address} is not a proposer of this deployment")
    settings = SequencerSettings(config=loaded, deployment=deployed, data_dir=data_dir or Path(loaded.node.data_dir), rpc_url=url,
                                 proposer_key=key, admin_port=admin_port, rpc_port=api_port, faults=faults,
                                 market_keys=market_keys)
    try:
        trio.run(run_sequencer, settings)
    except StoreError as error:
        fail(str(error))
