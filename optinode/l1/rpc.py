"""Ethereum JSON-RPC over HTTP for the node: standard ``eth_*`` methods only, usable under trio.

    rpc = RpcClient(url)
    head = await rpc.block_number()                 # under trio: runs the HTTP call in a worker thread
    block = await rpc.get_block(head)
    rpc.call_sync("eth_chainId")                    # outside trio (deploy tooling, tests)

The HTTP transport is a `requests.Session` (already a web3 dependency) called through
`trio.to_thread.run_sync(..., abandon_on_cancel=True)`, so a slow endpoint never blocks the event
loop and cancellation (shutdown, a timeout) returns at once. One session per client keeps the
connection alive.

Failures are split as op-node splits them:

- *temporary* — the endpoint is unreachable, times out, answers 429/5xx or non-JSON: retried with
  capped exponential back-off, for ``retry_for`` seconds (None: forever, what a node wants). The
  first failure logs one WARNING ("L1 endpoint unreachable …, retrying") and the recovery one INFO
  ("L1 endpoint back after …"), not a line per attempt;
- *an answer* — a JSON-RPC error object is the node's reply, not an outage: raised at once as
  `RpcError` (code, message, data), e.g. a reverted ``eth_call`` or ``nonce too low``.

No ``anvil_*``/``evm_*`` method is used here; tests call those through `optinode.l1.anvil`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests
import trio

from optinode.logs import alert

__all__ = ["Block", "Log", "Receipt", "RpcClient", "RpcError", "RpcUnavailable"]

log = logging.getLogger("optinode.l1.rpc")


class RpcError(Exception):
    """The endpoint answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        self.method, self.code, self.message, self.data = method, code, message, data
        super().__init__(f"{method}: JSON-RPC error {code}: {message}")


class RpcUnavailable(Exception):
    """The endpoint stayed unreachable for the whole ``retry_for`` budget."""


class Block(msgspec.Struct, frozen=True):
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int
    base_fee: int


class Log(msgspec.Struct, frozen=True):
    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    removed: bool


class Receipt(msgspec.Struct, frozen=True):
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    status: int
    gas_used: int
    effective_gas_price: int
    contract_address: bytes | None
    logs: tuple[Log, ...]


def _int(value: str | None) -> int:
    return 0 if value is None else int(value, 16)


def _bytes(value: str | None) -> bytes:
    return b"" if value is None else bytes.fromhex(value[2:])


def hexint(value: int) -> str:
    return hex(value)


def hexbytes(value: bytes) -> str:
    return "0x" + value.hex()


def parse_block(raw: dict[str, Any]) -> Block:
    return Block(
        number=_int(raw["number"]),
        hash=_bytes(raw["hash"]),
        parent_hash=_bytes(raw["parentHash"]),
        timestamp=_int(raw["timestamp"]),
        base_fee=_int(raw.get("baseFeePerGas")),
    )


def parse_log(raw: dict[str, Any]) -> Log:
    return Log(
        address=_bytes(raw["address"]),
        topics=tuple(_bytes(t) for t in raw["topics"]),
        data=_bytes(raw["data"]),
        block_number=_int(raw["blockNumber"]),
        block_hash=_bytes(raw["blockHash"]),
        tx_hash=_bytes(raw["transactionHash"]),
        log_index=_int(raw["logIndex"]),
        removed=bool(raw.get("removed", False)),
    )


def parse_receipt(raw: dict[str, Any]) -> Receipt:
    return Receipt(
        tx_hash=_bytes(raw["transactionHash"]),
        block_number=_int(raw["blockNumber"]),
        block_hash=_bytes(raw["blockHash"]),
        status=_int(raw.get("status")),
        gas_used=_int(raw["gasUsed"]),
        effective_gas_price=_int(raw.get("effectiveGasPrice")),
        contract_address=_bytes(raw["contractAddress"]) if raw.get("contractAddress") else None,
        logs=tuple(parse_log(entry) for entry in raw.get("logs", ())),
    )


class _Temporary(Exception):
    pass


class RpcClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retry_for: float | None = None,
        backoff: tuple[float, float] = (0.1, 5.0),
        name: str = "L1",
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retry_for = retry_for
        self.backoff = backoff
        self.name = name
        self._ids = itertools.count(1)
        self._local = threading.local()  # one Session per worker thread: Session is not thread-safe
        self._down_since: float | None = None
        self._lock = threading.Lock()
        self.on_state: Callable[[bool], None] | None = None  # called when the endpoint goes down / comes back (metrics)

    # --- transport --------------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _post_once(self, payload: Any) -> Any:
        try:
            response = self._session().post(self.url, json=payload, timeout=self.timeout)
        except requests.RequestException as error:
            raise _Temporary(f"{type(error).__name__}: {error}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Temporary(f"HTTP {response.status_code}")
        try:
            return response.json()
        except (ValueError, RecursionError):  # (RecursionError: a nesting bomb from a hostile endpoint)
            raise _Temporary(f"HTTP {response.status_code}, not JSON") from None

    def _where(self) -> str:
        """scheme://host:port only: a provider URL's path or query may hold its API key."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    def _mark_up(self) -> None:
        with self._lock:
            if self._down_since is not None:
                alert(log, "l1_back", level=logging.INFO, endpoint=self.name, url=self._where(), down_s=round(time.monotonic() - self._down_since, 1))
                self._down_since = None
                if self.on_state is not None:
                    self.on_state(True)

    def _mark_down(self, reason: str) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                alert(log, "l1_lost", endpoint=self.name, url=self._where(), reason=reason, action="retrying")
                if self.on_state is not None:
                    self.on_state(False)

    def _post(self, payload: Any) -> Any:
        """POST with retries (blocking; run it in a thread under trio)."""
        started = time.monotonic()
        delay = self.backoff[0]
        while True:
            try:
                answer = self._post_once(payload)
            except _Temporary as error:
                self._mark_down(str(error))
                if self.retry_for is not None and time.monotonic() - started + delay > self.retry_for:
                    raise RpcUnavailable(f"{self.name} endpoint {self.url} unreachable for {self.retry_for} s: {error}") from None
                time.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            self._mark_up()
            return answer

    def _request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}

    @staticmethod
    def _result(method: str, answer: Any) -> Any:
        if not isinstance(answer, dict):
            raise RpcError(method, -32603, f"malformed answer {str(answer)[:200]!r}")
        if answer.get("error") is not None:
            error = answer["error"]
            if not isinstance(error, dict):
                raise RpcError(method, -32603, str(error)[:200])
            raise RpcError(method, int(error.get("code", -32603)), str(error.get("message", "")), error.get("data"))
        return answer.get("result")

    def call_sync(self, method: str, params: Sequence[Any] = ()) -> Any:
        return self._result(method, self._post(self._request(method, params)))

    def batch_sync(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """A JSON-RPC batch: one HTTP request, results in the order of ``calls``."""
        if not calls:
            return []
        requests_ = [self._request(method, params) for method, params in calls]
        answers = self._post(requests_)
        if not isinstance(answers, list):
            # some servers answer a batch with one error object
            raise RpcError("batch", -32603, f"batch answered with {str(answers)[:200]!r}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        return [self._result(r["method"], by_id.get(r["id"])) for r in requests_]

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return await trio.to_thread.run_sync(self.call_sync, method, params, abandon_on_cancel=True)

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        return await trio.to_thread.run_sync(self.batch_sync, calls, abandon_on_cancel=True)

    # --- typed eth_* helpers ------------------------------------------------------------------------

    async def chain_id(self) -> int:
        return _int(await self.call("eth_chainId"))

    async def block_number(self) -> int:
        return _int(await self.call("eth_blockNumber"))

    async def get_block(self, number: int | str = "latest") -> Block | None:
        tag = hexint(number) if isinstance(number, int) else number
        raw = await self.call("eth_getBlockByNumber", [tag, False])
        return None if raw is None else parse_block(raw)

    async def get_blocks(self, numbers: Sequence[int]) -> list[Block | None]:
        raws = await self.batch([("eth_getBlockByNumber", [hexint(n), False]) for n in numbers])
        return [None if raw is None else parse_block(raw) for raw in raws]

    async def get_logs(self, addresses: Sequence[bytes], from_block: int, to_block: int) -> list[Log]:
        raw = await self.call(
            "eth_getLogs",
            [{"address": [hexbytes(a) for a in addresses], "fromBlock": hexint(from_block), "toBlock": hexint(to_block)}],
        )
        return [parse_log(entry) for entry in raw]

    async def get_transaction_count(self, address: bytes, tag: str = "latest") -> int:
        return _int(await self.call("eth_getTransactionCount", [hexbytes(address), tag]))

    async def get_receipt(self, tx_hash: bytes) -> Receipt | None:
        raw = await self.call("eth_getTransactionReceipt", [hexbytes(tx_hash)])
        return None if raw is None else parse_receipt(raw)

    async def send_raw_transaction(self, raw: bytes) -> bytes:
        return _bytes(await self.call("eth_sendRawTransaction", [hexbytes(raw)]))

    async def max_priority_fee(self) -> int | None:
        """``eth_maxPriorityFeePerGas``, or None where the endpoint does not offer it."""
        try:
            return _int(await self.call("eth_maxPriorityFeePerGas"))
        except RpcError:
            return None

    async def estimate_gas(self, tx: dict[str, Any], tag: str = "latest") -> int:
        return _int(await self.call("eth_estimateGas", [tx, tag]))

    async def eth_call(self, tx: dict[str, Any], tag: str = "latest") -> bytes:
        return _bytes(await self.call("eth_call", [tx, tag]))
