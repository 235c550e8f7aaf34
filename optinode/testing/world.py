"""The one test driver: a spec state and everything needed to drive it (keys, L1 queues, nonces).

Tests, the shared vectors, the property strategies, the L1 system tests, the benchmarks and
`optinode spec demo` all drive the spec through `World`, so they share one genesis, one set of units,
one key-seed scheme and one nonce convention:

- **genesis** `GENESIS` (`make_genesis(**overrides)` for variants): chain 31337, the Rollup at anvil's
  first deployment address, the three devnet oracles with quorum 2, and two markets
    0 ETH-USD  base unit 1e-9 ETH;  step 10**6 (0.001 ETH), tick 10**4 (0.1 USD/ETH), price 3 * PRICE_ONE
               (3000 USD/ETH); margins 10% / 5%, liquidation fee 1%, max funding 1e5 / 1e12 per second,
               max position 10**15
    1 BTC-USD  base unit 1e-8 BTC (a satoshi); step 100, tick 1000 (0.001 USD/BTC), price 600 * PRICE_ONE
               (60,000 USD/BTC); margins 5% / 2.5%, liquidation fee 1%, max funding 2e5 / 1e12 per second,
               max position 10**12. Step x tick is not a multiple of PRICE_ONE, so notionals round here.
- **units**: collateral in 1e-6 USD (`USD = 10**6`), sizes in base units (`ETH_UNIT`, `BTC_UNIT`),
  prices in PRICE_ONE per base unit (`price_of(market, "2800")` converts USD per whole asset).
- **keys**: `test_key(name)` = `Key.from_seed("optinode-devnet-" + name)`, the devnet's public test keys
  (docs/eip712.md); oracle i is `test_key(f"oracle-{i}")`, the devnet config's oracle i.
- **nonces**: each name counts its signed operations (orders and withdrawals share the counter, as the
  account's nonce window does) from 0; pass `nonce=` to choose one.
- **time**: the state starts at `GENESIS_TIME`; the batch's L1 time (`w.l1_timestamp`) is one day later
  unless set; orders and withdrawals default to `FAR_EXPIRY` (a year after the genesis time). Expiries
  and price ages count against that L1 time (docs/risk.md, time rules).
- **root** `w.root()` is the incremental commitment (as the sequencer computes it once per batch),
  checked against the root computed from scratch. A test that edits `w.state` by hand marks what it
  touched with `w.touch(account_id)` (globals are always rehashed).

Writing a rule test (tests/spec/test_rules.py style; fixtures `world`, `funded_world` in tests/spec/conftest.py):

    w = World()
    w.deposit("alice", 1_000 * USD)                      # queue an L1 deposit and apply it (asserts OK)
    w.deposit("bob", 10_000 * USD)
    ask = w.order("bob", is_buy=False, size=ETH_UNIT)    # signed; defaults: ETH at its genesis price,
    bid = w.order("alice", size=ETH_UNIT)                #   fee 0, far expiry, the next nonce
    w.must(Trade(ask, bid, ETH_UNIT))                    # apply, assert OK (w.apply returns the receipt)
    w.must(w.trade("bob", "alice", ETH_UNIT))            # the same in one call (bob sells to alice)
    w.set_price(ETH, price_of(ETH, "2800"))              # oracles 0 and 1 sign; asserts OK
    receipt = w.apply(w.withdraw("alice", 100 * USD))    # value 600 USD, initial margin 560 USD
    assert receipt.code == ErrorCode.INSUFFICIENT_MARGIN

Writing a shared vector case (optinode/testing/vectors.py; `python -m optinode.testing.vectors` writes
tests/vectors/<group>/<name>.json): the case builds its pre-state on a World, names the transaction and
states the outcome it expects; `w.vector` checks the outcome, the witness and the record round trip:

    @case("withdraw/insufficient_margin")
    def _():
        w = base_world()
        return w.vector(w.withdraw("alice", 99_900 * USD), expect=ErrorCode.INSUFFICIENT_MARGIN,
                        description="alice's long needs 300 USD initial margin")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec

from optinode.spec import serde
from optinode.spec.record_codec import decode_transaction, encode_transaction
from optinode.spec.commitment import Commitment, compute_state_root
from optinode.spec.constants import MAX_BALANCE, PRICE_ONE
from optinode.spec.errors import ErrorCode
from optinode.spec.genesis import Genesis, GenesisMarket, create_genesis_state
from optinode.spec.state import Account, Position, State, copy_state, require_account, get_total_collateral
from optinode.spec.transition import state_transition
from optinode.spec.types import (
    Deposit,
    DepositEntry,
    ForcedEntry,
    L1Context,
    OraclePrice,
    Order,
    PriceSample,
    Receipt,
    Trade,
    Transaction,
    Withdraw,
)
from optinode.spec.witness import build_witness, execute_witness
from optinode.wallet import Key, sign_order, sign_price, sign_withdraw

# --- units -----------------------------------------------------------------------------------------------

USD = 10**6  # collateral units per USD (the 6-decimal stablecoin)
FUNDS = 1_000 * USD  # what `funded_world`'s accounts hold
ETH, BTC = 0, 1  # market ids
ETH_UNIT, BTC_UNIT = 10**9, 10**8  # base units per whole asset
ETH_STEP, ETH_TICK, ETH_PRICE = 10**6, 10**4, 3 * PRICE_ONE
BTC_STEP, BTC_TICK, BTC_PRICE = 100, 1000, 600 * PRICE_ONE
BASE_DECIMALS = (9, 8)  # per market of GENESIS: base unit = 10**-decimals of the asset

# --- genesis ---------------------------------------------------------------------------------------------

GENESIS_TIME = 1_700_000_000
L1_DELAY = 86_400  # the batch's L1 time, after the genesis time, unless a test sets it
FAR_EXPIRY = GENESIS_TIME + 365 * 86_400
CHAIN_ID = 31337
ROLLUP_ADDRESS = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")  # anvil's first deployment
KEY_SEED_PREFIX = "optinode-devnet-"


@lru_cache(maxsize=None)
def test_key(name: str) -> Key:
    """The deterministic key of a name ("alice", "oracle-2", "trader-0", ...): keccak of its seed text."""
    return Key.from_seed(KEY_SEED_PREFIX + name)


test_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def oracle_key(index: int) -> Key:
    return test_key(f"oracle-{index}")


ETH_MARKET = GenesisMarket(
    name="ETH-USD", step_size=ETH_STEP, tick_size=ETH_TICK, initial_margin=100_000, maintenance_margin=50_000,
    liquidation_fee=10_000, max_funding_rate=10**5, max_position=10**15, price=ETH_PRICE,
)
BTC_MARKET = GenesisMarket(
    name="BTC-USD", step_size=BTC_STEP, tick_size=BTC_TICK, initial_margin=50_000, maintenance_margin=25_000,
    liquidation_fee=10_000, max_funding_rate=2 * 10**5, max_position=10**12, price=BTC_PRICE,
)


# The oracle, time and fee parameters of GENESIS. f = 0, so quorum 2 of 3 oracles is valid (the devnet
# config's f = 1 and quorum 3 are tested in tests/spec/test_oracle_time.py). Windows of two days,
# because the batch's L1 time is a day after the genesis prices unless a test sets it.
WINDOW = 2 * 86_400
FEE_OWNER = "fees"  # test_key(FEE_OWNER) is the genesis fee owner (the devnet config's too)


def make_genesis(*, oracle_count: int = 3, quorum: int = 2, **overrides: Any) -> Genesis:
    """GENESIS, or a variant: other oracle counts, markets (`markets=(...)`), time, ..."""
    genesis = Genesis(
        chain_id=CHAIN_ID,
        verifying_contract=ROLLUP_ADDRESS,
        oracles=tuple(oracle_key(i).address for i in range(oracle_count)),
        quorum=quorum,
        oracle_faults=0,
        max_sample_age=WINDOW,
        price_validity=WINDOW,
        funding_validity=WINDOW,
        fee_owner=test_key(FEE_OWNER).address,
        markets=(ETH_MARKET, BTC_MARKET),
        time=GENESIS_TIME,
    )
    return msgspec.structs.replace(genesis, **overrides)


GENESIS = make_genesis()


def price_of(market: int, usd: str | int, decimals: tuple[int, ...] = BASE_DECIMALS) -> int:
    """A USD-per-whole-asset price as PRICE_ONE fixed point per base unit (exact, or an error)."""
    value = Decimal(usd) * USD * PRICE_ONE / 10 ** decimals[market]
    if value != value.to_integral_value():
        raise ValueError(f"{usd} USD is not a whole number of price units in market {market}")
    return int(value)


def size_of(market: int, amount: str | int, decimals: tuple[int, ...] = BASE_DECIMALS) -> int:
    """A whole-asset amount ("1.5" ETH) in base units."""
    value = Decimal(amount) * 10 ** decimals[market]
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of base units in market {market}")
    return int(value)


# --- the driver ------------------------------------------------------------------------------------------


class World:
    """A spec state plus everything needed to drive it: keys, L1 queues, nonce counters, the applied log."""

    def __init__(
        self,
        genesis: Genesis = GENESIS,
        *,
        l1_timestamp: int | None = None,
        keys: Mapping[str, Key] | None = None,
    ) -> None:
        self.genesis = genesis
        self.state: State = create_genesis_state(genesis)
        self.commitment = Commitment.from_state(self.state)
        self.l1_timestamp = genesis.time + L1_DELAY if l1_timestamp is None else l1_timestamp
        self.deposit_queue: dict[int, DepositEntry] = {}  # absolute queue index -> entry
        self.forced_queue: dict[int, ForcedEntry] = {}
        self.keys: dict[str, Key] = dict(keys or {})  # names without an entry use test_key(name)
        self.ids: dict[str, int] = {}  # name -> account id (set by deposit)
        self.nonces: dict[str, int] = {}  # name -> the next nonce
        self.txs: list[Transaction] = []  # every transaction applied, in order
        self.receipts: list[Receipt] = []

    @property
    def far_expiry(self) -> int:
        """The default expiry: a year after the genesis time (FAR_EXPIRY for GENESIS)."""
        return self.genesis.time + (FAR_EXPIRY - GENESIS_TIME)

    # --- identities ---------------------------------------------------------------------------------

    @property
    def domain(self) -> bytes:
        return self.state.config.domain_separator

    @property
    def ctx(self) -> L1Context:
        """The L1 context of the current batch (shares the queue dicts, so appends show up)."""
        return L1Context(l1_timestamp=self.l1_timestamp, deposits=self.deposit_queue, forced=self.forced_queue)

    def key(self, name: str) -> Key:
        if name not in self.keys:
            self.keys[name] = test_key(name)
        return self.keys[name]

    def address(self, name: str) -> bytes:
        return self.key(name).address

    def next_nonce(self, name: str) -> int:
        nonce = self.nonces.get(name, 0)
        self.nonces[name] = nonce + 1
        return nonce

    # --- L1 queues ----------------------------------------------------------------------------------

    def queue_deposit(self, name: str, amount: int) -> int:
        """Append an L1 deposit by `name`'s address; returns its queue index."""
        index = len(self.deposit_queue)
        self.deposit_queue[index] = DepositEntry(owner=self.address(name), amount=amount)
        return index

    def queue_forced(self, name: str, amount: int, account_id: int | None = None, requester: str | None = None) -> int:
        """Append an L1 forced-withdrawal request (by `requester`, default `name`) for `name`'s account."""
        index = len(self.forced_queue)
        self.forced_queue[index] = ForcedEntry(
            requester=self.address(requester or name),
            account_id=self.ids[name] if account_id is None else account_id,
            amount=amount,
        )
        return index

    def deposit(self, name: str, amount: int, *, owner: str | None = None) -> int:
        """Queue and apply a deposit for `name` (asserts OK); a new name opens the next account id.
        `owner` makes `name` a further account of another name's key. Returns the account id."""
        if owner is not None:
            self.keys[name] = self.key(owner)
        self.queue_deposit(name, amount)
        if name not in self.ids:
            self.ids[name] = self.state.next_account_id
        self.must(Deposit(self.ids[name]))
        return self.ids[name]

    # --- signed messages ----------------------------------------------------------------------------

    def order(self, name: str, *, signer: str | None = None, **fields: Any) -> Order:
        """A signed order for `name`'s account. Defaults: ETH buy of one step at the oracle price,
        fee 0, far expiry, the name's next nonce (the limit price defaults to the market's genesis price). `signer` signs with another name's key."""
        market = fields.get("market", ETH)
        markets = self.genesis.markets
        values: dict[str, Any] = dict(
            account_id=self.ids.get(name, 0), market=market, is_buy=True, size=markets[0].step_size,
            limit_price=markets[market if market < len(markets) else 0].price, fee_rate=0, expiry=self.far_expiry,
        )
        values.update(fields)
        if "nonce" not in values:
            values["nonce"] = self.next_nonce(name)
        return sign_order(self.key(signer or name), self.domain, **values)

    def trade(
        self,
        maker: str,
        taker: str,
        size: int,
        *,
        maker_buys: bool = False,
        maker_fields: Mapping[str, Any] | None = None,
        taker_fields: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Trade:
        """A Trade of `size` between two new orders of exactly `size`: `maker` sells and `taker` buys
        (`maker_buys=True` the other way round), both with `fields` (market, limit_price, fee_rate, ...)
        and each side's own overrides. The maker signs first."""
        maker_order = self.order(maker, **{"is_buy": maker_buys, "size": size, **fields, **(maker_fields or {})})
        taker_order = self.order(taker, **{"is_buy": not maker_buys, "size": size, **fields, **(taker_fields or {})})
        return Trade(maker_order, taker_order, size)

    def withdraw(self, name: str, amount: int, *, signer: str | None = None, **fields: int) -> Withdraw:
        values = dict(account_id=self.ids.get(name, 0), amount=amount, expiry=self.far_expiry)
        values.update(fields)
        if "nonce" not in values:
            values["nonce"] = self.next_nonce(name)
        return sign_withdraw(self.key(signer or name), self.domain, **values)

    def sample(self, oracle: int, market: int, price: int, timestamp: int, *, signer: int | None = None) -> PriceSample:
        """Oracle `oracle`'s signed price sample (signed by oracle `signer`'s key if given)."""
        return sign_price(oracle_key(oracle if signer is None else signer), self.domain, oracle, market, price, timestamp)

    def prices(
        self, market: int, samples: Iterable[tuple[int, int, int]], *, signers: dict[int, int] | None = None
    ) -> OraclePrice:
        """OraclePrice from (oracle_index, price, timestamp) triples; `signers` maps a sample's
        oracle index to the key that actually signs it (default: that oracle's own key)."""
        signers = signers or {}
        return OraclePrice(
            market=market,
            samples=tuple(self.sample(i, market, price, ts, signer=signers.get(i)) for i, price, ts in samples),
        )

    def set_price(self, market: int, price: int, timestamp: int | None = None) -> Receipt:
        """Move a market's oracle price (oracles 0 and 1 both sign `price`); asserts OK."""
        ts = self.state.markets[market].sample_time + 1 if timestamp is None else timestamp
        return self.must(self.prices(market, [(0, price, ts), (1, price, ts)]))

    # --- execution ----------------------------------------------------------------------------------

    def apply(self, tx: Transaction) -> Receipt:
        """Apply `tx` to the state; it is logged first, so a spec that raises leaves it last in `txs`."""
        self.txs.append(tx)
        receipt = state_transition(self.state, tx, self.ctx)
        self.receipts.append(receipt)
        return receipt

    def must(self, tx: Transaction) -> Receipt:
        """Apply `tx` and assert it executed (OK)."""
        receipt = self.apply(tx)
        assert receipt == Receipt(ErrorCode.OK, True), f"{type(tx).__name__}: {ErrorCode(receipt.code).name}"
        return receipt

    def touch(self, *account_ids: int, slots: Iterable[int] = ()) -> None:
        """Mark leaves a test edited by hand, so the incremental root rehashes them (and keep the
        state's total collateral the sum of its balances, as every transaction does, unless a balance
        crafted near the range's edge makes the sum too big for its field: then the total stays)."""
        total = get_total_collateral(self.state)
        if -MAX_BALANCE <= total <= MAX_BALANCE:
            self.state.total_collateral = total
        self.state.dirty_accounts.update(account_ids)
        self.state.dirty_slots.update(slots)

    def root(self) -> bytes:
        """The state root: the incremental commitment, checked against the root from scratch."""
        root = self.commitment.update(self.state)
        assert root == compute_state_root(self.state), "the incremental root differs from the root from scratch"
        return root

    def fork(self) -> "World":
        """An independent copy (state copied, commitment rebuilt) with the same keys, queues and counters."""
        other = World.__new__(World)
        other.__dict__.update(self.__dict__)
        other.state = copy_state(self.state)
        other.state.dirty_accounts.clear()
        other.state.dirty_slots.clear()
        other.commitment = Commitment.from_state(other.state)
        for name in ("deposit_queue", "forced_queue", "keys", "ids", "nonces"):
            setattr(other, name, dict(getattr(self, name)))
        other.txs, other.receipts = list(self.txs), list(self.receipts)
        return other

    # --- inspection ---------------------------------------------------------------------------------

    def account(self, name: str) -> Account:
        account = require_account(self.state, self.ids[name])
        assert account is not None
        return account

    def collateral(self, name: str) -> int:
        return self.account(name).collateral

    def position(self, name: str, market: int = ETH) -> Position | None:
        return self.account(name).positions.get(market)

    def size(self, name: str, market: int = ETH) -> int:
        position = self.position(name, market)
        return position.size if position else 0

    def check_conservation(self) -> None:
        """Collateral units in the state, less the socialized loss, == tokens deposited - tokens withdrawn
        (not for hand-crafted states that move money in or out); the kept total is the sum."""
        assert self.state.total_collateral == get_total_collateral(self.state)
        held = self.state.total_collateral - self.state.socialized_loss
        assert held == consumed_deposits(self.ctx, self.state) - total_withdrawn(self.state)

    # --- one-step vectors ---------------------------------------------------------------------------

    def pending_l1(self) -> L1Context:
        """The L1 inputs one transaction can read: the entries at the queues' next indices."""
        d, f = self.state.deposits_done, self.state.forced_done
        return L1Context(
            l1_timestamp=self.l1_timestamp,
            deposits={d: self.deposit_queue[d]} if d in self.deposit_queue else {},
            forced={f: self.forced_queue[f]} if f in self.forced_queue else {},
        )

    def vector(self, tx: Transaction, *, expect: ErrorCode, applied: bool | None = None, description: str = "") -> dict[str, Any]:
        """Apply `tx` as a one-step vector: assert the stated outcome (`expect`, and `applied`, which
        defaults to `expect == OK`), that its record round-trips and that executing its witness under
        the pre-state root gives the same root and receipt. Returns the vector as plain data."""
        applied = expect == ErrorCode.OK if applied is None else applied
        pre_root = self.root()
        record = encode_transaction(tx)
        assert decode_transaction(record) == tx, "the record does not round-trip"
        ctx = self.pending_l1()
        witness = build_witness(self.state, self.commitment, tx, ctx)
        receipt = self.apply(tx)
        post_root = self.root()
        assert receipt == Receipt(expect, applied), f"expected {expect.name} (applied={applied}), got {receipt}"
        assert execute_witness(pre_root, witness, tx, ctx) == (post_root, receipt), "witness execution disagrees"
        return {
            "description": description,
            "pre_root": "0x" + pre_root.hex(),
            "tx": serde.to_plain(tx),
            "record": "0x" + record.hex(),
            "l1": serde.to_plain(ctx),
            "witness": serde.to_plain(witness),
            "expected": {
                "post_root": "0x" + post_root.hex(),
                "code": int(receipt.code),
                "code_name": receipt.code.name,
                "applied": receipt.applied,
            },
        }

    def recording(self, notes: Iterable[str] | None = None) -> "Recording":
        """What this world applied, replayable on its genesis (for property and differential tests)."""
        return Recording(
            genesis=self.genesis,
            ctx=L1Context(l1_timestamp=self.l1_timestamp, deposits=dict(self.deposit_queue), forced=dict(self.forced_queue)),
            txs=tuple(self.txs),
            notes=tuple(notes) if notes is not None else tuple(type(tx).__name__ for tx in self.txs),
        )


def consumed_deposits(ctx: L1Context, state: State) -> int:
    """Total amount of the deposit-queue entries the state has consumed."""
    return sum(ctx.deposits[i].amount for i in range(state.deposits_done))


def total_withdrawn(state: State) -> int:
    return sum(account.withdrawn for account in state.accounts.values())


@dataclass(frozen=True, eq=False)
class Recording:
    """A genesis, one L1 context and the transactions applied to it (`notes`: the intent of each)."""

    genesis: Genesis
    ctx: L1Context
    txs: tuple[Transaction, ...]
    notes: tuple[str, ...]

    def genesis_state(self) -> State:
        return create_genesis_state(self.genesis)

    def to_json(self) -> bytes:
        """[genesis, ctx, txs] in the spec's JSON form (bytes as 0x-hex)."""
        return serde.to_json([self.genesis, self.ctx, list(self.txs)])

    @staticmethod
    def decode_json(data: bytes) -> tuple[Genesis, L1Context, list[Transaction]]:
        genesis, ctx, txs = msgspec.json.decode(data)
        return serde.from_plain(genesis, Genesis), serde.from_plain(ctx, L1Context), serde.from_plain(txs, list[Transaction])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints falsifying examples with this
        printer.text(repr(self))

    def __repr__(self) -> str:
        lines = [f"Recording({len(self.txs)} txs, deposits={len(self.ctx.deposits)}, forced={len(self.ctx.forced)})"]
        lines += [f"  [{i}] {note}: {describe(tx)}" for i, (tx, note) in enumerate(zip(self.txs, self.notes))]
        lines += [f"  deposit[{i}] = {e.owner.hex()[:8]}.. {e.amount}" for i, e in sorted(self.ctx.deposits.items())]
        lines += [
            f"  forced[{i}] = {e.requester.hex()[:8]}.. acct {e.account_id} {e.amount}" for i, e in sorted(self.ctx.forced.items())
        ]
        return "\n".join(lines)


def describe(value: Any) -> str:
    """A compact one-line form of a transaction (signatures shortened)."""

    def short(v: Any) -> Any:
        if isinstance(v, bytes):
            return "0x" + v.hex()[:8] + (".." if len(v) > 4 else "")
        if isinstance(v, msgspec.Struct):
            fields = ", ".join(f"{f}={short(getattr(v, f))}" for f in v.__struct_fields__)
            return f"{type(v).__name__}({fields})"
        if isinstance(v, (tuple, list)):
            return "(" + ", ".join(str(short(x)) for x in v) + ")"
        return v

    return str(short(value))
