"""Typed constants of the optinode perpetuals state machine.

Every quantity in the spec is an integer. The units are:
- collateral: the smallest unit of the 6-decimal stablecoin (1e-6 USD);
- size: a market's synthetic base unit (its resolution, set in the market config);
- price and funding index: collateral units per base unit, fixed point with PRICE_ONE;
- fractions (margin, fees, liquidation penalty): parts per FRACTION_ONE;
- funding rate: per second, parts per FUNDING_RATE_ONE.
"""

from typing import Final

# --- fixed point ---------------------------------------------------------------------------------
PRICE_ONE: Final[int] = 10**8
FRACTION_ONE: Final[int] = 10**6
FUNDING_RATE_ONE: Final[int] = 10**12

# --- tree shapes ---------------------------------------------------------------------------------
ACCOUNT_TREE_DEPTH: Final[int] = 32
SLOT_TREE_DEPTH: Final[int] = 32

# --- explicit bounds -------------------------------------------------------------------------------
MAX_U8: Final[int] = 2**8 - 1
MAX_U32: Final[int] = 2**32 - 1
MAX_U64: Final[int] = 2**64 - 1
MAX_U256: Final[int] = 2**256 - 1
MAX_ACCOUNT_ID: Final[int] = 2**ACCOUNT_TREE_DEPTH - 1
MAX_SLOT_ID: Final[int] = 2**SLOT_TREE_DEPTH - 1
MAX_AMOUNT: Final[int] = MAX_U64  # deposits, withdrawals, order and fill sizes
MAX_PRICE: Final[int] = MAX_U64
MAX_TIMESTAMP: Final[int] = MAX_U64
MAX_NONCE: Final[int] = MAX_U64
MAX_POSITION: Final[int] = 2**63 - 1  # |size| of a position; markets set a lower risk limit
MAX_BALANCE: Final[int] = 2**127 - 1  # |collateral| of an account or a system balance
MAX_FUNDING_INDEX: Final[int] = 2**127 - 1
MAX_MARKETS: Final[int] = 16
MAX_ORDER_MARKET: Final[int] = 127  # an order packs market and side into one byte
MAX_ORACLES: Final[int] = 32

# --- byte widths -----------------------------------------------------------------------------------
ADDRESS_LEN: Final[int] = 20  # an L1 address
HASH_LEN: Final[int] = 32  # keccak256: roots, leaf hashes, the EIP-712 domain separator
SIGNATURE_LEN: Final[int] = 65  # r (32) ‖ s (32) ‖ v (1)

# --- replay protection -----------------------------------------------------------------------------
# Each account keeps a window of NONCE_WINDOW nonces [nonce_base, nonce_base + NONCE_WINDOW) with a
# bitmap of the ones used. A nonce above the window slides it up; one below it is rejected.
NONCE_WINDOW: Final[int] = 256
# A nonce (or a cancel-all's new floor) must lie below nonce_base + NONCE_HORIZON. The window moves up
# by less than NONCE_HORIZON per signed operation, so no single nonce value can exhaust the 64-bit
# nonce space: it takes at least 2**64 / NONCE_HORIZON = 2**32 signed operations to get there.
NONCE_HORIZON: Final[int] = 2**32

# --- forced requests ---------------------------------------------------------------------------------
# The L1 forced queue's entry is (requester, account id, amount word). A withdrawal's amount is at most
# MAX_AMOUNT; a cancel-all request sets this top bit and carries the new nonce floor below it.
FORCED_CANCEL_ALL: Final[int] = 2**255
# A forced deleverage request (anyone may ask: it runs the bad-debt waterfall on a bankrupt account)
# sets this bit and packs, below it, deleverager id (32 bits) << 72 | market (8 bits) << 64 | size (64).
FORCED_DELEVERAGE: Final[int] = 2**254
FORCED_DELEVERAGE_BITS: Final[int] = 104  # the packed fields; any bit between them and the flag is INVALID_AMOUNT

# --- signatures ------------------------------------------------------------------------------------
SECP256K1_N: Final[int] = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N: Final[int] = SECP256K1_N // 2

# --- EIP-712 domain --------------------------------------------------------------------------------
EIP712_NAME: Final[str] = "optinode"
EIP712_VERSION: Final[str] = "1"
