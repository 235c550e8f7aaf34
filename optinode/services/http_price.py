"""An HTTP JSON price source for oracle operators: fetch a price, verify it, and only then sign it.

    source = HttpPriceSource(endpoints, signers, HttpPolicy(timeout=1.0, retries=2, ...))
    await nursery.start(oracle_feed.run, OracleDeps(view, submitter, source, ...))   # closes it on exit

It is a `oracle_feed.PriceSource` (docs/market-services.md, "The HTTP price source"). For each
update of a market it GETs the market's configured URL, reads one decimal number out of the JSON
document at a dotted path, converts it into the spec's units and signs it with each oracle key this
node holds for the market — **only after every check below passed**; a price it could not verify
is never signed, and the update then simply lacks this node's samples.

**The format.** The body is a JSON document; `price_path` names the value as dotted keys and list
indices (``"data.price"``, ``"result.0.last"``; ``""`` is the whole document). The value is a JSON
string or number holding a plain decimal in the quote currency (the collateral, 6 decimals) per whole
asset, as exchange ticker APIs publish it (``"3012.45"``); it is converted with the market's
`base_decimals` (``price = value × 10**6 × PRICE_ONE / 10**base_decimals``, rounded to the nearest
unit). Optionally `time_path` names the time the price was observed, unix seconds (or milliseconds
with ``time_unit = "ms"``). Numbers are parsed as decimals, never through a float.

**Checks, in order** (each failure has a short reason, counted in `refused` and logged):
1. the request finishes within `timeout` — the whole attempt, so a server that drips its body byte
   by byte is cut off too; transport errors, timeouts, 5xx and 429 are retried up to `retries`
   times, `backoff` seconds apart, doubling (the configured worst case must fit in the feed's
   `collect_timeout`; the config check enforces it); other statuses are not retried;
2. status 200 and at most `max_body_bytes` of (decoded) body: a huge or decompression-bomb body is
   dropped once the limit is reached, never buffered;
3. valid JSON, the path exists, the value is a finite decimal (no bool, NaN, Infinity or hex);
4. positive, and in the spec's price range once converted (>= 1 unit, <= MAX_PRICE);
5. when the document carries a time: observed no more than `max_staleness` seconds before (or after)
   this node's wall clock;
6. the move from the market's last on-chain price is within the spec's `max_price_move` per second
   (`spec.transition.is_price_move_allowed`, the spec's own rule 10): a wild jump — a broken or
   hijacked API — is refused rather than clamped, since a clamped price is one nobody observed. The
   bound grows with the time since the last price, so a real crash gets through, late.

**Staleness alert.** When no verified price has been had for a market for `max_staleness` seconds the
source raises ``alert=oracle_source_stale`` (once per episode; fields: market, source — scheme and
host only, a URL may carry an API key —, reason, seconds since the last verified price) and
``oracle_source_back`` when one arrives again. Meanwhile the market's price on chain ages: the spec
refuses trades, liquidations and withdrawals reading a price older than `price_validity`.

**Independence.** One URL per market, signed by every oracle key this node holds for that market
(`oracles` limits it). Each oracle operator should run its own node with its own key and its own
data provider; an operator holding several oracle keys behind one URL is one point of failure, which
the genesis `oracle_faults` must count as one faulty oracle per key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from urllib.parse import urlsplit

import httpx
import trio

from optinode.errors import InvalidInput
from optinode.logs import alert
from optinode.services.oracle_feed import is_market_oracle
from optinode.spec.constants import MAX_PRICE, PRICE_ONE
from optinode.spec.state import State
from optinode.spec.transition import is_price_move_allowed
from optinode.spec.types import PriceSample
from optinode.wallet import Key, sign_price

log = logging.getLogger("optinode.services.http_price")
# httpx logs every request's full URL at INFO: once a second per market, and an API key in the query
# would land in the node's logs. Our own lines name the source by scheme and host only.
logging.getLogger("httpx").setLevel(logging.WARNING)

COLLATERAL_DECIMALS = 6  # the collateral stablecoin's decimals (spec/constants.py: 1e-6 USD units)
MAX_DECIMAL_CHARS = 64  # a price longer than this is garbage, not precision
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class SourceError(InvalidInput):
    """A price API's answer that could not be had or verified (hostile input: nothing is signed);
    `reason` is a short name for counters and logs."""

    def __init__(self, reason: str, detail: str = "", *, retry: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retry = retry


@dataclass(frozen=True)
class HttpEndpoint:
    market: int
    url: str
    price_path: tuple[str | int, ...]
    base_decimals: int
    time_path: tuple[str | int, ...] | None = None
    time_scale: int = 1  # 1: seconds, 1000: milliseconds
    oracles: frozenset[int] | None = None  # None: every signer of the market

    @property
    def where(self) -> str:
        """scheme://host[:port] only: the path or query may carry an API key."""
        try:
            parts = urlsplit(self.url)
        except ValueError:
            return "<unparsable url>"
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


