"""`optinode spec demo`: a config it cannot narrate is bad input (exit 2); a failed closing check is a
spec bug (exit 70 with a traceback), never reported as bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from optinode.cli.demo import DemoConfigError, DemoInvariantBroken
from optinode.cli.exits import EXIT_BAD_INPUT, EXIT_INTERNAL
from optinode.config import to_checksum_address
from optinode.errors import InvalidInput
from optinode.wallet import Key

DEVNET = Path(__file__).resolve().parents[2] / "configs" / "devnet.toml"
DEVNET_ORACLE_0 = "0x3617A5c23bE91A8edf8A1Bbca4C8575e0F4e5144"


def test_error_classes_choose_their_side() -> None:
    assert issubclass(DemoConfigError, InvalidInput)
    assert not issubclass(DemoInvariantBroken, InvalidInput)


@pytest.mark.parametrize(
    "edit,fragment",
    [
        # A valid config (checksummed, distinct oracles) whose oracle keys are not the devnet's.
        (lambda t: t.replace(DEVNET_ORACLE_0, to_checksum_address(Key.from_seed("someone else").address)), "devnet oracle keys"),
        (lambda t: t.replace('name = "ETH-USD"', 'name = "ETH-PERP"'), "ETH-USD"),
    ],
)
def test_a_config_the_demo_cannot_narrate_is_bad_input(tmp_path, capsys, edit, fragment: str) -> None:
    from optinode.cli.main import main

    config = tmp_path / "other.toml"
    config.write_text(edit(DEVNET.read_text()))
    assert main(["spec", "demo", "--config", str(config)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err


def test_a_broken_conservation_check_is_an_internal_error(monkeypatch, capsys) -> None:
    from optinode.cli.main import main
    from optinode.spec import state

    real = state.get_total_collateral
    monkeypatch.setattr(state, "get_total_collateral", lambda s: real(s) + 1)  # a spec that mints one unit
    assert main(["spec", "demo"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "DemoInvariantBroken: collateral is not conserved" in err
    assert "internal error" in err
