"""Node logs: one JSON object per line for machines, or one readable line for people (docs/verifier.md, "Logs").

    configure("json")                                  # once, at CLI start (--log-format / [node] log_format)
    alert(log, "invalid_batch", batch=3, posted="0x…")  # an alert: a named event with fields

Every record is a stdlib `logging` record, so the services' existing ``log.info("batch %d cut …")``
calls keep working. In JSON each line is ``{"ts", "level", "logger", "event", "fields"}``:
``event`` is the alert's name for an `alert`/`event` call and the formatted message otherwise, and
``fields`` holds the keyword arguments (plus ``exc`` with the traceback of an exception). The human
format renders an alert as ``alert=NAME key=value …``, the line operators and tests already grep for.

Why stdlib logging and not structlog: every library under the node (web3, urllib3, httpx) logs
through stdlib, and one formatter on the root handler puts all of it on the same JSON stream; the
structured part the services need is just a name and a few fields, which `extra` carries.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["FORMATS", "JsonFormatter", "alert", "configure", "event"]

FORMATS = ("human", "json")
_HUMAN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _plain(value: Any) -> Any:
    """A field value JSON can carry: bytes as 0x-hex, anything unknown as its str."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _text(value: Any) -> str:
    plain = _plain(value)
    return plain if isinstance(plain, str) else json.dumps(plain, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        name = getattr(record, "event", None)
        fields = dict(getattr(record, "fields", None) or {})
        if name is None:
            name = record.getMessage()
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = {"ts": ts, "level": record.levelname.lower(), "logger": record.name, "event": name, "fields": _plain(fields)}
        return json.dumps(line, separators=(",", ":"))


def event(log: logging.Logger, level: int, name: str, /, **fields: Any) -> None:
    """A named event with fields: JSON ``{"event": name, "fields": {...}}``, human ``name key=value …``."""
    if log.isEnabledFor(level):
        text = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        log.log(level, "%s %s" if text else "%s%s", name, text, extra={"event": name, "fields": fields}, stacklevel=2)


def alert(log: logging.Logger, name: str, /, *, level: int = logging.WARNING, **fields: Any) -> None:
    """An operator alert (docs/verifier.md, "Alerts"): human ``alert=NAME key=value …``; JSON event NAME
    with ``fields.alert = true``."""
    if log.isEnabledFor(level):
        text = " ".join(f"{k}={_text(v)}" for k, v in fields.items())
        log.log(level, "alert=%s %s", name, text, extra={"event": name, "fields": {"alert": True, **fields}}, stacklevel=2)


def configure(fmt: str = "human", *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Route every logger to one stderr handler in the chosen format (replacing earlier handlers)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_HUMAN))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # Python warnings become records too: nothing else reaches stderr as raw text
