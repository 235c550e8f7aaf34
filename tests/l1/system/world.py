"""A small exchange state built with the spec, whose account owners are anvil accounts, so that the
Bridge can pay them and they can send L1 transactions (requests, escapes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from web3 import Web3

from optinode.l1.contracts import StateParts
from optinode.spec.record_codec import encode_transaction
from optinode.spec.commitment import encode_account, encode_globals
from optinode.spec.constants import PRICE_ONE
from optinode.spec.crypto import keccak
from optinode.spec.margin import compute_settled_funding, get_total_value
from optinode.spec.types import Deposit, FundingTick, OraclePrice, Trade, Transaction
from optinode.testing.scenario import ETH, ETH_PRICE, GENESIS_TIME, Scenario
from optinode.wallet import Key

USD = 10**6
ETH_UNIT = 10**9
NAMES = ("alice", "bob", "carol", "dave")


@dataclass
class World:
    scenario: Scenario
    genesis_root: bytes
    addresses: dict[str, str]
    deposits: list[tuple[str, int]] = field(default_factory=list)  # (owner address, amount) per queue index
    txs: list[Transaction] = field(default_factory=list)

    def apply(self, tx: Transaction) -> None:
        self.scenario.must(tx)
        self.txs.append(tx)

    def deposit(self, name: str, amount: int) -> None:
        w = self.scenario
        w.queue_deposit(name, amount)
        self.deposits.append((self.addresses[name], amount))
        account_id = w.ids.get(name, w.state.next_account_id)
        self.apply(Deposit(account_id))
        w.ids[name] = account_id

    def records(self) -> list[bytes]:
        return [encode_transaction(tx) for tx in self.txs]

    def parts(self) -> StateParts:
        w = self.scenario
        w.root()
        return StateParts(
            w.commitment.accounts.root(),
            w.commitment.slots.root(),
            keccak(encode_globals(w.state)),
            w.state.deposits_done,
            w.state.forced_done,
        )

    def globals(self) -> bytes:
        return encode_globals(self.scenario.state)

    def proof(self, name: str) -> tuple[int, bytes, list[bytes]]:
        w = self.scenario
        w.root()
        account_id = w.ids[name]
        return (account_id, encode_account(w.state.accounts[account_id]), list(w.commitment.accounts.proof(account_id)))

    def value(self, name: str) -> int:
        """Escape value per spec.margin: settled collateral plus positions at the committed prices."""
        state = self.scenario.state
        account = state.accounts[self.scenario.ids[name]]
        collateral, positions, _ = compute_settled_funding(state, account)
        return get_total_value(state, collateral, positions)

    def withdrawn(self, name: str) -> int:
        return self.scenario.state.accounts[self.scenario.ids[name]].withdrawn


def build_world(private_keys: list[str]) -> World:
    """alice and bob trade 2 ETH at 3000 (alice long); dave is long 3 ETH with 1,000 USD against
    carol, both paying a 0.1% fee; funding moves (longs pay); ETH drops to 2666.5, so dave's value
    turns slightly negative (about -10 USD, less than the 18 USD of fees: the state stays solvent);
    alice and carol withdraw."""
    w = Scenario()
    addresses = {}
    for name, key in zip(NAMES, private_keys):
        w.keys[name] = Key(bytes.fromhex(key.removeprefix("0x")))
        addresses[name] = Web3.to_checksum_address(w.keys[name].address)
    genesis_root = w.root()
    world = World(w, genesis_root, addresses)
    world.deposit("alice", 10_000 * USD)
    world.deposit("bob", 10_000 * USD)
    world.deposit("carol", 20_000 * USD)
    world.deposit("dave", 1_000 * USD)
    world.apply(
        Trade(
            w.order("alice", is_buy=True, size=2 * ETH_UNIT, price=ETH_PRICE),
            w.order("bob", is_buy=False, size=2 * ETH_UNIT, price=ETH_PRICE),
            2 * ETH_UNIT,
        )
    )
    world.apply(
        Trade(
            w.order("carol", is_buy=False, size=3 * ETH_UNIT, price=ETH_PRICE, fee_rate=1000),
            w.order("dave", is_buy=True, size=3 * ETH_UNIT, price=ETH_PRICE, fee_rate=1000),
            3 * ETH_UNIT,
        )
    )
    world.apply(FundingTick(GENESIS_TIME + 1000, (20_001, 0)))
    t = GENESIS_TIME + 2000
    price = 26665 * PRICE_ONE // 10_000  # dave: 1,000 - 9 fee - 1,000.5 loss - 0.6 funding < 0
    world.apply(OraclePrice(ETH, (w.price(0, ETH, price, t), w.price(1, ETH, price, t))))
    world.apply(w.withdraw("alice", 1_000 * USD))
    world.apply(w.withdraw("carol", 300 * USD))
    w.root()
    return world
