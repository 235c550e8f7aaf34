"""The verifier's own JSON-RPC port (docs/verifier.md, "Watchtower API"): ``optinode_status`` and
``GET /metrics``, on 127.0.0.1 only.

    await nursery.start(watch_rpc.run, verifier, port)    # task_status.started(bound port)

The same JSON-RPC envelope and HTTP server as the sequencer's public API (`rpc.dispatch` with this
node's methods, `services/http_server.py`), so errors and limits behave alike. The
status is `Verifier.status()`, the same function `optinode verifier status` prints (via
`status.json`): one function, two views. HTTP only: a watchtower has nothing to push.
"""

from __future__ import annotations

import logging
from typing import Any

import trio
from optinode.services import rpc
from optinode.services.http_server import Routes, serve

__all__ = ["METHODS", "run"]

log = logging.getLogger("optinode.services.watch_rpc")


async def _status(verifier: Any, params: list[Any], subscriber: Any) -> Any:
    rpc._arity(params, 0, 0, "optinode_status()")
    return verifier.status()


METHODS: rpc.Methods = {"optinode_status": _status}


async def run(verifier: Any, port: int, *, host: str = "127.0.0.1", task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; ``task_status.started(port)``."""
    routes = Routes(rpc=lambda body: rpc.dispatch(verifier, body, None, METHODS), metrics=verifier.metrics.expose)  # (no websocket: upgrades are refused, 403)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve, routes, host, port)
        log.info("watchtower JSON-RPC on http://%s:%d (optinode_status, GET /metrics)", host, bound)
        task_status.started(bound)
