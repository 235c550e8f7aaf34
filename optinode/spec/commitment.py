"""The state commitment: leaf encodings, the globals blob and the state root.

    state_root = keccak(accounts_root ‖ slots_root ‖ keccak(globals) ‖ uint64 deposits_done ‖ uint64 forced_done)

- accounts_root: MerkleTree(ACCOUNT_TREE_DEPTH) over keccak(encode_account(account)) by account id;
- slots_root: MerkleTree(SLOT_TREE_DEPTH) over keccak(encode_slot(slot)) by slot id;
- globals: config, per-market prices and funding, the system balances and counters, then the time and
  fee parameters (fee owner, max sample age, price and funding validity), then the socialized loss
  and the total collateral;
- the queue counters sit in the top preimage so that L1 can read them from a posted root's preimage.

All encodings are fixed-width big-endian (Solidity's abi.encodePacked), signed fields in two's
complement. Leaves are never 64 bytes long, so a leaf cannot pose as an inner node.
"""

from __future__ import annotations

from collections.abc import Iterable

from .constants import ACCOUNT_TREE_DEPTH, SLOT_TREE_DEPTH
from .crypto import keccak
from .merkle import EMPTY_LEAF, MerkleTree
from .state import Account, Slot, State

ACCOUNT_FIXED_BYTES = 20 + 16 + 16 + 8 + 32 + 1  # owner, collateral, withdrawn, nonce base, bits, count
POSITION_BYTES = 1 + 8 + 16  # market, size, funding index
SLOT_BYTES = 4 + 1 + 1 + 8 + 8 + 4 + 8
MARKET_BYTES = 8 + 8 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 16 + 8
SYSTEM_BYTES = 8 + 8 + 16 + 16 + 16 + 8 + 8
TIME_CONFIG_BYTES = 20 + 8 + 8 + 8  # fee owner, max sample age, price and funding validity
LOSS_BYTES = 16 + 16  # socialized loss, total collateral


def _int(value: int, width: int) -> bytes:
    return value.to_bytes(width, "big", signed=True)


def _uint(value: int, width: int) -> bytes:
    return value.to_bytes(width, "big")


def encode_account(account: Account) -> bytes:
    parts = [
        account.owner,
        _int(account.collateral, 16),
        _uint(account.withdrawn, 16),
        _uint(account.nonce_base, 8),
        _uint(account.nonce_bits, 32),
        _uint(len(account.positions), 1),
    ]
    for market in sorted(account.positions):
        position = account.positions[market]
        parts.append(_uint(market, 1) + _int(position.size, 8) + _int(position.funding_index, 16))
    return b"".join(parts)


def hash_account(account: Account | None) -> bytes:
    return EMPTY_LEAF if account is None else keccak(encode_account(account))


def encode_slot(slot: Slot) -> bytes:
    return (
        _uint(slot.account_id, 4)
        + _uint(slot.market, 1)
        + _uint(int(slot.is_buy), 1)
        + _uint(slot.limit_price, 8)
        + _uint(slot.remaining, 8)
        + _uint(slot.fee_rate, 4)
        + _uint(slot.expiry, 8)
    )


def hash_slot(slot: Slot | None) -> bytes:
    return EMPTY_LEAF if slot is None else keccak(encode_slot(slot))


def encode_globals(state: State) -> bytes:
    config = state.config
    parts = [
        config.domain_separator,
        _uint(config.quorum, 1),
        _uint(len(config.oracles), 1),
        *config.oracles,
        _uint(len(config.markets), 1),
    ]
    for market, dynamic in zip(config.markets, state.markets):
        parts.append(
            _uint(market.step_size, 8)
            + _uint(market.tick_size, 8)
            + _uint(market.initial_margin, 4)
            + _uint(market.maintenance_margin, 4)
            + _uint(market.liquidation_fee, 4)
            + _uint(market.max_funding_rate, 8)
            + _uint(market.max_position, 8)
            + _uint(dynamic.price, 8)
            + _uint(dynamic.price_time, 8)
            + _int(dynamic.funding_index, 16)
            + _uint(dynamic.sample_time, 8)
        )
    parts.append(
        _uint(state.time, 8)
        + _uint(state.funding_time, 8)
        + _int(state.insurance, 16)
        + _int(state.fees, 16)
        + _int(state.funding_pool, 16)
        + _uint(state.next_account_id, 8)
        + _uint(state.next_slot, 8)
    )
    parts.append(
        config.fee_owner
        + _uint(config.max_sample_age, 8)
        + _uint(config.price_validity, 8)
        + _uint(config.funding_validity, 8)
    )
    parts.append(_int(state.socialized_loss, 16) + _int(state.total_collateral, 16))
    return b"".join(parts)


def compute_state_root_from_parts(
    accounts_root: bytes, slots_root: bytes, globals_hash: bytes, deposits_done: int, forced_done: int
) -> bytes:
    return keccak(accounts_root + slots_root + globals_hash + _uint(deposits_done, 8) + _uint(forced_done, 8))


