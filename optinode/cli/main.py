"""Entry point of the `optinode` command.

`main()` is the console script. It runs the typer app and owns the one distinction every command
keeps: an `InvalidInput` is the caller's mistake (one line `error: …`, exit status 2), any other
exception is a bug in optinode (its traceback, then exit status 70). Commands report their own
`InvalidInput`s with context (`cli/exits.py`); this is the last line for everything else.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import typer

from optinode import __version__
from optinode.cli import devnet_cmd, l1_cmd, sequencer_cmd, spec_cmd, verifier_cmd
from optinode.cli.exits import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK
from optinode.errors import InvalidInput

app = typer.Typer(
    name="optinode",
    help="optinode: an optimistic rollup node for a perpetual-futures exchange.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # main() prints the plain traceback of a bug
)


@app.callback()
def _root() -> None:
    """optinode: an optimistic rollup node for a perpetual-futures exchange."""


@app.command()
def version() -> None:
    """Print the optinode version."""
    typer.echo(__version__)


app.add_typer(spec_cmd.app, name="spec")
app.add_typer(l1_cmd.app, name="l1")
app.command("sequencer")(sequencer_cmd.sequencer)
app.add_typer(verifier_cmd.app, name="verifier")
app.command("devnet")(devnet_cmd.devnet)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `optinode` with `argv` (default: the process arguments) and return its exit status."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="optinode")
    except SystemExit as done:  # click ends every run, successful or not, with SystemExit
        code = done.code
        return code if isinstance(code, int) else EXIT_OK if code is None else EXIT_BAD_INPUT
    except InvalidInput as error:  # a command that did not report its own
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception:
        traceback.print_exc()
        print(
            f"internal error: the traceback above is a bug in optinode {__version__}, not a problem with "
            "your input; please report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
