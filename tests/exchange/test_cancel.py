"""The EIP-712 cancel messages: eth-account signs them from the types written in docs/eip712.md
alone, and optinode.exchange.cancel recovers the owner; the digests printed in the docs are checked."""

from __future__ import annotations

from eth_account import Account

from optinode.exchange.cancel import SignedCancelAll, SignedCancelOrder, compute_cancel_digest, recover_cancel_signer
from optinode.spec.eip712 import compute_domain_separator

# As in docs/eip712.md: the devnet placeholder domain and alice's public devnet-only key.
ALICE_KEY = "0x421018f0dfaebb3293cac3d8daaece35256e1e65309476147f95582b5d899874"
ALICE = bytes.fromhex("c2465DCd9D2Cf424b6FeB3e618D67A92f5627dBc")
DOMAIN = {"name": "optinode", "version": "1", "chainId": 31337, "verifyingContract": "0x000000000000000000000000000000000000dEaD"}
DOMAIN_SEPARATOR = compute_domain_separator(31337, bytes.fromhex("000000000000000000000000000000000000dEaD"))
EIP712_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
ORDER_HASH = "0x963a75263cced50278a47d87be5c5e28b759aa1ea344dff0760b036caeee1735"  # the digest of alice's example order
DOC_CANCEL_ORDER_DIGEST = "0xd24486aab0361ae33f0bd9fb8dff7e02b68f81a85107f91e27994c084b860756"
DOC_CANCEL_ALL_DIGEST = "0xd8bfd999b0adfc26832aeec0a71c0d6ab3d8760fc586e6dba9d2e55081205116"


def typed(primary: str, fields: list[dict], message: dict) -> dict:
    return {"types": {"EIP712Domain": EIP712_DOMAIN, primary: fields}, "primaryType": primary, "domain": DOMAIN, "message": message}


CANCEL_ORDER = typed(
    "CancelOrder",
    [{"name": "accountId", "type": "uint32"}, {"name": "orderHash", "type": "bytes32"}],
    {"accountId": 0, "orderHash": ORDER_HASH},
)
CANCEL_ALL = typed(
    "CancelAll",
    [{"name": "accountId", "type": "uint32"}, {"name": "nonceFloor", "type": "uint64"}],
    {"accountId": 0, "nonceFloor": "2"},
)


def test_cancel_order_signed_by_a_wallet_recovers_the_owner() -> None:
    signed = Account.sign_typed_data(ALICE_KEY, full_message=CANCEL_ORDER)
    message = SignedCancelOrder(0, bytes.fromhex(ORDER_HASH[2:]), bytes(signed.signature))
    digest = compute_cancel_digest(DOMAIN_SEPARATOR, message)
    assert digest == bytes(signed.message_hash)
    assert "0x" + digest.hex() == DOC_CANCEL_ORDER_DIGEST
    assert recover_cancel_signer(DOMAIN_SEPARATOR, message) == ALICE


def test_cancel_all_signed_by_a_wallet_recovers_the_owner() -> None:
    signed = Account.sign_typed_data(ALICE_KEY, full_message=CANCEL_ALL)
    message = SignedCancelAll(0, 2, bytes(signed.signature))
    assert compute_cancel_digest(DOMAIN_SEPARATOR, message) == bytes(signed.message_hash)
    assert "0x" + compute_cancel_digest(DOMAIN_SEPARATOR, message).hex() == DOC_CANCEL_ALL_DIGEST
    assert recover_cancel_signer(DOMAIN_SEPARATOR, message) == ALICE


def test_a_cancel_for_other_fields_or_malformed_recovers_no_owner() -> None:
    signed = Account.sign_typed_data(ALICE_KEY, full_message=CANCEL_ORDER)
    other_order = SignedCancelOrder(0, b"\x11" * 32, bytes(signed.signature))
    assert recover_cancel_signer(DOMAIN_SEPARATOR, other_order) not in (None, ALICE)
    assert recover_cancel_signer(DOMAIN_SEPARATOR, SignedCancelOrder(0, b"\x11" * 31, bytes(signed.signature))) is None
    assert recover_cancel_signer(DOMAIN_SEPARATOR, SignedCancelAll(0, 2**64, bytes(signed.signature))) is None
