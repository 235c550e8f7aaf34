"""The watchtower surface of a real `optinode verifier` process on anvil: a forced withdrawal nobody
serves (no sequencer runs) comes near its deadline, then passes it; the alerts fire once each, as JSON
log lines, and optinode_status / GET /metrics on the verifier's own port say the same."""

from __future__ import annotations

import json
import subprocess

import requests

from optinode.testing.seqnode import optinode_command, optinode_env
from optinode.testing.world import USD

from .conftest import VerifierProc, wait_until

FORCED = (("queue", "forced"),)


def test_a_forced_request_near_its_deadline_is_alerted_once(chain, users, tmp_path, processes) -> None:
    params = chain.deployment.params
    warning = params.forced_deadline // 3  # the default threshold (node.verifier.deadline_warning unset)
    v = VerifierProc(chain, tmp_path / "watch", None)  # watch-only; no sequencer: the request stays unserved
    processes.append(v)
    wait_until(lambda: v.status(), "the verifier to follow L1", chain=chain, procs=processes)
    chain.request_forced(users["alice"], 0, 5 * USD)

    def unserved():
        rows = v.rpc("optinode_status")["unserved"].get("forced")
        return rows and rows[0]

    row = wait_until(unserved, "the forced request in optinode_status", chain=chain, procs=processes)
    assert row["index"] == 0 and row["deadline_at"] == row["requested_at"] + params.forced_deadline and row["seconds_left"] > warning
    m = v.metrics()
    assert m[("optinode_queue_unserved", FORCED)] == 1 and m[("optinode_queue_deadline_seconds_left", FORCED)] > warning
    assert not v.alerts("forced_deadline_near")

    chain.travel(params.forced_deadline - warning + 10)  # inside the warning threshold, not past the deadline
    (near,) = wait_until(lambda: v.alerts("forced_deadline_near"), "the forced_deadline_near alert", chain=chain, procs=processes)
    assert near["level"] == "warning" and near["logger"] == "optinode.services.queue_watch"
    assert near["fields"]["index"] == 0 and 0 < near["fields"]["seconds_left"] <= warning and near["fields"]["threshold"] == warning
    m = v.metrics()
    assert m[("optinode_queue_deadline_near_total", FORCED)] == 1 and 0 < m[("optinode_queue_deadline_seconds_left", FORCED)] <= warning

    chain.travel(warning)  # past the deadline: anyone may freeze the rollup now
    (passed,) = wait_until(lambda: v.alerts("forced_deadline_passed"), "the forced_deadline_passed alert", chain=chain, procs=processes)
    assert passed["level"] == "error" and passed["fields"]["seconds_left"] <= 0
    assert len(v.alerts("forced_deadline_near")) == 1  # once per request, not once per head
    assert v.metrics()[("optinode_queue_deadline_near_total", FORCED)] == 1

    # one function, two views: the CLI prints what the node wrote, the port serves it live
    live = v.rpc("optinode_status")
    shown = _status_cli("--data-dir", str(v.data_dir))
    assert shown.returncode == 0, shown.stderr
    printed = json.loads(shown.stdout)
    assert set(printed) == set(live) and printed["unserved"]["forced"][0]["index"] == live["unserved"]["forced"][0]["index"] == 0
    assert live["l1_head"] >= printed["l1_head"] and live["l1_up"] is True
    # `--api URL` asks the running node (no data directory needed), and says nothing about a fallback
    asked = _status_cli("--api", v.api_url)
    assert asked.returncode == 0 and asked.stderr == "", asked.stderr
    answered = json.loads(asked.stdout)
    assert set(answered) == set(live) and answered["l1_head"] >= live["l1_head"] and answered["unserved"]["forced"][0]["index"] == 0

    # the envelope is the public API's: standard errors, and GET /metrics only
    bad = requests.post(v.api_url, json={"jsonrpc": "2.0", "id": 7, "method": "optinode_sendOrder", "params": []}, timeout=10).json()
    assert bad["error"]["code"] == -32601 and bad["id"] == 7
    assert requests.get(v.api_url, timeout=10).status_code == 405
    # every line the process wrote is one JSON object of the documented shape
    lines = v.log_lines()
    assert lines and all(set(line) == {"ts", "level", "logger", "event", "fields"} for line in lines)

    # the node down: `--api` falls back to the data directory only when one is given, and says so on stderr
    v.stop()
    fallback = _status_cli("--api", v.api_url, "--data-dir", str(v.data_dir))
    assert fallback.returncode == 0, fallback.stderr
    assert json.loads(fallback.stdout) == json.loads((v.data_dir / "status.json").read_text())  # the same shape: what it last wrote
    assert "does not answer" in fallback.stderr and "status.json" in fallback.stderr
    down = _status_cli("--api", v.api_url)
    assert down.returncode == 2 and "does not answer" in down.stderr and down.stdout == ""


def _status_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(optinode_command("verifier", "status", *args), env=optinode_env(), capture_output=True, text=True, timeout=60)
