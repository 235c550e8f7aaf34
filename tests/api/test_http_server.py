"""The HTTP/1.1 + WebSocket server (services/http_server.py) over real sockets: keep-alive and
pipelining, its limits (413, 400, 405, idle close), Expect: 100-continue, chunked bodies, and the
WebSocket side (messages, pings, the message limit, refused upgrades)."""

from __future__ import annotations

import socket
import threading
import time

import h11
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from optinode.services import http_server
from optinode.services.http_server import MAX_BODY, Routes, WebSocket, serve


class Server:
    """An echo server (the JSON-RPC answer is the body, reversed) on a trio loop of its own thread."""

    def __init__(self, websocket: bool = True) -> None:
        self.ready, self.bodies = threading.Event(), []
        self.websocket = websocket
        self.thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self.thread.start()
        assert self.ready.wait(30)

    async def _main(self) -> None:
        async def rpc(body: bytes) -> bytes | None:
            self.bodies.append(body)
            return None if body == b"notify" else body[::-1]

        async def on_websocket(ws: WebSocket) -> None:
            while (message := await ws.receive()) is not None:
                await ws.send_text(message[::-1].decode())

        routes = Routes(rpc=rpc, metrics=lambda: b"metric 1\n", websocket=on_websocket if self.websocket else None)
        async with trio.open_nursery() as nursery:
            self.scope, self.token = nursery.cancel_scope, trio.lowlevel.current_trio_token()
            self.port = await nursery.start(serve, routes, "127.0.0.1", 0)
            self.ready.set()

    def raw(self, data: bytes, *, read_until_close: bool = True) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(data)
            if not read_until_close:
                return s.recv(65536)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out

    def stop(self) -> None:
        trio.from_thread.run_sync(self.scope.cancel, trio_token=self.token)
        self.thread.join(10)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


def post(body: bytes, *, close: bool = False) -> bytes:
    extra = b"connection: close\r\n" if close else b""
    return b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n" + extra + b"content-length: %d\r\n\r\n" % len(body) + body


def test_keep_alive_and_pipelined_requests_are_answered_in_order(server) -> None:
    out = server.raw(post(b"abc") + post(b"notify") + post(b"xyz", close=True))
    assert out.count(b"HTTP/1.1 200") == 3
    assert out.index(b"cba") < out.index(b"zyx") and b"content-length: 0\r\n" in out  # (a notification: an empty answer)
    assert server.bodies == [b"abc", b"notify", b"xyz"]


def test_chunked_bodies_and_expect_100_continue(server) -> None:
    chunked = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert server.raw(chunked).endswith(b"edcba")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\nconnection: close\r\n\r\n")
        assert s.recv(1024).startswith(b"HTTP/1.1 100 ")  # (curl waits for this before a body over 1 KiB)
        s.sendall(b"ok")
        assert s.recv(1024).endswith(b"ko")


