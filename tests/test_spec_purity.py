"""optinode/spec must stay pure and deterministic: no I/O, clock, randomness, network or logging.

Every ``.py`` under optinode/spec is parsed with ``ast`` (never imported) and each import is
checked against FORBIDDEN. ``json`` is allowed (pure); so are hashlib, dataclasses, enum, ...
Dynamic imports (``__import__``, ``importlib``) are forbidden too, so the rule cannot be dodged.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SPEC_DIR = Path(__file__).resolve().parents[1] / "optinode" / "spec"

FORBIDDEN = frozenset(
    {
        # concurrency and event loops
        "trio", "asyncio", "threading", "multiprocessing", "concurrent",
        # L1, storage, network
        "web3", "plyvel", "socket", "ssl", "select", "selectors", "urllib", "http", "requests", "aiohttp",
        # clock and randomness
        "time", "datetime", "random", "secrets", "uuid",
        # process, OS and filesystem
        "os", "sys", "subprocess", "signal", "pathlib", "io", "tempfile", "shutil", "glob",
        # side channels and dynamic loading
        "logging", "warnings", "importlib", "builtins",
    }
)
FORBIDDEN_CALLS = frozenset({"__import__", "open", "print", "input", "exec", "eval", "compile", "breakpoint"})


def violations(source: str, filename: str = "<string>") -> list[str]:
    """Every forbidden import or call in ``source``, as ``file:line: message``."""
    tree = ast.parse(source, filename=filename)
    found: list[str] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        for mod in modules:
            if mod.split(".")[0] in FORBIDDEN:
                found.append(f"{filename}:{node.lineno}: imports forbidden module {mod!r}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            found.append(f"{filename}:{node.lineno}: calls forbidden builtin {node.func.id}()")
    return found


def spec_files() -> list[Path]:
    return sorted(SPEC_DIR.rglob("*.py"))


def test_spec_package_is_pure() -> None:
    assert SPEC_DIR.is_dir(), f"{SPEC_DIR} is missing"
    assert (SPEC_DIR / "__init__.py").is_file(), "optinode/spec must be a package (missing __init__.py)"
    problems: list[str] = []
    for path in spec_files():
        problems += violations(path.read_text(encoding="utf-8"), str(path.relative_to(SPEC_DIR.parents[1])))
    assert not problems, "optinode/spec must stay pure:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import time",
        "import os.path",
        "from datetime import datetime",
        "import random as r",
        "from urllib.request import urlopen",
        "def f():\n    import logging\n",
        "try:\n    import trio\nexcept ImportError:\n    pass\n",
        "x = __import__('socket')",
        "def f(p):\n    return open(p).read()\n",
        "from concurrent.futures import ThreadPoolExecutor",
    ],
)
def test_checker_flags_impure_source(source: str) -> None:
    assert violations(source), f"not flagged: {source!r}"


@pytest.mark.parametrize(
    "source",
    [
        "import json\nimport hashlib\nfrom dataclasses import dataclass\nimport enum",
        "from eth_hash.auto import keccak",
        "from . import time",  # a sibling module of the spec package, not the stdlib one
        "from .codec import decode\nfrom optinode.spec.state import State",
        "timestamp = 3\ndef on_move(game, move, now):\n    return now - timestamp\n",
    ],
)
def test_checker_accepts_pure_source(source: str) -> None:
    assert violations(source) == []


def test_checker_reports_line_numbers() -> None:
    (msg,) = violations("x = 1\nimport time\n", "spec/x.py")
    assert msg.startswith("spec/x.py:2:") and "'time'" in msg
