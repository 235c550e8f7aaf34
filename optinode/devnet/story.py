"""The narrative a scenario prints, and the checks that decide its exit status.

    story.chapter("honest", "deposit → trade → batch → verified → finalized → claimed")
    story.step("alice deposits $10,000.00", block=receipt["blockNumber"], tx=receipt["transactionHash"])
    story.check("alice's L1 balance rose by exactly $100.00", delta == 100 * USD, f"it rose by {usd(delta)}")

A failed check prints its detail and raises `ScenarioFailed`: `optinode devnet` exits non-zero unless
every check of every scenario it ran held. Checks are about outcomes read back from L1 and the nodes
(balances, verdicts, finalized batches), never about the narrative itself.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from optinode.spec.constants import PRICE_ONE


class ScenarioFailed(Exception):
    """A scenario's outcome was not what the protocol promises (or it never came)."""


def usd(amount: int) -> str:
    """Collateral units (1e-6 USD) as dollars."""
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount) / 10**6:,.2f}"


def eth(wei: int) -> str:
    return f"{wei / 10**18:,.4f} ETH"


def price(value: int, base_decimals: int) -> str:
    """A PRICE_ONE price per base unit as USD per whole asset."""
    return f"${value * 10**base_decimals / PRICE_ONE / 10**6:,.2f}"


def short(value: Any) -> str:
    """A transaction hash or root as 0x1234…abcd."""
    text = value if isinstance(value, str) else "0x" + bytes(value).hex()
    text = text if text.startswith("0x") else "0x" + text
    return f"{text[:10]}…{text[-4:]}"


class Story:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)  # (a line per step, also in a log)
        self.checks: list[tuple[str, bool]] = []

    def chapter(self, name: str, summary: str) -> None:
        self.console.rule(f"[bold]{name}")
        self.console.print(f"  [bold]{summary}[/]")

    def step(self, text: str, *, block: int | None = None, tx: Any = None) -> None:
        where = f"[cyan]L1 #{block:<5}[/] " if block is not None else " " * 11
        hashed = f"  [dim]tx {short(tx)}[/]" if tx is not None else ""
        self.console.print(f"  {where}{text}{hashed}")

    def note(self, text: str) -> None:
        self.console.print(f"  [dim]{text}[/]")

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append((what, ok))
        if ok:
            self.console.print(f"  [green]✓[/] {what}")
            return
        self.console.print(f"  [red]✗ {what}[/]" + (f": {detail}" if detail else ""))
        raise ScenarioFailed(f"{what}" + (f" ({detail})" if detail else ""))
