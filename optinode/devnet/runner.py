"""`optinode devnet`: start the devnet, run the scenarios, optionally stay up (docs/devnet.md).

    code = run_devnet(DevnetOptions(scenarios=plan(["all"]), keep_running=False, config=DEVNET, workdir=None))

One process: anvil is started first (optinode.l1.anvil, in its own session, with a temporary state
cache) around one ``trio.run``, whose root nursery holds the devnet (both nodes) and a signal
watcher. SIGINT/SIGTERM cancel the root: the nodes get SIGTERM and are waited for (shielded), then
anvil stops, then the temporary work directory is removed; nothing is left running.

Exit status: 0 when every check of every scenario held (for ``--keep-running``, also after Ctrl-C),
1 when a check failed or a node died (`EXIT_CHECK_FAILED`), 2 for bad input, 130 when interrupted
before the scenarios were done.
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
from rich.console import Console

from optinode.cli.exits import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK
from optinode.config import ConfigError, load_config
from optinode.errors import InvalidInput
from optinode.devnet.network import Devnet, devnet_config, open_devnet
from optinode.devnet.nodes import NodeFailed
from optinode.devnet.scenarios import ALL, SCENARIOS
from optinode.devnet.scenarios.common import ensure_funded
from optinode.devnet.story import ScenarioFailed, Story
from optinode.devnet.trader import ORDER_LIFETIME, ApiError
from optinode.l1.anvil import Anvil, run_anvil

BLOCK_TIME = 1  # seconds between anvil's own blocks (transactions are mined at once: --mixed-mining)
TRAFFIC_EVERY = 5.0  # seconds between the bots' trades while the devnet stays up


class BadPlan(ConfigError):
    """An unknown scenario name, or an order that cannot run (censorship freezes the rollup)."""


def plan(names: Sequence[str]) -> tuple[str, ...]:
    """The scenarios to run, in order: ``all`` is every one; ``none`` only starts the devnet."""
    out: list[str] = []
    for name in names:
        if name == "all":
            out += ALL
        elif name in SCENARIOS:
            out.append(name)
        elif name != "none":
            raise BadPlan(f"--scenario: unknown scenario {name!r}; choose from {', '.join([*SCENARIOS, 'all', 'none'])}")
    if "censorship" in out[:-1]:
        raise BadPlan("--scenario: censorship freezes the rollup for good, so it must come last")
    return tuple(out)


@dataclass
class DevnetOptions:
    scenarios: tuple[str, ...]
    keep_running: bool = False
    config: Path = Path(__file__).resolve().parents[2] / "configs" / "devnet.toml"
    workdir: Path | None = None  # None: a temporary directory, removed at the end
    outcomes: dict[str, Any] = field(default_factory=dict)  # filled in: what each scenario measured


def check_config(path: Path) -> None:
    """Fail early (before anvil starts) on a config the devnet cannot run."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    with tempfile.TemporaryDirectory(prefix="optinode-devnet-config-") as tmp:
        probe = Path(tmp) / "config.toml"
        probe.write_text(devnet_config(text, str(path)))
        load_config(probe)


def run_devnet(options: DevnetOptions, console: Console | None = None) -> int:
    """Run the devnet (see the module docstring); returns the exit status."""
    check_config(options.config)
    story = Story(console)
    with contextlib.ExitStack() as stack:
        workdir = options.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="optinode-devnet-")))
        workdir.mkdir(parents=True, exist_ok=True)
        anvil = stack.enter_context(run_anvil(block_time=BLOCK_TIME, args=["--mixed-mining"], new_session=True, log_dir=workdir))
        story.step(f"anvil L1 on {anvil.url} (chain {anvil.chain_id}, a block every {BLOCK_TIME} s; work directory {workdir})",
                   block=int(anvil.rpc("eth_blockNumber"), 16))
        try:
            return trio.run(_main, anvil, workdir, options, story)
        except KeyboardInterrupt:  # before the signal watcher was up
            return EXIT_INTERRUPTED


