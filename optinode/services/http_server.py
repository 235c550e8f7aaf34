"""The nodes' HTTP/1.1 + WebSocket server: h11 and wsproto (python-hyper's protocol libraries) on trio
sockets, for the JSON-RPC ports (services/rpc.py, services/watch_rpc.py).

    routes = Routes(rpc=answer_body, metrics=expose, websocket=on_websocket)
    port = await nursery.start(serve, routes, "127.0.0.1", 8545)

Why not hypercorn (the server before): its trio worker spent ~340 µs of CPU on each request of an
empty echo app (a task, 7 cancel scopes and 3 socket sends per request), this ~95 µs (h11 parses and
frames; one send per response): 7 µs per order in a batch of 50, 34 in a batch of 10
(docs/benchmarks.md, "JSON-RPC server cost"). The protocol work stays in the well-kept libraries
(h11: request framing, header validation, keep-alive, pipelining; wsproto: the WebSocket handshake
and frames); this module is the loop around them, the limits, and one fast path in front of h11 for
the request every bot sends, a plain keep-alive POST (`plain_post`: what it takes is a subset of what
h11 takes, read the same way; ~1/5 of h11's instructions a request; docs/benchmarks.md, "The
JSON-RPC front, session 5"):

- ``POST`` (any path) is a JSON-RPC body for ``routes.rpc`` (at most `MAX_BODY`, else 413 and the
  connection is closed); ``GET /metrics`` is ``routes.metrics()``; a WebSocket upgrade goes to
  ``routes.websocket`` (403 when None); anything else is 405. Answers are ``application/json``.
- Keep-alive: the next request's head must have arrived `KEEP_ALIVE` seconds after the last answer
  (an idle connection, or one dripping its head a byte at a time, is closed), its body
  `BODY_TIMEOUT` seconds after its head; the head is at most `MAX_HEAD` bytes; a malformed request is
  answered 400 and the connection closed. At most `MAX_CONNECTIONS` connections are open at once
  (WebSockets included): one more is answered 503 and closed, so a connection flood costs a bounded
  amount of memory and never a task per socket beyond that.
- A WebSocket message is at most `MAX_BODY` bytes (else close 1009); pings are answered.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11
import msgspec
import trio
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionType
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, RejectConnection, Request, TextMessage
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError as WsProtocolError

from optinode.metrics import CONTENT_TYPE

__all__ = ["BODY_TIMEOUT", "KEEP_ALIVE", "MAX_BODY", "MAX_CONNECTIONS", "MAX_HEAD", "Routes", "WebSocket", "serve"]

log = logging.getLogger("optinode.services.http_server")

MAX_BODY = 1024 * 1024  # bytes of one HTTP request body or one WebSocket message
MAX_HEAD = 64 * 1024  # bytes of a request line and headers
KEEP_ALIVE = 30.0  # seconds from an answer (or the connect) until the next request's head must be in
BODY_TIMEOUT = 30.0  # seconds from a request's head until its body must be in
MAX_CONNECTIONS = 1024  # open at once
RECEIVE = 65536  # bytes read at a time
JSON = b"application/json"
PROMETHEUS = CONTENT_TYPE.encode()


def error_body(code: int, message: str) -> bytes:
    """A JSON-RPC error with a null id (the HTTP-level refusals: 405, 413, 400)."""
    return msgspec.json.encode({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}})


class WebSocket:
    """One accepted WebSocket connection: text/bytes messages in, text messages out."""

    def __init__(self, stream: trio.SocketStream, connection: WsConnection) -> None:
        self.stream, self.connection, self.lock = stream, connection, trio.Lock()
        self.closed = False
        self.broken = False  # a send was cancelled part way: no frame can follow on this socket

    async def _send(self, event: object) -> None:
        if self.broken:
            raise trio.ClosedResourceError("a send was cancelled part way")
        async with self.lock:  # (the reader answers pings while another task sends messages)
            try:
                await self.stream.send_all(self.connection.send(event))
            except trio.Cancelled:
                self.broken = True
                raise

    async def send_text(self, text: str) -> None:
        await self._send(TextMessage(data=text))

    async def close(self, code: int, reason: str = "") -> None:
        if not self.closed and not self.broken:
            self.closed = True
            try:
                await self._send(CloseConnection(code=code, reason=reason))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def receive(self) -> bytes | None:
        """The next whole message (text as UTF-8 bytes), or None once the peer closed."""
        parts: list[bytes] = []
        size = 0
        while True:
            for event in self.connection.events():
                if isinstance(event, Message):
                    part = event.data.encode() if isinstance(event, TextMessage) else bytes(event.data)
                    size += len(part)
                    if size > MAX_BODY:
                        await self.close(1009, f"a message is at most {MAX_BODY} bytes")
                        return None
                    parts.append(part)
                    if event.message_finished:
                        return b"".join(parts)
                elif isinstance(event, Ping):
                    await self._send(event.response())
                elif isinstance(event, CloseConnection):
                    if not self.closed:
                        self.closed = True
                        await self._send(event.response())
                    return None
            if self.closed:
                return None
            data = await self.stream.receive_some(RECEIVE)
            if not data:  # (the peer closed the socket without a close frame)
                self.closed = True
                return None
            try:
                self.connection.receive_data(data)
            except WsProtocolError:
                return None


@dataclass(frozen=True)
class Routes:
    rpc: Callable[[bytes], Awaitable[bytes | None]]  # a POST body -> its JSON-RPC answer (None: nothing to answer)
    metrics: Callable[[], bytes]  # GET /metrics (Prometheus text)
    websocket: Callable[[WebSocket], Awaitable[None]] | None = None  # None: upgrades are refused


def _response(connection: h11.Connection, status: int, body: bytes, content_type: bytes = JSON, close: bool = False) -> bytes:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    return (connection.send(h11.Response(status_code=status, headers=headers)) or b"") + (connection.send(h11.Data(data=body)) or b"") + (
        connection.send(h11.EndOfMessage()) or b"")


async def _next_event(stream: trio.SocketStream, connection: h11.Connection, deadline: float) -> object:
    while True:
        event = connection.next_event()
        if event is not h11.NEED_DATA:
            return event
        with trio.move_on_at(deadline) as late:
            data = await stream.receive_some(RECEIVE)
        if late.cancelled_caught:
            return h11.ConnectionClosed()  # (too slow, or idle: closed as if the peer had)
        connection.receive_data(data)


_BUSY_BODY = error_body(-32603, f"too many connections (at most {MAX_CONNECTIONS})")
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
         % len(_BUSY_BODY)) + _BUSY_BODY


def _is_upgrade(request: h11.Request) -> bool:
    return any(name == b"upgrade" and value.lower() == b"websocket" for name, value in request.headers)


async def _upgrade(stream: trio.SocketStream, connection: h11.Connection, request: h11.Request, routes: Routes) -> None:
    handshake = H11Handshake(ConnectionType.SERVER)
    try:
        handshake.initiate_upgrade_connection(request.headers, request.target)
        events = list(handshake.events())
    except WsProtocolError as refused:
        hint = refused.event_hint if isinstance(refused.event_hint, RejectConnection) else RejectConnection()
        await stream.send_all(handshake.send(RejectConnection(status_code=hint.status_code or 400, headers=hint.headers)))
        return
    if routes.websocket is None or not events or not isinstance(events[0], Request):
        await stream.send_all(handshake.send(RejectConnection(status_code=403)))
        return
    await stream.send_all(handshake.send(AcceptConnection()))
    ws = handshake.connection
    assert ws is not None  # (accepted)
    trailing, _ = connection.trailing_data
    if trailing:
        ws.receive_data(trailing)
    await routes.websocket(WebSocket(stream, ws))


# --- the plain POST: a fast path in front of h11 ---------------------------------------------------
# A bot's requests are all alike: `POST <path> HTTP/1.1`, a Host, a Content-Length, a few ordinary
# headers, keep-alive. h11 spends ~520k instructions on each such request/response cycle of a
# batch of 50 orders (its event objects, header validation, state machine); this ~110k. Anything
# else — another method, HTTP/1.0, chunked, Expect, Upgrade, a Connection header, a header or
# target with a byte outside visible ASCII, duplicates of Host or Content-Length, a body over
# MAX_BODY, a head over MAX_HEAD — is handed, with every byte not yet consumed, to h11, which
# serves the rest of that connection as before. So what the fast path accepts is a subset of what
# h11 accepts, read the same way (tests/api/test_http_server.py checks it against h11 itself).

_REQUEST_LINE = re.compile(rb"POST [!-~]+ HTTP/1\.1")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*((?:[!-~]+(?:[ \t]+[!-~]+)*)?)[ \t]*")  # name: value, OWS around
_DIGITS = re.compile(rb"[0-9]{1,8}")  # (MAX_BODY has 7 digits: a longer length is refused by h11's 413)
_DECLINE = frozenset((b"transfer-encoding", b"expect", b"upgrade", b"connection"))
_OK_HEAD = b"HTTP/1.1 200 \r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"  # (h11's bytes, exactly)


def plain_post(head: bytes) -> int | None:
    """The body length of a plain keep-alive POST with this head (the bytes before its blank
    line), or None: h11 takes it."""
    lines = head.split(b"\r\n")
    if not _REQUEST_LINE.fullmatch(lines[0]):
        return None
    length, hosts = None, 0
    for line in lines[1:]:
        match = _HEADER.fullmatch(line)
        if match is None:
            return None
        name = match[1].lower()
        if name == b"content-length":
            if length is not None or not _DIGITS.fullmatch(match[2]):
                return None
            length = int(match[2])
        elif name == b"host":
            hosts += 1
        elif name in _DECLINE:
            return None
    return length if length is not None and length <= MAX_BODY and hosts == 1 else None


async def _http(stream: trio.SocketStream, routes: Routes) -> None:
    """One connection: plain POSTs on the fast path while they come, then h11 (`_http_h11`)."""
    buffer = bytearray()
    deadline = trio.current_time() + KEEP_ALIVE
    searched = 0  # (the head's end is looked for in new bytes only: a head dripped a byte at a time is not rescanned)
    while True:
        end = buffer.find(b"\r\n\r\n", max(0, searched - 3), MAX_HEAD + 4)
        if end < 0:
            if len(buffer) > MAX_HEAD:
                break  # (h11 answers it: 400)
            searched = len(buffer)
            with trio.move_on_at(deadline) as late:
                data = await stream.receive_some(RECEIVE)
            if late.cancelled_caught or not data:
                return  # idle, too slow, or closed by the peer
            buffer += data
            continue
        searched = 0
        length = plain_post(bytes(buffer[:end]))
        if length is None:
            break
        start = end + 4
        body_deadline = trio.current_time() + BODY_TIMEOUT
        while len(buffer) < start + length:
            with trio.move_on_at(body_deadline) as late:
                data = await stream.receive_some(RECEIVE)
            if late.cancelled_caught or not data:
                return
            buffer += data
        body = bytes(buffer[start:start + length])
        del buffer[:start + length]
        answer = await routes.rpc(body)
        if answer is None:
            answer = b""
        await stream.send_all(_OK_HEAD % len(answer) + answer)
        deadline = trio.current_time() + KEEP_ALIVE
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    connection.receive_data(bytes(buffer))
    await _http_h11(stream, routes, connection, deadline)


async def _http_h11(stream: trio.SocketStream, routes: Routes, connection: h11.Connection, deadline: float) -> None:
    """Requests one after the other (keep-alive) on h11 until the connection closes or upgrades."""
    while True:
        try:
            request = await _next_event(stream, connection, deadline)
            if not isinstance(request, h11.Request):
                return  # (ConnectionClosed, or the peer half-closed between requests)
            if len(request.target) + sum(len(n) + len(v) for n, v in request.headers) > MAX_HEAD:
                raise h11.RemoteProtocolError("the request head is too long")  # (h11 bounds only an incomplete head)
            if _is_upgrade(request):
                await _upgrade(stream, connection, request, routes)
                return
            body, too_big, deadline = bytearray(), False, trio.current_time() + BODY_TIMEOUT
            if connection.they_are_waiting_for_100_continue:
                await stream.send_all(connection.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
            while True:
                event = await _next_event(stream, connection, deadline)
                if isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        too_big = True
                        break
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return
        except h11.RemoteProtocolError:
            if connection.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await stream.send_all(_response(connection, 400, error_body(-32600, "bad HTTP request"), close=True))
            return
        if too_big:
            await stream.send_all(_response(connection, 413, error_body(-32600, f"the body is over {MAX_BODY} bytes"), close=True))
            return
        if request.method == b"POST":
            answer = await routes.rpc(bytes(body))
            out = _response(connection, 200, answer if answer is not None else b"")
        elif request.method == b"GET" and request.target.split(b"?", 1)[0] == b"/metrics":
            out = _response(connection, 200, routes.metrics(), PROMETHEUS)
        else:
            out = _response(connection, 405, error_body(-32600, "POST a JSON-RPC request to / (or GET /metrics)"))
        await stream.send_all(out)
        if connection.our_state is h11.MUST_CLOSE or connection.their_state is h11.MUST_CLOSE:
            return
        try:
            connection.start_next_cycle()
        except h11.LocalProtocolError:  # (the peer's request was not read to its end)
            return
        deadline = trio.current_time() + KEEP_ALIVE


async def serve(routes: Routes, host: str, port: int, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; ``task_status.started(bound port)``."""

    open_connections = 0

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal open_connections
        try:
            async with stream:
                if open_connections >= MAX_CONNECTIONS:
                    await stream.send_all(_BUSY)  # (before reading a request: h11 answers only one it has read)
                    return
                open_connections += 1
                try:
                    await _http(stream, routes)
                finally:
                    open_connections -= 1
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass  # the client went away, or idled out
        except Exception:  # noqa: BLE001 - a bug in one connection: logged, the server stays up
            log.exception("HTTP connection failed")

    listeners = await trio.open_tcp_listeners(port, host=host)
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)
