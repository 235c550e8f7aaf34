"""`optinode spec …`: run the executable specification by hand.

    optinode spec apply --pre pre.json --txs txs.json [--l1 l1.json] [--out post.json] [--json]
    optinode spec demo [--config configs/devnet.toml]

`apply` is the spec's state-transition tool (like Ethereum's `evm t8n`): a pre-state, a list of
transactions (or an encoded batch) and the L1 context in, one receipt per transaction and the post-state
root out. Formats: docs/spec-apply.md. `demo` narrates a short session on the devnet genesis.

Both are thin: parsing and printing here, every rule in `optinode.spec`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import msgspec
import typer

from optinode.spec import serde
from optinode.spec.commitment import compute_state_root
from optinode.spec.errors import ErrorCode
from optinode.spec.genesis import Genesis, InvalidGenesis, create_genesis_state
from optinode.spec.state import State
from optinode.spec.transition import state_transition
from optinode.spec.types import L1Context, Receipt, Transaction

app = typer.Typer(
    name="spec",
    help="Run the executable specification: apply transactions to a state, or watch the demo.",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "devnet.toml"
EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad user input; the message is one line and names the input."""


def fail(message: str, exit_code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exit_code)


# --- reading inputs ----------------------------------------------------------------------------------


def read_input(source: str, label: str, stdin_used: list[str]) -> tuple[bytes, str]:
    """The bytes of a file, or of stdin for `-` (at most one input may be stdin). Returns (data, name)."""
    if source == "-":
        if stdin_used:
            raise InputError(f"{label}: stdin (-) is already used by {stdin_used[0]}")
        stdin_used.append(label)
        return typer.get_binary_stream("stdin").read(), f"{label} (stdin)"
    try:
        return Path(source).read_bytes(), source
    except OSError as error:
        raise InputError(f"{label}: cannot read {source}: {error.strerror or error}") from None


def parse_json(data: bytes, name: str) -> Any:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as error:
        raise InputError(f"{name}: invalid JSON: {error}") from None


