"""The HTTP JSON price source (services/http_price.py) against a real HTTP server on 127.0.0.1 that
the test runs (trio sockets, HTTP/1.1 by hand) and that answers like a hostile or broken price API:
garbage JSON, a huge body, a server that never finishes, 500s, a price jump, a stale document.
Real clock (sockets and the autojump clock do not mix); timeouts of a fraction of a second.

Every case asserts the one property that matters: a price the source could not verify is never
signed (the source returns no sample), and a verified one is signed by each of the node's oracle
keys at the spec's units."""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable

import msgspec
import pytest
import trio

from optinode.config import ConfigError, HttpSourceSection, load_config, parse_config
from optinode.services import http_price, market_services
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import compute_typed_digest, hash_oracle_price
from optinode.spec.types import OraclePrice
from optinode.store.memory import open_memory
from optinode.testing.world import ETH, World, make_genesis, oracle_key, price_of

from tests.services.conftest import FakeL1
from tests.services.test_engine import Harness
from tests.services.test_market_services import REPO_CONFIG, logged

class PriceServer:
    """A tiny HTTP/1.1 server: each path is a scripted behaviour; every answer closes the connection.
    `hits[path]` counts requests (the retries show there)."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.routes: dict[str, Callable] = {}
        self.port = 0

    def json(self, path: str, document: object | Callable[[int], object], status: int | Callable[[int], int] = 200) -> str:
        async def answer(stream, n):
            body = json.dumps(document(n) if callable(document) else document).encode()
            await respond(stream, status(n) if callable(status) else status, body)
        self.routes[path] = answer
        return self.url(path)

    def raw(self, path: str, answer) -> str:
        self.routes[path] = answer
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def serve(self, nursery: trio.Nursery) -> None:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, self._handle, 0, host="127.0.0.1"))
        self.port = listeners[0].socket.getsockname()[1]

    async def _handle(self, stream) -> None:
        request = b""
        with trio.move_on_after(5):
            while b"\r\n\r\n" not in request and len(request) < 8192:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                request += chunk
        path = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
        self.hits[path] = self.hits.get(path, 0) + 1
        route = self.routes.get(path)
        try:
            if route is None:
                await respond(stream, 404, b"{}")
            else:
                await route(stream, self.hits[path])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client hung up (a body over its limit): expected
        finally:
            await stream.aclose()


async def respond(stream, status: int, body: bytes, *, headers: str = "Content-Type: application/json\r\n") -> None:
    head = f"HTTP/1.1 {status} X\r\n{headers}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    await stream.send_all(head.encode() + body)


POLICY = http_price.HttpPolicy(timeout=0.3, retries=2, backoff=0.05, max_staleness=0.5, max_body_bytes=4096)


def source_for(url: str, *, oracles: int = 3, time_path: str | None = None, **policy) -> http_price.HttpPriceSource:
    endpoint = http_price.HttpEndpoint(ETH, url, http_price.parse_path("data.price"), 9,
                                       None if time_path is None else http_price.parse_path(time_path))
    return http_price.HttpPriceSource({ETH: endpoint}, [(i, oracle_key(i)) for i in range(oracles)],
                                      msgspec.structs.replace(POLICY, **policy) if policy else POLICY)


async def collect(source, w: World) -> list:
    state = w.state
    return await source.collect(state, ETH, newer_than=state.markets[ETH].sample_time, now=w.l1_timestamp)


def price_doc(usd: object) -> dict:
    return {"data": {"price": usd}}


@pytest.fixture
async def server(nursery):
    s = PriceServer()
    await s.serve(nursery)
    return s


# --- a good answer -----------------------------------------------------------------------------------


@pytest.mark.trio
async def test_a_verified_price_is_signed_by_each_oracle_key_in_the_spec_units(server) -> None:
    w = World()
    source = source_for(server.json("/eth", {"data": {"price": "2950.5", "volume": 1}}))
    samples = await collect(source, w)
    assert [s.oracle_index for s in samples] == [0, 1, 2]
    assert {s.price for s in samples} == {price_of(ETH, "2950.5")} and all(s.timestamp == w.l1_timestamp for s in samples)
    for s in samples:
        digest = compute_typed_digest(w.state.config.domain_separator, hash_oracle_price(ETH, s))
        assert recover_signer(digest, s.signature) == oracle_key(s.oracle_index).address
    assert w.apply(OraclePrice(ETH, tuple(samples))).ok  # the spec takes the update as it is
    assert w.state.markets[ETH].price == price_of(ETH, "2950.5")
    await source.aclose()


@pytest.mark.trio
async def test_json_numbers_are_decimals_not_floats(server) -> None:
    # 0.1 + 0.2 style: a float parse would not give an exact price unit; 2950.123456789 USD per ETH
    # is 295.0123456789 PRICE_ONE units per 1e-9 ETH: rounded half-even to the unit
    w = World()
    server.raw("/n", lambda stream, n: respond(stream, 200, b'{"data": {"price": 2950.123456789}}'))
    samples = await collect(source_for(server.url("/n")), w)
    assert samples and samples[0].price == 295012346


# --- hostile answers: nothing is signed ----------------------------------------------------------------


HOSTILE = {
    "/garbage": (lambda stream, n: respond(stream, 200, b'{"data": {"price": 29'), "not_json"),
    "/html": (lambda stream, n: respond(stream, 200, b"<html>rate limited</html>"), "not_json"),
    "/missing": (lambda stream, n: respond(stream, 200, b'{"data": {"last": "2950"}}'), "no_price"),
    "/word": (lambda stream, n: respond(stream, 200, b'{"data": {"price": "lots"}}'), "garbage_price"),
    "/bool": (lambda stream, n: respond(stream, 200, b'{"data": {"price": true}}'), "garbage_price"),
    "/nan": (lambda stream, n: respond(stream, 200, b'{"data": {"price": NaN}}'), "not_json"),
    "/infinity": (lambda stream, n: respond(stream, 200, b'{"data": {"price": "Infinity"}}'), "garbage_price"),
    "/zero": (lambda stream, n: respond(stream, 200, b'{"data": {"price": "0"}}'), "not_positive"),
    "/negative": (lambda stream, n: respond(stream, 200, b'{"data": {"price": -2950}}'), "not_positive"),
    "/tiny": (lambda stream, n: respond(stream, 200, b'{"data": {"price": "0.0000000001"}}'), "out_of_range"),
    "/exponent": (lambda stream, n: respond(stream, 200, b'{"data": {"price": 1e999999}}'), "garbage_price"),
    "/nested": (lambda stream, n: respond(stream, 200, b"[" * 200 + b"]" * 200), "no_price"),  # nesting: parsed, no price in it
    # a nesting bomb: refused either way, by the decoder's recursion limit (Python 3.12's C limit) or
    # as a document without a price (3.11 under pytest, whose limit is higher)
    "/nested-bomb": (lambda stream, n: respond(stream, 200, b"[" * 2000 + b"]" * 2000), ("not_json", "no_price")),
    "/big": (lambda stream, n: respond(stream, 200, b"[" + b"1," * 3000 + b"1]"), "too_large"),  # over 4 KiB
    "/404": (lambda stream, n: respond(stream, 404, b"{}"), "http_404"),
}


@pytest.mark.trio
@pytest.mark.parametrize("path", sorted(HOSTILE))
async def test_a_garbage_answer_is_never_signed(server, path) -> None:
    answer, reason = HOSTILE[path]
    source = source_for(server.raw(path, answer))
    assert await collect(source, World()) == []
    assert source.refused in ([{r: 1} for r in reason] if isinstance(reason, tuple) else [{reason: 1}])
    assert server.hits[path] == 1  # a bad document or a 4xx is not retried: it would say the same
    await source.aclose()


@pytest.mark.trio
async def test_a_huge_body_is_cut_at_the_limit_not_buffered(server) -> None:
    sent = []

    async def endless(stream, n):  # no Content-Length: a body that never ends, 64 KiB at a time
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        for _ in range(10_000):  # 640 MB if nobody hung up
            await stream.send_all(b" " * 65_536)
            sent.append(1)

    declared = server.raw("/declared", lambda stream, n: respond(stream, 200, b"{}", headers="Content-Length: 99999999\r\n"))
    source = source_for(server.raw("/endless", endless))
    started = time.monotonic()
    assert await collect(source, World()) == []
    assert source.refused == {"too_large": 1} and time.monotonic() - started < 2
    assert len(sent) < 100  # the client hung up after its 4 KiB, the server did not get to send 640 MB
    assert await collect(source_for(declared), World()) == []  # refused on the header alone


@pytest.mark.trio
async def test_a_slow_server_costs_a_timeout_per_attempt_then_retries_then_gives_up(server) -> None:
    async def drip(stream, n):  # headers at once, then one byte of the body every 0.1 s, forever
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
        while True:
            await stream.send_all(b" ")
            await trio.sleep(0.1)

    source = source_for(server.raw("/drip", drip))
    started = time.monotonic()
    assert await collect(source, World()) == []
    elapsed = time.monotonic() - started
    assert server.hits["/drip"] == 3 and source.refused == {"timeout": 3}  # 1 + 2 retries, each cut at 0.3 s
    assert 0.9 <= elapsed < 0.9 + 0.15 + 1.0  # three timeouts and the 0.05 + 0.1 backoffs (a per-read timeout never fires here)


@pytest.mark.trio
async def test_500s_are_retried_with_backoff_and_a_later_good_answer_is_used(server) -> None:
    url = server.json("/flaky", price_doc("2990"), status=lambda n: 500 if n <= 2 else 200)
    source = source_for(url)
    samples = await collect(source, World())
    assert server.hits["/flaky"] == 3 and source.refused == {"http_500": 2}
    assert {s.price for s in samples} == {price_of(ETH, "2990")}
    url = server.json("/down", {}, status=503)
    down = source_for(url)
    assert await collect(down, World()) == [] and server.hits["/down"] == 3 and down.refused == {"http_503": 3}


@pytest.mark.trio
async def test_a_connection_refused_is_a_transport_failure_retried(server) -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = source_for(f"http://127.0.0.1:{port}/x")
    assert await collect(source, World()) == [] and source.refused == {"transport": 3}


@pytest.mark.trio
async def test_a_price_jump_beyond_the_spec_move_bound_is_refused_and_a_real_move_gets_through_later(server) -> None:
    # 1% per second at most (the spec's max_price_move); the last price is 3000 at the genesis time
    w = World(make_genesis(max_price_move=10_000))
    last = w.state.markets[ETH]
    usd = {"price": "6000"}  # a hijacked or broken API doubling the price
    source = source_for(server.json("/jump", lambda n: price_doc(usd["price"])))
    now = last.price_time + 10  # 10 s later: at most 10%
    assert await source.collect(w.state, ETH, newer_than=last.sample_time, now=now) == []
    assert source.refused == {"move_too_fast": 1}
    usd["price"] = "3290"  # +9.7% in 10 s: within the bound
    samples = await source.collect(w.state, ETH, newer_than=last.sample_time, now=now)
    assert {s.price for s in samples} == {price_of(ETH, "3290")}
    usd["price"] = "6000"  # the same doubling 100 s after the last price is within 100%: a real move, signed
    assert await source.collect(w.state, ETH, newer_than=last.sample_time, now=last.price_time + 100)


@pytest.mark.trio
async def test_a_stale_document_is_refused_and_the_source_alerts_once_then_recovers(server, caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.http_price")
    observed = {"t": time.time() - 3600}  # an API stuck an hour ago
    url = server.json("/stale", lambda n: {"data": {"price": "3000"}, "ts": observed["t"] * 1000})
    endpoint = http_price.HttpEndpoint(ETH, url, ("data", "price"), 9, ("ts",), 1000)
    source = http_price.HttpPriceSource({ETH: endpoint}, [(0, oracle_key(0))], POLICY)
    w = World()
    for _ in range(4):  # 0.8 s without a verified price: over max_staleness (0.5 s)
        assert await collect(source, w) == []
        await trio.sleep(0.2)
    assert source.refused == {"stale": 4}
    stale = [r for r in caplog.records if getattr(r, "event", None) == "oracle_source_stale"]
    assert len(stale) == 1 and stale[0].fields["market"] == ETH and stale[0].fields["reason"] == "stale"
    assert stale[0].fields["source"] == f"http://127.0.0.1:{server.port}"  # scheme and host only: a path may hold an API key
    observed["t"] = time.time()
    assert len(await collect(source, w)) == 1
    assert [r.fields["market"] for r in caplog.records if getattr(r, "event", None) == "oracle_source_back"] == [ETH]


@pytest.mark.trio
async def test_only_the_markets_own_oracles_sign(server) -> None:
    markets = [msgspec.structs.replace(m, oracles=(1, 2), quorum=2) for m in make_genesis(oracle_count=3).markets]
    w = World(make_genesis(oracle_count=3, markets=markets))
    samples = await collect(source_for(server.json("/eth", price_doc("3000"))), w)
    assert [s.oracle_index for s in samples] == [1, 2]  # oracle 0's key is held, but it is not one of ETH's


# --- the whole chain: config -> market services -> engine ---------------------------------------------


def http_services(url: str, **http):
    """The devnet config's [market_services], enabled, with the HTTP source for ETH at `url`."""
    section = load_config(REPO_CONFIG).market_services
    source = msgspec.convert({"timeout": 0.3, "retries": 1, "backoff": 0.05, "max_staleness": 1.0,
                              "markets": [{"market": ETH, "url": url, "price_path": "data.price", "base_decimals": 9}], **http},
                             type=HttpSourceSection)
    return msgspec.structs.replace(
        section, enabled=True, funding=None, liquidator=None,
        oracle=msgspec.structs.replace(section.oracle, source="http", http=source, interval=0.2, submit_timeout=math.inf),
    )


