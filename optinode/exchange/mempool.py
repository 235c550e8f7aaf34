"""Mempool intake: the checks an order passes before the engine sees it, cheapest first.

1. per-account limits: items per request, a token bucket of items per second, pending items;
2. stateless checks, in the same worker call as the recovery (`check_orders`): the spec's field
   table (`fields.find_field_error`: types, bounds, lengths) and the order's EIP-712 digest; then,
   here, a known market and not expired against the spec's system time;
3. signature recovery across both cores, in the intake's worker processes (`workers=` a
   `worker_pool.WorkerPool`, what the sequencer runs: several chunks queued in each worker, so that
   none waits for the engine's event loop between chunks; a trio-parallel context also works) or in
   worker threads (the default). All call the spec's `compute_signer`; the
   answers (digest and signer) are remembered in this process's memos of the spec
   (`compute_order_digest.remember_key`, `recover_signer.remember`), so the engine's
   `state_transition` finds each order hashed and its signature checked. Processes win under load:
   coincurve releases the GIL inside libsecp256k1, but a recovery thread needs the GIL back after
   each of its C calls, and while the engine runs Python it waits up to the interpreter's switch
   interval (5 ms) each time, so threads recover ~1,000 signatures/s next to a busy engine
   (docs/benchmarks.md, "Intake"). The stateless checks run in the workers too, so that the
   engine's thread (which also runs the matching) spends ~3.5 µs less per order and hands the
   workers their next chunk sooner;
4. replay checks against the engine's state with the spec's own functions: the owner
   (`WRONG_SIGNER`), the nonce window (`check_nonce`: `NONCE_TOO_LOW`, `NONCE_TOO_HIGH`, `NONCE_USED`), and
   the same order pending twice;
5. a fair queue: one round-robin turn per account, so a flood from one account delays only itself.

Signed cancels (`check_cancel`) are verified the same way and go to the engine at once, ahead of
queued orders; an order they cancel that is still queued is dropped here.

Every rejection is a `IntakeRejected` carrying the spec `ErrorCode` or the exchange's `Reason`. The engine
stays the judge: everything here is re-checked by the matcher and the spec; the mempool only
refuses early and cheaply. See docs/matching.md, "Intake".
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import trio
from msgspec.structs import astuple

from optinode.spec.crypto import compute_signer, recover_signer
from optinode.spec.eip712 import compute_order_digest
from optinode.spec.errors import ErrorCode, InvalidInput, InvalidTransaction
from optinode.spec.state import Account, State, require_account
from optinode.spec.fields import find_field_error
from optinode.spec.transition import check_nonce, check_nonce_floor
from optinode.spec.types import Order

from .cancel import SignedCancelAll, SignedCancelOrder, compute_cancel_digest, find_cancel_error
from .orders import CancelAll, CancelOrder, Placement, Reason, reason_name
from .worker_pool import WorkerLost, WorkerPool, open_worker_pool


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_request_items: int = 200  # orders (or cancels) in one request
    items_per_second: float = 1_000.0  # per account, sustained
    burst: int = 2_000  # per account, the token bucket's depth
    max_pending_per_account: int = 2_000  # queued for the engine, per account
    recovery_chunk: int = 128  # signatures per worker call (fewer hand-overs to a busy engine: docs/benchmarks.md)
    workers: int = 2  # threads or processes recovering signatures at once (the machine's cores)
    jobs_per_worker: int = 4  # chunks queued in each worker process at once (`open_intake_pool`)
    worker_nice: int = 0  # the workers' scheduling niceness: above 0, the engine's thread comes first on a busy core


# What an intake worker imports before it says it is ready (the checks' code, not the first orders' time).
WORKER_PRELOAD = ("optinode.exchange.mempool",)


def open_intake_pool(limits: Limits = Limits()):
    """The worker processes of the intake, as the sequencer runs them (and bench/sequencer.py measures
    them): `limits.workers` processes, `limits.jobs_per_worker` chunks queued in each."""
    return open_worker_pool(limits.workers, max_jobs=limits.jobs_per_worker, preload=WORKER_PRELOAD, nice=limits.worker_nice)


async def run_intake_pool(limits: Limits = Limits(), *, task_status: trio.TaskStatus[WorkerPool] = trio.TASK_STATUS_IGNORED) -> None:
    """`open_intake_pool` as a service (`pool = await nursery.start(run_intake_pool, limits)`): the
    pool, once every worker is ready; closed, every worker reaped, when the nursery is cancelled."""
    async with open_intake_pool(limits) as pool:
        task_status.started(pool)
        await trio.sleep_forever()


class IntakeRejected(InvalidInput):
    """An item turned away at intake, with the name a client sees (spec ErrorCode or exchange Reason)."""

    def __init__(self, reason: Reason | ErrorCode, detail: str = "") -> None:
        self.reason = reason_name(reason)
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class TokenBucket:
    """Per-account rate limit: `rate` tokens per second up to `burst`; one token per item."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.buckets: dict[int, tuple[float, float]] = {}  # account -> (tokens, at)

    def take(self, account_id: int, count: int) -> bool:
        now = self.clock()
        tokens, at = self.buckets.get(account_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < count:
            self.buckets[account_id] = (tokens, now)
            return False
        self.buckets[account_id] = (tokens - count, now)
        return True


class FairQueue:
    """Per-account FIFO queues served round-robin, one item per account per turn."""

    def __init__(self, max_per_account: int) -> None:
        self.max_per_account = max_per_account
        self.queues: dict[int, deque] = {}
        self.turns: deque[int] = deque()  # accounts with something queued, in serving order
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def pending(self, account_id: int) -> int:
        queue = self.queues.get(account_id)
        return len(queue) if queue else 0

    def put(self, account_id: int, item: object) -> None:
        queue = self.queues.get(account_id)
        if queue is None:
            queue = self.queues[account_id] = deque()
            self.turns.append(account_id)
        if len(queue) >= self.max_per_account:
            raise IntakeRejected(Reason.QUEUE_FULL, f"account {account_id} has {len(queue)} items waiting")
        queue.append(item)
        self.size += 1

    def pop(self, max_items: int) -> list:
        """Up to `max_items`, taking one from each waiting account in turn."""
        out = []
        while self.turns and len(out) < max_items:
            account_id = self.turns.popleft()
            queue = self.queues[account_id]
            out.append(queue.popleft())
            if queue:
                self.turns.append(account_id)
            else:
                del self.queues[account_id]
        self.size -= len(out)
        return out


def recover_chunk(pairs: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
    """Recover the signers of (digest, signature) pairs (runs in a worker thread, into the spec's memo)."""
    return [recover_signer(digest, signature) for digest, signature in pairs]


def compute_chunk(pairs: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
    """The same in a worker process (whose memo is not the engine's: the answers are remembered there)."""
    return [compute_signer(digest, signature) for digest, signature in pairs]


def check_orders(domain_separator: bytes, orders: Sequence[tuple]) -> list[tuple[bytes, bytes | None] | str]:
    """The stateless checks of signed orders, in a worker (process or thread): each order's fields
    (`msgspec.structs.astuple`, cheaper to hand over than the struct) against the spec's field table,
    then its EIP-712 digest and its signer (None: no key recovers). Returns per order (digest,
    signer), or the field problem. Reads nothing of the engine's state and fills no memo here: the
    caller remembers the answers in its own process (`Mempool.check_orders`)."""
    out: list[tuple[bytes, bytes | None] | str] = []
    digest_of = compute_order_digest.__wrapped__  # uncached: this process's memo is not the engine's
    for fields in orders:
        order = Order(*fields)
        problem = find_field_error(order, Order)  # types, bounds, signature length
        if problem is None:
            digest = digest_of(domain_separator, order)
            out.append((digest, compute_signer(digest, order.signature)))
        else:
            out.append(problem)
    return out


def split_evenly(count: int, most: int) -> list[range]:
    """`range(count)` cut into the fewest parts of at most `most` items, of nearly equal sizes (200
    items at most 128 a part: 100 + 100, so that two workers finish together, not 128 then 72)."""
    if count <= 0:
        return []
    parts = -(-count // max(1, most))
    size = -(-count // parts)
    return [range(start, min(count, start + size)) for start in range(0, count, size)]


class Mempool:
    """Intake for signed orders in front of the engine (which calls `next_batch`)."""

    def __init__(self, state: State, limits: Limits = Limits(), *, clock: Callable[[], float] = time.monotonic,
                 workers: Any = None) -> None:
        """`workers`: a `WorkerPool` (what the sequencer runs) or a `trio_parallel.WorkerContext` to
        check and recover in (None: worker threads)."""
        self.workers = workers
        self.state = state  # the engine's state, read between awaits (the engine writes it on this thread)
        self.limits = limits
        self.rate = TokenBucket(limits.items_per_second, limits.burst, clock)
        self.queue = FairQueue(limits.max_pending_per_account)
        self.pending: set[bytes] = set()  # hashes of queued orders
        self.withdrawn: set[bytes] = set()  # queued orders cancelled before the engine took them
        self.floors: dict[int, int] = {}  # cancel-all floors seen at intake (the matcher keeps its own)
        self.limiter = trio.CapacityLimiter(limits.workers)
        self._arrived = trio.Event()

    # --- the checks ------------------------------------------------------------------------------

    def check_request(self, placements: Sequence[Placement]) -> None:
        """A request as a whole: its size (each item's account is rate-limited in `check_stateless`)."""
        if len(placements) > self.limits.max_request_items:
            raise IntakeRejected(Reason.REQUEST_TOO_LARGE, f"{len(placements)} items, at most {self.limits.max_request_items}")

    def check_account_rate(self, order: Order) -> None:
        """Before any work on the order: an Order with an integer account id (the rest of its fields
        are checked with its signature, `check_orders`), within its account's rate."""
        if type(order) is not Order or type(order.account_id) is not int:
            raise IntakeRejected(ErrorCode.MALFORMED, find_field_error(order, Order) or "not an order")
        self.check_rate(order.account_id)

    def check_rate(self, account_id: int) -> None:
        if not self.rate.take(account_id, 1):
            raise IntakeRejected(Reason.RATE_LIMITED, f"account {account_id}: over {self.limits.items_per_second:g} items/s")

    def check_checked(self, order: Order, answer: tuple[bytes, bytes | None] | str) -> tuple[bytes, bytes | None]:
        """A worker's answer for `order` (`check_orders`), then its market and expiry: its hash and signer."""
        if type(answer) is str:
            raise IntakeRejected(ErrorCode.MALFORMED, answer)
        if order.market >= len(self.state.config.markets):
            raise IntakeRejected(ErrorCode.MARKET_NOT_FOUND, f"market {order.market}")
        if order.expiry < self.state.time:
            raise IntakeRejected(ErrorCode.EXPIRED, f"expiry {order.expiry} is before the system time {self.state.time}")
        return answer  # type: ignore[return-value]

    def check_signer(self, account_id: int, signer: bytes | None) -> Account:
        """The account exists and `signer` (None: no key recovered) is its owner."""
        if signer is None:
            raise IntakeRejected(ErrorCode.BAD_SIGNATURE)
        account = require_account(self.state, account_id)
        if account is None:
            raise IntakeRejected(ErrorCode.ACCOUNT_NOT_FOUND, f"account {account_id}")
        if signer != account.owner:
            raise IntakeRejected(ErrorCode.WRONG_SIGNER, f"signed by 0x{signer.hex()}")
        return account

    def check_replay(self, placement: Placement, order_hash: bytes, signer: bytes | None) -> None:
        """Signer, account and nonce against the engine's state, with the spec's own functions."""
        order = placement.order
        account = self.check_signer(order.account_id, signer)
        try:
            check_nonce(account, order.nonce)
        except InvalidTransaction as invalid:
            raise IntakeRejected(invalid.code, f"nonce {order.nonce}") from None
        if order.nonce < self.floors.get(order.account_id, 0):
            raise IntakeRejected(Reason.NONCE_CANCELLED, f"nonce {order.nonce} is below the account's cancel-all floor")
        if order_hash in self.pending:
            raise IntakeRejected(Reason.DUPLICATE_ORDER, "already waiting for the engine")

    async def _in_workers(self, fn: Callable, *args: Any) -> Any:
        if self.workers is None:
            return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)
        return await self.workers.run_sync(fn, *args, limiter=self.limiter)

    async def _fan_out(self, fn: Callable, items: Sequence, *args: Any) -> list:
        """`fn(*args, part)` over `items` cut into parts of at most `recovery_chunk`, on the
        workers side by side; the answers in order."""
        parts = split_evenly(len(items), self.limits.recovery_chunk)
        if type(self.workers) is WorkerPool:  # every part queued at once; one wake-up when all are answered
            answers = await self.workers.map(fn, [items[part.start:part.stop] for part in parts], *args)
            return [answer for part in answers for answer in part]
        if len(parts) <= 1:
            return await self._in_workers(fn, *args, items) if parts else []
        results: list[list] = [[] for _ in parts]

        async def one(i: int) -> None:
            results[i] = await self._in_workers(fn, *args, [items[k] for k in parts[i]])

        async with trio.open_nursery() as nursery:
            for i in range(len(parts)):
                nursery.start_soon(one, i)
        return [answer for part in results for answer in part]

    async def recover(self, pairs: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
        """Signers of many (digest, signature) pairs, on worker threads or processes in chunks."""
        if self.workers is None:
            return await self._fan_out(recover_chunk, pairs)
        try:
            signers = await self._fan_out(compute_chunk, pairs)
        except WorkerLost:  # the worker died with it (killed, out of memory): the same answers here
            signers = compute_chunk(pairs)
        remember = recover_signer.remember
        for (digest, signature), signer in zip(pairs, signers, strict=True):
            remember(digest, signature, signer)
        return signers

    async def check_orders(self, orders: Sequence[Order]) -> list[tuple[bytes, bytes | None] | str]:
        """`check_orders` of many orders on the workers (a field value a worker process cannot be
        handed is checked here instead: it is malformed, or the same bug raises here)."""
        fields = [astuple(order) for order in orders]
        domain = self.state.config.domain_separator
        try:
            return await self._fan_out(check_orders, fields, domain)
        except Exception:  # noqa: BLE001 - see the docstring
            return check_orders(domain, fields)

    # --- intake and hand-off -----------------------------------------------------------------------

    async def submit(self, placements: Sequence[Placement]) -> list[IntakeRejected | bytes]:
        """Check a request's orders and queue the good ones for the engine. Returns, per order, its
        hash (queued) or why it was turned away."""
        self.check_request(placements)
        outcomes: list[IntakeRejected | bytes] = [b""] * len(placements)
        to_check: list[int] = []
        for i, placement in enumerate(placements):
            try:
                self.check_account_rate(placement.order)
            except IntakeRejected as rejected:
                outcomes[i] = rejected
                continue
            to_check.append(i)
        answers = await self.check_orders([placements[i].order for i in to_check])
        domain = self.state.config.domain_separator
        remember_digest, remember_signer = compute_order_digest.remember_key, recover_signer.remember
        for i, answer in zip(to_check, answers, strict=True):
            placement = placements[i]
            order = placement.order
            try:
                order_hash, signer = self.check_checked(order, answer)
                self.check_replay(placement, order_hash, signer)
                self.queue.put(order.account_id, (placement, order_hash))
            except IntakeRejected as rejected:
                outcomes[i] = rejected
                continue
            # What the worker computed, for the engine's own checks (spec.transition.resolve_order).
            remember_digest((domain, order), order_hash)
            remember_signer(order_hash, order.signature, signer)
            self.pending.add(order_hash)
            outcomes[i] = order_hash
        if len(self.queue):
            self._arrived.set()
        return outcomes

    async def next_batch(self, max_items: int) -> list[tuple[Placement, bytes]]:
        """Wait for queued orders and take up to `max_items`, fairly across accounts (orders
        cancelled while they waited are dropped here)."""
        batch: list[tuple[Placement, bytes]] = []
        while not batch:
            while not len(self.queue):
                self._arrived = trio.Event()
                await self._arrived.wait()
            for placement, order_hash in self.queue.pop(max_items):
                self.pending.discard(order_hash)
                if order_hash in self.withdrawn:
                    self.withdrawn.discard(order_hash)
                elif placement.order.nonce >= self.floors.get(placement.order.account_id, 0):
                    batch.append((placement, order_hash))
        return batch

    async def check_cancel(self, message: SignedCancelOrder | SignedCancelAll) -> tuple[CancelOrder | CancelAll, bool]:
        """Verify an owner-signed cancel. Returns the book command for the engine to apply at once
        (cancels do not queue behind orders: a market maker's cancel must not wait behind a flood)
        and whether it named an order still queued here, which is then dropped before the engine
        sees it (the engine's matcher will not know that order: UnknownOrder, nothing to log)."""
        problem = find_cancel_error(message)
        if problem is not None:
            raise IntakeRejected(ErrorCode.MALFORMED, problem)
        self.check_rate(message.account_id)
        digest = compute_cancel_digest(self.state.config.domain_separator, message)
        [signer] = await self.recover([(digest, message.signature)])
        account = self.check_signer(message.account_id, signer)
        if type(message) is SignedCancelOrder:
            queued = message.order_hash in self.pending and message.order_hash not in self.withdrawn
            if queued:
                self.withdrawn.add(message.order_hash)
            return CancelOrder(message.account_id, message.order_hash), queued
        try:
            # The spec's floor rules: a floor the state would not raise is refused here, before this
            # mempool drops anything below it (docs/matching.md, "Cancels and expiry").
            check_nonce_floor(account, message.nonce_below)
        except InvalidTransaction as invalid:
            raise IntakeRejected(invalid.code, f"nonce floor {message.nonce_below} (the account's is {account.nonce_base})") from None
        self.floors[message.account_id] = max(self.floors.get(message.account_id, 0), message.nonce_below)
        return CancelAll(message.account_id, message.nonce_below, message.signature), False
