"""The devnet-only admin JSON-RPC endpoint: spec transactions in, durable acknowledgements out.

    POST http://127.0.0.1:<admin port>/  {"jsonrpc": "2.0", "id": 1, "method": "optinode_adminSubmit", "params": [TX]}

``TX`` is a transaction in the JSON `optinode spec apply` reads (docs/spec-apply.md: ``{"type":
"Trade", ...}``, bytes as 0x-hex). The answer comes once the command's log entry is synced:
``{"seq": n, "codes": ["OK"]}``; a transaction the spec refuses is a JSON-RPC error -32000 whose
``data`` is the spec `ErrorCode` name. Other methods: ``optinode_adminWithdrawalClaim(account_id
[, batch_index])`` (the claim proof, `services.claims`) and ``optinode_adminStatus()``.

It is a test and devnet tool, not the public API (issue 10 brings that): the sequencer refuses to
start it unless the chain is a devnet, it binds 127.0.0.1 only, and it is deliberately tiny — HTTP/1.1,
one request per connection, bounded header and body sizes, a deadline per connection — served by
`trio.serve_listeners`, so it needs no web framework.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import trio

from optinode.errors import InvalidInput
from optinode.services.claims import build_withdrawal_claim
from optinode.services.engine import Engine, Rejected, Submitter
from optinode.spec import serde
from optinode.spec.errors import ErrorCode
from optinode.spec.types import Transaction

__all__ = ["AdminDeps", "run"]

log = logging.getLogger("optinode.services.admin_rpc")

MAX_HEADER = 16 * 1024
MAX_BODY = 1024 * 1024
CONNECTION_DEADLINE = 30.0

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, APPLICATION_ERROR = -32700, -32600, -32601, -32602, -32000


class AdminRpcError(InvalidInput):
    """A request the admin endpoint turns away: a JSON-RPC error code, message and optional data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


@dataclass
class AdminDeps:
    engine: Engine
    submitter: Submitter
    host: str = "127.0.0.1"
    port: int = 0


def _hex(value: Any) -> Any:
    return serde.to_plain(value)


async def _submit(deps: AdminDeps, params: list[Any]) -> Any:
    if len(params) != 1:
        raise AdminRpcError(INVALID_PARAMS, "optinode_adminSubmit takes one transaction")
    from optinode.cli.spec_apply import convert

    try:
        tx = convert(params[0], Transaction, "params[0]")
    except InvalidInput as error:
        raise AdminRpcError(INVALID_PARAMS, str(error)) from None
    try:
        ack = await deps.submitter.submit(tx)
    except Rejected as rejected:
        raise AdminRpcError(APPLICATION_ERROR, str(rejected), rejected.code.name) from None
    return {"seq": ack.seq, "codes": [ErrorCode(c).name for c in ack.codes]}


async def _claim(deps: AdminDeps, params: list[Any]) -> Any:
    if not 1 <= len(params) <= 2 or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in params):
        raise AdminRpcError(INVALID_PARAMS, "optinode_adminWithdrawalClaim takes account_id [, batch_index]")
    try:
        claim = build_withdrawal_claim(deps.engine.store, *params)
    except InvalidInput as error:
        raise AdminRpcError(APPLICATION_ERROR, str(error)) from None
    return _hex(claim)


async def _status(deps: AdminDeps, params: list[Any]) -> Any:
    e = deps.engine
    return {
        "next_batch": e.batch_index,
        "pending_entries": e.pending.entries,
        "next_seq": e.next_seq,
        "l1_time": e.l1_time,
        "l1_head_time": e.head_time,  # the time a batch opened now runs at (docs/sequencer.md, "Batch time")
        "deposits_done": e.state.deposits_done,
        "forced_done": e.state.forced_done,
        "last_final": e.journal.last_final(),
    }


async def _command(deps: AdminDeps, params: list[Any]) -> Any:
    if len(params) != 1 or not isinstance(params[0], int) or isinstance(params[0], bool) or params[0] < 0:
        raise AdminRpcError(INVALID_PARAMS, "optinode_adminCommand takes a log seq")
    status = deps.engine.command_status(params[0])
    if status is None:
        raise AdminRpcError(APPLICATION_ERROR, f"no command {params[0]} in the log", "UNKNOWN_COMMAND")
    return status


METHODS: dict[str, Callable[[AdminDeps, list[Any]], Awaitable[Any]]] = {
    "optinode_adminCommand": _command,
    "optinode_adminSubmit": _submit,
    "optinode_adminWithdrawalClaim": _claim,
    "optinode_adminStatus": _status,
}


async def _dispatch(deps: AdminDeps, body: bytes) -> bytes:
    try:
        request = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # (a nesting bomb is not JSON we can read)
        return _error(None, AdminRpcError(PARSE_ERROR, "parse error"))
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        return _error(None, AdminRpcError(INVALID_REQUEST, "invalid request"))
    rid = request.get("id")
    method = METHODS.get(request["method"])
    if method is None:
        return _error(rid, AdminRpcError(METHOD_NOT_FOUND, f"method {request['method']!r} not found"))
    params = request.get("params", [])
    if not isinstance(params, list):
        return _error(rid, AdminRpcError(INVALID_PARAMS, "params must be a list"))
    try:
        result = await method(deps, params)
    except AdminRpcError as failure:
        return _error(rid, failure)
    return msgspec.json.encode({"jsonrpc": "2.0", "id": rid, "result": result})


def _error(rid: Any, failure: AdminRpcError) -> bytes:
    error: dict[str, Any] = {"code": failure.code, "message": failure.message}
    if failure.data is not None:
        error["data"] = failure.data
    return msgspec.json.encode({"jsonrpc": "2.0", "id": rid, "error": error})


async def _read_request(stream: trio.SocketStream) -> tuple[str, bytes] | None:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_HEADER:
            return None
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ", 1)[0]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
    if not 0 <= length <= MAX_BODY:
        return None
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        body += chunk
    return method, body[:length]


async def _respond(stream: trio.SocketStream, status: str, body: bytes) -> None:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    await stream.send_all(head.encode() + body)


async def run(deps: AdminDeps, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; ``task_status.started(port)``."""

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            with trio.move_on_after(CONNECTION_DEADLINE):
                try:
                    request = await _read_request(stream)
                    if request is None:
                        await _respond(stream, "400 Bad Request", _error(None, AdminRpcError(INVALID_REQUEST, "bad HTTP request")))
                        return
                    method, body = request
                    if method != "POST":
                        await _respond(stream, "405 Method Not Allowed", _error(None, AdminRpcError(INVALID_REQUEST, "POST JSON-RPC")))
                        return
                    await _respond(stream, "200 OK", await _dispatch(deps, body))
                except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
                    pass  # the client went away

    listeners = await trio.open_tcp_listeners(deps.port, host=deps.host)
    port = listeners[0].socket.getsockname()[1]
    log.info("admin JSON-RPC (devnet only) on http://%s:%d", deps.host, port)
    task_status.started(port)
    await trio.serve_listeners(handle, listeners)