def check_hex(value: Any, name: str, path: str = "$") -> None:
    """Every string that starts with 0x (serde reads those as bytes) must be whole bytes of hex."""
    if isinstance(value, str):
        if value.startswith("0x"):
            body = value[2:]
            if len(body) % 2 or any(c not in "0123456789abcdefABCDEF" for c in body):
                raise InputError(f"{name}: {path}: {value[:20]!r}{'…' if len(value) > 20 else ''} is not 0x-prefixed hex bytes")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_hex(item, name, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_hex(item, name, f"{path}[{index}]")


def convert(plain: Any, kind: Any, name: str) -> Any:
    check_hex(plain, name)
    try:
        return serde.from_plain(plain, kind)
    except msgspec.ValidationError as error:
        raise InputError(f"{name}: {error}") from None


def check_state(state: State, name: str) -> None:
    """A pre-state must be a whole, encodable state (not a one-step witness)."""
    config = state.config
    problems: list[str] = []
    if len(config.domain_separator) != 32:
        problems.append("config.domain_separator: expected 32 bytes")
    if any(len(o) != 20 for o in config.oracles):
        problems.append("config.oracles: every address must be 20 bytes")
    if not 1 <= config.quorum <= len(config.oracles):
        problems.append("config.quorum: need 1 <= quorum <= number of oracles")
    if len(state.markets) != len(config.markets):
        problems.append(f"markets: {len(state.markets)} market states for {len(config.markets)} configured markets")
    if set(state.accounts) != set(range(state.next_account_id)):
        problems.append(f"accounts: ids must be exactly 0..next_account_id-1 ({state.next_account_id} accounts)")
    if set(state.slots) != set(range(state.next_slot)):
        problems.append(f"slots: ids must be exactly 0..next_slot-1 ({state.next_slot} slots)")
    for account_id, account in state.accounts.items():
        if len(account.owner) != 20:
            problems.append(f"accounts.{account_id}.owner: expected 20 bytes")
        if any(not 0 <= m < len(config.markets) or p.size == 0 for m, p in account.positions.items()):
            problems.append(f"accounts.{account_id}.positions: unknown market or zero size")
    for slot_id, slot in state.slots.items():
        if not 0 <= slot.market < len(config.markets) or not 0 <= slot.account_id < state.next_account_id:
            problems.append(f"slots.{slot_id}: unknown market or account")
    if problems:
        raise InputError(f"{name}: {problems[0]}")
    try:
        compute_state_root(state)
    except (OverflowError, ValueError, TypeError) as error:
        raise InputError(f"{name}: a value is out of its encoded range: {error}") from None


def load_pre(data: bytes, name: str) -> State:
    """`{"genesis": {...}}` or a serialized State (or, for convenience, a TOML config file)."""
    if name.endswith(".toml"):
        from optinode.config import ConfigError, parse_config

        try:
            return create_genesis_state(parse_config(data, name).genesis.to_genesis())
        except ConfigError as error:
            raise InputError(str(error)) from None
    plain = parse_json(data, name)
    if not isinstance(plain, dict):
        raise InputError(f'{name}: expected a JSON object: {{"genesis": {{...}}}} or a state')
    if "genesis" in plain:
        if len(plain) != 1:
            extra = sorted(k for k in plain if k != "genesis")
            raise InputError(f'{name}: a genesis pre-state has only the "genesis" key (also got {extra})')
        genesis = convert(plain["genesis"], Genesis, f"{name}: genesis")
        try:
            return create_genesis_state(genesis)
        except InvalidGenesis as error:
            raise InputError(f"{name}: genesis: {error}") from None
        except (OverflowError, ValueError) as error:
            raise InputError(f"{name}: genesis: a value is out of range: {error}") from None
    state = convert(plain, State, name)
    check_state(state, name)
    return state


def load_txs(data: bytes, name: str) -> tuple[list[Transaction], str]:
    """A JSON list of transactions, or `{"batch": "0x…"}`. Returns (txs, how they were given)."""
    plain = parse_json(data, name)
    if isinstance(plain, list):
        return convert(plain, list[Transaction], name), "json"
    if isinstance(plain, dict) and set(plain) == {"batch"}:
        batch = plain["batch"]
        if not isinstance(batch, str) or not batch.startswith("0x"):
            raise InputError(f'{name}: "batch" must be a 0x-prefixed hex string')
        check_hex(batch, name, "$.batch")
        try:
            from optinode.spec.batch_framing import decode_batch
        except ImportError as error:
            raise InputError(f"{name}: decoding a batch needs optinode.spec.batch_framing ({error})") from None
        return list(decode_batch(bytes.fromhex(batch[2:]))), "batch"
    raise InputError(f'{name}: expected a JSON list of transactions or {{"batch": "0x…"}}')


def load_l1(data: bytes, name: str) -> L1Context:
    plain = parse_json(data, name)
    if not isinstance(plain, dict):
        raise InputError(f"{name}: expected a JSON object (an L1Context)")
    return convert(plain, L1Context, name)


# --- apply ---------------------------------------------------------------------------------------------


def run_transactions(state: State, txs: list[Transaction], ctx: L1Context) -> list[Receipt]:
    """Apply in order; the spec raising (rather than returning a receipt) is reported as bad input."""
    receipts = []
    for index, tx in enumerate(txs):
        try:
            receipts.append(state_transition(state, tx, ctx))
        except Exception as error:  # a pre-state the checks above missed, or a spec bug
            raise InputError(
                f"transaction {index} ({type(tx).__name__}): the spec raised {type(error).__name__}: {error}"
            ) from None
    return receipts


def status_of(receipt: Receipt) -> str:
    """OK; rejected (applied with a non-OK code: a forced withdrawal consumed but refused); invalid."""
    if receipt.code == ErrorCode.OK:
        return "OK"
    return "rejected" if receipt.applied else "invalid"


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {"code": int(receipt.code), "name": ErrorCode(receipt.code).name, "applied": receipt.applied}


def canonical_post(state: State) -> State:
    """The post-state without the commitment's bookkeeping (which leaves changed)."""
    state.dirty_accounts = set()
    state.dirty_slots = set()
    return state


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
        pre_data, pre_name = read_input(pre, "--pre", stdin_used)
        txs_data, txs_name = read_input(txs, "--txs", stdin_used)
        l1_input = read_input(l1, "--l1", stdin_used) if l1 is not None else None
        state = load_pre(pre_data, pre_name)
        transactions, _ = load_txs(txs_data, txs_name)
        ctx = load_l1(*l1_input) if l1_input else L1Context(l1_timestamp=state.time)
        receipts = run_transactions(state, transactions, ctx)
        try:
            root = compute_state_root(state)
        except Exception as error:  # only a spec bug can get here: the pre-state was checked
            raise InputError(f"post-state root: the spec raised {type(error).__name__}: {error}") from None
    except InputError as error:
        fail(str(error))
    post = canonical_post(state)
    if out is not None:
        try:
            Path(out).write_bytes(serde.to_json(post) + b"\n")
        except OSError as error:
            fail(f"--out: cannot write {out}: {error.strerror or error}")
    if json_output:
        result = {
            "receipts": [receipt_json(r) for r in receipts],
            "state_root": "0x" + root.hex(),
            "post": serde.to_plain(post),
        }
        typer.echo(msgspec.json.encode(result).decode())
        return
    width = max((len(type(tx).__name__) for tx in transactions), default=0)
    for index, (tx, receipt) in enumerate(zip(transactions, receipts)):
        line = f"{index:>4}  {type(tx).__name__:<{width}}  {status_of(receipt):<8}"
        if receipt.code != ErrorCode.OK:
            line += f"  {ErrorCode(receipt.code).name}"
        typer.echo(line.rstrip())
    typer.echo(f"state_root 0x{root.hex()}")


# --- demo ------------------------------------------------------------------------------------------------


class DemoError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Demo:
    """Drives the spec through a short session and prints each step with rich."""

    def __init__(self, config: Any, console: Any) -> None:
        from optinode.spec.commitment import Commitment
        from optinode.wallet import Key

        self.console = console
        self.genesis = config.genesis.to_genesis()
        self.markets = config.genesis.markets
        self.state = create_genesis_state(self.genesis)
        self.commitment = Commitment.from_state(self.state)
        self.domain = self.state.config.domain_separator
        self.oracle_keys = [Key.from_seed(f"optinode-devnet-oracle-{i}") for i in range(len(self.genesis.oracles))]
        if [k.address for k in self.oracle_keys] != list(self.genesis.oracles):
            raise DemoError("the demo signs prices with the devnet oracle keys, but the config's [genesis] oracles differ")
        names = [m.name for m in self.markets]
        if "ETH-USD" not in names:
            raise DemoError("the demo trades a market named ETH-USD, which the config does not have")
        self.eth = names.index("ETH-USD")
        self.keys = {name: Key.from_seed(f"optinode-devnet-{name}") for name in ("alice", "bob", "carol")}
        self.ids: dict[str, int] = {}
        self.deposit_queue: dict[int, Any] = {}
        self.l1_timestamp = self.genesis.time
        self.deposited = 0
        self.withdrawn = 0
        self.nonces = {name: 0 for name in self.keys}
        self.batch: list[Transaction] = []
        self.root = compute_state_root(self.state)

    # --- units ---

    def size(self, amount: str, market: int | None = None) -> int:
        from decimal import Decimal

        decimals = self.markets[self.eth if market is None else market].base_decimals
        return int(Decimal(amount) * 10**decimals)

    def price(self, usd: str, market: int | None = None) -> int:
        """A USD-per-whole-asset price in PRICE_ONE units per base unit."""
        from decimal import Decimal

        from optinode.spec.constants import PRICE_ONE

        decimals = self.markets[self.eth if market is None else market].base_decimals
        return int(Decimal(usd) * PRICE_ONE * 10**6 / 10**decimals)

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
        from optinode.wallet import sign_order

        self.nonces[name] += 1
        return sign_order(
            self.keys[name], self.domain, account_id=self.ids[name], market=self.eth, is_buy=is_buy,
            size=self.size(size), limit_price=self.price(price), fee_rate=fee_rate,
            expiry=self.genesis.time + expiry_in, nonce=self.nonces[name],
        )

    def prices(self, usd: list[str], timestamp: int) -> Any:
        from optinode.spec.types import OraclePrice
        from optinode.wallet import sign_price

        samples = tuple(
            sign_price(self.oracle_keys[i], self.domain, i, self.eth, self.price(p), timestamp) for i, p in enumerate(usd)
        )
        return OraclePrice(market=self.eth, samples=samples)

    def step(self, title: str, story: str, txs: list[tuple[str, Transaction]]) -> list[Receipt]:
        from rich.table import Table

        ctx = L1Context(l1_timestamp=self.l1_timestamp, deposits=dict(self.deposit_queue))
        receipts = [state_transition(self.state, tx, ctx) for _, tx in txs]
        self.batch += [tx for _, tx in txs]
        root = self.commitment.update(self.state)
        console = self.console
        console.rule(f"[bold]{title}")
        console.print(story, highlight=False)
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("#", justify="right")
        table.add_column("transaction")
        table.add_column("receipt")
        first = len(self.batch) - len(txs)
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
        for name, account_id in self.ids.items():
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
        from optinode.spec.types import Deposit, DepositEntry, FundingTick, Liquidate, SlotRef, Trade

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
            self.ids[name] = state.next_account_id + len(txs)
            amount = int(usd) * 10**6
            self.deposit_queue[len(self.deposit_queue)] = DepositEntry(owner=self.keys[name].address, amount=amount)
            self.deposited += amount
            txs.append((f"{name} ${int(usd):,} from 0x{self.keys[name].address.hex()[:8]}…", Deposit(self.ids[name])))
        self.l1_timestamp = g.time + 60
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
        self.l1_timestamp = g.time + 180
        update = self.prices(["3005", "3010", "3020"], g.time + 120)
        self.step("4. Oracle update", f"All {len(self.oracle_keys)} oracles sign an ETH price (3005, 3010, 3020); the "
                  "market takes the lower median, so no single oracle moves it. The system time advances to the "
                  "samples' median time.", [("ETH-USD median 3010", update)])

        # 5. funding
        self.l1_timestamp = g.time + 3600
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
        from optinode.wallet import sign_withdraw

        self.nonces["alice"] += 1
        amount = 1000 * 10**6
        withdraw = sign_withdraw(self.keys["alice"], self.domain, self.ids["alice"], amount, g.time + 86_400, self.nonces["alice"])
        receipts = self.step("6. Withdrawal", "Alice signs a Withdraw of $1,000: it leaves the state now and is paid by "
                             "the L1 bridge once the batch finalizes.", [("alice $1,000", withdraw)])
        if receipts[0].ok:
            self.withdrawn += amount

        # 7. replay
        self.step("7. Replay", "A malicious sequencer re-posts the first trade. Carol's order nonce is already used: "
                  "the transaction is invalid, stays in the batch, and the state root does not change.",
                  [("replay of trade #3", trade_a)])

        # 8. crash
        self.l1_timestamp = g.time + 3720
        self.step("8. Price crash", "ETH falls to 2785. Carol (15 ETH long on $5,000) is now below her 5% maintenance "
                  "margin.", [("ETH-USD median 2785", self.prices(["2780", "2785", "2790"], g.time + 3700))])

        # 9. liquidation
        bob_bid = self.order("bob", True, "15", "2760", 500)
        self.step("9. Liquidation", "Bob's signed bid takes over under-margined positions. Against healthy Alice it is "
                  "invalid (and does not use up its nonce); against Carol it closes her 15 ETH at 2760, within the "
                  "5% band around the oracle price, and 1% of the notional goes to the insurance fund.",
                  [("bob takes alice's position", Liquidate(liquidator=bob_bid, liquidated_id=self.ids["alice"], size=self.size("5"))),
                   ("bob takes carol's 15 ETH @ 2760", Liquidate(liquidator=bob_bid, liquidated_id=self.ids["carol"], size=self.size("15")))])

        # summary
        console.rule("[bold]Summary")
        held = get_total_collateral(state)
        owed = self.deposited - self.withdrawn
        mark = "[green]holds[/]" if held == owed else "[red]DOES NOT hold[/]"
        console.print(f"conservation {mark}: collateral in the state ${self.usd(held)} = deposits ${self.usd(self.deposited)} "
                      f"- withdrawals ${self.usd(self.withdrawn)}", highlight=False)
        if compute_state_root(state) != self.root:
            raise DemoError("spec bug: the incremental state root differs from the root computed from scratch", 1)
        if held != owed:
            raise DemoError("spec bug: collateral is not conserved", 1)
        console.print("final state root (the incremental commitment equals the root computed from scratch):")
        console.print(f"[bold]0x{self.root.hex()}[/]", highlight=False)
        try:
            from optinode.spec import batch_framing
        except ImportError:
            console.print("batch encoding: optinode.spec.batch_framing is not available", highlight=False)
            return
        encoded = batch_framing.encode_batch(self.batch)
        decoded = batch_framing.decode_batch(encoded)
        as_json = len(serde.to_json(self.batch))
        same = "decodes back to the same transactions" if decoded == self.batch else "[red]DOES NOT decode back[/]"
        console.print(f"batch: {len(self.batch)} transactions encode to [bold]{len(encoded)} bytes[/] of L1 calldata "
                      f"({len(encoded) / len(self.batch):.0f} B/tx; {as_json} bytes as JSON), {same}", highlight=False)


def run_demo(config: Any, config_name: str) -> None:
    from rich.console import Console

    started = time.perf_counter()
    console = Console()
    _Demo(config, console).run(config_name)
    console.print(f"[dim]demo ran in {time.perf_counter() - started:.2f} s[/]")


@app.command("demo")
def demo_command(
    config: Annotated[Path, typer.Option("--config", help="Config file whose [genesis] the demo starts from.")] = DEFAULT_CONFIG,
) -> None:
    """A narrated walk through the spec on the devnet genesis: deposits, trades, oracle, funding, a withdrawal, a replay, a crash and a liquidation."""
    from optinode.config import ConfigError, load_config

    try:
        loaded = load_config(config)
    except ConfigError as error:
        fail(str(error))
    try:
        run_demo(loaded, str(config))
    except DemoError as error:
        fail(str(error), error.exit_code)
