"""bench/crash_proposer.py, three trials (the bench's default is 20): SIGKILL at named points of deposit
consumption, logging, cutting, posting and finalizing, restart, then nothing lost, duplicated or
mismatched against L1. (A proposer that re-posts a batch under a new sender item after a restart
makes this fail with duplicated > 0: docs/sequencer.md.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_three_crash_trials_lose_and_duplicate_nothing() -> None:
    result = subprocess.run([sys.executable, str(REPO / "bench" / "crash_proposer.py"), "--trials", "3", "--seed", "7", "--trial-seconds", "5"],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["trials"] == 3
    assert (summary["lost"], summary["duplicated"], summary["mismatched"]) == (0, 0, 0), summary
    assert summary["batches"] >= 3 and summary["acked"] > 0