@pytest.mark.trio
async def test_the_http_source_feeds_the_engine_through_the_market_services(server, nursery, caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.http_price")
    store = open_memory()
    world = World()
    h = await Harness(store, nursery).start()
    l1 = FakeL1(store, world)
    usd = {"price": "2987.6"}
    url = server.json("/eth", lambda n: price_doc(usd["price"]))
    keys = market_services.MarketKeys(tuple((i, oracle_key(i)) for i in range(3)))
    assert await market_services.start(nursery, h.engine, h.submitter, http_services(url), keys) == ["oracle_feed"]
    await h.send(l1.head())
    with trio.fail_after(10):
        while h.engine.state.markets[ETH].price != price_of(ETH, "2987.6"):
            await trio.sleep(0.05)
    await h.settle()
    updates = [u for u in logged(h.engine, OraclePrice) if u.market == ETH]
    assert updates and [s.oracle_index for s in updates[0].samples] == [0, 1, 2]
    assert all(u.market == ETH for u in logged(h.engine, OraclePrice))  # BTC has no HTTP endpoint: no update
    usd["price"] = "{broken"  # the API breaks: nothing more is signed, the alert fires
    await h.send(l1.head())
    with trio.fail_after(10):
        while not any(getattr(r, "event", None) == "oracle_source_stale" for r in caplog.records):
            await trio.sleep(0.05)
    await h.settle()
    assert len([u for u in logged(h.engine, OraclePrice) if u.market == ETH]) == len(updates)
    assert h.engine.state.markets[ETH].price == price_of(ETH, "2987.6")


# --- config --------------------------------------------------------------------------------------------


def http_table(*, url: str = "https://prices.example.com/v1/eth-usd", decimals: int = 9, staleness: float = 30.0) -> str:
    """A [market_services.oracle.http] table for ETH (also the anvil e2e's)."""
    return f"""
[market_services.oracle.http]
timeout = 0.5
retries = 2
backoff = 0.1
max_staleness = {staleness}
[[market_services.oracle.http.markets]]
market = 0
url = "{url}"
price_path = "data.price"
base_decimals = {decimals}
"""


def config_with(source_line: str, table: str) -> str:
    text = open(REPO_CONFIG).read()
    assert 'source = "walk"' in text
    return text.replace('source = "walk"', source_line, 1) + table


def test_the_http_source_config_is_checked_against_the_genesis_and_the_collect_timeout() -> None:
    config = parse_config(config_with('source = "http"', http_table()))
    assert config.market_services.oracle.source == "http" and config.market_services.oracle.http.markets[0].price_path == "data.price"
    source = market_services.make_source(msgspec.structs.replace(config.market_services, enabled=True),
                                         World().state, market_services.MarketKeys(((0, oracle_key(0)),)))
    assert isinstance(source, http_price.HttpPriceSource) and source.endpoints[ETH].price_path == ("data", "price")
    with pytest.raises(ConfigError, match=r"http.markets\[0\].base_decimals: 8 differs from genesis.markets\[0\].base_decimals 9"):
        parse_config(config_with('source = "http"', http_table(decimals=8)))
    with pytest.raises(ConfigError, match=r"must be below collect_timeout 2 s"):  # 3 × 0.5 + 0.1 + 0.2 = 1.8; 3 × 0.7 > 2
        parse_config(config_with('source = "http"', http_table().replace("timeout = 0.5", "timeout = 0.7")))
    with pytest.raises(ConfigError, match=r'needs a \[market_services.oracle.http\] table'):
        parse_config(config_with('source = "http"', ""))
    with pytest.raises(ConfigError, match='needs source = "http"'):
        parse_config(config_with("", http_table()))
    with pytest.raises(ConfigError, match="url"):
        parse_config(config_with('source = "http"', http_table().replace("https://", "ftp://")))
    for url, problem in (("http://[::1/x", "not a valid URL"), ("http://127.0.0.1:99999/x", "not a valid URL"), ("http://:80/x", "names no host")):
        with pytest.raises(ConfigError, match=rf"http.markets\[0\].url: {problem}"):
            parse_config(config_with('source = "http"', http_table(url=url)))


@pytest.mark.trio
async def test_an_endpoint_url_httpx_cannot_parse_is_refused_not_a_crash() -> None:
    source = source_for("http://[::1/x")  # built in code, past the config check
    assert await collect(source, World()) == [] and source.refused == {"bad_url": 1}