def test_limits_refuse_and_close(server) -> None:
    big = server.raw(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (MAX_BODY + 1) + b"x" * (MAX_BODY + 1))
    assert big.startswith(b"HTTP/1.1 413 ") and b"connection: close" in big and b"-32600" in big
    assert server.raw(b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert server.raw(b"POST / HTTP/1.1\r\nhost: x\r\nx: " + b"y" * (http_server.MAX_HEAD + 10) + b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert server.raw(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    metrics = server.raw(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    assert metrics.startswith(b"HTTP/1.1 200 ") and b"text/plain; version=0.0.4" in metrics and metrics.endswith(b"metric 1\n")
    assert server.bodies == []  # nothing over a limit reached the handler


def test_an_idle_connection_is_closed(server, monkeypatch) -> None:
    monkeypatch.setattr(http_server, "KEEP_ALIVE", 0.2)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(post(b"a"))
        assert s.recv(1024).endswith(b"a")
        assert s.recv(1024) == b""  # closed by the server after 0.2 s of nothing


def test_websocket_messages_pings_and_the_message_limit(server) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/", max_size=4 * MAX_BODY) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "olleh"
        ws.ping().wait(10)  # answered by the server
        ws.send(b"bytes")
        assert ws.recv(timeout=10) == "setyb"
        ws.send("x" * (MAX_BODY + 1))
        with pytest.raises(Exception) as closed:
            ws.recv(timeout=10)
        assert "1009" in str(closed.value)


def test_an_upgrade_is_refused_where_no_websocket_is_served() -> None:
    s = Server(websocket=False)
    try:
        with pytest.raises(Exception) as refused:
            connect(f"ws://127.0.0.1:{s.port}/", open_timeout=10)
        assert "403" in str(refused.value)
        assert s.raw(post(b"still", close=True)).endswith(b"llits")  # and HTTP is served
    finally:
        s.stop()


def test_a_head_dripped_byte_by_byte_is_cut_off(server, monkeypatch) -> None:
    monkeypatch.setattr(http_server, "KEEP_ALIVE", 0.5)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        try:
            for byte in b"POST / HTTP/1.1\r\nhost: x\r\nx-slow: " + b"y" * 30:  # ~3 s, a byte every 50 ms: never idle 0.5 s
                s.send(bytes([byte]))
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            return  # cut off while dripping
        s.settimeout(2)
        assert s.recv(1024) == b""  # closed by the server (a connection still open times out here)


def test_a_connection_flood_is_bounded(server, monkeypatch) -> None:
    monkeypatch.setattr(http_server, "MAX_CONNECTIONS", 2)
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
    try:
        for s in held:  # (each is being served: a request answered)
            s.sendall(post(b"k"))
            assert s.recv(1024).endswith(b"k")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:  # (answered at once, before any request)
            assert extra.recv(1024).startswith(b"HTTP/1.1 503 ") and extra.recv(1024) == b""
        assert server.bodies == [b"k", b"k"]
    finally:
        for s in held:
            s.close()


@pytest.mark.trio
async def test_a_websocket_consumer_that_stops_reading_is_disconnected() -> None:
    """A subscriber whose socket takes nothing more (its send blocks) and whose outbox overflows is
    dropped: its connection ends and its subscriptions leave the hub, whatever it sends or not."""
    from types import SimpleNamespace

    from optinode.services import rpc

    class StuckSocket:  # the peer stopped reading: its TCP window is full, a send never returns
        requests = [b'{"jsonrpc":"2.0","id":1,"method":"optinode_subscribe","params":["fills"]}']

        async def send_text(self, text: str) -> None:
            await trio.sleep_forever()

        async def close(self, code: int, reason: str = "") -> None:
            await trio.sleep_forever()

        async def receive(self) -> bytes | None:
            if self.requests:
                return self.requests.pop()
            await trio.sleep_forever()

    deps = SimpleNamespace(hub=rpc.Hub())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rpc._websocket, deps, StuckSocket())
            while not deps.hub.topics:
                await trio.sleep(0.01)
            for n in range(rpc.OUTBOX + 10):
                deps.hub.publish("fills", None, {"n": n})
            while deps.hub.topics:  # (before the fix: the connection lived on, its pump stuck in a send)
                await trio.sleep(0.01)


# --- the plain-POST fast path against h11 --------------------------------------------------------------

_LINES = [b"POST / HTTP/1.1", b"POST /rpc?x=1 HTTP/1.1", b"post / HTTP/1.1", b"POST / HTTP/1.0", b"GET / HTTP/1.1", b"POST  / HTTP/1.1",
          b"POST / HTTP/1.1 ", b"POST /\xff HTTP/1.1", b"POST / http/1.1", b"POST /a\tb HTTP/1.1"]
_NAMES = [b"Host", b"host", b"HOST", b"Content-Length", b"content-length", b"Content-Type", b"Transfer-Encoding", b"Connection", b"Expect",
          b"Upgrade", b"X-A", b"x a", b"", b" host", b"Host ", b"x\xff", b"a:b"]
_VALUES = [b"x", b"", b" x ", b"\tx\t", b"5", b"05", b" 5", b"5 ", b"-1", b"1e3", b"99999999", b"chunked", b"close", b"keep-alive",
           b"100-continue", b"websocket", b"a b", b"a\x00b", b"\xff", b"a\rb", b"a\nb", b"x\r\n y"]


_HEADERS = st.one_of(  # (mostly well-formed: a head with one bad line is declined whatever the rest is)
    st.tuples(st.sampled_from(_NAMES[:10]), st.sampled_from(_VALUES[:16])),
    st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)),
)


def check_against_h11(head: bytes, tail: bytes) -> int | None:
    """`plain_post` either declines a head (h11 then serves it) or h11, given the same bytes,
    reads a keep-alive HTTP/1.1 POST whose body is exactly the `plain_post` length's first bytes."""
    length = http_server.plain_post(head)
    if length is None:
        return None
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=http_server.MAX_HEAD)
    pipelined = b"POST" if len(tail) >= length else b""  # (then the start of a next request, once the body is whole)
    connection.receive_data(head + b"\r\n\r\n" + tail + pipelined)
    request = connection.next_event()
    assert isinstance(request, h11.Request) and request.method == b"POST" and request.http_version == b"1.1"
    body = b""
    while isinstance(event := connection.next_event(), h11.Data):
        body += event.data
    if len(tail) < length:  # (the fast path waits for the rest of the body too)
        assert event is h11.NEED_DATA
        return length
    assert isinstance(event, h11.EndOfMessage) and body == tail[:length]
    assert connection.their_state is h11.DONE  # keep-alive (not MUST_CLOSE)
    return length


