"""Entry point of the `optinode` command."""

from __future__ import annotations

import typer

from optinode import __version__

app = typer.Typer(
    name="optinode",
    help="optinode: an optimistic rollup node for a perpetual-futures exchange.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """optinode: an optimistic rollup node for a perpetual-futures exchange."""


@app.command()
def version() -> None:
    """Print the optinode version."""
    typer.echo(__version__)


# `optinode spec ...` lives in optinode/cli/spec_cmd.py, written separately. Register it
# when the module exists; only its absence is tolerated: an ImportError raised *inside*
# spec_cmd (a real bug) propagates.
try:
    import optinode.cli.spec_cmd as spec_cmd
except ModuleNotFoundError as exc:
    if exc.name != "optinode.cli.spec_cmd":
        raise
else:
    app.add_typer(spec_cmd.app, name="spec")


if __name__ == "__main__":  # pragma: no cover
    app()
