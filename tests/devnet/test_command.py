"""`optinode devnet` as a user runs it, in a subprocess: ``--keep-running`` serves the endpoints it prints,
the bots keep trading, and Ctrl-C (SIGINT) stops everything it started (exit 0, no process left, anvil's
port closed); a Ctrl-C in the middle of a scenario exits 130, also leaving nothing behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from optinode.devnet.nodes import command
from optinode.testing.seqnode import optinode_env


def _start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Path, Path]:
    workdir, out = tmp_path / "devnet", tmp_path / "devnet.out"
    process = subprocess.Popen(command("devnet", "--workdir", str(workdir), *args), env=optinode_env(), stdout=out.open("w"),
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    return process, workdir, out


def _wait_for(out: Path, process: subprocess.Popen[str], pattern: str, timeout: float = 120.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, out.read_text())
        if found:
            return found
        assert process.poll() is None, f"the devnet exited ({process.returncode}):\n{out.read_text()}"
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no {pattern!r} within {timeout} s:\n{out.read_text()}")


def _left_behind(workdir: Path, anvil_port: int) -> list[str]:
    """Processes still running that the devnet started: the nodes name the work directory, anvil its port."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(workdir) in args or f"--port {anvil_port} " in args:
            left.append(args)
    return left


def _closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_keep_running_serves_the_printed_endpoints_and_ctrl_c_stops_everything(tmp_path) -> None:
    process, workdir, out = _start(tmp_path, "--scenario", "none", "--keep-running")
    try:
        _wait_for(out, process, r"alice +L1 0x")
        text = out.read_text()
        anvil_port = int(re.search(r"anvil L1 +http://127\.0\.0\.1:(\d+)", text).group(1))
        api = re.search(r"sequencer API +(http://\S+)", text).group(1)
        watch = re.search(r"verifier watch +(http://\S+)", text).group(1)
        status = httpx.post(api, json={"jsonrpc": "2.0", "id": 1, "method": "optinode_status", "params": []}).json()["result"]
        assert status["queues"]["depositsDone"] == 2  # the bots' deposits, consumed
        watched = httpx.post(watch, json={"jsonrpc": "2.0", "id": 1, "method": "optinode_status", "params": []}).json()["result"]
        assert watched["l1_up"] is True and watched["invalid_batches"] == []
        assert "optinode_l1_head_block" in httpx.get(watch + "metrics").text
        chain = httpx.post(f"http://127.0.0.1:{anvil_port}", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
        assert int(chain.json()["result"], 16) == 31337

        def traded() -> bool:  # the bots keep trading while it stays up
            account = httpx.post(api, json={"jsonrpc": "2.0", "id": 1, "method": "optinode_getAccount", "params": [0]}).json()["result"]
            return bool(account["positions"])

        deadline = time.monotonic() + 60
        while not traded():
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=90) == 0, out.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert _left_behind(workdir, anvil_port) == [] and _closed(anvil_port)
    assert "SIGTERM: shutting down" in (workdir / "sequencer.log").read_text()  # stopped, not killed
    assert "store closed" in (workdir / "verifier.log").read_text()


def test_ctrl_c_in_the_middle_of_a_scenario_exits_130_and_leaves_nothing(tmp_path) -> None:
    process, workdir, out = _start(tmp_path, "--scenario", "honest")
    try:
        _wait_for(out, process, r"deposits \$10,000\.00")  # the scenario has begun
        anvil_port = int(re.search(r"anvil L1 on http://127\.0\.0\.1:(\d+)", out.read_text()).group(1))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=90) == 130, out.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert _left_behind(workdir, anvil_port) == [] and _closed(anvil_port)
    assert "interrupted" in out.read_text()
