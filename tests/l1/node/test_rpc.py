"""The JSON-RPC client: answers vs outages, batches, and an endpoint that goes away and comes back."""

from __future__ import annotations

import logging
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trio

from optinode.l1.anvil import free_port
from optinode.l1.rpc import RpcClient, RpcError, RpcUnavailable
from optinode.metrics import NodeMetrics


class Proxy:
    """An HTTP proxy to anvil on a fixed port, started and stopped at will; ``fail_next`` answers
    that many requests with HTTP 503 first, ``bomb_next`` that many with a JSON nesting bomb."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fail_next = 0
        self.bomb_next = 0
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if proxy.fail_next > 0:
                    proxy.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if proxy.bomb_next > 0:
                    proxy.bomb_next -= 1
                    bomb = b"[" * 300_000
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(bomb)))
                    self.end_headers()
                    self.wfile.write(bomb)
                    return
                request = urllib.request.Request(proxy.target, body, {"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    data = answer.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def proxy(anvil):
    p = Proxy(anvil.url)
    yield p
    p.stop()


@pytest.mark.trio
async def test_typed_calls_and_batch(rpc, anvil, w3) -> None:
    assert await rpc.chain_id() == anvil.chain_id
    head = await rpc.block_number()
    assert head == w3.eth.block_number
    block = await rpc.get_block(head)
    assert block.hash == bytes(w3.eth.get_block(head)["hash"])
    blocks = await rpc.get_blocks([0, head, head + 1000])
    assert blocks[0].number == 0 and blocks[1] == block and blocks[2] is None


@pytest.mark.trio
async def test_an_error_answer_is_raised_not_retried(anvil) -> None:
    rpc = RpcClient(anvil.url, retry_for=None)  # would retry forever if it treated this as an outage
    with trio.fail_after(5):
        with pytest.raises(RpcError) as info:
            await rpc.call("eth_noSuchMethod")
    assert info.value.code == -32601


@pytest.mark.trio
async def test_endpoint_away_and_back_is_survived_with_one_log_line_each(proxy, caplog) -> None:
    rpc = RpcClient(proxy.url, retry_for=None, backoff=(0.05, 0.2))
    metrics = NodeMetrics()
    rpc.on_state = metrics.on_l1_state
    caplog.set_level(logging.INFO, logger="optinode.l1.rpc")
    result = []

    async def ask() -> None:
        result.append(await rpc.block_number())

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await trio.sleep(1.0)  # nothing listens: the client keeps retrying
            assert result == []
            assert b"optinode_l1_up 0.0" in metrics.expose() and b"optinode_l1_outages_total 1.0" in metrics.expose()
            proxy.start()
    assert result and result[0] >= 0
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "optinode.l1.rpc"]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO], messages
    assert "alert=l1_lost" in messages[0][1] and "retrying" in messages[0][1]
    assert "alert=l1_back" in messages[1][1] and "down_s=" in messages[1][1]
    assert b"optinode_l1_up 1.0" in metrics.expose() and b"optinode_l1_outages_total 1.0" in metrics.expose()


@pytest.mark.trio
@pytest.mark.parametrize("answer", ["fail_next", "bomb_next"])
async def test_http_503_and_a_nesting_bomb_are_temporary(proxy, answer) -> None:
    # bomb_next: a hostile endpoint's 300,000-deep JSON. With the recursion limit py_ecc sets on
    # import, the decoder overflowed the C stack and killed the node on Python 3.11 (optinode/__init__.py)
    proxy.start()
    setattr(proxy, answer, 3)
    rpc = RpcClient(proxy.url, retry_for=10, backoff=(0.01, 0.05))
    with trio.fail_after(10):
        assert await rpc.block_number() >= 0
    assert getattr(proxy, answer) == 0


@pytest.mark.trio
async def test_the_retry_budget_ends_in_unavailable() -> None:
    rpc = RpcClient(f"http://127.0.0.1:{free_port()}", retry_for=0.5, backoff=(0.05, 0.1))
    with trio.fail_after(10):
        with pytest.raises(RpcUnavailable, match="unreachable for 0.5 s"):
            await rpc.block_number()


@pytest.mark.trio
async def test_cancellation_does_not_wait_for_a_dead_endpoint() -> None:
    rpc = RpcClient(f"http://127.0.0.1:{free_port()}", retry_for=None)
    with trio.move_on_after(0.3) as scope:
        await rpc.block_number()
    assert scope.cancelled_caught
