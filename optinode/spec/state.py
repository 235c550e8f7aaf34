"""The state of the exchange and its accessors.

Mutable msgspec Structs: `process_*` functions check every rule first and write last, so an invalid
transaction never leaves a partial write. Writes go through `set_account`/`set_slot` so the
commitment knows which leaves changed (`dirty_*`).

A witness-backed state (used by the one-step proof) holds only the leaves a transaction touches;
reading any other existing leaf raises `WitnessError`.
"""

from __future__ import annotations

import msgspec

from .errors import WitnessError
from .fields import Address, Hash32


class MarketConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Static parameters of one perpetual market (market id = its index in `Config.markets`)."""

    name: str
    step_size: int  # sizes are multiples of this many base units
    tick_size: int  # limit prices are multiples of this
    initial_margin: int  # fraction (FRACTION_ONE) of notional required to open exposure
    maintenance_margin: int  # fraction below which an account can be liquidated
    liquidation_fee: int  # fraction of liquidated notional paid to the insurance fund
    max_funding_rate: int  # per second, FUNDING_RATE_ONE units, times price
    max_position: int  # risk limit on |size|


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters fixed at genesis and committed in the state root."""

    domain_separator: Hash32  # EIP-712 domain separator
    oracles: tuple[Address, ...]  # oracle signer addresses
    quorum: int  # samples an update needs: >= 2 * oracle_faults + 1 (genesis checks; f is not committed)
    markets: tuple[MarketConfig, ...]
    fee_owner: Address  # the L1 address whose accounts CollectFees may credit
    max_sample_age: int  # seconds: an oracle sample older than this before the batch's L1 time is rejected
    price_validity: int  # seconds: a trade, liquidation or withdrawal reads no price older than this
    funding_validity: int  # seconds: ... and no funding indices older than this


class MarketState(msgspec.Struct, forbid_unknown_fields=True):
    price: int  # last oracle price (PRICE_ONE fixed point, collateral per base unit)
    price_time: int  # lower median of the last update's sample times: the price's age is measured from it
    sample_time: int  # newest sample time of the last update: every later sample must be newer (no reuse)
    funding_index: int  # cumulative funding per base unit (PRICE_ONE fixed point); longs pay as it rises


class Position(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    size: int  # signed: > 0 long, < 0 short; never stored as 0
    funding_index: int  # the market index this position last settled at


class Account(msgspec.Struct, forbid_unknown_fields=True):
    owner: Address
    collateral: int = 0
    withdrawn: int = 0  # cumulative amount withdrawn to L1; the bridge pays the unpaid part
    nonce_base: int = 0
    nonce_bits: int = 0
    positions: dict[int, Position] = {}


class Slot(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The unfilled rest of a partially filled order, continued by `SlotRef`."""

    account_id: int
    market: int
    is_buy: bool
    limit_price: int
    remaining: int
    fee_rate: int
    expiry: int


class State(msgspec.Struct, forbid_unknown_fields=True):
    config: Config
    markets: list[MarketState]
    time: int = 0  # latest oracle or funding timestamp (funding never goes back before it)
    funding_time: int = 0  # timestamp of the last funding tick
    insurance: int = 0  # insurance fund (liquidation penalties)
    fees: int = 0  # trading fees and rounding dust
    funding_pool: int = 0  # funding paid by settled positions, not yet received by the other side
    # The socialized loss (docs/risk.md §4.4): collateral units the state owes beyond what the bridge
    # holds. Every unit is worth (1 - socialized_loss / total_collateral) of a token when it leaves.
    socialized_loss: int = 0
    total_collateral: int = 0  # get_total_collateral(state), kept so that one step can read it
    deposits_done: int = 0  # L1 deposit-queue entries consumed
    forced_done: int = 0  # L1 forced-withdrawal requests consumed
    next_account_id: int = 0
    next_slot: int = 0
    accounts: dict[int, Account] = {}
    slots: dict[int, Slot] = {}
    dirty_accounts: set[int] = set()
    dirty_slots: set[int] = set()


def require_account(state: State, account_id: int) -> Account | None:
    """The account, or None when no account has that id. `require_`: a partial (witness) state that lacks an
    existing account is rejected with WitnessError."""
    if not 0 <= account_id < state.next_account_id:
        return None
    account = state.accounts.get(account_id)
    if account is None:
        raise WitnessError(f"account {account_id} exists but is not in the witness")
    return account


def require_slot(state: State, slot_id: int) -> Slot | None:
    if not 0 <= slot_id < state.next_slot:
        return None
    slot = state.slots.get(slot_id)
    if slot is None:
        raise WitnessError(f"slot {slot_id} exists but is not in the witness")
    return slot


def set_account(state: State, account_id: int, account: Account) -> None:
    state.accounts[account_id] = account
    state.dirty_accounts.add(account_id)


def set_slot(state: State, slot_id: int, slot: Slot) -> None:
    state.slots[slot_id] = slot
    state.dirty_slots.add(slot_id)


def copy_state(state: State) -> State:
    """A deep copy (for replay and what-if execution)."""
    return msgspec.convert(msgspec.to_builtins(state, builtin_types=(bytes,)), State)


def get_total_collateral(state: State) -> int:
    """Collateral units in the state (always equal to `state.total_collateral`); less the socialized
    loss, it equals the tokens deposited less the tokens withdrawn (conservation)."""
    return (
        sum(a.collateral for a in state.accounts.values())
        + state.insurance
        + state.fees
        + state.funding_pool
    )
