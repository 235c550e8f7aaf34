"""A deployed rollup, a real `optinode sequencer` (optionally with a devnet fault) and real
`optinode verifier` processes on the session's anvil."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families

from optinode.l1.anvil import free_port
from optinode.testing.seqnode import DevChain, Sequencer, optinode_command, optinode_env

from ..sequencer.conftest import chain, users, world  # noqa: F401 - the same fixtures

CHALLENGER_KEYS = (5, 6)  # anvil accounts used as challengers (alice, bob are 2 and 3)


class VerifierProc:
    """One `optinode verifier run` process with JSON logs and its watchtower port; its status is the JSON
    it rewrites at every head (`status()`), or the same over HTTP (`rpc("optinode_status")`)."""

    def __init__(self, chain: DevChain, data_dir: Path, key: str | None, *, fault: str | None = None, config_path: Path | None = None,
                 rpc_url: str | None = None, check_rpc_url: str | None = None) -> None:
        self.chain, self.data_dir, self.key = chain, data_dir, key
        self.rpc_url = rpc_url or chain.url  # another L1 endpoint (a `HostileL1` in front of anvil)
        self.check_rpc_url = check_rpc_url  # a second endpoint to cross-check on (--check-rpc)
        self.config_path = config_path or chain.config_path  # another node section (the chain's genesis and contracts)
        self.address = Account.from_key(key).address if key else None
        self.log_path = data_dir.with_suffix(".log")
        self.fault = fault
        self.api_url = f"http://127.0.0.1:{free_port()}/"
        self.start()

    def start(self) -> None:
        args = ["verifier", "run", "--config", str(self.config_path), "--deployment", str(self.chain.deployment_path),
                "--data-dir", str(self.data_dir), "--rpc", self.rpc_url, "--log-format", "json",
                "--api-port", self.api_url.rsplit(":", 1)[1].rstrip("/")]
        if self.fault:
            args += ["--fault", self.fault]
        if self.check_rpc_url:
            args += ["--check-rpc", self.check_rpc_url]
        if self.key is None:
            args += ["--watch-only"]
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(optinode_command(*args), env={**optinode_env(), "OPTINODE_CHALLENGER_KEY": self.key or ""},
                                        stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def status(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.data_dir / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the verifier exited ({self.process.returncode}):\n{self.log_tail()}")

    stop = Sequencer.stop  # the same shutdown and log reading as the sequencer's process
    log_tail = Sequencer.log_tail

    def log_lines(self) -> list[dict[str, Any]]:
        """Every line of its log, parsed: `--log-format json` writes nothing else (a line that is not
        one JSON object fails the test here)."""
        self._log.flush()
        return [json.loads(line) for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line["event"] == name and line["fields"].get("alert") is True]

    def rpc(self, method: str, *params: Any) -> Any:
        reply = requests.post(self.api_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10).json()
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """GET /metrics on its watchtower port, parsed: {(sample name, sorted labels): value}."""
        text = requests.get(self.api_url + "metrics", timeout=10).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}




class HostileL1:
    """An L1 JSON-RPC endpoint in front of anvil that can answer with hostile data: every call (single
    or batched) is forwarded, and ``tamper(request, answer)`` may return another answer for it."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.tamper: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None
        self.tampered = 0  # answers replaced so far
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                answer = requests.post(outer.upstream, json=body, timeout=30).json()
                if isinstance(body, list):
                    by_id = {a.get("id"): a for a in answer}
                    answer = [outer._answer(request, by_id[request["id"]]) for request in body]
                else:
                    answer = outer._answer(body, answer)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        tamper = self.tamper
        if tamper is None:
            return answer
        changed = tamper(request, answer)
        if changed is not answer:
            self.tampered += 1
        return changed

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile_l1(chain):
    proxy = HostileL1(chain.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def processes():
    """Every process a test starts, stopped at its end (a failing test leaves none behind)."""
    started: list[Any] = []
    yield started
    for proc in reversed(started):
        proc.stop()


def wait_until(predicate: Any, what: str, *, chain: DevChain, procs: list[Any], timeout: float = 90.0, mine_every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last = 0.0
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for proc in procs:
            if isinstance(proc, VerifierProc):
                proc.alive()
            elif proc.process.poll() is not None:
                raise RuntimeError(f"the sequencer exited:\n{proc.log_tail()}")
        if time.monotonic() - last > mine_every:
            chain.mine(1)
            last = time.monotonic()
        time.sleep(0.1)
    tails = "\n".join(p.log_tail(4000) for p in procs)
    raise TimeoutError(f"waited {timeout} s for {what}:\n{tails}")
