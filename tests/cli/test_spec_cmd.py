"""`optinode spec apply` and `optinode spec demo` (optinode/cli/spec_cmd.py, spec_apply.py, demo.py).

`apply` on the committed examples must give exactly what the spec computes directly; bad input must
give exit code 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optinode.cli import spec_cmd
from optinode.cli.main import app as main_app
from optinode.spec import L1Context, compute_state_root, create_genesis_state, serde
from optinode.spec.errors import ErrorCode
from optinode.spec.genesis import Genesis
from optinode.spec.transition import apply_transactions
from optinode.spec.types import Transaction

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PRE, TXS, L1, BATCH = (EXAMPLES / n for n in ("pre.json", "txs.json", "l1.json", "batch.json"))
runner = CliRunner()


def invoke(*args: str, input: str | bytes | None = None):
    return runner.invoke(spec_cmd.app, list(args), input=input)


def direct(pre: Path = PRE, txs: Path = TXS, l1: Path = L1):
    """The expected result, straight from the spec."""
    state = create_genesis_state(serde.from_plain(json.loads(pre.read_text())["genesis"], Genesis))
    transactions = serde.from_json(txs.read_bytes(), list[Transaction])
    receipts = apply_transactions(state, transactions, serde.from_json(l1.read_bytes(), L1Context))
    return state, transactions, receipts


def status(receipt) -> str:
    return "OK" if receipt.code == ErrorCode.OK else "rejected" if receipt.applied else "invalid"


# --- the examples -------------------------------------------------------------------------------------


def test_examples_are_what_the_generator_writes() -> None:
    build = runpy.run_path(str(EXAMPLES / "make_examples.py"))["build"]
    for name, data in build().items():
        assert json.loads((EXAMPLES / name).read_text()) == json.loads(json.dumps(data)), f"examples/{name} is stale: run examples/make_examples.py"


def test_examples_cover_every_outcome() -> None:
    _, _, receipts = direct()
    assert {status(r) for r in receipts} == {"OK", "rejected", "invalid"}


def test_apply_text_output_matches_the_spec() -> None:
    result = invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--l1", str(L1))
    assert result.exit_code == 0, result.output
    state, transactions, receipts = direct()
    lines = result.stdout.splitlines()
    assert len(lines) == len(transactions) + 1
    for index, (line, tx, receipt) in enumerate(zip(lines, transactions, receipts)):
        fields = line.split()
        assert fields[:3] == [str(index), type(tx).__name__, status(receipt)]
        assert fields[3:] == ([] if receipt.code == ErrorCode.OK else [ErrorCode(receipt.code).name])
    assert lines[-1] == f"state_root 0x{compute_state_root(state).hex()}"


def test_apply_json_output_and_out_file(tmp_path: Path) -> None:
    out = tmp_path / "post.json"
    result = invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--l1", str(L1), "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    state, _, receipts = direct()
    assert data["receipts"] == [
        {"code": int(r.code), "name": ErrorCode(r.code).name, "applied": r.applied} for r in receipts
    ]
    assert data["state_root"] == "0x" + compute_state_root(state).hex()
    state.dirty_accounts, state.dirty_slots = set(), set()
    assert data["post"] == json.loads(serde.to_json(state))
    assert json.loads(out.read_text()) == data["post"]
    # The post-state is a valid pre-state with the same root.
    again = invoke("apply", "--pre", str(out), "--txs", "-", input="[]")
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == "state_root " + data["state_root"]


def test_apply_from_stdin() -> None:
    result = invoke("apply", "--pre", str(PRE), "--txs", "-", "--l1", str(L1), input=TXS.read_bytes())
    assert result.exit_code == 0, result.output
    expected = invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--l1", str(L1))
    assert result.stdout == expected.stdout


def test_apply_batch_equals_json_list() -> None:
    by_batch = invoke("apply", "--pre", str(PRE), "--txs", str(BATCH), "--l1", str(L1), "--json")
    by_list = invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--l1", str(L1), "--json")
    assert by_batch.exit_code == 0, by_batch.output
    assert json.loads(by_batch.stdout) == json.loads(by_list.stdout)


def test_garbage_batch_records_are_malformed_transactions() -> None:
    result = invoke("apply", "--pre", str(PRE), "--txs", "-", "--json", input='{"batch": "0x0102ff"}')
    assert result.exit_code == 0, result.output
    receipts = json.loads(result.stdout)["receipts"]
    assert receipts and all(r["name"] == "MALFORMED" and not r["applied"] for r in receipts)


def test_without_l1_context_nothing_is_read_from_l1() -> None:
    result = invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--json")
    assert result.exit_code == 0, result.output
    names = [r["name"] for r in json.loads(result.stdout)["receipts"]]
    assert names[0] == names[1] == "NO_PENDING_DEPOSIT"


def test_registered_under_the_main_command() -> None:
    result = runner.invoke(main_app, ["spec", "apply", "--pre", str(PRE), "--txs", str(TXS), "--l1", str(L1)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("state_root 0x")


# --- bad input: exit code 2, one line, no traceback -------------------------------------------------------


def check_bad(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    message = result.stderr.strip()
    assert message.startswith("error: ") and "\n" not in message, message
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in message, message


def write(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


def test_bad_json(tmp_path: Path) -> None:
    txs = write(tmp_path, "txs.json", '[{"type": "Deposit", ')
    check_bad(invoke("apply", "--pre", str(PRE), "--txs", txs), "txs.json", "invalid JSON")


def test_bad_field(tmp_path: Path) -> None:
    txs = write(tmp_path, "txs.json", '[{"type": "Deposit", "account_id": "zero"}]')
    check_bad(invoke("apply", "--pre", str(PRE), "--txs", txs), "txs.json", "$[0].account_id")


@pytest.mark.parametrize(
    "content,fragments",
    [
        ('[{"type": "Mint", "amount": 1}]', ["$[0].type"]),
        ('[{"type": "Deposit", "account_id": 0, "extra": 1}]', ["extra"]),
        ('[{"type": "Withdraw", "account_id": 0, "amount": 1, "expiry": 1, "nonce": 1, "signature": "0xabc"}]', ["$[0].signature", "hex"]),
        ('{"transactions": []}', ["batch"]),
        ('{"batch": 12}', ["batch"]),
        ('{"batch": "0xgg"}', ["$.batch"]),
        ("42", ["list"]),
    ],
)
def test_bad_transactions(tmp_path: Path, content: str, fragments: list[str]) -> None:
    check_bad(invoke("apply", "--pre", str(PRE), "--txs", write(tmp_path, "txs.json", content)), *fragments)


def test_bad_pre_states(tmp_path: Path) -> None:
    genesis = json.loads(PRE.read_text())
    bad_quorum = json.loads(PRE.read_text())
    bad_quorum["genesis"]["markets"][0]["quorum"] = 7
    check_bad(invoke("apply", "--pre", write(tmp_path, "q.json", json.dumps(bad_quorum)), "--txs", str(TXS)), "quorum")
    negative = json.loads(PRE.read_text())
    negative["genesis"]["chain_id"] = -1
    check_bad(invoke("apply", "--pre", write(tmp_path, "n.json", json.dumps(negative)), "--txs", str(TXS)), "genesis")
    extra = dict(genesis, accounts={})
    check_bad(invoke("apply", "--pre", write(tmp_path, "e.json", json.dumps(extra)), "--txs", str(TXS)), "genesis")
    check_bad(invoke("apply", "--pre", write(tmp_path, "l.json", "[]"), "--txs", str(TXS)), "object")
    # A serialized state whose account 0 is missing although next_account_id says it exists.
    post = json.loads(invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--l1", str(L1), "--json").stdout)["post"]
    del post["accounts"]["0"]
    check_bad(invoke("apply", "--pre", write(tmp_path, "s.json", json.dumps(post)), "--txs", str(TXS)), "accounts")
    # One whose collateral does not fit the state encoding.
    post = json.loads(invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--l1", str(L1), "--json").stdout)["post"]
    post["accounts"]["0"]["collateral"] = 2**200
    check_bad(invoke("apply", "--pre", write(tmp_path, "o.json", json.dumps(post)), "--txs", str(TXS)), "range")


def test_bad_l1_and_paths(tmp_path: Path) -> None:
    l1 = write(tmp_path, "l1.json", '{"l1_timestamp": 1, "deposits": {"0": {"owner": "0x11", "amount": "many"}}}')
    check_bad(invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--l1", l1), "l1.json", "amount")
    check_bad(invoke("apply", "--pre", str(tmp_path / "missing.json"), "--txs", str(TXS)), "--pre", "cannot read")
    check_bad(invoke("apply", "--pre", "-", "--txs", "-", input="{}"), "stdin")
    check_bad(
        invoke("apply", "--pre", str(PRE), "--txs", str(TXS), "--out", str(tmp_path / "no" / "such" / "dir" / "post.json")),
        "--out",
    )


# --- demo ---------------------------------------------------------------------------------------------


def test_demo_runs() -> None:
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for fragment in ("Deposits", "SlotRef", "Oracle update", "FUNDING_RATE_EXCEEDED", "NONCE_USED", "LIQUIDATABLE",
                     "NOT_LIQUIDATABLE", "Liquidation", "conservation holds"):
        assert fragment in out, fragment
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "edit,fragments",
    [
        (lambda t: t.replace("quorum = 3", "quorum = = 3"), ["invalid TOML", "line"]),
        (lambda t: t.replace("quorum = 3", 'quorum = "3"'), ["genesis.markets[0].quorum", "int"]),
        (lambda t: t.replace("quorum = 3", "quorum = 3\nquorom = 3"), ["genesis.markets[0]", "unknown key `quorom`"]),
        (lambda t: t.replace("step_size = 1_000_000", "step_size = 0", 1), ["genesis.markets[0].step_size"]),
        (lambda t: t.replace("0x3617A5c23bE91A8edf8A1Bbca4C8575e0F4e5144", "0x3617a5c23bE91A8edf8A1Bbca4C8575e0F4e5144"), ["genesis.oracles[0]", "checksum"]),
        (lambda t: t.replace("0xAB89F9d49E1deAC1Cd8e29Db331472C35AB3f0De", "0x3617A5c23bE91A8edf8A1Bbca4C8575e0F4e5144"), ["genesis.oracles[2]", "duplicate"]),
        (lambda t: t.replace("quorum = 3", "quorum = 4"), ["genesis.markets[0].quorum", "exceeds"]),
        (lambda t: t.replace("quorum = 3", "quorum = 2", 2), ["genesis.markets[0].quorum", "2 * oracle_faults + 1"]),
        (lambda t: t.replace("oracles = [0, 1, 2]", "oracles = [0, 1, 3]", 1), ["genesis.markets[0].oracles[2]", "not an index"]),
        (lambda t: t.replace("oracles = [0, 1, 2]", "oracles = [0, 1, 1]", 1), ["genesis.markets[0].oracles[2]", "twice"]),
        (lambda t: t.replace("max_price_move = 10_000", "max_price_move = 100", 1), ["genesis.markets[0].max_price_move", "stale"]),
        (lambda t: t.replace("price_validity = 3_600", "price_validity = 0"), ["genesis.price_validity"]),
        (lambda t: t.replace("maintenance_margin = 50_000", "maintenance_margin = 150_000", 1), ["genesis.markets[0]", "maintenance_margin"]),
        (lambda t: t + "\n[sequencer]\nport = 1\n", ["unknown key `sequencer`"]),
    ],
)
def test_demo_reports_config_errors(tmp_path: Path, edit, fragments: list[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(edit((ROOT / "configs" / "devnet.toml").read_text()))
    check_bad(invoke("demo", "--config", str(config)), "bad.toml", *fragments)
