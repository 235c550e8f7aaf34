"""Exchange-level order types: how a signed spec `Order` is placed, and what became of it.

The signed EIP-712 `Order` (optinode.spec.types) fixes what can ever happen on L1: account, market,
side, the most it may fill, the worst price, the fee and the expiry. How it is *placed* — time in
force and reduce-only — are instructions to the sequencer sent next to the signature (as on dYdX v3
and Vertex); whatever they say, no fill can break the signed bounds, because the spec checks every
Trade against the signed fields.
"""

from __future__ import annotations

import enum

import msgspec

from optinode.spec.errors import ErrorCode
from optinode.spec.types import Order, OrderOrRef, Trade


class TimeInForce(enum.Enum):
    GTC = "gtc"  # good till cancelled (or till its signed expiry): the rest rests on the book
    IOC = "ioc"  # immediate or cancel: fills what crosses now, the rest is cancelled
    POST_ONLY = "post_only"  # rests in full, or is rejected if it would take liquidity


class Status(enum.Enum):
    RESTING = "resting"  # on the book, nothing filled yet
    PARTIALLY_FILLED = "partially_filled"  # some filled, the rest on the book
    FILLED = "filled"
    CANCELLED = "cancelled"  # the rest is off the book (cancel, IOC rest, self-trade, expiry, margin)
    REJECTED = "rejected"  # never accepted: nothing filled, nothing rests


class Reason(enum.Enum):
    """Why an order was rejected or (the rest of it) cancelled, beyond the spec's own `ErrorCode`s."""

    UNKNOWN_MARKET = "UNKNOWN_MARKET"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"  # the same signed order was accepted before
    NONCE_CANCELLED = "NONCE_CANCELLED"  # the nonce is below the account's cancel-all floor
    NONCE_IN_USE = "NONCE_IN_USE"  # another live order of the account holds this nonce
    POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"
    REDUCE_ONLY = "REDUCE_ONLY"  # nothing left to reduce: the order would open or grow a position
    IOC_UNFILLED = "IOC_UNFILLED"  # the rest of an IOC order
    SELF_TRADE = "SELF_TRADE"  # self-trade prevention cancelled the resting order
    USER_CANCELLED = "USER_CANCELLED"
    TOO_MANY_OPEN_ORDERS = "TOO_MANY_OPEN_ORDERS"
    # mempool
    RATE_LIMITED = "RATE_LIMITED"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    QUEUE_FULL = "QUEUE_FULL"
    MALFORMED = "MALFORMED"


def reason_name(reason: Reason | ErrorCode) -> str:
    """The name a client sees: the spec's ErrorCode name, or the exchange's reason."""
    return reason.name if isinstance(reason, ErrorCode) else reason.value


class Placement(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag=True):
    """One command of the order book: place a signed order (what the log records)."""

    order: Order
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False


class CancelOrder(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag=True):
    """Cancel one live order (signature checked at intake: optinode.exchange.cancel)."""

    account_id: int
    order_hash: bytes


class CancelAll(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag=True):
    """Cancel every live order of the account with nonce < nonce_below, and refuse such nonces from now on.
    `signature` is the owner's EIP-712 CancelAll signature (the spec's message): the engine also posts
    it on L1 as the spec's `CancelAll`, raising the nonce floor there (empty: off-chain only)."""

    account_id: int
    nonce_below: int
    signature: bytes = b""


class ExpireOrders(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag=True):
    """Drop resting orders whose signed expiry is before the state's system time (after a time tick)."""


Command = Placement | CancelOrder | CancelAll | ExpireOrders  # tagged: the log decodes `Command` directly


class Fill(msgspec.Struct, frozen=True):
    """One executed fill: the spec Trade applied and the exchange's view of it."""

    trade: Trade
    maker_hash: bytes
    taker_hash: bytes
    maker_account: int
    taker_account: int
    market: int
    taker_is_buy: bool
    price: int  # the maker's limit price, as the spec executes it
    size: int


class Cancelled(msgspec.Struct, frozen=True):
    """A resting order removed from the book, with why (another order's matching can cause it)."""

    order_hash: bytes
    account_id: int
    reason: str  # reason_name(...)


class PlaceResult(msgspec.Struct, frozen=True):
    order_hash: bytes
    status: Status
    fills: tuple[Fill, ...] = ()
    reason: str | None = None  # for REJECTED, or CANCELLED (why the rest is off the book)
    cancelled: tuple[Cancelled, ...] = ()  # resting orders of others removed while matching
    remaining: int = 0  # what still rests on the book
    # The command changed the book or the state, so the engine must log it (replay needs it). False
    # only for an order refused before matching, which changed nothing. A REJECTED result can be
    # logged: self-trade prevention or expiry may have removed resting orders before it stopped.
    logged: bool = True

    @property
    def trades(self) -> list[Trade]:
        return [fill.trade for fill in self.fills]


class RestingView(msgspec.Struct, frozen=True):
    """A resting order as the book holds it (also its snapshot form: the book is these, in order)."""

    order_hash: bytes
    account_id: int
    market: int
    is_buy: bool
    price: int
    remaining: int
    seq: int
    handle: OrderOrRef  # the signed order until its first fill, then its slot reference
    reduce_only: bool
    expiry: int
