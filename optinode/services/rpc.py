"""The public JSON-RPC 2.0 API over HTTP and WebSocket (docs/api.md), on services/http_server.py (h11, wsproto).

    port = await nursery.start(rpc.run, rpc.RpcDeps(engine, submitter, mempool, port=8545))

``POST /`` takes a JSON-RPC request or a batch (an array) of them; a WebSocket
on ``/`` takes the same requests plus ``optinode_subscribe`` / ``optinode_unsubscribe`` and pushes
``optinode_subscription`` notifications (``fills``, ``book``, ``account``), as ``eth_subscribe`` does.

**Params** are decoded by type (services/rpc_params.py: msgspec frozen Structs for the EIP-712
messages); a body that is only `optinode_sendOrder` requests — a market maker's batch — is decoded
by type in one pass and skips the generic decode (docs/benchmarks.md, "JSON-RPC server cost").

**Errors.** The standard codes for parse (-32700), request (-32600), method (-32601) and params
(-32602) errors; an order, cancel or withdrawal turned away by intake or the spec is -32000 with
``error.data`` the spec `ErrorCode` name (or the exchange `Reason`) and a human ``message``. A
refusal by the matcher itself (post-only would cross, margin at the limit price) is not an error:
``optinode_sendOrder`` returns ``status: "rejected"`` with its ``reason``, as exchanges do. Anything
else (a bug) is -32603 and logged; it never takes the server down.

**Durability.** Every answer that says accepted/filled/resting comes from the engine after the log
entry is synced (`Submitter.submit_book`), so it is a durable promise. Notifications are sent after
the same point.

Orders go through the mempool (`Mempool.submit`: shape and ranges, market, expiry, rate, signature
recovery on worker threads, signer and nonce, then its fair per-account queue) → `_feed` hands them to
the engine round-robin across accounts → the engine's book (`BookSubmission`) → the answer goes back
to the waiting request, then notifications. A cancel of an order still in the mempool answers that
order `cancelled` at once (it never reached the engine, nothing is logged).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import trio

from optinode.exchange.cancel import SignedCancelAll, SignedCancelOrder
from optinode.exchange.history import OrderRecord
from optinode.exchange.mempool import IntakeRejected, Mempool
from optinode.exchange.orders import CancelAll, Cancelled, Placement, PlaceResult, Reason, Status
from optinode.services.engine import BookAccepted, BookSubmission, Engine, Rejected, Submitter
from optinode.services.http_server import Routes, WebSocket, serve
from optinode.services.rpc_params import (
    APPLICATION_ERROR,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    ORDER_REQUESTS,
    PARSE_ERROR,
    U8_BOUND,
    U32_BOUND,
    CancelAllMessage,
    CancelOrderMessage,
    RpcError,
    SendOrderParams,
    SendOrderRequest,
    SendWithdrawParams,
    decode_params,
    params_error,
    to_bytes,
    to_order,
    to_signature,
    to_uint,
    uints,
)
from optinode.spec.errors import ErrorCode
from optinode.spec.margin import compute_settled_funding, get_total_risk, get_total_value
from optinode.spec.state import require_account
from optinode.spec.types import Order, SlotRef, Withdraw

__all__ = ["RpcDeps", "RpcError", "routes", "run"]

log = logging.getLogger("optinode.services.rpc")

MAX_BATCH = 100  # requests in one JSON-RPC batch
MAX_DEPTH = 100  # price levels per side in getBook / book subscriptions
MAX_SUBSCRIPTIONS = 64  # per WebSocket connection
OUTBOX = 1024  # notifications queued per WebSocket connection; a consumer this far behind is closed
FEED_BATCH = 256  # orders taken from the mempool's fair queue at a time
ORDER_MEMORY = 100_000  # unlogged answers (refused, withdrawn while queued) remembered for optinode_getOrder
SEND_ORDER_USAGE = "optinode_sendOrder(order, signature [, options])"


@dataclass
class RpcDeps:
    engine: Engine
    submitter: Submitter
    mempool: Mempool
    host: str = "127.0.0.1"
    port: int = 0
    hub: Hub = field(default_factory=lambda: Hub())
    orders: OrderedDict[bytes, PlaceView] = field(default_factory=OrderedDict)  # unlogged answers (optinode_getOrder)
    # Orders in the mempool's fair queue, by hash: where the engine's answer goes, and the order.
    waiting: dict[bytes, tuple[Any, Order]] = field(default_factory=dict)  # (a reply: `send_nowait(answer)`)


# --- params (typed: rpc_params) --------------------------------------------------------------------


def _arity(params: list[Any], low: int, high: int, usage: str) -> None:
    if not low <= len(params) <= high:
        raise params_error(f"usage: {usage}")


def _refused(reason: str, message: str) -> RpcError:
    return RpcError(APPLICATION_ERROR, message or reason, reason)


# --- views -----------------------------------------------------------------------------------------


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


class FillView(msgspec.Struct, frozen=True, gc=False, rename="camel"):
    """A fill as the API shows it (answers, getOrder, ``fills`` notifications)."""

    market: int
    price: int
    size: int
    taker_is_buy: bool
    maker: str
    taker: str
    maker_account: int
    taker_account: int


class PlaceView(msgspec.Struct, frozen=True, gc=False):
    """optinode_sendOrder's result (docs/api.md). A Struct, not a dict: built and encoded in C
    (~0.3 µs against ~0.9 for the dict and its encode), and frozen, so the copy `_remember` keeps
    for optinode_getOrder cannot be changed through the answer."""

    hash: str
    status: Status  # (encoded as its value)
    reason: str | None
    fills: tuple[FillView, ...]
    filled: int
    remaining: int
    cancelled: tuple[dict[str, Any], ...]  # (rare: self-trade prevention, expiry)
    seq: int | None


class Reply(msgspec.Struct, frozen=True, gc=False):
    """A JSON-RPC success response (errors are `_error`'s dicts: rare, and of many shapes)."""

    jsonrpc: str
    id: Any
    result: Any


def _fill_view(fill: Any) -> FillView:
    return FillView(fill.market, fill.price, fill.size, fill.taker_is_buy, "0x" + fill.maker_hash.hex(), "0x" + fill.taker_hash.hex(),
                    fill.maker_account, fill.taker_account)


def _fill_dicts(fills: Any) -> list[dict[str, Any]]:
    """Fills as plain JSON objects, for the views that stay dicts (optinode_getOrder: not the hot path)."""
    return msgspec.to_builtins([_fill_view(f) for f in fills])


def _cancelled_view(c: Cancelled) -> dict[str, Any]:
    return {"hash": _hex(c.order_hash), "accountId": c.account_id, "reason": c.reason}


def _place_view(result: PlaceResult, seq: int | None) -> PlaceView:
    fills, cancelled = result.fills, result.cancelled  # (most answers have neither: nothing to map)
    return PlaceView("0x" + result.order_hash.hex(), result.status, result.reason, tuple(map(_fill_view, fills)) if fills else (),
                     sum([f.size for f in fills]) if fills else 0, result.remaining, tuple(map(_cancelled_view, cancelled)) if cancelled else (), seq)


def _resting_view(view: Any) -> dict[str, Any]:
    partially = type(view.handle) is SlotRef
    return {"hash": _hex(view.order_hash), "status": (Status.PARTIALLY_FILLED if partially else Status.RESTING).value,
            "accountId": view.account_id, "market": view.market, "isBuy": view.is_buy, "price": view.price,
            "remaining": view.remaining, "reduceOnly": view.reduce_only, "expiry": view.expiry}


def account_view(engine: Engine, account_id: int) -> dict[str, Any] | None:
    state = engine.state
    account = require_account(state, account_id)
    if account is None:
        return None
    collateral, positions, _ = compute_settled_funding(state, account)
    value = get_total_value(state, collateral, positions)
    initial, maintenance = get_total_risk(state, positions, True), get_total_risk(state, positions, False)
    return {
        "id": account_id, "owner": _hex(account.owner), "collateral": account.collateral, "withdrawn": account.withdrawn,
        "nonceBase": account.nonce_base,
        "positions": [{"market": m, "size": p.size, "fundingIndex": p.funding_index, "markPrice": state.markets[m].price}
                      for m, p in sorted(account.positions.items())],
        "margin": {"settledCollateral": collateral, "value": value, "initialRisk": initial, "maintenanceRisk": maintenance,
                   "freeCollateral": value - initial, "healthy": value >= maintenance},
        "openOrders": [_resting_view(v) for v in engine.matcher.open_orders(account_id)],
    }


def book_view(engine: Engine, market: int, depth: int) -> dict[str, Any]:
    levels = engine.matcher.depth(market, depth)
    return {"market": market, "time": engine.state.time, "seq": engine.next_seq,
            "bids": [[p, s, n] for p, s, n in levels["bids"]], "asks": [[p, s, n] for p, s, n in levels["asks"]]}


# --- subscriptions ---------------------------------------------------------------------------------


class Subscriber:
    """One WebSocket connection's outbox (bounded: a consumer that falls this far behind is closed)."""

    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[bytes](OUTBOX)
        self.subscriptions: dict[str, tuple[str, Any, int]] = {}  # id -> (kind, key, book depth)
        self.overflowed = False
        self.on_overflow: Callable[[], None] = lambda: None  # (the connection's: end it)
        self.after_reply: list[tuple[str, Any]] = []  # notifications that follow the current answer

    def push(self, subscription: str, result: Any) -> None:
        note = msgspec.json.encode({"jsonrpc": "2.0", "method": "optinode_subscription", "params": {"subscription": subscription, "result": result}})
        try:
            self.send.send_nowait(note)
        except trio.WouldBlock:
            self.overflowed = True
            self.send.close()
            self.on_overflow()  # (its socket may take nothing more: waiting for the outbox to drain could be forever)
        except trio.ClosedResourceError:
            pass


class Hub:
    """Who listens to what: (kind, key) -> {(subscriber, subscription id)}."""

    def __init__(self) -> None:
        self.topics: dict[tuple[str, Any], dict[str, Subscriber]] = {}
        self.ids = itertools.count(1)

    def add(self, subscriber: Subscriber, kind: str, key: Any, depth: int = 0) -> str:
        if len(subscriber.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise RpcError(APPLICATION_ERROR, f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection", "TOO_MANY_SUBSCRIPTIONS")
        sid = hex(next(self.ids))
        subscriber.subscriptions[sid] = (kind, key, depth)
        self.topics.setdefault((kind, key), {})[sid] = subscriber
        return sid

    def remove(self, subscriber: Subscriber, sid: str) -> bool:
        topic = subscriber.subscriptions.pop(sid, None)
        if topic is None:
            return False
        listeners = self.topics.get(topic[:2], {})
        listeners.pop(sid, None)
        if not listeners:
            self.topics.pop(topic[:2], None)
        return True

    def drop(self, subscriber: Subscriber) -> None:
        for sid in list(subscriber.subscriptions):
            self.remove(subscriber, sid)

    def listeners(self, kind: str, key: Any) -> list[tuple[str, Subscriber]]:
        return list(self.topics.get((kind, key), {}).items())

    def publish(self, kind: str, key: Any, result: Any | Callable[[], Any]) -> None:
        listeners = self.listeners(kind, key)
        if not listeners:
            return
        value = result() if callable(result) else result
        for sid, subscriber in listeners:
            subscriber.push(sid, value)


def _after_book(deps: RpcDeps, market: int | None, fills: tuple[Any, ...], accounts: set[int]) -> None:
    """Notifications once a book command is durable: fills, the market's book, touched accounts."""
    hub, engine = deps.hub, deps.engine
    if not hub.topics:
        return  # nobody subscribed to anything: no view to build
    for fill in fills:
        view = _fill_view(fill)
        hub.publish("fills", None, view)
        for account in {fill.maker_account, fill.taker_account}:
            hub.publish("fills", account, view)
            accounts.add(account)
    if market is not None:
        for sid, subscriber in hub.listeners("book", market):
            subscriber.push(sid, book_view(engine, market, subscriber.subscriptions[sid][2]))
    for account in accounts:
        hub.publish("account", account, lambda a=account: account_view(engine, a))


def _remember(deps: RpcDeps, order_hash: bytes, view: PlaceView) -> None:
    """An answer that changed nothing (refused before matching, or cancelled while queued), kept in
    memory for optinode_getOrder: a logged one is in the engine's durable order history."""
    orders = deps.orders
    orders[order_hash] = view  # (frozen: what getOrder returns is this moment's answer)
    orders.move_to_end(order_hash)
    while len(orders) > ORDER_MEMORY:
        orders.popitem(last=False)


def order_view(record: OrderRecord) -> dict[str, Any]:
    """An order as the history holds it (optinode_getOrder)."""
    filled = record.filled
    live = record.status in (Status.RESTING, Status.PARTIALLY_FILLED)
    return {"hash": _hex(record.order_hash), "status": record.status.value, "reason": record.reason, "accountId": record.account_id,
            "market": record.market, "isBuy": record.is_buy, "price": record.price, "size": record.size, "filled": filled,
            "remaining": record.size - filled if live else 0, "fills": _fill_dicts(record.fills),
            "timeInForce": record.tif, "reduceOnly": record.reduce_only, "expiry": record.expiry, "seq": record.placed_seq,
            "finishedSeq": record.finished_seq}


# --- methods ---------------------------------------------------------------------------------------


def _placement(params: Any) -> Placement:
    """optinode_sendOrder's params (decoded JSON, or already typed by the batch fast path) -> the book command."""
    if type(params) is not SendOrderParams:
        params = decode_params(params, SendOrderParams, SEND_ORDER_USAGE)
    order, options = to_order(params.order, to_signature(params.signature)), params.options
    return Placement(order) if options is None else Placement(order, options.time_in_force, options.reduce_only)


class _Tally:
    """One request's order metrics, added to the node's once it is answered: a prometheus Counter's
    ``inc`` and a Histogram's ``observe`` take a lock each, ~1.3 µs per order when done order by
    order. Accepted by status, rejected by reason, fills, and the ack latency of the durable answers
    (all of a request's answers are sent at the same moment, so one latency stands for each)."""

    __slots__ = ("accepted", "durable", "fills", "rejected")

    def __init__(self) -> None:
        self.accepted: dict[str, int] = {}  # by status value
        self.rejected: dict[str, int] = {}
        self.fills = self.durable = 0

    def refused(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def add(self, metrics: Any, started: float) -> None:
        for status, count in self.accepted.items():
            metrics.accepted(status, count)
        for reason, count in self.rejected.items():
            metrics.rejected(reason, count)
        if self.fills:
            metrics.fills.inc(self.fills)
        if self.durable:
            metrics.acked(time.perf_counter() - started, self.durable)


def _placed(deps: RpcDeps, placement: Placement, answer: BookAccepted, tally: _Tally) -> PlaceView:
    """The engine's answer to a placement -> the method's result (and its notifications), counted
    in ``tally``. A durable answer (``seq``: its log entry is synced) is in the order history; one
    that changed nothing is remembered here."""
    result: PlaceResult = answer.result
    view = _place_view(result, answer.seq)
    status = result.status
    if status is Status.REJECTED:
        tally.refused(result.reason or "REJECTED")
    else:
        accepted, name = tally.accepted, status._value_  # (`_value_`: a plain attribute; `.value` and an Enum's hash are Python calls)
        accepted[name] = accepted.get(name, 0) + 1
        if result.fills:
            tally.fills += len(result.fills)
    if answer.seq is None:
        _remember(deps, result.order_hash, view)
    else:
        if status is not Status.REJECTED:
            tally.durable += 1
        if deps.hub.topics:  # (nobody subscribed to anything: nothing to build)
            touched = {placement.order.account_id} | {c.account_id for c in result.cancelled}
            _after_book(deps, placement.order.market, result.fills, touched)
    return view


def _counted(deps: RpcDeps, refusal: RpcError) -> RpcError:
    """An order refused before the engine matched it, counted by its reason (``error.data``)."""
    deps.engine.metrics.rejected(str(refusal.data) if refusal.data is not None else "INVALID_PARAMS")
    return refusal


async def send_order(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    started = time.perf_counter()
    try:
        placement = _placement(params)
    except RpcError as failure:
        raise _counted(deps, failure) from None
    [answer] = await _place(deps, [placement])
    if isinstance(answer, RpcError):
        raise _counted(deps, answer)
    tally = _Tally()
    view = _placed(deps, placement, answer, tally)
    tally.add(deps.engine.metrics, started)
    return view


class _Reply(msgspec.Struct, gc=False):
    """Where the engine's answer to one order of a request goes: it takes the place of a reply
    channel (`send_nowait`), without a channel and a task per order (a Struct: ~10x cheaper to make
    than a class with an ``__init__``, one per order)."""

    answers: _Answers
    index: int

    def send_nowait(self, answer: Any) -> None:
        answers = self.answers
        answers.values[self.index] = _refused(answer.code.name, str(answer)) if isinstance(answer, Rejected) else answer
        answers.waiting -= 1
        if answers.waiting == 0:
            answers.done.set()


class _Answers:
    """The answers to one request's orders, complete when each queued order has its answer."""

    __slots__ = ("done", "values", "waiting")

    def __init__(self, answers: list[Any]) -> None:
        self.values, self.waiting, self.done = answers, 0, trio.Event()


async def _place(deps: RpcDeps, placements: list[Placement]) -> list[BookAccepted | RpcError]:
    """Mempool intake of a request's orders together (checks, signatures recovered in one go, the
    fair per-account queue in their order), then the engine's answers, which `_feed` routes back here."""
    outcomes: list[Any] = await deps.mempool.submit(placements)
    waiting = deps.waiting
    answers: list[Any] = [None] * len(outcomes)
    collected = _Answers(answers)
    for i, outcome in enumerate(outcomes):
        if type(outcome) is bytes and outcome in waiting:
            # The same signed order is already on its way: the mempool forgets a hash once the feed
            # has taken it, so it queued this copy again. Drop the copy (the mempool skips a withdrawn
            # hash when it is served) and refuse it; the first request keeps its place and its answer.
            deps.mempool.withdrawn.add(outcome)
            outcome = IntakeRejected(Reason.DUPLICATE_ORDER, "the same signed order is already waiting for the engine")
        if type(outcome) is bytes:
            waiting[outcome] = (_Reply(collected, i), placements[i].order)  # (no checkpoint since submit: _feed has not run)
            collected.waiting += 1
        else:
            answers[i] = _refused(outcome.reason, str(outcome))
    if collected.waiting:
        await collected.done.wait()
    return answers


def _is_send_order(request: Any) -> bool:
    return (isinstance(request, dict) and request.get("method") == "optinode_sendOrder" and request.get("jsonrpc") == "2.0"
            and isinstance(request.get("params"), list) and _valid_id(request))


Call = tuple[Any, bool, Any]  # one optinode_sendOrder request: (its id, whether it is answered (not a notification), its params)


async def _call_orders(deps: RpcDeps, calls: list[Call]) -> list[Reply | dict[str, Any] | None]:
    """A run of consecutive `optinode_sendOrder` requests of one batch, as `_call` answers each, but
    taken in by the mempool as one request: their signatures are recovered together and the engine
    acknowledges them in one group commit, instead of one durable round trip after the other."""
    started = time.perf_counter()
    responses: list[Reply | dict[str, Any] | None] = [None] * len(calls)
    placed: list[tuple[int, Placement]] = []
    for k, (rid, _, params) in enumerate(calls):
        try:
            placed.append((k, _placement(params)))
        except RpcError as failure:
            responses[k] = _error(rid, _counted(deps, failure))
        except Exception:  # noqa: BLE001 - a bug (as in _call)
            log.exception("internal error in optinode_sendOrder")
            responses[k] = _error(rid, RpcError(INTERNAL_ERROR, "internal error"))
    answers: list[BookAccepted | RpcError]
    try:
        answers = await _place(deps, [p for _, p in placed]) if placed else []
    except IntakeRejected as rejected:  # the request as a whole (its size)
        answers = [_refused(rejected.reason, str(rejected))] * len(placed)
    except Exception:  # noqa: BLE001
        log.exception("internal error in optinode_sendOrder")
        answers = [RpcError(INTERNAL_ERROR, "internal error")] * len(placed)
    tally = _Tally()
    for (k, placement), answer in zip(placed, answers):
        rid = calls[k][0]
        try:
            if isinstance(answer, RpcError):
                responses[k] = _error(rid, _counted(deps, answer))
            else:
                responses[k] = Reply("2.0", rid, _placed(deps, placement, answer, tally))
        except Exception:  # noqa: BLE001 - a bug: answered, logged, and the server stays up
            log.exception("internal error in optinode_sendOrder")
            responses[k] = _error(rid, RpcError(INTERNAL_ERROR, "internal error"))
    tally.add(deps.engine.metrics, started)
    return [response if answered else None for (_, answered, _), response in zip(calls, responses)]


def _withdrawn(deps: RpcDeps, order_hash: bytes, reason: str) -> Cancelled:
    """An order cancelled while it waited in the mempool: it never reached the engine, nothing logged."""
    send, order = deps.waiting.pop(order_hash)
    send.send_nowait(BookAccepted(None, PlaceResult(order_hash, Status.CANCELLED, reason=reason, logged=False)))
    return Cancelled(order_hash, order.account_id, reason)


async def _feed(deps: RpcDeps, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Hand the mempool's orders to the engine, round-robin across accounts (`Mempool.next_batch`),
    as fast as the engine's bounded inbox takes them: a flood from one account waits in its own queue."""
    task_status.started()
    inbox = deps.submitter.inbox
    while True:
        for placement, order_hash in await deps.mempool.next_batch(FEED_BATCH):
            send, _ = deps.waiting.pop(order_hash)
            message = BookSubmission(placement, send)
            try:
                inbox.send_nowait(message)  # (an `await send` per order would yield to the scheduler each time)
            except trio.WouldBlock:
                await inbox.send(message)
        await trio.lowlevel.checkpoint()


async def _book(deps: RpcDeps, command: Any) -> Any:
    try:
        return await deps.submitter.submit_book(command)
    except Rejected as rejected:
        raise _refused(rejected.code.name, str(rejected)) from None


CANCEL_USAGE = "optinode_cancelOrder(cancel, signature): cancel = {accountId, orderHash} or {accountId, nonceFloor}"


async def cancel_order(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    _arity(params, 2, 2, CANCEL_USAGE)
    raw, signature = params[0], to_signature(params[1])
    message: Any
    if isinstance(raw, dict) and "orderHash" in raw:
        one = decode_params(raw, CancelOrderMessage, CANCEL_USAGE, "cancel")
        message = SignedCancelOrder(to_uint(one.account_id, "cancel.accountId", U32_BOUND), to_bytes(one.order_hash, "cancel.orderHash", 32), signature)
    else:  # (the keys are the EIP-712 type's field names, docs/eip712.md: the signature covers them)
        every = uints(decode_params(raw, CancelAllMessage, CANCEL_USAGE, "cancel"), "cancel")
        message = SignedCancelAll(every["account_id"], every["nonce_floor"], signature)
    try:
        command, queued = await deps.mempool.check_cancel(message)
    except IntakeRejected as rejected:
        raise _refused(rejected.reason, str(rejected)) from None
    if queued:  # still in the mempool: the mempool drops it, its sender is answered here
        return {"cancelled": [_cancelled_view(_withdrawn(deps, command.order_hash, "USER_CANCELLED"))], "seq": None}
    early = []
    if type(command) is CancelAll:  # queued orders below the new floor are dropped by the mempool too
        early = [_withdrawn(deps, h, "NONCE_CANCELLED") for h, (_, o) in list(deps.waiting.items())
                 if o.account_id == command.account_id and o.nonce < command.nonce_below]
    elif deps.engine.matcher.get(command.order_hash) is None:
        raise _refused("UNKNOWN_ORDER", f"no live order 0x{command.order_hash.hex()} of account {command.account_id}")
    answer = await _book(deps, command)
    cancelled = early + (answer.result if isinstance(answer.result, list) else [answer.result])
    _after_book(deps, None, (), {message.account_id})
    for market in range(len(deps.engine.matcher.books)):  # (a cancel-all can touch every market)
        _after_book(deps, market, (), set())
    return {"cancelled": [_cancelled_view(c) for c in cancelled], "seq": answer.seq}


async def send_withdraw(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    decoded = decode_params(params, SendWithdrawParams, "optinode_sendWithdraw(withdraw, signature)")
    fields = uints(decoded.withdraw, "withdraw")
    tx = Withdraw(fields["account_id"], fields["amount"], fields["expiry"], fields["nonce"], to_signature(decoded.signature))
    try:
        deps.mempool.check_rate(tx.account_id)
        ack = await deps.submitter.submit(tx)
    except IntakeRejected as rejected:
        raise _refused(rejected.reason, str(rejected)) from None
    except Rejected as rejected:
        raise _refused(rejected.code.name, str(rejected)) from None
    deps.hub.publish("account", tx.account_id, lambda: account_view(deps.engine, tx.account_id))
    return {"seq": ack.seq, "status": "accepted"}


def _account_id(deps: RpcDeps, value: Any) -> int:
    if isinstance(value, str) and value.startswith("0x"):
        owner = to_bytes(value, "address", 20)
        account_id = deps.engine.owners.get(owner)
        if account_id is None:
            raise _refused(ErrorCode.ACCOUNT_NOT_FOUND.name, f"no account owned by {value}")
        return account_id
    return to_uint(value, "account", U32_BOUND)


async def get_account_method(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    _arity(params, 1, 1, "optinode_getAccount(address or id)")
    account_id = _account_id(deps, params[0])
    view = account_view(deps.engine, account_id)
    if view is None:
        raise _refused(ErrorCode.ACCOUNT_NOT_FOUND.name, f"no account {account_id}")
    return view


async def get_order(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    _arity(params, 1, 1, "optinode_getOrder(hash)")
    order_hash = to_bytes(params[0], "hash", 32)
    record = deps.engine.history.get(order_hash)
    revised = deps.engine.revisions.get(order_hash)
    live = deps.engine.matcher.get(order_hash)
    if record is not None:
        view = order_view(record)
    elif revised is not None or live is not None:  # (a store written before the order history existed)
        view = {"hash": _hex(order_hash), "fills": [], "filled": 0, "reason": None}
    else:
        known = deps.orders.get(order_hash)  # refused or withdrawn from the mempool since the node started
        if known is None:
            raise _refused("UNKNOWN_ORDER", f"no order 0x{order_hash.hex()} was accepted (within the retention) or answered since the node started")
        return known
    if revised is not None:  # a rebuild re-applied it (docs/sequencer.md, "Rebuilding batches"): what holds now
        view.update({"status": revised.status, "reason": revised.reason, "fills": _fill_dicts(revised.fills),
                     "filled": sum(f.size for f in revised.fills), "seq": revised.seq, "revised": True})
    if live is not None:  # the book's own figures for what rests
        view.update(status=_resting_view(live)["status"], remaining=live.remaining)
    return view


def _market(deps: RpcDeps, value: Any) -> int:
    market = to_uint(value, "market", U8_BOUND)
    if market >= len(deps.engine.matcher.books):
        raise _refused(ErrorCode.MARKET_NOT_FOUND.name, f"no market {market}")
    return market


async def get_book(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    _arity(params, 1, 2, "optinode_getBook(market [, depth])")
    depth = to_uint(params[1], "depth", MAX_DEPTH + 1) if len(params) == 2 else 20
    return book_view(deps.engine, _market(deps, params[0]), depth)


async def get_batch(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    _arity(params, 1, 1, "optinode_getBatch(n)")
    journal = deps.engine.journal
    batch = journal.batch(to_uint(params[0], "n"))
    if batch is None:
        raise _refused("UNKNOWN_BATCH", f"batch {params[0]} is not cut yet")
    return {"index": batch.index, "firstSeq": batch.first_seq, "endSeq": batch.end_seq, "recordCount": batch.record_count,
            "dataBytes": batch.data_bytes, "stateRoot": _hex(batch.state_root), "depositsDone": batch.deposits_done,
            "forcedDone": batch.forced_done, "final": batch.index <= journal.last_final(),
            "records": [_hex(r) for r in journal.batch_records(batch)]}


async def status(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    _arity(params, 0, 0, "optinode_status()")
    e = deps.engine
    return {
        "l2": {"nextSeq": e.next_seq, "systemTime": e.state.time, "l1Time": e.l1_time, "stateRoot": _hex(e.commitment.update(e.state)),
               "pendingEntries": e.pending.entries, "pendingRecords": e.pending.records},
        "batches": {"lastCut": e.batch_index - 1, "lastFinal": e.journal.last_final()},
        "l1": {"head": e.head.number if e.head else None, "confirmations": e.confirmations},
        "queues": {"depositsDone": e.state.deposits_done, "depositsSeen": len(e.deposits), "forcedDone": e.state.forced_done, "forcedSeen": len(e.forced)},
        "markets": [{"id": i, "name": m.name, "price": e.state.markets[i].price, "stepSize": m.step_size, "tickSize": m.tick_size}
                    for i, m in enumerate(e.state.config.markets)],
    }


async def subscribe(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    if subscriber is None:
        raise RpcError(METHOD_NOT_FOUND, "optinode_subscribe needs a WebSocket connection")
    _arity(params, 1, 2, 'optinode_subscribe("fills" [, {"account": id}]) | ("book", {"market": m [, "depth": d]}) | ("account", {"account": id})')
    kind, options = params[0], params[1] if len(params) == 2 else {}
    if not isinstance(options, dict):
        raise params_error("subscription options must be an object")
    if kind == "fills" and set(options) <= {"account"}:
        key = _account_id(deps, options["account"]) if "account" in options else None
        return deps.hub.add(subscriber, "fills", key)
    if kind == "book" and "market" in options and set(options) <= {"market", "depth"}:
        market = _market(deps, options["market"])
        depth = to_uint(options.get("depth", 20), "depth", MAX_DEPTH + 1)
        sid = deps.hub.add(subscriber, "book", market, depth)
        subscriber.after_reply.append((sid, book_view(deps.engine, market, depth)))  # the current book, right after the id
        return sid
    if kind == "account" and set(options) == {"account"}:
        return deps.hub.add(subscriber, "account", _account_id(deps, options["account"]))
    raise params_error('subscribe to "fills" [{account}], "book" {market, depth} or "account" {account}')


async def unsubscribe(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    if subscriber is None:
        raise RpcError(METHOD_NOT_FOUND, "optinode_unsubscribe needs a WebSocket connection")
    _arity(params, 1, 1, "optinode_unsubscribe(subscription id)")
    if not isinstance(params[0], str):
        raise params_error("the subscription id is a string")
    return deps.hub.remove(subscriber, params[0])


async def get_command(deps: RpcDeps, params: list[Any], subscriber: Subscriber | None) -> Any:
    _arity(params, 1, 1, "optinode_getCommand(seq)")
    status = deps.engine.command_status(to_uint(params[0], "seq"))
    if status is None:
        raise _refused("UNKNOWN_COMMAND", f"no command {params[0]} in the log")
    return status


METHODS: dict[str, Callable[[RpcDeps, list[Any], Subscriber | None], Awaitable[Any]]] = {
    "optinode_getCommand": get_command,
    "optinode_sendOrder": send_order,
    "optinode_cancelOrder": cancel_order,
    "optinode_sendWithdraw": send_withdraw,
    "optinode_getAccount": get_account_method,
    "optinode_getOrder": get_order,
    "optinode_getBook": get_book,
    "optinode_getBatch": get_batch,
    "optinode_status": status,
    "optinode_subscribe": subscribe,
    "optinode_unsubscribe": unsubscribe,
}


# --- the JSON-RPC envelope -------------------------------------------------------------------------


def _error(rid: Any, failure: RpcError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": failure.code, "message": failure.message}
    if failure.data is not None:
        error["data"] = failure.data
    return {"jsonrpc": "2.0", "id": rid, "error": error}


def _valid_id(request: dict[str, Any]) -> bool:
    rid = request.get("id")
    return rid is None or isinstance(rid, str) or (isinstance(rid, (int, float)) and not isinstance(rid, bool))


Methods = dict[str, Callable[[Any, list[Any], Any], Awaitable[Any]]]


async def _call(deps: Any, request: Any, subscriber: Subscriber | None, methods: Methods = METHODS) -> dict[str, Any] | None:
    """One request object -> its response (None for a notification, a request without an id)."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str) or not _valid_id(request):
        return _error(None, RpcError(INVALID_REQUEST, "invalid request: {jsonrpc: \"2.0\", method, params?, id?}"))
    rid, notification = request.get("id"), "id" not in request
    method = methods.get(request["method"])
    params = request.get("params", [])
    try:
        if method is None:
            raise RpcError(METHOD_NOT_FOUND, f"method {request['method'][:64]!r} not found")
        if isinstance(params, dict):
            raise params_error("params must be an array (positional)")
        if not isinstance(params, list):
            raise params_error("params must be an array")
        result = await method(deps, params, subscriber)
    except RpcError as failure:
        response = _error(rid, failure)
    except Exception:  # noqa: BLE001 - a bug: answered, logged, and the server stays up
        log.exception("internal error in %s", request["method"][:64])
        response = _error(rid, RpcError(INTERNAL_ERROR, "internal error"))
    else:
        response = {"jsonrpc": "2.0", "id": rid, "result": result}
    return None if notification else response


def _typed_orders(body: bytes) -> list[SendOrderRequest] | SendOrderRequest | None:
    """The body as `optinode_sendOrder` requests only, decoded by type in one pass (the hot path:
    a market maker's batch of orders), or None: anything else takes the general path."""
    try:
        typed = ORDER_REQUESTS.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):  # (not only orders, not JSON, a nesting bomb: decoded again, answered there)
        return None
    return typed if not isinstance(typed, list) or 0 < len(typed) <= MAX_BATCH else None


_ENCODER = msgspec.json.Encoder()  # (one, reused: its buffer too)
_encode_one = _ENCODER.encode


def _encode(responses: list[Any]) -> bytes | None:
    answered = [r for r in responses if r is not None]
    return _encode_one(answered) if answered else None


async def dispatch(deps: Any, body: bytes, subscriber: Subscriber | None = None, methods: Methods = METHODS) -> bytes | None:
    """A raw body (one request or a batch) -> the raw response (None: nothing to answer). ``methods``
    (default: this API's) lets another node serve its own methods with the same envelope (`watch_rpc`)."""
    if methods is METHODS:
        typed = _typed_orders(body)
        if isinstance(typed, list):
            return _encode(await _call_orders(deps, [(r.id, r.id is not msgspec.UNSET, r.params) for r in typed]))
        if typed is not None:
            [response] = await _call_orders(deps, [(typed.id, typed.id is not msgspec.UNSET, typed.params)])
            return None if response is None else _encode_one(response)
    try:
        request = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # (RecursionError: nested deeper than the decoder goes)
        return _encode_one(_error(None, RpcError(PARSE_ERROR, "parse error: the body is not JSON")))
    if isinstance(request, list):
        if not request:
            return _encode_one(_error(None, RpcError(INVALID_REQUEST, "an empty batch")))
        if len(request) > MAX_BATCH:
            return _encode_one(_error(None, RpcError(INVALID_REQUEST, f"a batch holds at most {MAX_BATCH} requests")))
        responses: list[dict[str, Any] | None] = []
        i = 0
        while i < len(request):  # in order: one client's orders keep their order
            j = i
            while j < len(request) and methods is METHODS and _is_send_order(request[j]):
                j += 1
            if j > i:
                responses += await _call_orders(deps, [(r.get("id"), "id" in r, r["params"]) for r in request[i:j]])
                i = j
            else:
                responses.append(await _call(deps, request[i], subscriber, methods))
                i += 1
        return _encode(responses)
    response = await _call(deps, request, subscriber, methods)
    return None if response is None else _encode_one(response)


# --- the server (services/http_server.py) ------------------------------------------------------------


def routes(deps: RpcDeps) -> Routes:
    async def on_websocket(ws: WebSocket) -> None:
        await _websocket(deps, ws)

    return Routes(rpc=lambda body: dispatch(deps, body), metrics=deps.engine.metrics.expose, websocket=on_websocket)


async def _websocket(deps: RpcDeps, ws: WebSocket) -> None:
    """One WebSocket connection: requests answered in order, notifications pushed between them by
    one sender (the pump), so an answer and the notifications after it keep their order."""
    subscriber = Subscriber()
    try:
        async with trio.open_nursery() as nursery:
            subscriber.on_overflow = nursery.cancel_scope.cancel

            async def pump() -> None:
                async with subscriber.receive:
                    async for note in subscriber.receive:
                        await ws.send_text(note.decode())
                nursery.cancel_scope.cancel()

            nursery.start_soon(pump)
            while (body := await ws.receive()) is not None:
                answer = await dispatch(deps, body, subscriber)
                if answer is not None:
                    try:
                        subscriber.send.send_nowait(answer)
                    except (trio.WouldBlock, trio.ClosedResourceError):
                        break
                for sid, result in subscriber.after_reply:
                    subscriber.push(sid, result)
                subscriber.after_reply.clear()
            nursery.cancel_scope.cancel()
    finally:
        deps.hub.drop(subscriber)
    if subscriber.overflowed:  # (a close frame if the socket still takes one, else the connection just ends)
        with trio.move_on_after(1.0):
            await ws.close(1008, "slow consumer: notifications overflowed")


async def run(deps: RpcDeps, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled; ``task_status.started(port)``."""
    async with trio.open_nursery() as nursery:
        await nursery.start(_feed, deps)
        port = await nursery.start(serve, routes(deps), deps.host, deps.port)
        log.info("JSON-RPC on http://%s:%d (WebSocket on ws://%s:%d/)", deps.host, port, deps.host, port)
        task_status.started(port)
