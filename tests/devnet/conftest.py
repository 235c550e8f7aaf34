"""The devnet's tests: each scenario end to end on its own anvil (marked ``l1`` like tests/l1), the
command as a subprocess (Ctrl-C, no orphans), and its plan and config rules without anvil.

    outcome, facts = in_devnet(tmp_path, honest.run, inspect)   # run a scenario, then look at L1 ourselves
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from rich.console import Console

from optinode.devnet.network import Devnet, open_devnet
from optinode.devnet.runner import BLOCK_TIME
from optinode.devnet.story import Story
from optinode.l1.anvil import find_anvil, run_anvil
from optinode.testing.seqnode import DEVNET

ANVIL_TESTS = ("test_scenarios.py", "test_command.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in ANVIL_TESTS and item.path.parent == Path(__file__).parent:
            item.add_marker(pytest.mark.l1)


def in_devnet(tmp_path: Path, scenario: Callable[[Devnet], Awaitable[Any]], inspect: Callable[[Devnet, Any], Awaitable[Any]]) -> tuple[Any, Any, str]:
    """Start a devnet as `optinode devnet` does (its own anvil, mixed mining), run ``scenario``, then
    ``inspect(net, outcome)`` while everything still runs; returns (outcome, what inspect returned, the
    narrative). The nodes and anvil are stopped afterwards, whatever happened."""
    out = io.StringIO()
    story = Story(Console(file=out, width=200, highlight=False, soft_wrap=True))

    async def main() -> tuple[Any, Any]:
        async with open_devnet(anvil, tmp_path / "devnet", story, DEVNET) as net:
            outcome = await scenario(net)
            return outcome, await inspect(net, outcome)

    with run_anvil(binary=find_anvil(), block_time=BLOCK_TIME, args=["--mixed-mining"], log_dir=tmp_path) as anvil:
        try:
            outcome, facts = trio.run(main)
        except BaseException:
            print(out.getvalue())  # the narrative up to the failure, for the test report
            raise
    return outcome, facts, out.getvalue()
