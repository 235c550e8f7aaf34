"""`optinode verifier`: run the verifier node, or print its status (docs/verifier.md).

    optinode verifier run --config configs/devnet.toml --deployment deployment.json --data-dir data/ver \\
        [--rpc URL] [--check-rpc URL] [--watch-only] [--fault challenge:B:K] [--api-port 8546] [--log-format json]
    optinode verifier status [--api http://127.0.0.1:8546/] [--data-dir data/ver]

``run`` follows L1 alone and, with the ``[node.keys] challenger`` key (unless ``--watch-only``),
challenges the first invalid batch and plays its games. ``status`` prints `Verifier.status()`: L1 head,
synced batch, pending windows, games with both clocks, bonds at stake, unserved queue entries and their
deadlines. With ``--api URL`` it asks the running node (``optinode_status`` on its ``--api-port``); only
when nothing answers there does it print ``status.json`` from ``--data-dir`` (what the node last wrote at
an L1 head), saying so on stderr; the JSON on stdout has the same shape either way. ``--fault`` is
refused unless the deployment's chain is a devnet.
"""

from __future__ import annotations

import json
import time
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
    check_rpc: Annotated[Optional[str], typer.Option("--check-rpc", help="A second L1 endpoint (another provider) to cross-check the "
                                                     "head and the followed logs on (default: node.l1_check_rpc / node.l1_check_rpc_env).")] = None,
    watch_only: Annotated[bool, typer.Option("--watch-only", help="Verify and alert, never send a transaction.")] = False,
    fault: Annotated[Optional[str], typer.Option("--fault", help="Devnet only: challenge:BATCH:TX challenges an honest batch.")] = None,
    log_format: Annotated[Optional[str], typer.Option("--log-format", help=LOG_FORMAT_HELP)] = None,
    api_port: Annotated[Optional[int], typer.Option("--api-port", help="Serve optinode_status and GET /metrics on 127.0.0.1:PORT "
                                                    "(default: node.verifier.api_port; none: not served).")] = None,
) -> None:
    """Run the verifier: follow L1, replay every batch, challenge the first invalid one."""
    import trio

    from optinode.cli.node_inputs import load_node_inputs
    from optinode.config import load_key, resolve_l1_check_rpc
    from optinode.services.faults import Faults
    from optinode.services.verifier import VerifierSettings, run_verifier
    from optinode.store.errors import StoreError

    try:
        loaded, deployed, url = load_node_inputs(config, deployment, rpc, log_format)
        check_url = resolve_l1_check_rpc(loaded.node, check_rpc)
        key = None if watch_only else load_key(loaded.node, "challenger", base_dir=config.parent)
        faults = Faults().with_fault(fault, chain_id=deployed.chain_id)
    except InvalidInput as error:
        reject(error)
    if faults.corrupt is not None or faults.censor:
        fail("--fault corrupt:…/censor:… are sequencer faults; a verifier takes challenge:BATCH:TX")
    settings = VerifierSettings(config=loaded, deployment=deployed, data_dir=data_dir or Path(loaded.node.data_dir), rpc_url=url,
                                check_rpc_url=check_url, challenger_key=key, faults=faults, api_port=api_port)
    try:
        trio.run(run_verifier, settings)
    except StoreError as error:
        fail(str(error))


@app.command("status")
def status(
    api: Annotated[Optional[str], typer.Option("--api", help="The running verifier's watchtower URL (its --api-port), "
                                               "e.g. http://127.0.0.1:8546/: the live status.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="The verifier's data directory: its status.json (without "
                                                     "--api, or when nothing answers at --api).")] = None,
) -> None:
    """Print the verifier's status as JSON: live from --api, else what it last wrote in --data-dir."""
    from optinode.services.watch_rpc import NodeDown, StatusRefused, ask_status

    if api is None and data_dir is None:
        fail("give --api URL (the running node) and/or --data-dir DIR (its status.json)")
    down = None
    if api is not None:
        try:
            typer.echo(json.dumps(ask_status(api), indent=2))
            return
        except StatusRefused as error:
            fail(f"the verifier at {api} refused optinode_status: {error}")
        except NodeDown as error:
            down = f"the verifier at {api} does not answer ({error})"
            if data_dir is None:
                fail(f"{down}; give --data-dir to print the status it last wrote")
    assert data_dir is not None
    path = data_dir / "status.json"
    if not path.exists():
        fail(f"{down + '; ' if down else ''}{path} does not exist: no verifier has run with this data directory")
    shown = json.loads(path.read_text())
    if down is not None:  # stale: say how stale, on stderr (stdout stays the status, same shape as the live one)
        age = time.time() - path.stat().st_mtime
        typer.echo(f"note: {down}; printing {path}, written {age:.0f} s ago at L1 head {shown.get('l1_head')}", err=True)
    typer.echo(json.dumps(shown, indent=2))
