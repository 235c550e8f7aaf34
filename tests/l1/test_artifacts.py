"""The committed contract artifacts must be built from the committed sources."""

import shutil
import subprocess
from pathlib import Path

from optinode.l1 import artifacts


def test_artifacts_are_fresh() -> None:
    recorded = artifacts.recorded_hash()
    assert recorded is not None, "contracts/artifacts/sources.sha256 is missing: run `node contracts/build.js`"
    assert not artifacts.is_stale(), (
        f"contract artifacts are stale (recorded {recorded}, sources {artifacts.sources_hash()}): "
        "run `node contracts/build.js` (make does) and commit contracts/artifacts/"
    )


def test_load_devtoken_artifact() -> None:
    art = artifacts.load_artifact("DevToken")
    assert art["contractName"] == "DevToken"
    assert art["bytecode"].startswith("0x") and len(art["bytecode"]) > 2
    assert art["deployedBytecode"].startswith("0x") and len(art["deployedBytecode"]) > 2
    assert {e["name"] for e in art["abi"] if e["type"] == "error"} >= {"InsufficientBalance", "InsufficientAllowance"}
    # A copy each time: callers may mutate it.
    art["abi"].clear()
    assert artifacts.load_artifact("DevToken")["abi"]


def test_every_artifact_fits_eip170() -> None:
    for name in artifacts.artifact_names():
        code = artifacts.load_artifact(name)["deployedBytecode"]
        assert (len(code) - 2) // 2 <= 24576, f"{name} exceeds the EIP-170 code-size limit"


def test_hash_tracks_source_changes(tmp_path, monkeypatch) -> None:
    # A copy of contracts/ where we can edit a source: the hash must change with it.
    real = artifacts.contracts_dir()
    fake = tmp_path / "contracts"
    (fake / "src").mkdir(parents=True)
    (fake / "artifacts").mkdir()
    (fake / "build.js").write_bytes((real / "build.js").read_bytes())
    (tmp_path / "package.json").write_bytes((real.parent / "package.json").read_bytes())
    (fake / "src" / "A.sol").write_text("contract A {}\n")
    monkeypatch.setenv("OPTINODE_CONTRACTS_DIR", str(fake))
    h1 = artifacts.sources_hash()
    assert artifacts.is_stale()  # nothing recorded
    (fake / "artifacts" / "sources.sha256").write_text(h1 + "\n")
    assert not artifacts.is_stale()
    (fake / "src" / "A.sol").write_text("contract A { uint x; }\n")
    assert artifacts.is_stale()
    (fake / "src" / "A.sol").write_text("contract A {}\n")
    (fake / "src" / "sub").mkdir()
    (fake / "src" / "sub" / "B.sol").write_text("contract B {}\n")
    assert artifacts.sources_hash() != h1


def _fake_contracts(tmp_path: Path) -> Path:
    real = artifacts.contracts_dir()
    fake = tmp_path / "contracts"
    (fake / "src" / "sub").mkdir(parents=True)
    (fake / "artifacts").mkdir()
    (fake / "build.js").write_bytes((real / "build.js").read_bytes())
    (tmp_path / "package.json").write_bytes((real.parent / "package.json").read_bytes())
    (fake / "src" / "Zed.sol").write_text("contract Zed {}\n")
    (fake / "src" / "sub" / "B.sol").write_text("contract B {}\n")
    (fake / "src" / "a_lower.sol").write_text("contract L {}\n")
    (fake / "src" / "\u00dcml.sol").write_text("contract U {}\n", encoding="utf-8")
    return fake


def test_python_and_node_hash_agree(tmp_path, monkeypatch) -> None:
    node = shutil.which("node")
    assert node, "node (>= 20) is required to build contracts; install Node.js"
    fake = _fake_contracts(tmp_path)
    monkeypatch.setenv("OPTINODE_CONTRACTS_DIR", str(fake))
    (fake / "artifacts" / "sources.sha256").write_text(artifacts.sources_hash() + "\n")
    # --check only hashes (no solc needed): exit 0 means build.js computes the same hash.
    res = subprocess.run([node, str(fake / "build.js"), "--check"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