def _head(line: bytes, *headers: bytes) -> bytes:
    return b"\r\n".join([line, *headers])


@pytest.mark.parametrize(("head", "taken"), [
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 3"), True),
    (_head(b"POST /a?b=1 HTTP/1.1", b"host:x", b"content-type: application/json", b"content-length:\t3 ", b"X-A: a b"), True),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Connection: close", b"Content-Length: 3"), False),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Connection: keep-alive", b"Content-Length: 3"), False),
    (_head(b"POST / HTTP/1.0", b"Host: x", b"Content-Length: 3"), False),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Host: y", b"Content-Length: 3"), False),
    (_head(b"POST / HTTP/1.1", b"Content-Length: 3"), False),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 3", b"Content-Length: 3"), False),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 3", b"Transfer-Encoding: chunked"), False),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Expect: 100-continue", b"Content-Length: 3"), False),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: 3", b" folded"), False),
    (_head(b"POST / HTTP/1.1", b"Host : x", b"Content-Length: 3"), False),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: +3"), False),
    (_head(b"POST / HTTP/1.1", b"Host: x", b"Content-Length: %d" % (MAX_BODY + 1)), False),
    (_head(b"POST / HTTP/1.1", b"Host: x\xff", b"Content-Length: 3"), False),
    (_head(b"POST /\xff HTTP/1.1", b"Host: x", b"Content-Length: 3"), False),
    (_head(b"GET / HTTP/1.1", b"Host: x", b"Content-Length: 3"), False),
])
def test_the_fast_path_takes_plain_posts_and_leaves_the_rest_to_h11(head: bytes, taken: bool) -> None:
    assert (check_against_h11(head, b"abc") is not None) == taken


_HEADERS = st.one_of(  # (mostly well-formed: a head with one bad line is declined whatever the rest is)
    st.tuples(st.sampled_from(_NAMES[:10]), st.sampled_from(_VALUES[:16])),
    st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)),
)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(_LINES[:4]) | st.sampled_from(_LINES), st.lists(_HEADERS, max_size=5), st.binary(max_size=12), st.booleans())
def test_the_fast_path_takes_only_what_h11_reads_the_same(line, headers, tail, with_host_and_length) -> None:
    if with_host_and_length:
        headers = [(b"Host", b"x"), *headers, (b"Content-Length", b"%d" % len(tail))]
    check_against_h11(b"\r\n".join([line, *(name + b":" + value for name, value in headers)]), tail)


def test_a_plain_post_is_answered_with_the_bytes_h11_writes(server) -> None:
    out = server.raw(post(b"abc", close=False) + b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(post(b"abc"))
    connection.next_event(), connection.next_event(), connection.next_event()
    expected = http_server._response(connection, 200, b"cba")
    assert out.startswith(expected) and out[len(expected):].startswith(b"HTTP/1.1 405 ")  # (then h11 serves the rest)
