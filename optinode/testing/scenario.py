"""A small scriptable world for tests, vectors, benchmarks and demos.

`Scenario` owns a state, its commitment, test keys for accounts and oracles, and the L1 queues; it
signs orders and requests with deterministic keys and applies transactions through the spec.
"""

from __future__ import annotations

from typing import Any

from optinode.spec import Commitment, L1Context, Receipt, State, create_genesis_state
from optinode.spec.constants import PRICE_ONE
from optinode.spec.genesis import Genesis, GenesisMarket
from optinode.spec.state import copy_state
from optinode.spec.transition import state_transition
from optinode.spec.types import DepositEntry, ForcedEntry, Order, PriceSample, Transaction, Withdraw
from optinode.wallet import Key, sign_order, sign_price, sign_withdraw

GENESIS_TIME = 1_700_000_000
FAR_EXPIRY = GENESIS_TIME + 365 * 86_400
ETH, BTC = 0, 1
ETH_PRICE = 3 * PRICE_ONE  # 3000 USD per ETH with 1e-9 ETH base units
BTC_PRICE = 6 * PRICE_ONE  # 60000 USD per BTC with 1e-10 BTC base units
STEP = 10**6
TICK = 10**4
DAY = 86_400
# The oracle, time and fee parameters of the test worlds. f = 0 (quorum 2 of 3 oracles is then valid;
# tests/spec/test_oracle_time.py tests the devnet's f = 1). Windows of two days, because the worlds put
# L1 time a day after the genesis prices.
TEST_GENESIS_RULES: dict[str, Any] = dict(
    oracle_faults=0,
    max_sample_age=2 * DAY,
    price_validity=2 * DAY,
    funding_validity=2 * DAY,
    fee_owner=Key.from_seed("account-fees").address,
)


def make_test_genesis(oracle_count: int = 3, quorum: int = 2) -> Genesis:
    common: dict[str, Any] = dict(
        step_size=STEP,
        tick_size=TICK,
        initial_margin=100_000,
        maintenance_margin=50_000,
        liquidation_fee=10_000,
        max_funding_rate=100_000,
        max_position=10**15,
    )
    return Genesis(
        chain_id=31337,
        verifying_contract=bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"),
        oracles=tuple(Key.from_seed(f"oracle-{i}").address for i in range(oracle_count)),
        quorum=quorum,
        **TEST_GENESIS_RULES,
        markets=(
            GenesisMarket(name="ETH-USD", price=ETH_PRICE, **common),
            GenesisMarket(name="BTC-USD", price=BTC_PRICE, **common),
        ),
        time=GENESIS_TIME,
    )


class Scenario:
    def __init__(self, genesis: Genesis | None = None) -> None:
        self.genesis = genesis or make_test_genesis()
        self.state: State = create_genesis_state(self.genesis)
        self.commitment = Commitment.from_state(self.state)
        self.oracles = [Key.from_seed(f"oracle-{i}") for i in range(len(self.genesis.oracles))]
        self.keys: dict[str, Key] = {}
        self.ids: dict[str, int] = {}
        self.deposits: dict[int, DepositEntry] = {}
        self.forced: dict[int, ForcedEntry] = {}
        self.l1_timestamp = GENESIS_TIME + 86_400
        self.nonces: dict[str, int] = {}

    # --- L1 ---------------------------------------------------------------------------------------
    @property
    def ctx(self) -> L1Context:
        return L1Context(l1_timestamp=self.l1_timestamp, deposits=dict(self.deposits), forced=dict(self.forced))

    def key(self, name: str) -> Key:
        if name not in self.keys:
            self.keys[name] = Key.from_seed(f"account-{name}")
        return self.keys[name]

    def queue_deposit(self, name: str, amount: int) -> None:
        self.deposits[len(self.deposits)] = DepositEntry(self.key(name).address, amount)

    def queue_forced(self, name: str, account_id: int, amount: int) -> None:
        self.forced[len(self.forced)] = ForcedEntry(self.key(name).address, account_id, amount)

    # --- signing ----------------------------------------------------------------------------------
    def next_nonce(self, name: str) -> int:
        self.nonces[name] = self.nonces.get(name, 0) + 1
        return self.nonces[name]

    def order(self, name: str, *, market: int = ETH, is_buy: bool, size: int, price: int, **fields: Any) -> Order:
        values: dict[str, Any] = dict(
            account_id=self.ids.get(name, 0), market=market, is_buy=is_buy, size=size, limit_price=price,
            fee_rate=0, expiry=FAR_EXPIRY,
        )
        values.update(fields)
        if "nonce" not in values:
            values["nonce"] = self.next_nonce(name)
        return sign_order(self.key(name), self.state.config.domain_separator, **values)

    def withdraw(self, name: str, amount: int, **fields: Any) -> Withdraw:
        values: dict[str, Any] = dict(account_id=self.ids.get(name, 0), amount=amount, expiry=FAR_EXPIRY)
        values.update(fields)
        if "nonce" not in values:
            values["nonce"] = self.next_nonce(name)
        return sign_withdraw(self.key(name), self.state.config.domain_separator, **values)

    def price(self, oracle: int, market: int, price: int, timestamp: int) -> PriceSample:
        return sign_price(self.oracles[oracle], self.state.config.domain_separator, oracle, market, price, timestamp)

    # --- applying ---------------------------------------------------------------------------------
    def apply(self, tx: Transaction) -> Receipt:
        return state_transition(self.state, tx, self.ctx)

    def must(self, tx: Transaction) -> Receipt:
        receipt = self.apply(tx)
        if not receipt.ok:
            raise AssertionError(f"{type(tx).__name__} failed: {receipt.code.name}")
        return receipt

    def open_account(self, name: str, amount: int) -> int:
        from optinode.spec.types import Deposit

        self.queue_deposit(name, amount)
        account_id = self.state.next_account_id
        self.must(Deposit(account_id))
        self.ids[name] = account_id
        return account_id

    def root(self) -> bytes:
        return self.commitment.update(self.state)

    def fork(self) -> "Scenario":
        """An independent copy (state, commitment rebuilt) with the same keys and queues."""
        other = Scenario.__new__(Scenario)
        other.__dict__.update(self.__dict__)
        other.state = copy_state(self.state)
        other.state.dirty_accounts.clear()
        other.state.dirty_slots.clear()
        other.commitment = Commitment.from_state(other.state)
        other.keys, other.ids, other.nonces = dict(self.keys), dict(self.ids), dict(self.nonces)
        other.deposits, other.forced = dict(self.deposits), dict(self.forced)
        return other
