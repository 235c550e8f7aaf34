"""Start and stop a local anvil (Foundry) L1 node as a subprocess.

anvil comes from the npm package ``@foundry-rs/anvil`` pinned in package.json; its native
binary lives in the platform package ``@foundry-rs/anvil-<os>-<arch>``. We run that binary
directly (not the ``node_modules/.bin/anvil`` node wrapper) so that stopping our child
really stops anvil.

    with run_anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))

The node listens on 127.0.0.1 only, on a free port, with anvil's default mnemonic (its ten
well-known, PUBLIC development keys: never use them on a real network).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_CHAIN_ID",
    "DEFAULT_MNEMONIC",
    "DEFAULT_PRIVATE_KEYS",
    "Anvil",
    "AnvilError",
    "AnvilNotFound",
    "find_anvil",
    "free_port",
    "rpc",
    "run_anvil",
]

DEFAULT_CHAIN_ID = 31337
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
# Keys of m/44'/60'/0'/0/{0..9} of DEFAULT_MNEMONIC (anvil's default accounts). Public knowledge.
DEFAULT_PRIVATE_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)

_REPO_ROOT = Path(__file__).resolve().parents[2]
_PLATFORM_PACKAGES = {
    ("linux", "x86_64"): "anvil-linux-amd64",
    ("linux", "amd64"): "anvil-linux-amd64",
    ("linux", "aarch64"): "anvil-linux-arm64",
    ("linux", "arm64"): "anvil-linux-arm64",
    ("darwin", "x86_64"): "anvil-darwin-amd64",
    ("darwin", "arm64"): "anvil-darwin-arm64",
}


class AnvilError(RuntimeError):
    """anvil could not be started or did not answer."""


class AnvilNotFound(AnvilError):
    """No anvil binary was found."""


def _candidates(root: Path) -> list[Path]:
    out: list[Path] = []
    pkg = _PLATFORM_PACKAGES.get((platform.system().lower(), platform.machine().lower()))
    nm = root / "node_modules" / "@foundry-rs"
    if pkg:
        out.append(nm / pkg / "bin" / "anvil")
    out.append(nm / "anvil" / "anvil")  # where the npm postinstall fallback puts it
    return out


def find_anvil(root: Path | None = None) -> str:
    """Path of the anvil binary: $OPTINODE_ANVIL, then node_modules (npm ci), then $PATH."""
    env = os.environ.get("OPTINODE_ANVIL")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise AnvilNotFound(f"OPTINODE_ANVIL={env!r} is not an executable file")
        return env
    root = root or _REPO_ROOT
    for cand in _candidates(root):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    on_path = shutil.which("anvil")
    if on_path:
        return on_path
    raise AnvilNotFound(
        "anvil not found: looked for $OPTINODE_ANVIL, "
        + ", ".join(str(c) for c in _candidates(root))
        + " and anvil on $PATH. Install it with `npm ci` at the repository root "
        "(or run `make test`, which does it), or point OPTINODE_ANVIL at a binary."
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def rpc(url: str, method: str, params: Sequence[Any] = (), *, timeout: float = 10.0) -> Any:
    """One JSON-RPC call over HTTP; returns ``result`` or raises AnvilError."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read())
    if "error" in reply:
        raise AnvilError(f"{method} failed: {reply['error']}")
    return reply["result"]


@dataclass(frozen=True)
class Anvil:
    """A running anvil node."""

    url: str
    host: str
    port: int
    chain_id: int
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path
    private_keys: tuple[str, ...] = DEFAULT_PRIVATE_KEYS

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        return rpc(self.url, method, params)

    def log_tail(self, n_bytes: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-n_bytes:].decode("utf-8", "replace")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path, n_bytes: int = 4000) -> str:
    try:
        return path.read_bytes()[-n_bytes:].decode("utf-8", "replace")
    except OSError:
        return ""


@contextlib.contextmanager
def run_anvil(
    *,
    chain_id: int = DEFAULT_CHAIN_ID,
    block_time: float | None = None,
    accounts: int = 10,
    balance_eth: int = 10_000,
    args: Sequence[str] = (),
    binary: str | None = None,
    host: str = "127.0.0.1",
    startup_timeout: float = 30.0,
    log_dir: str | os.PathLike[str] | None = None,
    new_session: bool = False,
) -> Iterator[Anvil]:
    """Start anvil on a free port of ``host``, wait until it answers ``eth_chainId``, yield it,
    and always stop it (terminate, then kill after 10 s) when the block exits.

    ``block_time`` None means anvil's default: one block per transaction (automine).
    ``args`` are appended to anvil's command line. Its output goes to ``<log_dir>/anvil-<port>.log``
    (a temporary directory, removed afterwards, when ``log_dir`` is None).

    ``new_session`` starts anvil in a session of its own, so that a Ctrl-C at the terminal reaches only
    its owner, which then stops the nodes before anvil (`optinode devnet`).

    The states anvil persists to disk (older blocks' states, kept for reorgs and historical calls)
    go to a temporary directory removed afterwards: by default anvil writes them under
    ~/.foundry/anvil/tmp and leaves them there when it is killed, which filled a 252 GB disk in
    one session of test runs (1-3 GB per anvil).
    """
    exe = binary or find_anvil()
    with contextlib.ExitStack() as stack:
        cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="optinode-anvil-states-"))
        if log_dir is None:
            log_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="optinode-anvil-"))
        last_error = ""
        for _attempt in range(3):
            port = free_port(host)
            log_path = Path(log_dir) / f"anvil-{port}.log"
            cmd = [
                exe,
                "--host", host,
                "--port", str(port),
                "--chain-id", str(chain_id),
                "--accounts", str(accounts),
                "--balance", str(balance_eth),
                "--mnemonic", DEFAULT_MNEMONIC,
                "--cache-path", cache_dir,
            ]
            if block_time is not None:
                cmd += ["--block-time", str(block_time)]
            cmd += list(args)
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session)
            url = f"http://{host}:{port}"
            try:
                started = _wait_ready(proc, url, chain_id, startup_timeout, log_path)
            except BaseException:
                _stop(proc)
                raise
            if not started:
                # Exited during startup: most likely the port was taken in between; retry.
                _stop(proc)
                last_error = _tail(log_path)
                continue
            try:
                yield Anvil(url=url, host=host, port=port, chain_id=chain_id, process=proc, log_path=log_path)
            finally:
                _stop(proc)
            return
        raise AnvilError(f"anvil ({exe}) exited during startup three times; last output:\n{last_error}")


def _wait_ready(proc: subprocess.Popen[bytes], url: str, chain_id: int, timeout: float, log_path: Path) -> bool:
    """True once anvil answers; False if it exited; AnvilError on timeout or a wrong chain id."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            return False
        try:
            got = int(rpc(url, "eth_chainId", timeout=1.0), 16)
        except (OSError, urllib.error.URLError, ValueError, AnvilError):
            got = None
        if got is not None:
            if got != chain_id:
                raise AnvilError(f"anvil at {url} reports chain id {got}, expected {chain_id}")
            return True
        if time.monotonic() > deadline:
            raise AnvilError(f"anvil at {url} did not answer within {timeout:.0f}s; output:\n{_tail(log_path)}")
        time.sleep(0.05)
