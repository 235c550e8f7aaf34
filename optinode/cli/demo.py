"""`optinode spec demo`: a narrated session of the executable specification on the devnet genesis.

Deposits, a partial fill continued by slot reference, an oracle update, a funding tick (one beyond the
rate bound refused), a withdrawal, a replayed order, a price crash and a liquidation; after each step
the receipts, balances and state root. At the end it checks conservation of collateral and that the
incremental commitment equals the root computed from scratch: a failure there is a spec bug and is
raised as one (internal-error exit status), never reported as bad input.
"""

from __future__ import annotations

import time
from typing import Any

from optinode.errors import InvalidInput
from optinode.spec import serde
from optinode.spec.commitment import compute_state_root
from optinode.spec.errors import ErrorCode
from optinode.spec.types import Receipt, Transaction
from optinode.testing.world import World, consumed_deposits, oracle_key, price_of, size_of, total_withdrawn


class DemoConfigError(InvalidInput):
    """The config is valid but not one the demo can narrate (its oracle keys or ETH-USD market)."""


class DemoInvariantBroken(AssertionError):
    """A check at the end of the demo failed: a bug in the spec, never bad input."""


class _Demo:
    """Drives the spec through a short session and prints each step with rich."""

    def __init__(self, config: Any, console: Any) -> None:
        self.console = console
        self.genesis = config.genesis.to_genesis()
        self.markets = config.genesis.markets
        if [oracle_key(i).address for i in range(len(self.genesis.oracles))] != list(self.genesis.oracles):
            raise DemoConfigError("the demo signs prices with the devnet oracle keys, but the config's [genesis] oracles differ")
        names = [m.name for m in self.markets]
        if "ETH-USD" not in names:
            raise DemoConfigError("the demo trades a market named ETH-USD, which the config does not have")
        self.eth = names.index("ETH-USD")
        self.decimals = tuple(m.base_decimals for m in self.markets)
        # The test driver, on the config's genesis: the devnet keys (alice, bob, carol and the oracles),
        # nonces from 0, the batch's L1 time set by each step, the incremental root checked at each step.
        self.w = World(self.genesis, l1_timestamp=self.genesis.time)
        self.state = self.w.state
        self.root = self.w.root()

    # --- units ---

    def size(self, amount: str) -> int:
        """An ETH amount in the config's ETH-USD base units."""
        try:
            return size_of(self.eth, amount, self.decimals)
        except ValueError as error:
            raise DemoConfigError(f"the config's ETH-USD market: {error}") from None

    def price(self, usd: str) -> int:
        """A USD-per-ETH price in PRICE_ONE units per base unit of the config's ETH-USD market."""
        try:
            return price_of(self.eth, usd, self.decimals)
        except ValueError as error:
            raise DemoConfigError(f"the config's ETH-USD market: {error}") from None

    def fmt_size(self, size: int, market: int) -> str:
        asset = self.markets[market].name.split("-")[0]
        return f"{size / 10**self.markets[market].base_decimals:+,.3f} {asset}"

    def fmt_price(self, price: int, market: int | None = None) -> str:
        from optinode.spec.constants import PRICE_ONE

        decimals = self.markets[self.eth if market is None else market].base_decimals
        return f"{price * 10**decimals / PRICE_ONE / 10**6:,.2f}"

    @staticmethod
    def usd(amount: int) -> str:
        return f"{amount / 10**6:,.2f}"

    # --- transactions ---

    def order(self, name: str, is_buy: bool, size: str, price: str, fee_rate: int, expiry_in: int = 86_400) -> Any:
        return self.w.order(
            name, market=self.eth, is_buy=is_buy, size=self.size(size), limit_price=self.price(price),
            fee_rate=fee_rate, expiry=self.genesis.time + expiry_in,
        )

    def prices(self, usd: list[str], timestamp: int) -> Any:
        return self.w.prices(self.eth, [(i, self.price(p), timestamp) for i, p in enumerate(usd)])

    def step(self, title: str, story: str, txs: list[tuple[str, Transaction]]) -> list[Receipt]:
        from rich.table import Table

        receipts = [self.w.apply(tx) for _, tx in txs]
        root = self.w.root()
        console = self.console
        console.rule(f"[bold]{title}")
        console.print(story, highlight=False)
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("#", justify="right")
        table.add_column("transaction")
        table.add_column("receipt")
        first = len(self.w.txs) - len(txs)
        for offset, ((label, tx), receipt) in enumerate(zip(txs, receipts)):
            if receipt.code == ErrorCode.OK:
                result = "[green]OK[/]"
            else:
                word = "rejected" if receipt.applied else "invalid"
                result = f"[red]{word} {ErrorCode(receipt.code).name}[/]"
            table.add_row(str(first + offset), f"{type(tx).__name__}: {label}", result)
        console.print(table)
        console.print(self.balances())
        console.print(self.system_line(), highlight=False)
        changed = "unchanged" if root == self.root else "new"
        console.print(f"root [bold]0x{root.hex()}[/] ({changed})", highlight=False)
        self.root = root
        return receipts

    def balances(self) -> Any:
        from rich.table import Table

        from optinode.spec.margin import compute_settled_funding, get_total_risk, get_total_value

        state = self.state
        table = Table(box=None, show_edge=False, pad_edge=False, header_style="dim")
        for column, justify in [("account", "left"), ("collateral $", "right"), ("position", "right"),
                                ("value $", "right"), ("maint. $", "right"), ("status", "left")]:
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for name, account_id in self.w.ids.items():
            account = state.accounts[account_id]
            collateral, positions, _ = compute_settled_funding(state, account)
            value = get_total_value(state, collateral, positions)
            risk = get_total_risk(state, positions, initial=False)
            status = "[red]bankrupt[/]" if value < 0 else "[yellow]LIQUIDATABLE[/]" if value < risk else "ok"
            held = ", ".join(self.fmt_size(p.size, m) for m, p in sorted(positions.items())) or "-"
            table.add_row(f"{account_id} {name}", self.usd(collateral), held, self.usd(value), self.usd(risk), status)
        return table

    def system_line(self) -> str:
        state = self.state
        market = state.markets[self.eth]
        return (
            f"[dim]fees ${self.usd(state.fees)} · insurance ${self.usd(state.insurance)} · funding pool "
            f"${self.usd(state.funding_pool)} · {self.markets[self.eth].name} {self.fmt_price(market.price)} "
            f"· time +{state.time - self.genesis.time}s[/]"
        )

    # --- the story ---

    def run(self, config_name: str) -> None:
        from optinode.spec.state import get_total_collateral
        from optinode.spec.types import Deposit, FundingTick, Liquidate, SlotRef, Trade

        console, state, g = self.console, self.state, self.genesis
        eth_config = self.markets[self.eth]
        console.rule("[bold]optinode spec demo")
        console.print(
            f"Genesis from {config_name}: chain {g.chain_id}, {len(g.oracles)} oracles (quorum {g.quorum}), markets "
            + ", ".join(f"{m.name} @ {self.fmt_price(m.price, i)}" for i, m in enumerate(self.markets))
            + f".\nroot [bold]0x{self.root.hex()}[/]",
            highlight=False,
        )

        # 1. deposits
        funds = {"alice": "100000", "bob": "100000", "carol": "5000"}
        txs = []
        for name, usd in funds.items():
            self.w.ids[name] = state.next_account_id + len(txs)
            self.w.queue_deposit(name, int(usd) * 10**6)
            txs.append((f"{name} ${int(usd):,} from 0x{self.w.address(name).hex()[:8]}…", Deposit(self.w.ids[name])))
        self.w.l1_timestamp = g.time + 60
        self.step("1. Deposits", "Three L1 deposits wait in the bridge's queue; each Deposit consumes the next entry "
                  "and opens an account for its owner.", txs)

        # 2. a partial fill
        carol_bid = self.order("carol", True, "15", "3000", 200)
        bob_ask = self.order("bob", False, "10", "2999", 500)
        trade_a = Trade(maker=carol_bid, taker=bob_ask, size=self.size("10"))
        self.step("2. Trade, partial fill", "Carol (maker) bids 15 ETH at 3000 with 0.02% fee; Bob (taker) sells 10 at any "
                  "price >= 2999. They fill 10 ETH at the maker's price. Both orders are EIP-712 signed; Carol's "
                  "unfilled 5 ETH rests in order slot 0.", [("carol buys 10 ETH from bob @ 3000", trade_a)])

        # 3. continued by slot reference
        alice_ask = self.order("alice", False, "8", "3000", 500)
        self.step("3. Trade continuing a resting order", "Alice sells into Carol's rest by reference (SlotRef 0: no "
                  "second copy of Carol's signature goes to L1). Alice's order is for 8 ETH, so its unfilled 3 ETH "
                  "rests in slot 1.",
                  [("slot 0 (carol) buys 5 ETH from alice @ 3000", Trade(maker=SlotRef(0), taker=alice_ask, size=self.size("5")))])

        # 4. oracle update
        self.w.l1_timestamp = g.time + 180
        update = self.prices(["3005", "3010", "3020"], g.time + 120)
        self.step("4. Oracle update", f"All {len(self.genesis.oracles)} oracles sign an ETH price (3005, 3010, 3020); the "
                  "market takes the lower median, so no single oracle moves it. The system time advances to the "
                  "samples' median time.", [("ETH-USD median 3010", update)])

        # 5. funding
        self.w.l1_timestamp = g.time + 3600
        elapsed = g.time + 3600 - state.funding_time
        bound = eth_config.max_funding_rate * state.markets[self.eth].price * elapsed // 10**12
        indices_too_far = tuple(m.funding_index + (bound + 1 if i == self.eth else 0) for i, m in enumerate(state.markets))
        indices = tuple(m.funding_index + (bound * 9 // 10 if i == self.eth else 0) for i, m in enumerate(state.markets))
        per_eth = self.usd(bound * 9 // 10 * 10**eth_config.base_decimals // 10**8)
        self.step("5. Funding tick", f"After {elapsed} s the ETH funding index may move by at most max rate x price x "
                  f"time = {bound}. A tick beyond it is invalid; one at 90% of it makes longs pay ${per_eth} per ETH "
                  "to shorts (settled on each account's next touch).",
                  [("index +bound+1", FundingTick(timestamp=g.time + 3600, indices=indices_too_far)),
                   ("index +90% of bound", FundingTick(timestamp=g.time + 3600, indices=indices))])

        # 6. withdrawal
        withdraw = self.w.withdraw("alice", 1000 * 10**6, expiry=g.time + 86_400)
        self.step("6. Withdrawal", "Alice signs a Withdraw of $1,000: it leaves the state now and is paid by "
                  "the L1 bridge once the batch finalizes.", [("alice $1,000", withdraw)])

        # 7. replay
        self.step("7. Replay", "A malicious sequencer re-posts the first trade. Carol's order nonce is already used: "
                  "the transaction is invalid, stays in the batch, and the state root does not change.",
                  [("replay of trade #3", trade_a)])

        # 8. crash
        self.w.l1_timestamp = g.time + 3720
        self.step("8. Price crash", "ETH falls to 2785. Carol (15 ETH long on $5,000) is now below her 5% maintenance "
                  "margin.", [("ETH-USD median 2785", self.prices(["2780", "2785", "2790"], g.time + 3700))])

        # 9. liquidation
        bob_bid = self.order("bob", True, "15", "2760", 500)
        self.step("9. Liquidation", "Bob's signed bid takes over under-margined positions. Against healthy Alice it is "
                  "invalid (and does not use up its nonce); against Carol it closes her 15 ETH at 2760, within the "
                  "5% band around the oracle price, and 1% of the notional goes to the insurance fund.",
                  [("bob takes alice's position", Liquidate(liquidator=bob_bid, liquidated_id=self.w.ids["alice"], size=self.size("5"))),
                   ("bob takes carol's 15 ETH @ 2760", Liquidate(liquidator=bob_bid, liquidated_id=self.w.ids["carol"], size=self.size("15")))])

        # summary
        console.rule("[bold]Summary")
        held = get_total_collateral(state) - state.socialized_loss  # tokens: units less the socialized loss
        deposited, withdrawn = consumed_deposits(self.w.ctx, state), total_withdrawn(state)
        owed = deposited - withdrawn
        mark = "[green]holds[/]" if held == owed else "[red]DOES NOT hold[/]"
        console.print(f"conservation {mark}: collateral in the state ${self.usd(held)} = deposits ${self.usd(deposited)} "
                      f"- withdrawals ${self.usd(withdrawn)}", highlight=False)
        if compute_state_root(state) != self.root:
            raise DemoInvariantBroken("the incremental state root differs from the root computed from scratch")
        if held != owed:
            raise DemoInvariantBroken("collateral is not conserved")
        console.print("final state root (the incremental commitment equals the root computed from scratch):")
        console.print(f"[bold]0x{self.root.hex()}[/]", highlight=False)
        from optinode.spec import batch_framing

        encoded = batch_framing.encode_batch(self.w.txs)
        decoded = batch_framing.decode_batch(encoded)
        as_json = len(serde.to_json(self.w.txs))
        same = "decodes back to the same transactions" if decoded == self.w.txs else "[red]DOES NOT decode back[/]"
        console.print(f"batch: {len(self.w.txs)} transactions encode to [bold]{len(encoded)} bytes[/] of L1 calldata "
                      f"({len(encoded) / len(self.w.txs):.0f} B/tx; {as_json} bytes as JSON), {same}", highlight=False)


def run_demo(config: Any, config_name: str) -> None:
    from rich.console import Console

    started = time.perf_counter()
    console = Console()
    _Demo(config, console).run(config_name)
    console.print(f"[dim]demo ran in {time.perf_counter() - started:.2f} s[/]")

