"""Keys and signing for tests, vectors, the benchmark and the devnet (not part of the spec).

Signs EIP-712 digests with coincurve (libsecp256k1 always produces low-s signatures).
"""

from __future__ import annotations

from coincurve import PrivateKey

from .spec.crypto import keccak
from .spec.eip712 import compute_order_digest, compute_typed_digest, hash_cancel_all, hash_oracle_price, hash_withdraw
from .spec.types import CancelAll, Order, PriceSample, Withdraw


class Key:
    __slots__ = ("private", "address")

    def __init__(self, secret: bytes) -> None:
        self.private = PrivateKey(secret)
        self.address = keccak(self.private.public_key.format(compressed=False)[1:])[12:]

    @classmethod
    def from_seed(cls, seed: str | int) -> "Key":
        """A deterministic test key: keccak of the seed's text."""
        return cls(keccak(str(seed).encode()))

    def sign_digest(self, digest: bytes) -> bytes:
        signature = self.private.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes((27 + signature[64],))


def sign_order(key: Key, domain_separator: bytes, **fields: object) -> Order:
    unsigned = Order(signature=b"", **fields)  # type: ignore[arg-type]
    return Order(signature=key.sign_digest(compute_order_digest(domain_separator, unsigned)), **fields)  # type: ignore[arg-type]


def sign_withdraw(key: Key, domain_separator: bytes, account_id: int, amount: int, expiry: int, nonce: int) -> Withdraw:
    unsigned = Withdraw(account_id, amount, expiry, nonce, b"")
    digest = compute_typed_digest(domain_separator, hash_withdraw(unsigned))
    return Withdraw(account_id, amount, expiry, nonce, key.sign_digest(digest))


def sign_cancel_all(key: Key, domain_separator: bytes, account_id: int, nonce_floor: int) -> CancelAll:
    digest = compute_typed_digest(domain_separator, hash_cancel_all(CancelAll(account_id, nonce_floor, b"")))
    return CancelAll(account_id, nonce_floor, key.sign_digest(digest))


def sign_price(key: Key, domain_separator: bytes, oracle_index: int, market: int, price: int, timestamp: int) -> PriceSample:
    unsigned = PriceSample(oracle_index, price, timestamp, b"")
    digest = compute_typed_digest(domain_separator, hash_oracle_price(market, unsigned))
    return PriceSample(oracle_index, price, timestamp, key.sign_digest(digest))