@dataclass(frozen=True)
class HttpPolicy:
    timeout: float = 1.0  # one attempt, whole (connect + headers + body)
    retries: int = 2  # after the first attempt
    backoff: float = 0.1  # before the first retry, doubling
    max_staleness: float = 30.0  # seconds
    max_body_bytes: int = 65_536


def parse_path(text: str) -> tuple[str | int, ...]:
    """``"data.0.price"`` -> ("data", 0, "price"); ``""`` -> () (the whole document)."""
    return tuple(int(part) if part.isdigit() else part for part in text.split(".")) if text else ()


def get_at(document: object, path: tuple[str | int, ...], what: str) -> object:
    value = document
    for part in path:
        if isinstance(part, int) and isinstance(value, list) and part < len(value):
            value = value[part]
        elif isinstance(value, dict) and str(part) in value:  # a numeric segment may also be an object key
            value = value[str(part)]
        else:
            raise SourceError(f"no_{what}", f"nothing at {'.'.join(map(str, path))}")
    return value


def parse_decimal(value: object, what: str) -> Decimal:
    """A finite decimal from a JSON number (parsed as Decimal) or a string of digits."""
    if isinstance(value, str):
        text = value.strip()
        if not 0 < len(text) <= MAX_DECIMAL_CHARS or not all(c in "0123456789.-+eE" for c in text):
            raise SourceError(f"garbage_{what}", repr(value[:MAX_DECIMAL_CHARS]))
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise SourceError(f"garbage_{what}", repr(text)) from None
    if not isinstance(value, Decimal) or not value.is_finite():  # bool, None, lists, objects, NaN
        raise SourceError(f"garbage_{what}", f"{type(value).__name__}")
    if abs(value.adjusted()) > 30:  # 1e-300 or 1e300: no price looks like that
        raise SourceError(f"garbage_{what}", str(value))
    return value


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def decode_json(body: bytes) -> object:
    try:
        return json.loads(body, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, bad UTF-8, NaN, nesting bombs
        raise SourceError("not_json", str(error)[:80]) from None


def compute_price(value: Decimal, base_decimals: int) -> int:
    """Quote currency per whole asset -> the spec's PRICE_ONE collateral units per base unit."""
    if value <= 0:
        raise SourceError("not_positive", str(value))
    scaled = (value * 10**COLLATERAL_DECIMALS * PRICE_ONE).scaleb(-base_decimals)
    price = int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))
    if not 1 <= price <= MAX_PRICE:
        raise SourceError("out_of_range", str(value))
    return price


def read_price(body: bytes, endpoint: HttpEndpoint, wall_now: float, max_staleness: float) -> int:
    """Checks 3-5 on a body: the price in the spec's units."""
    document = decode_json(body)
    price = compute_price(parse_decimal(get_at(document, endpoint.price_path, "price"), "price"), endpoint.base_decimals)
    if endpoint.time_path is not None:
        observed = parse_decimal(get_at(document, endpoint.time_path, "time"), "time") / endpoint.time_scale
        if abs(Decimal(str(wall_now)) - observed) > Decimal(str(max_staleness)):
            raise SourceError("stale", f"observed at {observed}, now {wall_now:.0f}")
    return price


def check_move(state: State, market: int, price: int, now: int) -> None:
    """Check 6: the spec's max_price_move from the last on-chain price, for a sample stamped `now`."""
    last = state.markets[market]
    limit = state.config.markets[market].max_price_move
    if not is_price_move_allowed(limit, last.price, price, max(0, now - last.price_time)):
        raise SourceError("move_too_fast", f"{last.price} -> {price} in {now - last.price_time} s")