async def _main(anvil: Anvil, workdir: Path, options: DevnetOptions, story: Story) -> int:
    code = EXIT_INTERRUPTED  # until the scenarios have run
    try:
        async with trio.open_nursery() as root:
            root.start_soon(_cancel_on_signal, root.cancel_scope)
            async with open_devnet(anvil, workdir, story, options.config) as net:
                code = await _scenarios(net, options, story)
                if options.keep_running:
                    await _stay_up(net, story)  # until Ctrl-C
            root.cancel_scope.cancel()
    except* InvalidInput as bad:  # (no `return` inside except*)
        for error in bad.exceptions:
            story.console.print(f"[red]error:[/] {error}")
        code = EXIT_BAD_INPUT
    except* (NodeFailed, ScenarioFailed) as failed:
        for error in failed.exceptions:
            story.console.print(f"[red]devnet failed:[/] {error}")
        code = EXIT_CHECK_FAILED
    if code == EXIT_INTERRUPTED:
        story.console.print("[yellow]interrupted[/] before the scenarios were done")
    story.note("stopped: the sequencer and the verifier have exited; anvil stops next")
    return code


async def _scenarios(net: Devnet, options: DevnetOptions, story: Story) -> int:
    """Run them in order; the first failed check ends the run (EXIT_CHECK_FAILED)."""
    for name in options.scenarios:
        try:
            options.outcomes[name] = await SCENARIOS[name].run(net)
        except ScenarioFailed as failed:
            story.console.print(f"[red]scenario {name} FAILED[/]: {failed}")
            return EXIT_CHECK_FAILED
    if options.scenarios:
        story.console.rule(f"[green]{', '.join(options.scenarios)}: all {len(story.checks)} checks held")
    return EXIT_OK


async def _cancel_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


async def _stay_up(net: Devnet, story: Story) -> None:
    """Print the endpoints and keep the bots trading until Ctrl-C."""
    frozen = await net.l1(net.chain.bridge.functions.frozen().call)
    if not frozen:
        await ensure_funded(net, [net.alice, net.bob])  # (``--scenario none``: the bots need accounts to trade)
    e, c = net.endpoints, net.chain.deployment.contracts
    lines = [
        "[bold]the devnet stays up[/] (Ctrl-C stops the nodes and anvil):",
        f"  anvil L1          {e.anvil}  chain {net.anvil.chain_id}",
        f"  sequencer API     {e.api}  JSON-RPC + WebSocket, GET /metrics (docs/api.md)",
        f"  sequencer admin   {e.admin}  optinode_adminStatus (devnet only)",
        f"  verifier watch    {e.watch}  optinode_status, GET /metrics (docs/verifier.md)",
        f"  contracts         bridge {c.bridge}  rollup {c.rollup}  game {c.game}  dUSD {c.token}",
        f"  deployment        {net.deployment_path}",
        f"  logs              {net.sequencer.log_path}  {net.verifier.log_path}  {net.anvil.log_path}",
        "  try:",
        f"    curl -s {e.api} -H 'content-type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"optinode_status\",\"params\":[]}}'",
        f"    curl -s {e.api} -H 'content-type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"optinode_getBook\",\"params\":[0,5]}}'",
        f"    curl -s {e.watch} -H 'content-type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"optinode_status\",\"params\":[]}}'",
        f"    curl -s {e.watch}metrics | grep ^optinode_",
    ]
    for name, bot in net.traders.items():
        lines.append(f"  {name:<6} L1 {bot.address}  L2 account {bot.account_id}  key {bot.key} (anvil's public dev key)")
    for line in lines:
        story.console.print(line, highlight=False)
    if frozen:
        story.note("the rollup is frozen (censorship scenario): nothing trades any more; the nodes stay up to be inspected")
        await trio.sleep_forever()
    await _traffic(net)


async def _traffic(net: Devnet) -> None:
    """Alice and Bob trade a few lots every few seconds (alternating sides) until Ctrl-C."""
    buyer, seller = net.alice, net.bob
    while True:
        await trio.sleep(TRAFFIC_EVERY)
        try:
            market = await net.market(0)
            limit = market["price"] // market["tickSize"] * market["tickSize"]
            expiry = await net.l1_time() + ORDER_LIFETIME
            size = 10 * market["stepSize"]
            await buyer.api.send_order(buyer.account_id, market=0, is_buy=True, size=size, price=limit, expiry=expiry)
            await seller.api.send_order(seller.account_id, market=0, is_buy=False, size=size, price=limit, expiry=expiry, timeInForce="ioc")
        except (ApiError, httpx.HTTPError):
            pass  # a refused order (a moving price, margin) costs one round; the devnet stays up
        buyer, seller = seller, buyer
