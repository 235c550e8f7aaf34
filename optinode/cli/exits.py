"""Exit statuses of the `optinode` command, and how a command reports bad input.

| status | meaning |
| --- | --- |
| 0  | the command did its job (for `spec apply`: every transaction ran, whatever the receipts say) |
| 1  | `optinode devnet`: a scenario's check failed, or a node died (the narrative says which) |
| 2  | bad input: an `InvalidInput` (or a usage error from typer); one line `error: …` on stderr |
| 70 | internal error: a bug in optinode (EX_SOFTWARE of sysexits.h); the traceback is on stderr |
| 130 | `optinode devnet`: interrupted (Ctrl-C) before its scenarios were done; everything it started is stopped |

2 is what typer/click already use for a wrong option, so "you gave me something wrong" has one
status. Bugs get their own status so that scripts (and CI) never mistake one for bad input.
"""

from __future__ import annotations

from typing import NoReturn

import typer

from optinode.errors import InvalidInput

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def fail(message: str) -> NoReturn:
    """Report bad input: one line on stderr, exit status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def reject(error: InvalidInput) -> NoReturn:
    """Report an expected rejection (its message already names the input and the rule)."""
    fail(str(error))
