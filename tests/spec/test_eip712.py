"""EIP-712: what docs/eip712.md documents is what the spec accepts.

The typed data below is written out by hand from docs/eip712.md (no optinode helper builds it) and signed
with eth-account, as a wallet would. The signatures go into spec transactions, which must be accepted;
changing any message field or any domain field must make the same signature fail (WRONG_SIGNER, state
unchanged).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from optinode.testing.world import FEE_OWNER, WINDOW, test_key
from optinode.spec import L1Context, Receipt, compute_state_root, create_genesis_state, state_transition
from optinode.spec.constants import SECP256K1_N
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import (
    compute_domain_separator,
    compute_order_digest,
    compute_typed_digest,
    hash_oracle_price,
    hash_withdraw,
)
from optinode.spec.errors import ErrorCode
from optinode.spec.genesis import Genesis, GenesisMarket
from optinode.spec.types import Deposit, DepositEntry, OraclePrice, Order, PriceSample, Trade, Withdraw

DOC = Path(__file__).resolve().parents[2] / "docs" / "eip712.md"

# --- exactly as documented in docs/eip712.md ------------------------------------------------------

DOMAIN = {
    "name": "optinode",
    "version": "1",
    "chainId": 31337,
    "verifyingContract": "0x000000000000000000000000000000000000dEaD",
}
EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
ORDER_TYPE = [
    {"name": "accountId", "type": "uint32"},
    {"name": "market", "type": "uint8"},
    {"name": "isBuy", "type": "bool"},
    {"name": "size", "type": "uint64"},
    {"name": "limitPrice", "type": "uint64"},
    {"name": "feeRate", "type": "uint32"},
    {"name": "expiry", "type": "uint64"},
    {"name": "nonce", "type": "uint64"},
]
WITHDRAW_TYPE = [
    {"name": "accountId", "type": "uint32"},
    {"name": "amount", "type": "uint64"},
    {"name": "expiry", "type": "uint64"},
    {"name": "nonce", "type": "uint64"},
]
ORACLE_PRICE_TYPE = [
    {"name": "market", "type": "uint8"},
    {"name": "price", "type": "uint64"},
    {"name": "timestamp", "type": "uint64"},
]
CANCEL_ALL_TYPE = [
    {"name": "accountId", "type": "uint32"},
    {"name": "nonceFloor", "type": "uint64"},
]
TYPES = {"Order": ORDER_TYPE, "Withdraw": WITHDRAW_TYPE, "OraclePrice": ORACLE_PRICE_TYPE, "CancelAll": CANCEL_ALL_TYPE}

# The documented devnet-only test keys.
ALICE_KEY = "0x421018f0dfaebb3293cac3d8daaece35256e1e65309476147f95582b5d899874"
ORACLE0_KEY = "0x21443942df5dac0607a5b38d0c25806e2788c54b4ea0e7ca061c7bdeea4d31ee"
BOB_KEY = "0x" + "b0" * 32
ORACLE1_KEY = "0x" + "0c" * 32
ALICE = Account.from_key(ALICE_KEY).address
BOB = Account.from_key(BOB_KEY).address

# The worked example of docs/eip712.md and its documented results.
DOC_ORDER_MESSAGE = {
    "accountId": 0,
    "market": 0,
    "isBuy": True,
    "size": "500000000",
    "limitPrice": "300000000",
    "feeRate": 500,
    "expiry": "1700086400",
    "nonce": "1",
}
DOC_DOMAIN_SEPARATOR = "0xab7138a4eb4213399e99cc305de60f23e199d3f9998b760765354fd9590f323e"
DOC_ORDER_DIGEST = "0x963a75263cced50278a47d87be5c5e28b759aa1ea344dff0760b036caeee1735"
DOC_ORDER_SIGNATURE = (
    "0xe9f0e4eb23c71c349b0a2a86ceef8f7233e68f63063d012340a7468fcef1eb7e6c"
    "be7737b595d6676e73926d94ae4b1099b3236f16970e8f04d4303285c824461b"
)
DOC_WITHDRAW_SIGNATURE = (
    "0xd2d54cf21ce16279b7c9678e643c03e692dd53063bfcb4b451bf8d48f0eea265"
    "2bceabe6cff03158adc0af1c9f5eaf5b667e084d03c4e0d4f7c4f514d2eacf501b"
)
DOC_CANCEL_ALL_SIGNATURE = (
    "0x75f2ab3f30c874768e2ead49f59b8e0aef11ab4bef6028b0ff8d1466bab48ed9"
    "13b5683e2ae633fd69f4f2eaf9033995a07a1ed0af9969bafcf3816596cb8ffd1c"
)
DOC_ORACLE_SIGNATURE = (
    "0x3e6dde980ca48899e12cdd757605dd3dc31032f9fec4a9b70febe96f9d13d17a"
    "4c0091df8e331e4c2b21b43e60a483022171dacbd316c2edda1b9a60b5e0d1131c"
)


def typed_data(primary: str, message: dict, domain: dict = DOMAIN) -> dict:
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, primary: TYPES[primary]},
        "primaryType": primary,
        "domain": domain,
        "message": message,
    }


def sign(key: str, data: dict) -> bytes:
    return bytes(Account.sign_typed_data(key, full_message=data).signature)


# --- a small world: two funded accounts on a one-market genesis with that domain ---------------------

GENESIS_TIME = 1_700_000_000
EXPIRY = 1_700_086_400
FUNDS = 10_000 * 10**6  # 10,000 USD


def make_genesis() -> Genesis:
    return Genesis(
        chain_id=DOMAIN["chainId"],
        verifying_contract=bytes.fromhex(DOMAIN["verifyingContract"][2:]),
        oracles=(bytes.fromhex(Account.from_key(ORACLE0_KEY).address[2:]), bytes.fromhex(Account.from_key(ORACLE1_KEY).address[2:])),
        max_sample_age=WINDOW,
        price_validity=WINDOW,
        funding_validity=WINDOW,
        fee_owner=test_key(FEE_OWNER).address,
        markets=(
            GenesisMarket(
                name="ETH-USD", step_size=10**6, tick_size=10**4, initial_margin=100_000, maintenance_margin=50_000,
                liquidation_fee=10_000, max_funding_rate=260_416, max_position=10**13, price=3 * 10**8,
                oracles=(0, 1), oracle_faults=0, quorum=2, max_price_move=0,
            ),
        ),
        time=GENESIS_TIME,
    )


def funded_state():
    state = create_genesis_state(make_genesis())
    ctx = L1Context(
        l1_timestamp=GENESIS_TIME + 3600,
        deposits={
            0: DepositEntry(owner=bytes.fromhex(ALICE[2:]), amount=FUNDS),
            1: DepositEntry(owner=bytes.fromhex(BOB[2:]), amount=FUNDS),
        },
    )
    for account_id in (0, 1):
        assert state_transition(state, Deposit(account_id), ctx).ok
    return state, ctx


def alice_order_message() -> dict:
    return {
        "accountId": 0,
        "market": 0,
        "isBuy": True,
        "size": 500_000_000,
        "limitPrice": 300_000_000,
        "feeRate": 500,
        "expiry": EXPIRY,
        "nonce": 1,
    }


def bob_order_message() -> dict:
    return {
        "accountId": 1,
        "market": 0,
        "isBuy": False,
        "size": 500_000_000,
        "limitPrice": 300_000_000,
        "feeRate": 700,
        "expiry": EXPIRY,
        "nonce": 1,
    }


def to_order(message: dict, signature: bytes) -> Order:
    return Order(
        account_id=int(message["accountId"]),
        market=int(message["market"]),
        is_buy=bool(message["isBuy"]),
        size=int(message["size"]),
        limit_price=int(message["limitPrice"]),
        fee_rate=int(message["feeRate"]),
        expiry=int(message["expiry"]),
        nonce=int(message["nonce"]),
        signature=signature,
    )


# A different value for every field of every message, and for every domain field.
ORDER_CHANGES = {
    "accountId": 1,
    "market": 1,
    "isBuy": False,
    "size": 501_000_000,
    "limitPrice": 300_010_000,
    "feeRate": 499,
    "expiry": EXPIRY + 1,
    "nonce": 2,
}
WITHDRAW_CHANGES = {"accountId": 1, "amount": 1_000_000_001, "expiry": EXPIRY + 1, "nonce": 3}
ORACLE_CHANGES = {"market": 1, "price": 301_010_000, "timestamp": GENESIS_TIME + 61}
DOMAIN_CHANGES = {
    "name": "optinode2",
    "version": "2",
    "chainId": 1,
    "verifyingContract": "0x000000000000000000000000000000000000bEEF",
}


def test_changes_cover_every_field() -> None:
    assert set(ORDER_CHANGES) == {f["name"] for f in ORDER_TYPE}
    assert set(WITHDRAW_CHANGES) == {f["name"] for f in WITHDRAW_TYPE}
    assert set(ORACLE_CHANGES) == {f["name"] for f in ORACLE_PRICE_TYPE}
    assert set(DOMAIN_CHANGES) == {f["name"] for f in EIP712_DOMAIN_TYPE}


def mutations(message: dict, changes: dict):
    """(label, message, domain) with exactly one field changed."""
    for field, value in changes.items():
        changed = dict(message)
        assert changed[field] != value
        changed[field] = value
        yield f"message.{field}", changed, DOMAIN
    for field, value in DOMAIN_CHANGES.items():
        domain = dict(DOMAIN)
        domain[field] = value
        yield f"domain.{field}", message, domain


# --- domain -------------------------------------------------------------------------------------------


def test_domain_separator_equals_eth_account() -> None:
    ours = compute_domain_separator(DOMAIN["chainId"], bytes.fromhex(DOMAIN["verifyingContract"][2:]))
    theirs = encode_typed_data(full_message=typed_data("Order", alice_order_message())).header
    assert ours == bytes(theirs)
    assert "0x" + ours.hex() == DOC_DOMAIN_SEPARATOR
    assert create_genesis_state(make_genesis()).config.domain_separator == ours


@pytest.mark.parametrize("field", list(DOMAIN_CHANGES))
def test_domain_separator_equals_eth_account_for_other_domains(field: str) -> None:
    domain = dict(DOMAIN, **{field: DOMAIN_CHANGES[field]})
    theirs = bytes(encode_typed_data(full_message=typed_data("Order", alice_order_message(), domain)).header)
    ours = compute_domain_separator(domain["chainId"], bytes.fromhex(domain["verifyingContract"][2:]))
    if field in ("name", "version"):  # fixed by the protocol: a wallet signing another name/version signs for another domain
        assert ours != theirs
    else:
        assert ours == theirs


# --- Order --------------------------------------------------------------------------------------------


def test_signed_orders_trade() -> None:
    state, ctx = funded_state()
    maker = to_order(alice_order_message(), sign(ALICE_KEY, typed_data("Order", alice_order_message())))
    taker = to_order(bob_order_message(), sign(BOB_KEY, typed_data("Order", bob_order_message())))
    domain = state.config.domain_separator
    assert recover_signer(compute_order_digest(domain, maker), maker.signature) == bytes.fromhex(ALICE[2:])
    assert recover_signer(compute_order_digest(domain, taker), taker.signature) == bytes.fromhex(BOB[2:])
    receipt = state_transition(state, Trade(maker=maker, taker=taker, size=500_000_000), ctx)
    assert receipt.code == ErrorCode.OK and receipt.applied
    assert state.accounts[0].positions[0].size == 500_000_000
    assert state.accounts[1].positions[0].size == -500_000_000


@pytest.mark.parametrize("label,message,domain", list(mutations(alice_order_message(), ORDER_CHANGES)), ids=lambda v: v if isinstance(v, str) else "")
def test_order_signature_covers(label: str, message: dict, domain: dict) -> None:
    state, ctx = funded_state()
    root = compute_state_root(state)
    # Alice signs typed data that differs in one field from the order submitted.
    bad_signature = sign(ALICE_KEY, typed_data("Order", message, domain))
    maker = to_order(alice_order_message(), bad_signature)
    taker = to_order(bob_order_message(), sign(BOB_KEY, typed_data("Order", bob_order_message())))
    receipt = state_transition(state, Trade(maker=maker, taker=taker, size=500_000_000), ctx)
    assert receipt.code == ErrorCode.WRONG_SIGNER and not receipt.applied
    assert compute_state_root(state) == root
    # And the other way round: the good signature over an order with the field changed does not recover Alice.
    if label.startswith("message."):
        good = sign(ALICE_KEY, typed_data("Order", alice_order_message()))
        changed = to_order(message, good)
        assert recover_signer(compute_order_digest(state.config.domain_separator, changed), good) != bytes.fromhex(ALICE[2:])


def test_order_as_taker_with_wrong_signature_is_rejected() -> None:
    state, ctx = funded_state()
    maker = to_order(bob_order_message(), sign(BOB_KEY, typed_data("Order", bob_order_message())))
    taker = to_order(alice_order_message(), sign(BOB_KEY, typed_data("Order", alice_order_message())))
    receipt = state_transition(state, Trade(maker=maker, taker=taker, size=500_000_000), ctx)
    assert receipt.code == ErrorCode.WRONG_SIGNER and not receipt.applied


# --- Withdraw -------------------------------------------------------------------------------------------


def withdraw_message() -> dict:
    return {"accountId": 0, "amount": 1_000_000_000, "expiry": EXPIRY, "nonce": 2}


def to_withdraw(message: dict, signature: bytes) -> Withdraw:
    return Withdraw(
        account_id=int(message["accountId"]),
        amount=int(message["amount"]),
        expiry=int(message["expiry"]),
        nonce=int(message["nonce"]),
        signature=signature,
    )


def test_signed_withdraw_is_applied() -> None:
    state, ctx = funded_state()
    tx = to_withdraw(withdraw_message(), sign(ALICE_KEY, typed_data("Withdraw", withdraw_message())))
    digest = compute_typed_digest(state.config.domain_separator, hash_withdraw(tx))
    assert recover_signer(digest, tx.signature) == bytes.fromhex(ALICE[2:])
    receipt = state_transition(state, tx, ctx)
    assert receipt.code == ErrorCode.OK and receipt.applied
    assert state.accounts[0].collateral == FUNDS - 1_000_000_000
    assert state.accounts[0].withdrawn == 1_000_000_000


@pytest.mark.parametrize("label,message,domain", list(mutations(withdraw_message(), WITHDRAW_CHANGES)), ids=lambda v: v if isinstance(v, str) else "")
def test_withdraw_signature_covers(label: str, message: dict, domain: dict) -> None:
    state, ctx = funded_state()
    root = compute_state_root(state)
    tx = to_withdraw(withdraw_message(), sign(ALICE_KEY, typed_data("Withdraw", message, domain)))
    receipt = state_transition(state, tx, ctx)
    assert receipt.code == ErrorCode.WRONG_SIGNER and not receipt.applied
    assert compute_state_root(state) == root


# --- CancelAll ---------------------------------------------------------------------------------------


def test_wallet_signed_cancel_all_is_applied() -> None:
    """A CancelAll signed by a wallet (eth-account's sign_typed_data over the documented type) raises the floor."""
    from optinode.spec.eip712 import hash_cancel_all
    from optinode.spec.types import CancelAll

    state, ctx = funded_state()
    message = {"accountId": 0, "nonceFloor": 100}
    tx = CancelAll(account_id=0, nonce_floor=100, signature=sign(ALICE_KEY, typed_data("CancelAll", message)))
    digest = compute_typed_digest(state.config.domain_separator, hash_cancel_all(tx))
    assert recover_signer(digest, tx.signature) == bytes.fromhex(ALICE[2:])
    assert state_transition(state, tx, ctx) == Receipt(ErrorCode.OK, True)
    assert state.accounts[0].nonce_base == 100
    # the signature covers the floor and the domain
    for changed, domain in (({"accountId": 0, "nonceFloor": 101}, DOMAIN), (message, {**DOMAIN, "chainId": 1})):
        state, ctx = funded_state()
        tx = CancelAll(account_id=0, nonce_floor=100, signature=sign(ALICE_KEY, typed_data("CancelAll", changed, domain)))
        assert state_transition(state, tx, ctx) == Receipt(ErrorCode.WRONG_SIGNER, False)


# --- OraclePrice -------------------------------------------------------------------------------------


def oracle_message(price: int = 301_000_000) -> dict:
    return {"market": 0, "price": price, "timestamp": GENESIS_TIME + 60}


def to_sample(oracle_index: int, message: dict, signature: bytes) -> PriceSample:
    return PriceSample(
        oracle_index=oracle_index, price=int(message["price"]), timestamp=int(message["timestamp"]), signature=signature
    )


def oracle_samples(first_message: dict, first_domain: dict = DOMAIN) -> tuple[PriceSample, PriceSample]:
    second = oracle_message(302_000_000)
    return (
        to_sample(0, oracle_message(), sign(ORACLE0_KEY, typed_data("OraclePrice", first_message, first_domain))),
        to_sample(1, second, sign(ORACLE1_KEY, typed_data("OraclePrice", second))),
    )


def test_signed_oracle_price_is_applied() -> None:
    state, ctx = funded_state()
    samples = oracle_samples(oracle_message())
    digest = compute_typed_digest(state.config.domain_separator, hash_oracle_price(0, samples[0]))
    assert recover_signer(digest, samples[0].signature) == state.config.oracles[0]
    receipt = state_transition(state, OraclePrice(market=0, samples=samples), ctx)
    assert receipt.code == ErrorCode.OK and receipt.applied
    assert state.markets[0].price == 301_000_000  # the lower median of two samples
    assert state.markets[0].price_time == GENESIS_TIME + 60


@pytest.mark.parametrize("label,message,domain", list(mutations(oracle_message(), ORACLE_CHANGES)), ids=lambda v: v if isinstance(v, str) else "")
def test_oracle_signature_covers(label: str, message: dict, domain: dict) -> None:
    state, ctx = funded_state()
    root = compute_state_root(state)
    receipt = state_transition(state, OraclePrice(market=0, samples=oracle_samples(message, domain)), ctx)
    assert receipt.code == ErrorCode.WRONG_SIGNER and not receipt.applied
    assert compute_state_root(state) == root


def test_oracle_index_selects_the_signer() -> None:
    """The oracle index is not signed: it selects the address the signature must recover to."""
    state, ctx = funded_state()
    first, second = oracle_samples(oracle_message())
    swapped = (PriceSample(0, second.price, second.timestamp, second.signature), PriceSample(1, first.price, first.timestamp, first.signature))
    receipt = state_transition(state, OraclePrice(market=0, samples=swapped), ctx)
    assert receipt.code == ErrorCode.WRONG_SIGNER and not receipt.applied


# --- the signature format ------------------------------------------------------------------------------


def _trade_with_alice_signature(signature: bytes):
    state, ctx = funded_state()
    maker = to_order(alice_order_message(), signature)
    taker = to_order(bob_order_message(), sign(BOB_KEY, typed_data("Order", bob_order_message())))
    return state_transition(state, Trade(maker=maker, taker=taker, size=500_000_000), ctx)


def test_signature_is_r_s_v_with_low_s() -> None:
    signature = sign(ALICE_KEY, typed_data("Order", alice_order_message()))
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2


def test_documented_normalisations() -> None:
    signature = sign(ALICE_KEY, typed_data("Order", alice_order_message()))
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    # v in {0, 1} is malformed; adding 27 (the documented fix) gives back the accepted signature.
    assert _trade_with_alice_signature(r + s.to_bytes(32, "big") + bytes((v - 27,))).code == ErrorCode.BAD_SIGNATURE
    # The high-s twin of a valid signature is malformed; s' = n - s, v' = 55 - v converts back.
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))
    assert _trade_with_alice_signature(high).code == ErrorCode.BAD_SIGNATURE
    s2 = SECP256K1_N - int.from_bytes(high[32:64], "big")
    assert _trade_with_alice_signature(high[:32] + s2.to_bytes(32, "big") + bytes((55 - high[64],))).code == ErrorCode.OK
    # Wrong lengths are malformed.
    assert _trade_with_alice_signature(signature[:64]).code == ErrorCode.BAD_SIGNATURE
    assert _trade_with_alice_signature(signature + b"\x00").code == ErrorCode.BAD_SIGNATURE


