"""Shared fixtures for spec tests: a two-market genesis and a small `World` driver.

    world         (function)  World(): the genesis state, no accounts yet
    funded_world  (function)  World() with alice, bob and carol (ids 0, 1, 2) holding FUNDS each

`World` keeps the state, a key per account name, the L1 queues and a nonce counter per account:

    w = World()
    w.deposit("alice", 10**9)                      # queue an L1 deposit and apply Deposit (asserts OK)
    o = w.order("alice", is_buy=False, size=STEP)  # a signed order; unset fields take defaults
    receipt = w.apply(Trade(o, w.order("bob", size=STEP), STEP))
    w.root()                                       # compute_state_root of the current state

Markets (numbers chosen so that the rounding is visible in the tests):
    0 ETH-USD  step 10**6, tick 10**4, initial 10%, maintenance 5%, liquidation fee 1%,
               max funding rate 1e5 / 1e12 per second, max position 10**15, price 3 * PRICE_ONE
    1 BTC-USD  step 100, tick 1000, initial 5%, maintenance 2.5%, liquidation fee 1%,
               max funding rate 2e5 / 1e12 per second, max position 10**12, price 600 * PRICE_ONE
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from optinode.testing.scenario import TEST_GENESIS_RULES
from optinode.spec import L1Context, Receipt, State, compute_state_root, create_genesis_state, state_transition
from optinode.spec.constants import PRICE_ONE
from optinode.spec.genesis import Genesis, GenesisMarket
from optinode.spec.state import Account, Position, get_account, get_total_collateral
from optinode.spec.types import Deposit, DepositEntry, ForcedEntry, OraclePrice, Order, Transaction, Withdraw
from optinode.wallet import Key, sign_order, sign_price, sign_withdraw

GENESIS_TIME = 1_700_000_000
FAR_EXPIRY = GENESIS_TIME + 365 * 86_400
FUNDS = 10**9  # 1000 USD of 6-decimal collateral

ETH, BTC = 0, 1
ETH_STEP, ETH_TICK, ETH_PRICE = 10**6, 10**4, 3 * PRICE_ONE
BTC_STEP, BTC_TICK, BTC_PRICE = 100, 1000, 600 * PRICE_ONE

ORACLE_KEYS = tuple(Key.from_seed(f"oracle-{i}") for i in range(3))

GENESIS = Genesis(
    chain_id=31337,
    verifying_contract=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"),
    oracles=tuple(k.address for k in ORACLE_KEYS),
    quorum=2,
    **TEST_GENESIS_RULES,
    markets=(
        GenesisMarket(
            name="ETH-USD", step_size=ETH_STEP, tick_size=ETH_TICK, initial_margin=100_000, maintenance_margin=50_000,
            liquidation_fee=10_000, max_funding_rate=10**5, max_position=10**15, price=ETH_PRICE,
        ),
        GenesisMarket(
            name="BTC-USD", step_size=BTC_STEP, tick_size=BTC_TICK, initial_margin=50_000, maintenance_margin=25_000,
            liquidation_fee=10_000, max_funding_rate=2 * 10**5, max_position=10**12, price=BTC_PRICE,
        ),
    ),
    time=GENESIS_TIME,
)


class World:
    """A spec state plus everything needed to drive it: keys, L1 queues, nonce counters."""

    def __init__(self, genesis: Genesis = GENESIS, l1_timestamp: int = GENESIS_TIME + 86_400) -> None:
        self.genesis = genesis
        self.state: State = create_genesis_state(genesis)
        self.l1_timestamp = l1_timestamp
        self.deposit_queue: dict[int, DepositEntry] = {}  # absolute queue index -> entry
        self.forced_queue: dict[int, ForcedEntry] = {}
        self.keys: dict[str, Key] = {}
        self.ids: dict[str, int] = {}
        self.nonces: dict[str, int] = {}

    # --- identities ---------------------------------------------------------------------------

    @property
    def domain(self) -> bytes:
        return self.state.config.domain_separator

    @property
    def ctx(self) -> L1Context:
        """The L1 context of the current batch (shares the queue dicts, so appends show up)."""
        return L1Context(l1_timestamp=self.l1_timestamp, deposits=self.deposit_queue, forced=self.forced_queue)

    def key(self, name: str) -> Key:
        if name not in self.keys:
            self.keys[name] = Key.from_seed(f"test-account-{name}")
        return self.keys[name]

    def address(self, name: str) -> bytes:
        return self.key(name).address

    def next_nonce(self, name: str) -> int:
        nonce = self.nonces.get(name, 0)
        self.nonces[name] = nonce + 1
        return nonce

    # --- L1 queues --------------------------------------------------------------------------------

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

    def deposit(self, name: str, amount: int) -> Receipt:
        """Queue and apply a deposit for `name` (creating its account at the next id if new)."""
        self.queue_deposit(name, amount)
        if name not in self.ids:
            self.ids[name] = self.state.next_account_id
        receipt = self.apply(Deposit(self.ids[name]))
        assert receipt == Receipt(receipt.code, True) and receipt.ok, receipt
        return receipt

    # --- signed messages ----------------------------------------------------------------------------

    def order(self, name: str, *, signer: str | None = None, **fields: object) -> Order:
        """A signed order for `name`'s account. Defaults: ETH buy of one step at the oracle price,
        fee 0, far expiry, the account's next nonce. `signer` signs with another name's key."""
        values: dict[str, object] = dict(
            account_id=self.ids.get(name, 0), market=ETH, is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE,
            fee_rate=0, expiry=FAR_EXPIRY,
        )
        values.update(fields)
        if "nonce" not in values:
            values["nonce"] = self.next_nonce(name)
        return sign_order(self.key(signer or name), self.domain, **values)

    def withdraw(self, name: str, amount: int, *, signer: str | None = None, **fields: int) -> Withdraw:
        values = dict(account_id=self.ids.get(name, 0), amount=amount, expiry=FAR_EXPIRY)
        values.update(fields)
        if "nonce" not in values:
            values["nonce"] = self.next_nonce(name)
        return sign_withdraw(self.key(signer or name), self.domain, **values)

    def prices(
        self, market: int, samples: Iterable[tuple[int, int, int]], *, signers: dict[int, int] | None = None
    ) -> OraclePrice:
        """OraclePrice from (oracle_index, price, timestamp) triples; `signers` maps a sample's
        oracle index to the key that actually signs it (default: that oracle's own key)."""
        signers = signers or {}
        return OraclePrice(
            market=market,
            samples=tuple(
                sign_price(ORACLE_KEYS[signers.get(i, i)], self.domain, i, market, price, ts) for i, price, ts in samples
            ),
        )

    def set_price(self, market: int, price: int, timestamp: int | None = None) -> Receipt:
        """Move a market's oracle price (oracles 0 and 1 both sign `price`); asserts OK."""
        ts = self.state.markets[market].sample_time + 1 if timestamp is None else timestamp
        receipt = self.apply(self.prices(market, [(0, price, ts), (1, price, ts)]))
        assert receipt.ok, receipt
        return receipt

    # --- execution and inspection -----------------------------------------------------------------

    def apply(self, tx: Transaction) -> Receipt:
        return state_transition(self.state, tx, self.ctx)

    def root(self) -> bytes:
        return compute_state_root(self.state)

    def account(self, name: str) -> Account:
        account = get_account(self.state, self.ids[name])
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
        """Collateral in the state == consumed deposits - withdrawn (not for hand-crafted states)."""
        deposited = sum(self.deposit_queue[i].amount for i in range(self.state.deposits_done))
        withdrawn = sum(a.withdrawn for a in self.state.accounts.values())
        assert get_total_collateral(self.state) == deposited - withdrawn


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def funded_world() -> World:
    w = World()
    for name in ("alice", "bob", "carol"):
        w.deposit(name, FUNDS)
    assert w.ids == {"alice": 0, "bob": 1, "carol": 2}
    return w
