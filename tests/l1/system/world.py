"""The test driver (`optinode.testing.world.World`) with the L1's view of it: account owners are anvil
accounts, so that the Bridge can pay them and they can send L1 transactions (requests, escapes)."""

from __future__ import annotations

from web3 import Web3

from optinode.l1.contracts import StateParts
from optinode.spec.record_codec import encode_transaction
from optinode.spec.commitment import encode_account, encode_globals
from optinode.spec.margin import compute_settled_funding, get_total_value
from optinode.spec.types import FundingTick
from optinode.replay import state_parts
from optinode.testing.world import ETH, ETH_UNIT, GENESIS_TIME, USD, World, make_genesis, price_of
from optinode.wallet import Key

NAMES = ("alice", "bob", "carol", "dave")


class L1World(World):
    genesis_root: bytes

    @property
    def addresses(self) -> dict[str, str]:
        return {name: Web3.to_checksum_address(key.address) for name, key in self.keys.items()}

    @property
    def deposits(self) -> list[tuple[str, int]]:
        """(owner address, amount) per deposit-queue index, as the Bridge must receive them."""
        return [(Web3.to_checksum_address(e.owner), e.amount) for _, e in sorted(self.deposit_queue.items())]

    def records(self) -> list[bytes]:
        return [encode_transaction(tx) for tx in self.txs]

    def parts(self) -> StateParts:
        self.root()
        return state_parts(self.state, self.commitment)

    def globals(self) -> bytes:
        return encode_globals(self.state)

    def proof(self, name: str) -> tuple[int, bytes, list[bytes]]:
        self.root()
        account_id = self.ids[name]
        return (account_id, encode_account(self.state.accounts[account_id]), list(self.commitment.accounts.proof(account_id)))

    def value(self, name: str) -> int:
        """Escape value per spec.margin: settled collateral plus positions at the committed prices."""
        collateral, positions, _ = compute_settled_funding(self.state, self.account(name))
        return get_total_value(self.state, collateral, positions)

    def withdrawn(self, name: str) -> int:
        return self.account(name).withdrawn


def build_world(private_keys: list[str], genesis_time: int = GENESIS_TIME) -> L1World:
    """alice and bob trade 2 ETH at 3000 (alice long); dave is long 3 ETH with 1,000 USD against
    carol, both paying a 0.1% fee; funding moves (longs pay); ETH drops to 2666.5, so dave's value
    turns slightly negative (about -10 USD, less than the 18 USD of fees: the state stays solvent);
    alice and carol withdraw."""
    keys = {name: Key(bytes.fromhex(key.removeprefix("0x"))) for name, key in zip(NAMES, private_keys)}
    w = L1World(make_genesis(time=genesis_time), keys=keys)
    w.genesis_root = w.root()
    w.deposit("alice", 10_000 * USD)
    w.deposit("bob", 10_000 * USD)
    w.deposit("carol", 20_000 * USD)
    w.deposit("dave", 1_000 * USD)
    w.must(w.trade("alice", "bob", 2 * ETH_UNIT, maker_buys=True))
    w.must(w.trade("carol", "dave", 3 * ETH_UNIT, fee_rate=1000))
    w.must(FundingTick(genesis_time + 1000, (20_001, 0)))
    # dave: 1,000 - 9 fee - 1,000.5 loss - 0.6 funding < 0
    w.set_price(ETH, price_of(ETH, "2666.5"), genesis_time + 2000)
    w.must(w.withdraw("alice", 1_000 * USD))
    w.must(w.withdraw("carol", 300 * USD))
    w.root()
    return w
