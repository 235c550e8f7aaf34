"""`optinode spec …`: run the executable specification by hand.

    optinode spec apply --pre pre.json --txs txs.json [--l1 l1.json] [--out post.json] [--json]
    optinode spec demo [--config configs/devnet.toml]

`apply` is the spec's state-transition tool (like Ethereum's `evm t8n`): a pre-state, a list of
transactions (or an encoded batch) and the L1 context in, one receipt per transaction and the post-state
root out. Formats and exit statuses: docs/spec-apply.md. `demo` narrates a short session on the devnet
genesis.

The commands only declare their options and wire the pieces: input loading and printing are in
`cli/spec_apply.py`, the demo in `cli/demo.py`, every rule in `optinode.spec`. An `InvalidInput` is
reported as bad input (exit 2); anything else propagates to `cli.main.main` as a bug (exit 70).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from optinode.cli import spec_apply
from optinode.cli.exits import fail, reject
from optinode.errors import InvalidInput
from optinode.spec import serde
from optinode.spec.commitment import compute_state_root
from optinode.spec.types import L1Context

app = typer.Typer(
    name="spec",
    help="Run the executable specification: apply transactions to a state, or watch the demo.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "devnet.toml"


@app.command("apply")
def apply_command(
    pre: Annotated[str, typer.Option("--pre", help='Pre-state JSON: {"genesis": {...}} or a serialized State ("-" = stdin).')],
    txs: Annotated[str, typer.Option("--txs", help='Transactions JSON: a list of {"type": ...} or {"batch": "0x..."} ("-" = stdin).')],
    l1: Annotated[Optional[str], typer.Option("--l1", help="L1Context JSON: l1_timestamp and queue entries. Default: no queue entries, l1_timestamp = the pre-state's system time.")] = None,
    out: Annotated[Optional[str], typer.Option("--out", help="Write the post-state JSON to this file.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help='Print {"receipts": [...], "state_root": ..., "post": ...} instead of text.')] = False,
) -> None:
    """Apply transactions to a pre-state: one receipt per transaction and the post-state root (like `evm t8n`)."""
    stdin_used: list[str] = []
    try:
        pre_data, pre_name = spec_apply.read_input(pre, "--pre", stdin_used)
        txs_data, txs_name = spec_apply.read_input(txs, "--txs", stdin_used)
        l1_input = spec_apply.read_input(l1, "--l1", stdin_used) if l1 is not None else None
        state = spec_apply.load_pre(pre_data, pre_name)
        transactions = spec_apply.load_txs(txs_data, txs_name)
        ctx = spec_apply.load_l1(*l1_input) if l1_input else L1Context(l1_timestamp=state.time)
    except InvalidInput as error:
        reject(error)
    # From here on the inputs are checked: whatever raises is a bug, not bad input.
    receipts = spec_apply.apply_all(state, transactions, ctx)
    root = compute_state_root(state)
    post = spec_apply.canonical_post(state)
    if out is not None:
        try:
            Path(out).write_bytes(serde.to_json(post) + b"\n")
        except OSError as error:
            fail(f"--out: cannot write {out}: {error.strerror or error}")
    if json_output:
        typer.echo(spec_apply.result_json(receipts, root, post).decode())
    else:
        for line in spec_apply.result_lines(transactions, receipts, root):
            typer.echo(line)


@app.command("demo")
def demo_command(
    config: Annotated[Path, typer.Option("--config", help="Config file whose [genesis] the demo starts from.")] = DEFAULT_CONFIG,
) -> None:
    """A narrated walk through the spec on the devnet genesis: deposits, trades, oracle, funding, a withdrawal, a replay, a crash and a liquidation."""
    from optinode.cli.demo import run_demo
    from optinode.config import load_config

    try:
        loaded = load_config(config)
        run_demo(loaded, str(config))
    except InvalidInput as error:  # ConfigError, DemoConfigError
        reject(error)
