"""Error codes and exceptions.

`ErrorCode` values are part of the protocol: they appear in receipts, in the shared test vectors and
in the Solidity one-step prover, so a number is never reused or renumbered.

`InvalidInput` is the one root of every *expected* rejection of outside input: a transaction that
breaks a validity rule (`InvalidTransaction`: the state is left untouched), a record that does not
decode (`DecodeError`), a witness that does not authenticate (`WitnessError`), a game move the contract
would revert (`game.InvalidMove`), a genesis or pre-state that is not whole (`genesis.InvalidGenesis`,
`InvalidState`), and outside the spec the config, CLI and service errors (see `optinode/errors.py`).
Anything else raised from the spec is a bug: callers write one `except InvalidInput` for hostile data
and let every other exception crash loudly.

The root lives here, inside the spec, because the spec is pure and self-contained (it imports nothing
from the rest of optinode; tests/test_spec_purity.py); `optinode.errors` re-exports it for the rest.
"""

from enum import IntEnum


class ErrorCode(IntEnum):
    OK = 0
    # --- decoding ---
    MALFORMED = 1  # the batch record does not decode
    # --- accounts and signatures ---
    ACCOUNT_NOT_FOUND = 2
    OWNER_MISMATCH = 3  # deposit or forced request for an account owned by someone else
    BAD_SIGNATURE = 4  # r/s/v out of range, high s, or no key recovers
    WRONG_SIGNER = 5  # a valid signature, but not by the account owner / the named oracle
    NONCE_TOO_LOW = 6  # below the account's nonce window
    NONCE_USED = 7
    EXPIRED = 8  # the batch's L1 timestamp is past the order's or request's expiry
    SELF_TRADE = 9
    # --- queues ---
    NO_PENDING_DEPOSIT = 10
    NO_PENDING_FORCED = 11
    # --- orders and fills ---
    MARKET_NOT_FOUND = 12
    MARKET_MISMATCH = 13
    SAME_SIDE = 14
    SLOT_NOT_FOUND = 15
    ORDER_FILLED = 16  # the referenced order has nothing left to fill
    INVALID_ORDER = 17  # order fields out of range: zero size, size off the step, price off the tick, fee rate > 100%
    INVALID_AMOUNT = 18  # zero or out-of-range fill size / withdrawal amount
    PRICE_LIMIT = 19  # the maker's price violates the taker's limit
    POSITION_LIMIT = 20
    INSUFFICIENT_MARGIN = 21
    BALANCE_OVERFLOW = 22
    # --- oracle and funding ---
    QUORUM_NOT_MET = 23
    INVALID_ORACLE = 24  # oracle index out of range or not strictly increasing
    INVALID_PRICE = 25
    STALE_TIMESTAMP = 26
    FUTURE_TIMESTAMP = 27  # later than the L1 timestamp of the batch
    WRONG_MARKET_COUNT = 28
    FUNDING_RATE_EXCEEDED = 29
    # --- liquidation and deleveraging ---
    NOT_LIQUIDATABLE = 30
    NOT_DELEVERAGEABLE = 31
    NOT_REDUCING = 32  # would not strictly shrink the position (or the sides do not oppose)
    LIQUIDATION_PRICE = 33  # price outside the liquidation band around the oracle price
    # --- capacity ---
    TREE_FULL = 34  # no slot id left for the rest of a partially filled order
    # --- time and nonces (issue 7) ---
    SAMPLE_TOO_OLD = 35  # an oracle sample older than max_sample_age before the batch's L1 timestamp
    STALE_PRICE = 36  # a price the transaction reads is older than price_validity
    STALE_FUNDING = 37  # the funding indices are older than funding_validity
    NONCE_TOO_HIGH = 38  # a nonce or nonce floor NONCE_HORIZON or more above the account's window
    PRICE_MOVE_TOO_FAST = 39  # the new price moves more than the market's max_price_move per second allows


class InvalidInput(Exception):
    """Outside input broke a documented rule. The message says which input and which rule; a caller
    reports it (a receipt code, a JSON-RPC error, exit status 2) and carries on. Never a bug."""


class InvalidTransaction(InvalidInput):
    """A validity rule failed. Raised before any write, so the state is unchanged."""

    def __init__(self, code: ErrorCode, detail: str = "") -> None:
        super().__init__(f"{code.name}: {detail}" if detail else code.name)
        self.code = code
        self.detail = detail


class WitnessError(InvalidInput):
    """A one-step witness does not authenticate against the pre-state root, or lacks a leaf."""


class DecodeError(InvalidInput):
    """Internal to the codec: a record is malformed. Never escapes `decode_*` (they return Malformed)."""


class EncodeError(Exception):
    """A value cannot be represented by the batch encoding (a bug in the caller: our own sequencer
    built the transaction). Deliberately not an `InvalidInput`."""


class InvalidState(InvalidInput):
    """A state from outside (a file, a checkpoint, a peer) is not whole and encodable (`state_check`)."""
