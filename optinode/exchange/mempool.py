"""Mempool intake: the checks an order passes before the engine sees it, cheapest first.

1. per-account limits: items per request, a token bucket of items per second, pending items;
2. stateless checks: the spec's field table (`fields.find_field_error`: types, bounds, lengths), a known market, not expired
   against the spec's system time;
3. signature recovery across both cores, in trio-parallel worker processes (`workers=`, what the
   sequencer runs) or in worker threads (the default). Both call the spec's `compute_signer` and
   fill the spec's memo of recovered signers (`recover_signer.remember` for a process's answers), so
   the engine's `state_transition` finds each signature already checked. Processes win under load:
   coincurve releases the GIL inside libsecp256k1, but a recovery thread needs the GIL back after
   each of its C calls, and while the engine runs Python it waits up to the interpreter's switch
   interval (5 ms) each time, so threads recover ~1,000 signatures/s next to a busy engine
   (docs/benchmarks.md, "Intake");
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

from optinode.spec.crypto import compute_signer, recover_signer
from optinode.spec.eip712 import compute_order_digest
from optinode.spec.errors import ErrorCode, InvalidInput, InvalidTransaction
from optinode.spec.state import Account, State, require_account
from optinode.spec.fields import find_field_error
from optinode.spec.transition import check_nonce, check_nonce_floor
from optinode.spec.types import Order

from .cancel import SignedCancelAll, SignedCancelOrder, compute_cancel_digest, find_cancel_error
from .orders import CancelAll, CancelOrder, Placement, Reason, reason_name


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_request_items: int = 200  # orders (or cancels) in one request
    items_per_second: float = 1_000.0  # per account, sustained
    burst: int = 2_000  # per account, the token bucket's depth
    max_pending_per_account: int = 2_000  # queued for the engine, per account
    recovery_chunk: int = 128  # signatures per worker call (fewer hand-overs to a busy engine: docs/benchmarks.md)
    workers: int = 2  # threads or processes recovering signatures at once (the machine's cores)


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


class Mempool:
    """Intake for signed orders in front of the engine (which calls `next_batch`)."""

    def __init__(self, state: State, limits: Limits = Limits(), *, clock: Callable[[], float] = time.monotonic,
                 workers: Any = None) -> None:
        """`workers`: a `trio_parallel.WorkerContext` to recover signatures in (None: worker threads)."""
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

    def check_stateless(self, placement: Placement) -> bytes:
        """Shape, ranges, market, expiry and the account's rate; returns the order's hash."""
        order = placement.order
        problem = find_field_error(order, Order)  # the spec's field table: types, bounds, signature length
        if problem is not None:
            raise IntakeRejected(ErrorCode.MALFORMED, problem)
        if order.market >= len(self.state.config.markets):
            raise IntakeRejected(ErrorCode.MARKET_NOT_FOUND, f"market {order.market}")
        if order.expiry < self.state.time:
            raise IntakeRejected(ErrorCode.EXPIRED, f"expiry {order.expiry} is before the system time {self.state.time}")
        self.check_rate(order.account_id)
        return compute_order_digest(self.state.config.domain_separator, order)

    def check_rate(self, account_id: int) -> None:
        if not self.rate.take(account_id, 1):
            raise IntakeRejected(Reason.RATE_LIMITED, f"account {account_id}: over {self.limits.items_per_second:g} items/s")

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

    async def _recover_chunk(self, pairs: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
        if self.workers is None:
            return await trio.to_thread.run_sync(recover_chunk, pairs, limiter=self.limiter)
        signers = await self.workers.run_sync(compute_chunk, pairs, limiter=self.limiter)
        remember = recover_signer.remember
        for (digest, signature), signer in zip(pairs, signers, strict=True):
            remember(digest, signature, signer)
        return signers

    async def recover(self, pairs: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
        """Signers of many (digest, signature) pairs, on worker threads or processes in chunks."""
        chunk = self.limits.recovery_chunk
        if len(pairs) <= chunk:
            return await self._recover_chunk(pairs)
        results: list[list[bytes | None]] = [[] for _ in range(0, len(pairs), chunk)]

        async def one(i: int) -> None:
            results[i] = await self._recover_chunk(pairs[i * chunk:(i + 1) * chunk])

        async with trio.open_nursery() as nursery:
            for i in range(len(results)):
                nursery.start_soon(one, i)
        return [signer for part in results for signer in part]

    # --- intake and hand-off -----------------------------------------------------------------------

    async def submit(self, placements: Sequence[Placement]) -> list[IntakeRejected | bytes]:
        """Check a request's orders and queue the good ones for the engine. Returns, per order, its
        hash (queued) or why it was turned away."""
        self.check_request(placements)
        outcomes: list[IntakeRejected | bytes] = []
        to_recover: list[int] = []
        for i, placement in enumerate(placements):
            try:
                outcomes.append(self.check_stateless(placement))
                to_recover.append(i)
            except IntakeRejected as rejected:
                outcomes.append(rejected)
        signers = await self.recover(
            [(outcomes[i], placements[i].order.signature) for i in to_recover]  # type: ignore[misc]
        )
        for i, signer in zip(to_recover, signers):
            placement, order_hash = placements[i], outcomes[i]
            try:
                self.check_replay(placement, order_hash, signer)  # type: ignore[arg-type]
                self.queue.put(placement.order.account_id, (placement, order_hash))
            except IntakeRejected as rejected:
                outcomes[i] = rejected
                continue
            self.pending.add(order_hash)  # type: ignore[arg-type]
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
