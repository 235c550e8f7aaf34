"""Wire types: orders, transactions, L1 queue entries and receipts (msgspec frozen Structs).

A transaction is what a batch record decodes to. Undecodable records become `Malformed`, an explicit
transaction that is always invalid. JSON form: `{"type": "<ClassName>", ...}`, bytes as 0x-hex
(see `optinode.spec.serde`).

Every field's type names its bound in the field table (`optinode.spec.fields`): serde, the record
codec and `transition.is_well_formed` all read the bounds from these declarations.
"""

from __future__ import annotations

from typing import Annotated, Union

import msgspec

from .constants import MAX_MARKETS, MAX_ORACLES
from .errors import ErrorCode
from .fields import (
    AccountId,
    Address,
    Amount,
    Count,
    FeeRate,
    FundingIndex,
    L1Uint,
    MarketByte,
    Nonce,
    OracleIndex,
    OrderMarket,
    Price,
    Signature,
    SlotId,
    Timestamp,
)


class _Wire(msgspec.Struct, frozen=True, tag_field="type", tag=True, forbid_unknown_fields=True):
    pass


class Order(_Wire):
    """An EIP-712 signed limit order (see docs/eip712.md). `signature` is 65 bytes r ‖ s ‖ v."""

    account_id: AccountId
    market: OrderMarket
    is_buy: bool
    size: Amount
    limit_price: Price
    fee_rate: FeeRate  # parts per FRACTION_ONE of notional, charged on every fill
    expiry: Timestamp  # last valid L1 time of the batch that fills it (seconds)
    nonce: Nonce
    signature: Signature


class SlotRef(_Wire):
    """A partially filled order already recorded in the state, continued by reference."""

    slot: SlotId


OrderOrRef = Union[Order, SlotRef]


class PriceSample(_Wire):
    """One oracle's EIP-712 signed price for a market."""

    oracle_index: OracleIndex
    price: Price
    timestamp: Timestamp
    signature: Signature


class Deposit(_Wire):
    """Credits the next L1 deposit-queue entry to `account_id` (a new id creates the account)."""

    account_id: AccountId


class Trade(_Wire):
    """Fills `size` between a maker and a taker order, at the maker's limit price."""

    maker: OrderOrRef
    taker: OrderOrRef
    size: Amount


class Withdraw(_Wire):
    """An owner-signed withdrawal of collateral to the owner's L1 address."""

    account_id: AccountId
    amount: Amount
    expiry: Timestamp
    nonce: Nonce
    signature: Signature


class ForcedWithdraw(_Wire):
    """Consumes the next L1 forced request (a withdrawal, or a cancel-all when its amount word has the
    FORCED_CANCEL_ALL bit): executed, or rejected with a reason."""


class OraclePrice(_Wire):
    """A quorum of oracle samples; the market price becomes their median."""

    market: MarketByte
    samples: Annotated[tuple[PriceSample, ...], Count(MAX_ORACLES)]


class FundingTick(_Wire):
    """New funding index per market (in market order), bounded by the max rate."""

    timestamp: Timestamp
    indices: Annotated[tuple[FundingIndex, ...], Count(MAX_MARKETS)]


class Liquidate(_Wire):
    """The liquidator's order takes `size` of an undercollateralised account's position."""

    liquidator: OrderOrRef
    liquidated_id: AccountId
    size: Amount


class Deleverage(_Wire):
    """Closes `size` of a negative-value account's position against an opposite position."""

    deleveraged_id: AccountId
    deleverager_id: AccountId
    market: MarketByte
    size: Amount


class CancelAll(_Wire):
    """An owner-signed raise of the account's nonce floor: every nonce below it becomes invalid, so
    every outstanding order and withdrawal signed with one is cancelled. Replay-safe without a nonce
    of its own (a floor not above the current one is rejected)."""

    account_id: AccountId
    nonce_floor: Nonce
    signature: Signature


class CollectFees(_Wire):
    """Moves the whole fee balance into an account owned by the genesis fee owner, from where it
    withdraws like any collateral. Needs no signature: it can only pay the fee owner."""

    account_id: AccountId


class Malformed(_Wire):
    """A record that does not decode; always invalid with MALFORMED."""

    data: bytes


Transaction = Union[
    Deposit, Trade, Withdraw, ForcedWithdraw, OraclePrice, FundingTick, Liquidate, Deleverage, CancelAll, CollectFees, Malformed
]


# --- L1 inputs -------------------------------------------------------------------------------------


class DepositEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    owner: Address  # the L1 address credited
    amount: L1Uint


class ForcedEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    requester: Address  # the L1 address that asked
    account_id: L1Uint
    amount: L1Uint  # a withdrawal's amount, or FORCED_CANCEL_ALL | new nonce floor


class L1Context(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a transaction may read from L1: the batch's L1 timestamp and the queue entries,
    keyed by their absolute queue index."""

    l1_timestamp: Timestamp
    deposits: dict[int, DepositEntry] = {}
    forced: dict[int, ForcedEntry] = {}


# --- results ---------------------------------------------------------------------------------------


class Receipt(msgspec.Struct, frozen=True):
    """`applied` is False exactly when the state is unchanged. A rejected forced withdrawal is
    applied (its queue entry is consumed) with a non-OK `code` naming the reason."""

    code: ErrorCode
    applied: bool

    @property
    def ok(self) -> bool:
        return self.code == ErrorCode.OK
