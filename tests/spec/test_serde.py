"""serde (optinode/spec/serde.py): strict reading of the JSON form.

Byte fields only as 0x-hex of their declared length, integer keys only as canonical decimals, every
field within the field table, each rejection an `InvalidJson` (an `InvalidInput`) naming the field.
Strings that are not byte fields are left alone, whatever they start with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optinode.errors import InvalidInput
from optinode.spec import serde
from optinode.spec.genesis import Genesis
from optinode.spec.serde import InvalidJson, from_plain, to_plain
from optinode.spec.state import State
from optinode.spec.types import L1Context, Transaction
from optinode.spec.witness import Witness

REPO = Path(__file__).resolve().parents[2]
VECTORS = sorted((REPO / "tests" / "vectors").rglob("*.json"))
OWNER = "0x" + "ab" * 20
L1 = {"l1_timestamp": 5, "deposits": {"0": {"owner": OWNER, "amount": 1}}}


def l1_with(owner: object) -> dict:
    return {"l1_timestamp": 5, "deposits": {"0": {"owner": owner, "amount": 1}}}


def reject(plain: object, kind: object, *fragments: str) -> str:
    with pytest.raises(InvalidJson) as raised:
        from_plain(plain, kind)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_the_error_is_an_input_error() -> None:
    assert issubclass(InvalidJson, InvalidInput)


def test_an_address_reads_as_hex() -> None:
    assert from_plain(L1, L1Context).deposits[0].owner == bytes.fromhex("ab" * 20)
    assert from_plain(l1_with("0x" + "AB" * 20), L1Context).deposits[0].owner == bytes.fromhex("ab" * 20)


@pytest.mark.parametrize(
    "owner,fragments",
    [
        ("ab" * 20, ["$.deposits[0].owner", "no 0x prefix"]),  # msgspec alone: base64, 30 bytes
        ("0X" + "ab" * 20, ["$.deposits[0].owner", "lowercase 0x"]),
        ("0x" + "ab" * 19, ["$.deposits[0].owner", "expected 20 bytes, got 19"]),
        ("0x" + "ab" * 21, ["$.deposits[0].owner", "expected 20 bytes, got 21"]),
        ("0x", ["$.deposits[0].owner", "expected 20 bytes, got 0"]),
        ("0x" + "a" * 39, ["$.deposits[0].owner", "not whole bytes of hex"]),
        ("0x" + "g" * 40, ["$.deposits[0].owner", "not whole bytes of hex"]),
        ("0x " + "ab" * 20, ["$.deposits[0].owner", "not whole bytes of hex"]),
        (20, ["$.deposits[0].owner", "expected 0x-prefixed hex bytes, got int"]),
    ],
)
def test_a_bad_address_is_named(owner: object, fragments: list[str]) -> None:
    reject(l1_with(owner), L1Context, *fragments)


@pytest.mark.parametrize("key", ["07", "+7", "7.0", " 7", "٣", "-0", "x"])
def test_integer_keys_are_canonical_decimals(key: str) -> None:
    # "07" and "7" would otherwise name the same queue entry, the later one silently winning.
    reject({"l1_timestamp": 5, "deposits": {key: {"owner": OWNER, "amount": 1}}}, L1Context, "$.deposits", "canonical")


def test_text_fields_are_left_alone() -> None:
    # Only byte fields are hex: a market named like hex stays a name (it used to become bytes and fail).
    genesis = json.loads((REPO / "examples" / "pre.json").read_text())["genesis"]
    genesis["markets"][0]["name"] = "0xBEEF"
    assert from_plain(genesis, Genesis).markets[0].name == "0xBEEF"


def test_a_transaction_field_out_of_its_bound_is_named() -> None:
    tx = {"type": "Deposit", "account_id": 2**32}
    reject([tx], list[Transaction], "$[0].account_id", "expected an int in [0, 4294967295]")


def test_a_huge_integer_is_reported_not_printed() -> None:
    # Python refuses to print an int of more than 4300 digits; the message must not try.
    reject({"type": "Deposit", "account_id": 10**5000}, Transaction, "$.account_id", "an int of 16610 bits")


def test_a_signature_of_the_wrong_length_is_named() -> None:
    tx = {"type": "Withdraw", "account_id": 0, "amount": 1, "expiry": 1, "nonce": 1, "signature": "0x" + "11" * 64}
    reject(tx, Transaction, "$.signature", "expected 65 bytes, got 64")


def test_shape_errors_name_the_field() -> None:
    reject({"type": "Deposit", "account_id": "5"}, Transaction, "$.account_id", "expected `int`, got `str`")
    reject({"type": "Nope"}, Transaction, "$.type: invalid value 'Nope'")


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_vector_reads_back_exactly(path: Path) -> None:
    vector = json.loads(path.read_text())
    for key, kind in (("l1", L1Context), ("witness", Witness), ("pre", State), ("post", State), ("tx", Transaction)):
        if isinstance(vector.get(key), dict):
            value = from_plain(vector[key], kind)
            assert to_plain(value) == to_plain(from_plain(to_plain(value), kind))
            assert serde.from_json(serde.to_json(value), kind) == value
