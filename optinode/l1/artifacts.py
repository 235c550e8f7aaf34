"""Load the compiled contract artifacts written by ``contracts/build.js``.

The artifacts are committed (``contracts/artifacts/<ContractName>.json``), so Python needs
no Node.js to use them. ``sources_hash`` recomputes, byte for byte, the hash that build.js
records in ``contracts/artifacts/sources.sha256``; ``is_stale`` compares the two.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ArtifactError",
    "contracts_dir",
    "artifacts_dir",
    "artifact_names",
    "load_artifact",
    "sources_hash",
    "recorded_hash",
    "is_stale",
]

HASH_DOMAIN = "optinode-contracts-v1"


class ArtifactError(RuntimeError):
    """A contract artifact is missing or unreadable."""


def contracts_dir() -> Path:
    """The repository's ``contracts/`` directory (override with ``OPTINODE_CONTRACTS_DIR``)."""
    env = os.environ.get("OPTINODE_CONTRACTS_DIR")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2] / "contracts"


def artifacts_dir() -> Path:
    return contracts_dir() / "artifacts"


def _package_json() -> Path:
    return contracts_dir().parent / "package.json"


def _pinned_solc_version() -> str:
    pkg = json.loads(_package_json().read_text(encoding="utf-8"))
    version = pkg.get("devDependencies", {}).get("solc") or pkg.get("dependencies", {}).get("solc")
    if not isinstance(version, str) or version.count(".") != 2 or not version.replace(".", "").isdigit():
        raise ArtifactError(f"package.json must pin solc to an exact version, found {version!r}")
    return version


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sources_hash() -> str:
    """The hash build.js would record for the current sources (see the header of build.js)."""
    cdir = contracts_dir()
    src = cdir / "src"
    rels = []
    if src.is_dir():
        for p in src.rglob("*.sol"):
            if p.is_file():
                rels.append(p.relative_to(cdir).as_posix())
    rels.sort(key=lambda r: r.encode("utf-8"))

    h = hashlib.sha256()
    h.update(f"{HASH_DOMAIN}\n".encode())
    h.update(f"solc {_pinned_solc_version()}\n".encode())
    h.update(f"build.js {_sha256_hex((cdir / 'build.js').read_bytes())}\n".encode())
    for rel in rels:
        h.update(f"{rel}\n{_sha256_hex((cdir / rel).read_bytes())}\n".encode("utf-8"))
    return h.hexdigest()


def recorded_hash() -> str | None:
    """The hash stored by the last build, or None if the artifacts were never built."""
    try:
        return (artifacts_dir() / "sources.sha256").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def is_stale() -> bool:
    """True when the committed artifacts were not built from the current sources."""
    return recorded_hash() != sources_hash()


def artifact_names() -> list[str]:
    """Names of every compiled contract (interfaces and libraries included)."""
    return sorted(p.stem for p in artifacts_dir().glob("*.json"))


@functools.cache
def _load(path: Path, mtime_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_artifact(name: str) -> dict[str, Any]:
    """The artifact of contract ``name``: ``abi``, ``bytecode``, ``deployedBytecode`` (0x-hex), ...

    Returns a fresh copy each call; the parsed file is cached until it changes on disk.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ArtifactError(f"invalid contract name {name!r}")
    path = artifacts_dir() / f"{name}.json"
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ArtifactError(
            f"no artifact for contract {name!r} in {artifacts_dir()} "
            f"(known: {', '.join(artifact_names()) or 'none'}); run `node contracts/build.js`"
        ) from None
    return copy.deepcopy(_load(path, mtime))