class Commitment:
    """The Merkle trees of a State, updated from its dirty sets once per batch (not per tx)."""

    __slots__ = ("accounts", "slots")

    def __init__(self) -> None:
        self.accounts = MerkleTree(ACCOUNT_TREE_DEPTH)
        self.slots = MerkleTree(SLOT_TREE_DEPTH)

    @classmethod
    def from_state(cls, state: State) -> "Commitment":
        """Trees over every leaf of the state (the dirty marks are cleared)."""
        commitment = cls()
        state.dirty_accounts.update(state.accounts)
        state.dirty_slots.update(state.slots)
        commitment.update(state)
        return commitment

    def update(self, state: State) -> bytes:
        """Rehash the leaves the state marked dirty, clear the marks, return the state root."""
        root = self.rehash(state, state.dirty_accounts, state.dirty_slots)
        state.dirty_accounts.clear()
        state.dirty_slots.clear()
        return root

    def rehash(self, state: State, account_ids: Iterable[int], slot_ids: Iterable[int]) -> bytes:
        """Rehash the given leaves from the state and return the state root."""
        accounts, slots = state.accounts, state.slots
        self.accounts.update({i: hash_account(accounts.get(i)) for i in account_ids})
        self.slots.update({i: hash_slot(slots.get(i)) for i in slot_ids})
        return compute_state_root_from_parts(
            self.accounts.root(), self.slots.root(), keccak(encode_globals(state)), state.deposits_done, state.forced_done
        )


def compute_state_root(state: State) -> bytes:
    """The state root from scratch (slow path; leaves the dirty marks alone)."""
    return Commitment().rehash(state, state.accounts, state.slots)


# --- decoding (the one-step proof reads leaves and globals from a witness) --------------------------


class _Reader:
    __slots__ = ("data", "at")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, width: int) -> bytes:
        end = self.at + width
        if end > len(self.data):
            raise ValueError("truncated")
        chunk = self.data[self.at : end]
        self.at = end
        return chunk

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def int(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big", signed=True)

    def done(self) -> None:
        if self.at != len(self.data):
            raise ValueError("trailing bytes")


def decode_account(data: bytes) -> Account:
    from .state import Position

    r = _Reader(data)
    account = Account(
        owner=r.take(20), collateral=r.int(16), withdrawn=r.uint(16), nonce_base=r.uint(8), nonce_bits=r.uint(32), positions={}
    )
    previous = -1
    for _ in range(r.uint(1)):
        market = r.uint(1)
        position = Position(r.int(8), r.int(16))
        # Canonical: markets strictly increasing, no empty position (what encode_account writes).
        if market <= previous or position.size == 0:
            raise ValueError("non-canonical positions")
        previous = market
        account.positions[market] = position
    r.done()
    return account


def _read_bool(r: _Reader) -> bool:
    value = r.uint(1)
    if value > 1:
        raise ValueError("a boolean byte must be 0 or 1")
    return value == 1


def decode_slot(data: bytes) -> Slot:
    r = _Reader(data)
    slot = Slot(
        account_id=r.uint(4),
        market=r.uint(1),
        is_buy=_read_bool(r),
        limit_price=r.uint(8),
        remaining=r.uint(8),
        fee_rate=r.uint(4),
        expiry=r.uint(8),
    )
    r.done()
    return slot


def decode_globals(data: bytes) -> State:
    """A State holding the globals only (no accounts or slots); market names are not committed."""
    from .state import Config, MarketConfig, MarketState

    r = _Reader(data)
    domain_separator = r.take(32)
    quorum = r.uint(1)
    oracles = tuple(r.take(20) for _ in range(r.uint(1)))
    configs, markets = [], []
    for _ in range(r.uint(1)):
        configs.append(
            MarketConfig(
                name="",
                step_size=r.uint(8),
                tick_size=r.uint(8),
                initial_margin=r.uint(4),
                maintenance_margin=r.uint(4),
                liquidation_fee=r.uint(4),
                max_funding_rate=r.uint(8),
                max_position=r.uint(8),
            )
        )
        markets.append(MarketState(price=r.uint(8), price_time=r.uint(8), funding_index=r.int(16), sample_time=r.uint(8)))
    system = dict(
        time=r.uint(8),
        funding_time=r.uint(8),
        insurance=r.int(16),
        fees=r.int(16),
        funding_pool=r.int(16),
        next_account_id=r.uint(8),
        next_slot=r.uint(8),
    )
    config = Config(
        domain_separator=domain_separator,
        oracles=oracles,
        quorum=quorum,
        markets=tuple(configs),
        fee_owner=r.take(20),
        max_sample_age=r.uint(8),
        price_validity=r.uint(8),
        funding_validity=r.uint(8),
    )
    system.update(socialized_loss=r.int(16), total_collateral=r.int(16))
    state = State(
        config=config,
        markets=markets,
        **system,
        accounts={},
        slots={},
        dirty_accounts=set(),
        dirty_slots=set(),
    )
    r.done()
    return state
