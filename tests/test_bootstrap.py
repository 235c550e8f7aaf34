"""scripts/bootstrap.sh chooses the interpreter for a new .venv: a Python >= 3.11 with a wheel for every
pin (3.12, then 3.11) before a newer one that must compile plyvel, and says what to install when there
is none. Checked with stand-in interpreters on a PATH of their own (`--which-python` installs nothing)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = sys.executable


def fake_python(bin_dir: Path, name: str, version: tuple[int, int] | None) -> None:
    """A stand-in answering as Python ``version`` (None: a broken shim, like pyenv's for an unselected version)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    if version is None:
        path.write_text("#!/bin/sh\necho \"pyenv: $0: command not found\" >&2\nexit 127\n")
    else:
        major, minor = version
        path.write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = "-c" ]; then exec {REAL} -c "import sys; sys.version_info = ({major}, {minor}, 0, \'final\', 0); exec(sys.argv[1])" "$2"; fi\n'
            f'echo "Python {major}.{minor}.0"\n'
        )
    path.chmod(0o755)


def which_python(
    tmp_path: Path, pythons: dict[str, tuple[int, int] | None], pyenv: dict[str, tuple[int, int]] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, (major, minor) in (pyenv or {}).items():  # installed under ~/.pyenv/versions, not on PATH
        fake_python(tmp_path / ".pyenv" / "versions" / f"{major}.{minor}.1" / "bin", name, (major, minor))
    for tool in ("dirname", "bash"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    for name, version in pythons.items():
        fake_python(bin_dir, name, version)
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "bootstrap.sh"), "--which-python"],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "pythons, chosen",
    [
        ({"python3": (3, 13), "python3.13": (3, 13), "python3.12": (3, 12)}, "python3.12"),
        ({"python3": (3, 13), "python3.11": (3, 11)}, "python3.11"),
        ({"python3": (3, 12)}, "python3"),
        ({"python3": (3, 13), "python3.13": (3, 13)}, "python3"),  # no wheel-complete one: the source-build path
        ({"python3": (3, 10), "python3.13": (3, 13)}, "python3.13"),
        ({"python3": (3, 13), "python3.12": None}, "python3"),  # a broken shim is passed over
    ],
)
def test_prefers_a_python_with_every_wheel(tmp_path: Path, pythons, chosen: str) -> None:
    result = which_python(tmp_path, pythons)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == chosen


def test_no_suitable_python_says_what_to_install(tmp_path: Path) -> None:
    result = which_python(tmp_path, {"python3": (3, 10)})
    assert result.returncode == 1
    assert "Python >= 3.11 is required (found: Python 3.10.0)" in result.stderr
    assert "Install python3.12 or python3.11" in result.stderr


def test_an_explicit_python_is_used_or_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    ok = which_python(tmp_path / "a", {"python3.13": (3, 13), "python3.12": (3, 12)}, PYTHON="python3.13")
    assert ok.stdout.strip() == "python3.13"  # the operator's choice wins over the preference
    (tmp_path / "b").mkdir()
    bad = which_python(tmp_path / "b", {"python3.12": None, "python3.11": (3, 11)}, PYTHON="python3.12")
    assert bad.returncode == 1
    assert "PYTHON=python3.12 is not a Python >= 3.11" in bad.stderr and "command not found" in bad.stderr


def test_a_broken_pyenv_shim_falls_back_to_the_installed_version(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    home = tmp_path / "a"
    explicit = which_python(home, {"python3.13": None, "python3": (3, 11)}, pyenv={"python3.13": (3, 13)}, PYTHON="python3.13")
    assert explicit.returncode == 0, explicit.stderr
    assert explicit.stdout.strip() == str(home / ".pyenv/versions/3.13.1/bin/python3.13")
    (tmp_path / "b").mkdir()
    home = tmp_path / "b"
    preferred = which_python(home, {"python3.12": None, "python3": (3, 13)}, pyenv={"python3.12": (3, 12)})
    assert preferred.stdout.strip() == str(home / ".pyenv/versions/3.12.1/bin/python3.12")
