"""`optinode devnet`: a local chain with the whole rollup on it, and the scenarios (docs/devnet.md).

    optinode devnet [--scenario honest|bad-batch|censorship|all|none ...] [--keep-running]
                    [--config configs/devnet.toml] [--workdir DIR]

Starts anvil, deploys, runs a sequencer (public API), a verifier (challenger, watch port), the devnet
oracle feed and trader bots, then each scenario with its narrative and checks; ``--keep-running``
stays up and prints the endpoints until Ctrl-C. The work is in `optinode.devnet`. Exit status 0 when
every check held, 1 when one failed (or a node died), 2 for bad input, 130 when interrupted early.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from optinode.cli.exits import reject
from optinode.errors import InvalidInput

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "devnet.toml"


def devnet(
    scenario: Annotated[list[str], typer.Option("--scenario", help="honest, bad-batch, censorship, all (the three in order) or "
                                                "none (just the devnet); repeat for several.")] = ["all"],  # noqa: B006 - typer's default
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Stay up after the scenarios and print the endpoints; "
                                               "Ctrl-C stops everything.")] = False,
    config: Annotated[Path, typer.Option("--config", help="Config TOML (its genesis, node and l1 tables); the devnet turns its "
                                         "market services on.")] = DEFAULT_CONFIG,
    workdir: Annotated[Optional[Path], typer.Option("--workdir", help="Keep the deployment, node stores and logs here "
                                                    "(default: a temporary directory, removed at the end).")] = None,
) -> None:
    """Start a local devnet (anvil, sequencer, verifier, oracle feed, trader bots) and run the scenarios."""
    from optinode.devnet.runner import DevnetOptions, plan, run_devnet
    from optinode.l1.anvil import AnvilNotFound

    try:
        options = DevnetOptions(scenarios=plan(scenario), keep_running=keep_running, config=config, workdir=workdir)
        code = run_devnet(options)
    except InvalidInput as error:
        reject(error)
    except AnvilNotFound as error:
        reject(InvalidInput(str(error)))
    raise typer.Exit(code)
