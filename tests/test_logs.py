"""Structured logs: every line of the JSON format is one JSON object with ts, level, logger, event and
fields; alerts carry their name as the event; the human format keeps the ``alert=NAME k=v`` line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from optinode.logs import alert, configure, event


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def test_json_lines_parse_and_carry_the_alert_event(restore_root) -> None:
    out = io.StringIO()
    configure("json", stream=out)
    log = logging.getLogger("optinode.test")
    log.info("batch %d cut (%s)", 3, "size")
    alert(log, "invalid_batch", batch=3, posted=b"\x01\x02", txs=4)
    event(log, logging.INFO, "batch_verified", batch=4)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("internal error in %s", "optinode_status")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 4 and all(set(line) == {"ts", "level", "logger", "event", "fields"} for line in lines)
    plain, bad, verified, crash = lines
    assert plain["event"] == "batch 3 cut (size)" and plain["fields"] == {} and plain["level"] == "info" and plain["logger"] == "optinode.test"
    assert plain["ts"].endswith("Z") and "T" in plain["ts"]
    assert bad["event"] == "invalid_batch" and bad["level"] == "warning"
    assert bad["fields"] == {"alert": True, "batch": 3, "posted": "0x0102", "txs": 4}
    assert verified["event"] == "batch_verified" and verified["fields"] == {"batch": 4}
    assert crash["level"] == "error" and "ValueError: boom" in crash["fields"]["exc"]


def test_human_lines_keep_the_alert_text(restore_root) -> None:
    out = io.StringIO()
    configure("human", stream=out)
    alert(logging.getLogger("optinode.test"), "game_move", level=logging.INFO, game=1, segment=[0, 4], side="CHALLENGER")
    assert "INFO optinode.test: alert=game_move game=1 segment=[0,4] side=CHALLENGER" in out.getvalue()


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="human, json"):
        configure("xml")
