"""`optinode spec apply` reads byte fields only as 0x-hex, each of its declared length (issue 6, item 9).

Before: msgspec read a byte field given a string without `0x` as base64, so a 40-digit owner address
became a 30-byte account owner and the command exited 0; an address or signature of the wrong length
went through too. Now every such input exits with the bad-input status and a one-line message that
names the field (its JSON path) and the problem. The inputs are the committed examples with one
field changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from optinode.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PRE, TXS, L1 = (json.loads((EXAMPLES / f"{n}.json").read_text()) for n in ("pre", "txs", "l1"))
EXIT_BAD_INPUT = 2
runner = CliRunner()

OWNER = L1["deposits"]["0"]["owner"]  # "0x" + 40 hex digits
SIGNATURE = next(t for t in TXS if t["type"] == "Trade")["maker"]["signature"]  # "0x" + 130 hex digits


def apply(tmp_path: Path, *, pre: Any = PRE, txs: Any = TXS, l1: Any = L1):
    paths = {}
    for name, value in (("pre", pre), ("txs", txs), ("l1", l1)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(value))
    return runner.invoke(
        app, ["spec", "apply", "--pre", str(paths["pre"]), "--txs", str(paths["txs"]), "--l1", str(paths["l1"])]
    )


def changed(document: Any, edit: Callable[[Any], None]) -> Any:
    copy = json.loads(json.dumps(document))
    edit(copy)
    return copy


def first_trade(txs: list[dict]) -> dict:
    return next(t for t in txs if t["type"] == "Trade")


def set_owner(value: str) -> Callable[[Any], None]:
    return lambda l1: l1["deposits"]["0"].__setitem__("owner", value)


def set_requester(value: str) -> Callable[[Any], None]:
    return lambda l1: l1["forced"]["0"].__setitem__("requester", value)


def set_maker_signature(value: str) -> Callable[[Any], None]:
    return lambda txs: first_trade(txs)["maker"].__setitem__("signature", value)


def set_sample_signature(value: str) -> Callable[[Any], None]:
    return lambda txs: next(t for t in txs if t["type"] == "OraclePrice")["samples"][1].__setitem__("signature", value)


def set_oracle(value: str) -> Callable[[Any], None]:
    return lambda pre: pre["genesis"]["oracles"].__setitem__(2, value)


def set_contract(value: str) -> Callable[[Any], None]:
    return lambda pre: pre["genesis"].__setitem__("verifying_contract", value)


def trade_index(txs: list[dict]) -> int:
    return next(i for i, t in enumerate(txs) if t["type"] == "Trade")


def oracle_index(txs: list[dict]) -> int:
    return next(i for i, t in enumerate(txs) if t["type"] == "OraclePrice")


ADDRESS_FIELDS = [
    pytest.param("l1", set_owner, "$.deposits[0].owner", id="deposit owner"),
    pytest.param("l1", set_requester, "$.forced[0].requester", id="forced requester"),
    pytest.param("pre", set_oracle, "$.oracles[2]", id="genesis oracle"),
    pytest.param("pre", set_contract, "$.verifying_contract", id="genesis verifying_contract"),
]
SIGNATURE_FIELDS = [
    pytest.param("txs", set_maker_signature, f"$[{trade_index(TXS)}].maker.signature", id="order signature"),
    pytest.param("txs", set_sample_signature, f"$[{oracle_index(TXS)}].samples[1].signature", id="oracle sample signature"),
]
INPUTS = {"pre": PRE, "txs": TXS, "l1": L1}


def run_with(tmp_path: Path, which: str, edit: Callable[[Any], None]):
    return apply(tmp_path, **{which: changed(INPUTS[which], edit)})


def assert_bad_input(result, path: str, *words: str) -> None:
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message  # one line, no traceback
    assert path in message, message
    for word in words:
        assert word in message, message


def test_the_unchanged_examples_apply(tmp_path: Path) -> None:
    assert apply(tmp_path).exit_code == 0


@pytest.mark.parametrize("which,edit,path", ADDRESS_FIELDS)
def test_address_without_0x(tmp_path: Path, which: str, edit, path: str) -> None:
    # 40 hex digits without the prefix: once read as base64, a 30-byte address, exit 0.
    assert_bad_input(run_with(tmp_path, which, edit(OWNER[2:])), path, "0x", "no 0x prefix")


@pytest.mark.parametrize("which,edit,path", ADDRESS_FIELDS)
def test_address_with_capital_0X(tmp_path: Path, which: str, edit, path: str) -> None:
    assert_bad_input(run_with(tmp_path, which, edit("0X" + OWNER[2:])), path, "lowercase 0x")


@pytest.mark.parametrize("digits", [38, 42, 0, 64])
@pytest.mark.parametrize("which,edit,path", ADDRESS_FIELDS)
def test_address_of_the_wrong_length(tmp_path: Path, which: str, edit, path: str, digits: int) -> None:
    value = "0x" + (OWNER[2:] * 2)[:digits]
    assert_bad_input(run_with(tmp_path, which, edit(value)), path, "expected 20 bytes", f"got {digits // 2}")


@pytest.mark.parametrize("which,edit,path", SIGNATURE_FIELDS)
def test_signature_without_0x(tmp_path: Path, which: str, edit, path: str) -> None:
    assert_bad_input(run_with(tmp_path, which, edit(SIGNATURE[2:])), path, "no 0x prefix")


@pytest.mark.parametrize("which,edit,path", SIGNATURE_FIELDS)
def test_signature_with_capital_0X(tmp_path: Path, which: str, edit, path: str) -> None:
    assert_bad_input(run_with(tmp_path, which, edit("0X" + SIGNATURE[2:])), path, "lowercase 0x")


@pytest.mark.parametrize("digits", [128, 132, 2])
@pytest.mark.parametrize("which,edit,path", SIGNATURE_FIELDS)
def test_signature_of_the_wrong_length(tmp_path: Path, which: str, edit, path: str, digits: int) -> None:
    value = "0x" + (SIGNATURE[2:] * 2)[:digits]  # 64 bytes (EIP-2098 compact), 66, 1
    assert_bad_input(run_with(tmp_path, which, edit(value)), path, "expected 65 bytes", f"got {digits // 2}")


def test_root_of_the_wrong_length_in_a_state(tmp_path: Path) -> None:
    # A serialized State as the pre-state: its domain separator is a 32-byte hash.
    from optinode.spec import create_genesis_state, serde
    from optinode.spec.genesis import Genesis

    state = json.loads(serde.to_json(create_genesis_state(serde.from_plain(PRE["genesis"], Genesis))))
    for value, words in [
        (state["config"]["domain_separator"][:-2], ("expected 32 bytes", "got 31")),
        (state["config"]["domain_separator"][2:], ("no 0x prefix",)),
    ]:
        edited = changed(state, lambda s: s["config"].__setitem__("domain_separator", value))
        assert_bad_input(apply(tmp_path, pre=edited), "$.config.domain_separator", *words)


def test_odd_or_non_hex_digits(tmp_path: Path) -> None:
    assert_bad_input(run_with(tmp_path, "l1", set_owner(OWNER[:-1])), "$.deposits[0].owner", "not whole bytes of hex")
    assert_bad_input(run_with(tmp_path, "l1", set_owner(OWNER[:-2] + "zz")), "$.deposits[0].owner", "not whole bytes of hex")


def test_batch_without_0x(tmp_path: Path) -> None:
    batch = json.loads((EXAMPLES / "batch.json").read_text())["batch"]
    assert_bad_input(apply(tmp_path, txs={"batch": batch[2:]}), "$.batch", "no 0x prefix")
    assert apply(tmp_path, txs={"batch": batch}).exit_code == 0