@dataclass
class HttpPriceSource:
    endpoints: dict[int, HttpEndpoint]  # by market
    signers: list[tuple[int, Key]]  # (oracle index in the genesis, key)
    policy: HttpPolicy = HttpPolicy()
    clock: Callable[[], float] = time.time  # wall clock, for the documents' own times
    refused: dict[str, int] = field(default_factory=dict)
    fetched: int = 0
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _last_fresh: dict[int, float] = field(default_factory=dict, init=False)
    _stale: set[int] = field(default_factory=set, init=False)

    async def collect(self, state: State, market: int, *, newer_than: int, now: int) -> list[PriceSample]:
        endpoint = self.endpoints.get(market)
        signers = [(i, key) for i, key in self.signers
                   if is_market_oracle(state, market, i) and (endpoint is None or endpoint.oracles is None or i in endpoint.oracles)]
        if endpoint is None or not signers or now <= newer_than:
            return []
        self._last_fresh.setdefault(market, trio.current_time())
        try:
            body = await self.fetch(endpoint)
            price = read_price(body, endpoint, self.clock(), self.policy.max_staleness)
            check_move(state, market, price, now)
        except SourceError as error:
            self._failed(endpoint, error)
            return []
        self._fresh(endpoint)
        # verified: only now is anything signed
        domain = state.config.domain_separator
        return [sign_price(key, domain, index, market, price, now) for index, key in signers]

    async def fetch(self, endpoint: HttpEndpoint) -> bytes:
        """Check 1-2: the body of a 200 answer, with retries and backoff."""
        policy = self.policy
        for attempt in range(policy.retries + 1):
            try:
                with trio.fail_after(policy.timeout):
                    return await self._get(endpoint.url)
            except trio.TooSlowError:
                error = SourceError("timeout", f"no answer within {policy.timeout} s", retry=True)
            except httpx.InvalidURL as failure:  # config.check_http_source refuses these; an endpoint built in code may not
                error = SourceError("bad_url", str(failure)[:80])
            except httpx.TimeoutException:
                error = SourceError("timeout", "connect or read timed out", retry=True)
            except httpx.HTTPError as failure:  # connect refused, reset, protocol errors
                error = SourceError("transport", type(failure).__name__, retry=True)
            except SourceError as failure:
                error = failure
            if not error.retry or attempt == policy.retries:
                raise error
            self._count(error.reason)
            log.info("price source %s: %s; retrying", endpoint.where, error)
            await trio.sleep(policy.backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def _get(self, url: str) -> bytes:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.policy.timeout, follow_redirects=False,
                                             headers={"Accept": "application/json"})
        limit = self.policy.max_body_bytes
        async with self._client.stream("GET", url) as response:
            if response.status_code != 200:
                raise SourceError(f"http_{response.status_code}", retry=response.status_code in RETRY_STATUSES)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise SourceError("too_large", f"content-length {declared} > {limit}")
            body = bytearray()
            async for chunk in response.aiter_bytes():  # decoded: a gzip bomb is cut at the limit too
                body += chunk
                if len(body) > limit:
                    raise SourceError("too_large", f"more than {limit} bytes")
        self.fetched += 1
        return bytes(body)

    def _count(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def _failed(self, endpoint: HttpEndpoint, error: SourceError) -> None:
        self._count(error.reason)
        log.warning("price of market %d from %s not signed: %s", endpoint.market, endpoint.where, error)
        since = trio.current_time() - self._last_fresh[endpoint.market]
        if since >= self.policy.max_staleness and endpoint.market not in self._stale:
            self._stale.add(endpoint.market)
            alert(log, "oracle_source_stale", market=endpoint.market, source=endpoint.where, reason=error.reason,
                  seconds_since_fresh=round(since, 1), action="fix the price source; the on-chain price ages meanwhile")

    def _fresh(self, endpoint: HttpEndpoint) -> None:
        self._last_fresh[endpoint.market] = trio.current_time()
        if endpoint.market in self._stale:
            self._stale.discard(endpoint.market)
            alert(log, "oracle_source_back", level=logging.INFO, market=endpoint.market, source=endpoint.where)

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
