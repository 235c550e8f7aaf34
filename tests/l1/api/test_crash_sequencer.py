"""bench/crash_sequencer.py, three trials (the bench's default is 100): clients trade over JSON-RPC,
the sequencer is SIGKILLed at a random moment, restarted, and every acknowledged order and cancel is
in the log at its seq with the answer it got, and the book, open orders, getOrder and the state root
equal a clean replay of the log. (The bench was checked against an engine that answers before its
group commit is synced: it reports lost and mismatched acknowledgements.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_three_sigkill_trials_lose_no_acknowledged_order() -> None:
    result = subprocess.run([sys.executable, str(REPO / "bench" / "crash_sequencer.py"), "--trials", "3", "--seed", "5"],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["trials"] == 3
    assert (summary["lost"], summary["mismatched"]) == (0, 0), result.stdout[-3000:]
    assert summary["acked"] > 0 and summary["fills"] > 0, summary
