"""A bug is never reported as bad input.

`optinode` exits 2 with one line `error: …` for an `InvalidInput` and 70 with the traceback for any
other exception (optinode/cli/exits.py). Here a spec function is made to raise a plain exception, as a
bug would, and `optinode spec apply` must report it as an internal error, in-process through `main()`
and as a real process exit status.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from optinode.cli.exits import EXIT_BAD_INPUT, EXIT_INTERNAL
from optinode.cli.main import main
from optinode.spec import transition
from optinode.spec.types import Deposit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
APPLY = ["spec", "apply", "--pre", str(EXAMPLES / "pre.json"), "--txs", str(EXAMPLES / "txs.json"), "--l1", str(EXAMPLES / "l1.json")]


def buggy_process_deposit(state, tx, ctx):
    """Stands in for a bug deep in the spec: a lookup that was never meant to fail."""
    return {}["the deposit queue entry"]


def test_statuses_are_distinct() -> None:
    assert EXIT_INTERNAL not in (0, EXIT_BAD_INPUT, 1)  # 1 is what an uncaught Python exception gives


def test_a_spec_bug_is_an_internal_error_with_a_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setitem(transition.PROCESSORS, Deposit, buggy_process_deposit)
    status = main(APPLY)
    out, err = capsys.readouterr()
    assert status == EXIT_INTERNAL
    assert out == ""  # no half-printed receipts
    assert "Traceback (most recent call last)" in err
    assert "buggy_process_deposit" in err and "KeyError: 'the deposit queue entry'" in err
    assert "internal error" in err and "bug in optinode" in err
    assert not err.startswith("error: ")  # not dressed up as bad input


def test_the_same_run_without_the_bug_succeeds(capsys) -> None:
    assert main(APPLY) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("state_root 0x")


def test_bad_input_through_main_is_exit_2_without_traceback(tmp_path, capsys) -> None:
    txs = tmp_path / "txs.json"
    txs.write_text('[{"type": "Deposit", "account_id": "zero"}]')
    status = main(["spec", "apply", "--pre", str(EXAMPLES / "pre.json"), "--txs", str(txs)])
    _, err = capsys.readouterr()
    assert status == EXIT_BAD_INPUT
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1


def test_usage_errors_are_bad_input(capsys) -> None:
    assert main(["spec", "apply", "--pre"]) == EXIT_BAD_INPUT
    assert main(["no-such-command"]) == EXIT_BAD_INPUT
    assert main(["version"]) == 0


def test_process_exit_status_of_a_spec_bug() -> None:
    """The real process: python -m optinode.cli.main, with the bug patched in before main() runs."""
    program = (
        "import sys\n"
        "from optinode.spec import transition\n"
        "from optinode.spec.types import Deposit\n"
        "def buggy_process_deposit(state, tx, ctx):\n"
        "    return 1 // 0\n"
        "transition.PROCESSORS[Deposit] = buggy_process_deposit\n"
        "from optinode.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run([sys.executable, "-c", program, *APPLY], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == EXIT_INTERNAL, done.stderr
    assert "Traceback (most recent call last)" in done.stderr and "ZeroDivisionError" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("module", ["optinode.cli.main"])
def test_console_script_runs_main(module: str) -> None:
    """The installed `optinode` script must call main() (which maps exceptions to statuses), not the bare app."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["optinode"] == f"{module}:main"