# --- the documentation itself ------------------------------------------------------------------------


def test_doc_example_is_the_documented_typed_data() -> None:
    """The JSON example of docs/eip712.md is this file's typed data, with decimal-string uint64 values."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    example = json.loads(blocks[0])
    assert example == typed_data("Order", DOC_ORDER_MESSAGE)
    for primary, fields in TYPES.items():
        encoded = f"{primary}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")"
        assert encoded in text, f"{encoded} missing from {DOC.name}"


def test_doc_example_signatures() -> None:
    order_data = typed_data("Order", DOC_ORDER_MESSAGE)
    signed = Account.sign_typed_data(ALICE_KEY, full_message=order_data)
    assert "0x" + bytes(signed.message_hash).hex() == DOC_ORDER_DIGEST
    assert "0x" + bytes(signed.signature).hex() == DOC_ORDER_SIGNATURE
    withdraw = {"accountId": 0, "amount": "1000000000", "expiry": "1700086400", "nonce": "2"}
    assert "0x" + sign(ALICE_KEY, typed_data("Withdraw", withdraw)).hex() == DOC_WITHDRAW_SIGNATURE
    price = {"market": 0, "price": "301000000", "timestamp": "1700000060"}
    assert "0x" + sign(ORACLE0_KEY, typed_data("OraclePrice", price)).hex() == DOC_ORACLE_SIGNATURE
    cancel = {"accountId": 0, "nonceFloor": "100"}
    assert "0x" + sign(ALICE_KEY, typed_data("CancelAll", cancel)).hex() == DOC_CANCEL_ALL_SIGNATURE
    text = DOC.read_text(encoding="utf-8")
    for value in (
        DOC_DOMAIN_SEPARATOR, DOC_ORDER_DIGEST, DOC_ORDER_SIGNATURE, DOC_WITHDRAW_SIGNATURE, DOC_ORACLE_SIGNATURE,
        DOC_CANCEL_ALL_SIGNATURE,
    ):
        assert value in text
    # The documented order (string values as a wallet sends them) is accepted by the spec.
    order = to_order(DOC_ORDER_MESSAGE, bytes(signed.signature))
    digest = compute_order_digest(compute_domain_separator(31337, bytes.fromhex(DOMAIN["verifyingContract"][2:])), order)
    assert recover_signer(digest, order.signature) == bytes.fromhex(ALICE[2:])


def test_typed_data_is_not_mutated_by_signing() -> None:
    data = typed_data("Order", alice_order_message())
    before = copy.deepcopy(data)
    sign(ALICE_KEY, data)
    assert data == before
