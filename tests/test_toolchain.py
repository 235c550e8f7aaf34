"""The toolchain choices the rest of the code relies on."""

import subprocess
import sys


def test_keccak_uses_the_c_backend() -> None:
    # In a fresh interpreter: importing optinode must make eth-hash choose safe-pysha3.
    code = (
        "import optinode\n"
        "from eth_hash.auto import keccak\n"
        "import eth_hash.backends.pysha3 as c\n"
        "assert keccak(b'') == bytes.fromhex('c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470')\n"
        "assert keccak.hasher.__self__ is c.backend, keccak.hasher\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_cli_entry_point() -> None:
    from typer.testing import CliRunner

    from optinode import __version__
    from optinode.cli.main import app

    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == __version__
