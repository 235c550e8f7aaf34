"""EIP-712 typed data for orders, withdrawals, cancel-alls and oracle prices (documented in docs/eip712.md).

The struct hashes follow EIP-712 exactly, so any wallet's `eth_signTypedData_v4` over the documented
domain and types produces a signature the spec accepts.
"""

from struct import Struct

from .constants import EIP712_NAME, EIP712_VERSION
from .crypto import keccak, memoised
from .types import CancelAll, Liquidate, OraclePrice, Order, PriceSample, Trade, Transaction, Withdraw

EIP712_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
ORDER_TYPE = (
    b"Order(uint32 accountId,uint8 market,bool isBuy,uint64 size,uint64 limitPrice,"
    b"uint32 feeRate,uint64 expiry,uint64 nonce)"
)
WITHDRAW_TYPE = b"Withdraw(uint32 accountId,uint64 amount,uint64 expiry,uint64 nonce)"
ORACLE_PRICE_TYPE = b"OraclePrice(uint8 market,uint64 price,uint64 timestamp)"
CANCEL_ALL_TYPE = b"CancelAll(uint32 accountId,uint64 nonceFloor)"

EIP712_DOMAIN_TYPEHASH = keccak(EIP712_DOMAIN_TYPE)
ORDER_TYPEHASH = keccak(ORDER_TYPE)
WITHDRAW_TYPEHASH = keccak(WITHDRAW_TYPE)
ORACLE_PRICE_TYPEHASH = keccak(ORACLE_PRICE_TYPE)
CANCEL_ALL_TYPEHASH = keccak(CANCEL_ALL_TYPE)


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def compute_domain_separator(chain_id: int, verifying_contract: bytes) -> bytes:
    return keccak(
        EIP712_DOMAIN_TYPEHASH
        + keccak(EIP712_NAME.encode())
        + keccak(EIP712_VERSION.encode())
        + _word(chain_id)
        + bytes(12)
        + verifying_contract
    )


def compute_typed_digest(domain_separator: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain_separator + struct_hash)


# Eight 32-byte words of uint values below 2**64 (callers have range-checked them): one pack call.
_ORDER_WORDS = Struct(">" + "24xQ" * 8)


def hash_order(order: Order) -> bytes:
    return keccak(
        ORDER_TYPEHASH
        + _ORDER_WORDS.pack(
            order.account_id,
            order.market,
            order.is_buy,
            order.size,
            order.limit_price,
            order.fee_rate,
            order.expiry,
            order.nonce,
        )
    )


def hash_withdraw(tx: Withdraw) -> bytes:
    return keccak(
        WITHDRAW_TYPEHASH + _word(tx.account_id) + _word(tx.amount) + _word(tx.expiry) + _word(tx.nonce)
    )


def hash_cancel_all(tx: CancelAll) -> bytes:
    return keccak(CANCEL_ALL_TYPEHASH + _word(tx.account_id) + _word(tx.nonce_floor))


def hash_oracle_price(market: int, sample: PriceSample) -> bytes:
    return keccak(ORACLE_PRICE_TYPEHASH + _word(market) + _word(sample.price) + _word(sample.timestamp))


@memoised(maxsize=1 << 20)
def compute_order_digest(domain_separator: bytes, order: Order) -> bytes:
    """Memoised: the sequencer computes it when it verifies the order at admission (in a worker
    process, which tells this memo its answer: `remember_key((domain_separator, order), digest)`)."""
    return compute_typed_digest(domain_separator, hash_order(order))


def get_signed_digests(domain_separator: bytes, tx: Transaction) -> list[tuple[bytes, bytes]]:
    """Every (digest, signature) pair whose signer `state_transition` may recover for `tx`, in
    transaction order: a verifier recovers them ahead of its replay, on every core, and stores them."""
    if type(tx) is Trade:
        orders = [tx.maker, tx.taker]
    elif type(tx) is Liquidate:
        orders = [tx.liquidator]
    elif type(tx) is Withdraw:
        return [(compute_typed_digest(domain_separator, hash_withdraw(tx)), tx.signature)]
    elif type(tx) is CancelAll:
        return [(compute_typed_digest(domain_separator, hash_cancel_all(tx)), tx.signature)]
    elif type(tx) is OraclePrice:
        return [(compute_typed_digest(domain_separator, hash_oracle_price(tx.market, s)), s.signature) for s in tx.samples]
    else:
        return []
    return [(compute_order_digest(domain_separator, o), o.signature) for o in orders if type(o) is Order]
