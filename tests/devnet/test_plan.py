"""`optinode devnet`'s input rules, checked before anything starts (no anvil): the scenario plan, the
config it can run, and `make demo` running what the README says it runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from optinode.cli.exits import EXIT_BAD_INPUT
from optinode.cli.main import main
from optinode.config import ConfigError
from optinode.devnet.network import devnet_config
from optinode.devnet.runner import BadPlan, plan
from optinode.devnet.scenarios import ALL

REPO = Path(__file__).resolve().parents[2]
DEVNET = REPO / "configs" / "devnet.toml"


def test_the_plan() -> None:
    assert plan(["all"]) == ALL == ("honest", "bad-batch", "censorship")
    assert plan(["bad-batch", "honest"]) == ("bad-batch", "honest")
    assert plan(["none"]) == ()
    with pytest.raises(BadPlan, match="unknown scenario 'nope'"):
        plan(["nope"])
    with pytest.raises(BadPlan, match="must come last"):
        plan(["censorship", "honest"])
    with pytest.raises(BadPlan, match="must come last"):
        plan(["all", "honest"])


@pytest.mark.parametrize("args", [["--scenario", "nope"], ["--scenario", "censorship", "--scenario", "honest"],
                                  ["--config", "/nonexistent/devnet.toml"]])
def test_bad_input_exits_2_with_one_line_before_anything_starts(args, capsys) -> None:
    assert main(["devnet", *args]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_the_devnet_turns_the_market_services_on(tmp_path) -> None:
    text = DEVNET.read_text()
    assert re.search(r"^\[market_services\]\nenabled = false$", text, re.M)  # the shipped config keeps them off
    on = devnet_config(text, "devnet.toml")
    assert re.search(r"^\[market_services\]\nenabled = true$", on, re.M) and on.count("enabled = true") == 1
    assert devnet_config(on, "devnet.toml") == on
    without = text[: text.index("[market_services]")]
    with pytest.raises(ConfigError, match=r"needs a \[market_services\] table"):
        devnet_config(without, "bare.toml")
    config = tmp_path / "bare.toml"
    config.write_text(without)
    assert main(["devnet", "--config", str(config)]) == EXIT_BAD_INPUT


def test_make_demo_runs_the_command_the_readme_names() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo: bootstrap\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has a demo target that bootstraps first"
    (line,) = [r.strip() for r in recipe.group(1).splitlines()]
    assert line == "$(VENV)/bin/optinode devnet --scenario all"
    readme = (REPO / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start"): readme.index("## What works today")]
    assert "make demo" in quick_start and "`optinode devnet --scenario all`" in quick_start
    assert "Not built yet: the `optinode devnet` command" not in readme
    assert plan(line.split("--scenario ")[1].split()) == ALL  # what the line runs is every scenario
    assert "optinode spec demo" in readme  # the spec's own demo stays documented
