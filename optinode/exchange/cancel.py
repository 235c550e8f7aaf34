"""EIP-712 cancel messages for `optinode_cancelOrder` (docs/eip712.md, "Cancels").

Cancels are honoured by the sequencer off-chain. `CancelOrder` never reaches L1, so it is not a spec
type: it lives here, on the spec's domain separator and digest (a cancel signed for one rollup
deployment means nothing on another). `CancelAll` is the spec's EIP-712 type (`spec.eip712`): the same
signed message also raises the account's nonce floor on-chain as a `CancelAll` transaction. Both messages are idempotent, so a replayed cancel can do no harm:
cancelling an order twice is a no-op, and `CancelAll` only ever raises the account's nonce floor.
"""

from __future__ import annotations

from struct import Struct

import msgspec

from optinode.spec.crypto import keccak, recover_signer
from optinode.spec.eip712 import CANCEL_ALL_TYPEHASH, compute_typed_digest
from optinode.spec.fields import AccountId, Hash32, Nonce, Signature, find_field_error

CANCEL_ORDER_TYPE = b"CancelOrder(uint32 accountId,bytes32 orderHash)"
CANCEL_ORDER_TYPEHASH = keccak(CANCEL_ORDER_TYPE)

_U_WORD = Struct(">24xQ")


class SignedCancelOrder(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Cancel one order, named by its hash (the order's EIP-712 digest), of the signer's account."""

    account_id: AccountId  # uint32
    order_hash: Hash32
    signature: Signature  # 65 bytes r ‖ s ‖ v, as for orders


class SignedCancelAll(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Cancel every live order of the account with a nonce below `nonce_below`, and refuse such
    nonces from then on."""

    account_id: AccountId
    nonce_below: Nonce  # uint64, as the order nonces it compares with (EIP-712 field `nonceFloor`)
    signature: Signature


def hash_cancel(message: SignedCancelOrder | SignedCancelAll) -> bytes:
    if type(message) is SignedCancelOrder:
        return keccak(CANCEL_ORDER_TYPEHASH + _U_WORD.pack(message.account_id) + message.order_hash)
    return keccak(CANCEL_ALL_TYPEHASH + _U_WORD.pack(message.account_id) + _U_WORD.pack(message.nonce_below))


def compute_cancel_digest(domain_separator: bytes, message: SignedCancelOrder | SignedCancelAll) -> bytes:
    return compute_typed_digest(domain_separator, hash_cancel(message))


def find_cancel_error(message: SignedCancelOrder | SignedCancelAll) -> str | None:
    """What is wrong with the message's fields (types, bounds, lengths from the spec's field table), or None."""
    return find_field_error(message, type(message))


def recover_cancel_signer(domain_separator: bytes, message: SignedCancelOrder | SignedCancelAll) -> bytes | None:
    """The signer's 20-byte address, or None for a malformed message or signature."""
    if find_cancel_error(message) is not None:
        return None
    return recover_signer(compute_cancel_digest(domain_separator, message), message.signature)
