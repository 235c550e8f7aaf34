"""`optinode verifier`: run the verifier node, or print its status (docs/verifier.md).

    optinode verifier run --config configs/devnet.toml --deployment deployment.json --data-dir data/ver \\
        [--rpc URL] [--watch-only] [--fault challenge:B:K] [--api-port 8546] [--log-format json]
    optinode verifier status --data-dir data/ver

``run`` follows L1 alone and, with the ``[node.keys] challenger`` key (unless ``--watch-only``),
challenges the first invalid batch and plays its games. ``status`` prints the JSON the running node
rewrites at every L1 head (`status.json`): L1 head, synced batch, pending windows, open games with both
clocks, bonds at stake, unserved queue entries and their deadlines — the same `Verifier.status()` that
``optinode_status`` serves live on the ``--api-port`` (with ``GET /metrics``). ``--fault`` is refused unless the deployment's chain is a devnet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from optinode.cli.exits import fail, reject
from optinode.cli.node_inputs import LOG_FORMAT_HELP
from optinode.errors import InvalidInput

app = typer.Typer(help="The verifier: replay L1 with the spec, challenge wrong roots.", no_args_is_help=True)


@app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", help="Config TOML: genesis, node settings, the challenger key source.")],
    deployment: Annotated[Path, typer.Option("--deployment", help="The deployment file `optinode l1 deploy` wrote.")],
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Store directory (default: node.data_dir).")] = None,
    rpc: Annotated[Optional[str], typer.Option("--rpc", help="L1 JSON-RPC URL (default: node.l1_rpc / node.l1_rpc_env).")] = None,
    watch_only: Annotated[bool, typer.Option("--watch-only", help="Verify and alert, never send a transaction.")] = False,
    fault: Annotated[Optional[str], typer.Option("--fault", help="Devnet only: challenge:BATCH:TX challenges an honest batch.")] = None,
    log_format: Annotated[Optional[str], typer.Option("--log-format", help=LOG_FORMAT_HELP)] = None,
    api_port: Annotated[Optional[int], typer.Option("--api-port", help="Serve optinode_status and GET /metrics on 127.0.0.1:PORT "
                                                    "(default: node.verifier.api_port; none: not served).")] = None,
) -> None:
    """Run the verifier: follow L1, replay every batch, challenge the first invalid one."""
    import trio

    from optinode.cli.node_inputs import load_node_inputs
    from optinode.config import load_key
    from optinode.services.faults import Faults
    from optinode.services.verifier import VerifierSettings, run_verifier
    from optinode.store.errors import StoreError

    try:
        loaded, deployed, url = load_node_inputs(config, deployment, rpc, log_format)
        key = None if watch_only else load_key(loaded.node, "challenger", base_dir=config.parent)
        faults = Faults().with_fault(fault, chain_id=deployed.chain_id)
    except InvalidInput as error:
        reject(error)
    if faults.corrupt is not None or faults.censor:
        fail("--fault corrupt:…/censor:… are sequencer faults; a verifier takes challenge:BATCH:TX")
    settings = VerifierSettings(config=loaded, deployment=deployed, data_dir=data_dir or Path(loaded.node.data_dir), rpc_url=url,
                                challenger_key=key, faults=faults, api_port=api_port)
    try:
        trio.run(run_verifier, settings)
    except StoreError as error:
        fail(str(error))


@app.command("status")
def status(data_dir: Annotated[Path, typer.Option("--data-dir", help="The running verifier's data directory.")]) -> None:
    """Print the verifier's status (what it last wrote at an L1 head) as JSON."""
    path = data_dir / "status.json"
    if not path.exists():
        fail(f"{path} does not exist: no verifier has run with this data directory")
    typer.echo(json.dumps(json.loads(path.read_text()), indent=2))
