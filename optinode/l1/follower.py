"""The L1 follower: reads the Rollup, Bridge and DisputeGame logs block range by block range, from
the deployment block, and turns them into typed events; survives reorgs and restarts.

    follower = Follower(rpc, store, {bridge: "Bridge", rollup: "Rollup", game: "DisputeGame"}, start_block=n)
    outputs, caught_up = await follower.poll()     # one step; `run()` is the trio service around it

Outputs, in chain order: the `events.L1Event`s of the blocks read, then a `Head` (the last block now
fully read, with its timestamp: the L1 time the sequencer may use); or, when blocks it had read left
the canonical chain, a `Reorg` (the common ancestor and the events that the removed blocks had
produced, newest first) so that each consumer unwinds what it derived from them, after which the
follower reads the new chain from the ancestor on.

How it checks the chain (op-node's ``l1_traversal``): every block it reads is recorded (number, hash,
parent hash) for the last ``window`` blocks; a new range must start with a block whose parent hash is
the recorded hash of the last one, every log must carry the hash of the header read for its block,
and each poll first checks that the recorded tip is still canonical. Every log of an answer must
also lie in the range asked, come from a followed contract, hold a position no other log holds, and
carry the hash of the header followed at its height (for logs below the recorded window, the header
of their block is read); with a ``check`` endpoint the head and the full log set are compared on it
too (docs/verifier.md, "A hostile L1 endpoint"). Failures are classified:

- *temporary* — the endpoint is down (the RPC client retries), or the chain moved between two reads
  (a header missing, a log's block hash not matching a header that changed meanwhile): nothing is
  written, the next poll retries;
- *bad endpoint* — an answer the chain cannot have given (see above), or the check endpoint
  disagreeing: alerted (``l1_bad_logs``, ``l1_endpoints_disagree``), nothing written, retried;
- *reset* — a recorded block is no longer canonical: walk back over the recorded hashes to the
  highest block that still is (the common ancestor), delete the later blocks and their events in one
  write batch, emit `Reorg`;
- *reset to the start* — no recorded block is canonical, but every block since ``start_block`` is
  recorded (the reorg reaches below the deployment block): unwind everything, read from the start;
- *critical* — no recorded block is canonical any more (a reorg deeper than ``window``):
  `FollowerCritical`; the node stops rather than guess (raise ``reorg_window`` and resync).

Position, block hashes and events live in the store (`optinode.store.keys` L1_*), written with the
position in one batch, so a restart resumes after the last block it had fully read. What it emits
is derived idempotently by its consumers; `stored_events(from_block)` replays what was read, for a
consumer that restarts behind the follower.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, Union

import msgspec
import trio

from optinode.l1.events import EVENT_CODEC, TYPES, L1Event, UnknownLog, decode_log
from optinode.l1.rpc import Block, Log, RpcClient, RpcError, RpcUnavailable
from optinode.logs import alert
from optinode.store import keys
from optinode.store.codec import Codec
from optinode.store.kv import KV

__all__ = ["Follower", "FollowerCritical", "Head", "Reorg", "live_batches_before", "run", "stored_events"]

log = logging.getLogger("optinode.l1.follower")


class Head(msgspec.Struct, frozen=True):
    """Everything up to and including this block has been read and emitted."""

    number: int
    hash: bytes
    timestamp: int


class Reorg(msgspec.Struct, frozen=True):
    """Blocks after ``common_ancestor`` left the chain; ``removed`` are their events, newest first."""

    common_ancestor: int
    removed: tuple[L1Event, ...]


Output = Union[L1Event, Head, Reorg]

BLOCK = Codec(Block)  # recorded blocks: the headers as read
DISAGREE_ALERT_AFTER = 3  # polls in a row the check endpoint disagrees before l1_endpoints_disagree
CHECK_PAUSE = 60  # seconds the follower goes on without a check endpoint that stopped answering
CHECK_MAX_LAG = 16  # blocks the check endpoint's head may lag the primary's before the follower goes on without it


_BACK = {"l1_bad_logs": "l1_logs_ok", "l1_endpoints_disagree": "l1_endpoints_agree", "l1_check_behind": "l1_check_caught_up"}


def _log_set(logs: list[Log]) -> set[tuple[Any, ...]]:
    return {(e.block_number, e.log_index, e.block_hash, e.tx_hash, e.address, e.topics, e.data) for e in logs}


class FollowerCritical(Exception):
    """A reorg deeper than the recorded window, or a deployment block that left the chain."""


class Follower:
    def __init__(
        self,
        rpc: RpcClient,
        store: KV,
        contracts: Mapping[bytes, str],
        *,
        start_block: int,
        confirmation_depth: int = 0,
        window: int = 256,
        max_range: int = 2000,
        check: RpcClient | None = None,
    ) -> None:
        self.rpc = rpc
        self.check = check  # a second endpoint the head and the logs are cross-checked on (None: none)
        self._bad: dict[str, str] = {}  # alert name -> reason, while its episode lasts (alerted once per episode)
        self._disagreeing = 0  # polls in a row the check endpoint disagreed
        self._check_skip_until = float("-inf")  # the check endpoint failed: not asked again before this (trio time)
        self.store = store
        self.contracts = dict(contracts)
        self.start_block = start_block
        self.depth = confirmation_depth
        self.window = window
        self.max_range = max_range

    @classmethod
    def for_deployment(cls, rpc: RpcClient, store: KV, deployment: Any, node: Any, check: RpcClient | None = None) -> Follower:
        """Wired from a `deploy.Deployment` and the config's ``[node]`` (NodeSection)."""
        return cls(
            rpc,
            store,
            deployment.followed_contracts(),
            start_block=deployment.deployment_block,
            confirmation_depth=node.confirmation_depth,
            window=node.reorg_window,
            max_range=node.log_block_range,
            check=check,
        )

    # --- state -----------------------------------------------------------------------------------

    @property
    def position(self) -> Block | None:
        """The last block fully read (None: nothing read yet; reading starts at ``start_block``)."""
        return self.store.get_value(keys.L1_HEAD, BLOCK)

    def recorded_blocks(self) -> list[Block]:
        prefix = keys.prefix_of(keys.Prefix.L1_BLOCK)
        return [BLOCK.decode(v, key=k) for k, v in self.store.iterate(prefix=prefix)]

    def stored_events(self, from_block: int = 0) -> Iterator[L1Event]:
        return stored_events(self.store, from_block)

    # --- one step --------------------------------------------------------------------------------

    async def poll(self) -> tuple[list[Output], bool]:
        """Read at most one range. Returns the outputs and whether the follower is caught up."""
        position = self.position
        if position is not None:
            canonical = await self.rpc.get_block(position.number)
            if canonical is None or canonical.hash != position.hash:
                return [await self._reset()], False
        head = await self.rpc.block_number()
        if self.check is not None:
            head = await self._checked_head(head)
        target = head - self.depth
        first = self.start_block if position is None else position.number + 1
        if first > target:
            return [], True
        last = min(target, first + self.max_range - 1)
        outputs = await self._read_range(first, last, position)
        return outputs, last >= target and bool(outputs)

    async def _read_range(self, first: int, last: int, position: Block | None) -> list[Output]:
        # Headers of the blocks that will be recorded (the last `window` of the range) plus `last`.
        keep_from = max(first, last - self.window + 1)
        headers = await self.rpc.get_blocks(range(keep_from, last + 1))
        if any(h is None for h in headers):
            log.info("L1 blocks %d..%d not all available yet (chain moving); retrying", keep_from, last)
            return []
        blocks: list[Block] = headers  # type: ignore[assignment]
        wrong = next((b for n, b in zip(range(keep_from, last + 1), blocks) if b.number != n), None)
        if wrong is not None:
            self._bad_endpoint("l1_bad_logs", "header_number", f"asked for block {keep_from + blocks.index(wrong)}, served block {wrong.number}")
            return []
        previous = position.hash if position is not None and keep_from == first else None
        for block in blocks:
            if previous is not None and block.parent_hash != previous:
                log.info("L1 block %d does not extend the block before it (reorg under way); retrying", block.number)
                return []
            previous = block.hash
        if self.check is not None and not await self._cross_check_head(blocks[-1]):
            return []
        logs = await self.rpc.get_logs(list(self.contracts), first, last)
        checked = await self._check_logs(logs, first, last, {b.number: b for b in blocks})
        if checked is None:
            return []
        if self.check is not None and not await self._cross_check_logs(checked, first, last):
            return []
        events: list[L1Event] = []
        for entry in checked:
            try:
                events.append(decode_log(self.contracts, entry))
            except UnknownLog as error:
                # A followed contract's log that is none of its ABI's events (or does not decode): not
                # ours to act on, and no endpoint can make it so.
                log.warning("ignoring an L1 log: %s", error)
        self._endpoint_ok("l1_bad_logs")
        tip = blocks[-1]
        with self.store.write_batch(sync=False) as batch:
            for block in blocks:
                batch.put(keys.l1_block(block.number), BLOCK.encode(block))
            for event in events:
                batch.put(keys.l1_event(event.block_number, event.log_index), EVENT_CODEC.encode(event))
            for key, _ in self.store.iterate(start=keys.l1_block(0), stop=keys.l1_block(max(0, tip.number - self.window + 1))):
                batch.delete(key)
            batch.put(keys.L1_HEAD, BLOCK.encode(tip))
        return [*events, Head(tip.number, tip.hash, tip.timestamp)]

    # --- checking what the endpoint serves (docs/verifier.md, "A hostile L1 endpoint") ---------------

    async def _check_logs(self, logs: list[Log], first: int, last: int, headers: dict[int, Block]) -> list[Log] | None:
        """The answer to ``eth_getLogs(first, last)``, in chain order, once every log in it is one the
        chain followed can hold: of a block in the range asked, from a followed contract, at a position
        no other log of the answer takes, and carrying the hash of the header followed at its height
        (headers below the recorded window are read for the blocks that carry logs). None — nothing is
        stored, the next poll asks again — on a reorg under way or an answer that cannot be the
        chain's (a bad endpoint: ``alert=l1_bad_logs``)."""
        live = [entry for entry in logs if not entry.removed]
        positions: set[tuple[int, int]] = set()
        for entry in live:
            where = f"log {entry.log_index} of block {entry.block_number}"
            if not first <= entry.block_number <= last:
                return self._bad_endpoint("l1_bad_logs", "outside_range", f"{where} in the answer for blocks {first}..{last}")
            if entry.address not in self.contracts:
                return self._bad_endpoint("l1_bad_logs", "unfollowed_address", f"{where} is from 0x{entry.address.hex()}, not a followed contract")
            if (entry.block_number, entry.log_index) in positions:
                return self._bad_endpoint("l1_bad_logs", "duplicate", f"{where} is in the answer twice")
            positions.add((entry.block_number, entry.log_index))
        older = sorted({entry.block_number for entry in live} - headers.keys())
        if older:
            fetched = await self.rpc.get_blocks(older)
            if any(block is None for block in fetched):
                log.info("L1 blocks of logs below the recorded window not all available (chain moving); retrying")
                return None
            for number, block in zip(older, fetched):
                assert block is not None
                if block.number != number:
                    return self._bad_endpoint("l1_bad_logs", "header_number", f"asked for block {number}, served block {block.number}")
                headers[number] = block
        for entry in live:
            header = headers[entry.block_number]
            if entry.block_hash != header.hash:
                again = await self.rpc.get_block(entry.block_number)
                if again is None or again.hash != header.hash:
                    log.info("log of L1 block %d has another block hash than its header (reorg under way); retrying", entry.block_number)
                    return None
                # The header at that height is still the one followed: the log is of no block of this chain.
                return self._bad_endpoint("l1_bad_logs", "block_hash", f"log {entry.log_index} of block {entry.block_number} names block "
                                          f"0x{entry.block_hash.hex()}, the chain's is 0x{header.hash.hex()}")
        return sorted(live, key=lambda e: (e.block_number, e.log_index))

    async def _check_call(self, call: Any, *args: Any, default: Any) -> Any:
        """A call to the check endpoint; ``default`` when it is unreachable (its client alerted
        ``l1_lost``; the follower goes on on its primary endpoint alone rather than stop)."""
        if trio.current_time() < self._check_skip_until:
            return default
        try:
            return await call(*args)
        except (RpcUnavailable, RpcError) as error:
            log.warning("the check endpoint did not answer (%s): following the primary endpoint alone for %d s", error, CHECK_PAUSE)
            self._check_skip_until = trio.current_time() + CHECK_PAUSE
            return default

    async def _checked_head(self, head: int) -> int:
        """The head both endpoints have, so that a range is read only once both can answer for it; a
        check endpoint more than ``CHECK_MAX_LAG`` blocks behind is one that does not follow the chain
        (syncing, stuck): ``alert=l1_check_behind`` (once per episode) and the primary's head, rather
        than a watchtower that silently stops watching."""
        check_head = await self._check_call(self.check.block_number, default=None)  # type: ignore[union-attr]
        if check_head is None:  # (skipped for now, or it did not answer)
            return head
        if head - check_head <= CHECK_MAX_LAG:
            self._endpoint_ok("l1_check_behind")
            return min(head, check_head)
        if "l1_check_behind" not in self._bad:
            alert(log, "l1_check_behind", endpoint=self.rpc.name, check=self.check._where(), head=head, check_head=check_head,  # type: ignore[union-attr]
                  action="following the primary endpoint alone until the check endpoint catches up")
            self._bad["l1_check_behind"] = "behind"
        self._check_skip_until = trio.current_time() + CHECK_PAUSE
        return head

    async def _cross_check_head(self, tip: Block) -> bool:
        """Whether the check endpoint has the same block at ``tip``'s height (it commits to every
        recorded block: each names its parent's hash)."""
        assert self.check is not None
        other = await self._check_call(self.check.get_block, tip.number, default=tip)
        if other is not None and other.hash == tip.hash:
            return True
        return self._disagree(f"block {tip.number}: primary 0x{tip.hash.hex()}, check "
                              f"{'none' if other is None else '0x' + other.hash.hex()}")

    async def _cross_check_logs(self, logs: list[Log], first: int, last: int) -> bool:
        """Whether the check endpoint serves the same logs of the followed contracts for the range
        (a log forged, altered or left out by either endpoint shows)."""
        assert self.check is not None
        other = await self._check_call(self.check.get_logs, list(self.contracts), first, last, default=None)
        if other is None:
            return True
        ours, theirs = _log_set(logs), _log_set([e for e in other if not e.removed])
        if ours == theirs:
            self._disagreeing = 0
            self._endpoint_ok("l1_endpoints_disagree")
            return True
        only_ours, only_theirs = sorted(ours - theirs), sorted(theirs - ours)
        first_diff = (only_ours or only_theirs)[0]
        return self._disagree(f"logs of blocks {first}..{last}: {len(only_ours)} only on the primary, {len(only_theirs)} only on the check "
                              f"(first: block {first_diff[0]} log {first_diff[1]})")

    def _disagree(self, detail: str) -> bool:
        """The endpoints disagree: nothing is stored, the next poll asks both again; alerted once it
        lasts (a reorg seen by one endpoint a moment before the other is not an alert)."""
        self._disagreeing += 1
        log.info("the L1 endpoints disagree (%d poll(s) in a row): %s; retrying", self._disagreeing, detail)
        if self._disagreeing >= DISAGREE_ALERT_AFTER:
            self._bad_endpoint("l1_endpoints_disagree", "disagree", detail)
        return False

    def _bad_endpoint(self, name: str, reason: str, detail: str) -> None:
        if name not in self._bad:
            alert(log, name, level=logging.ERROR, endpoint=self.rpc.name, url=self.rpc._where(),
                  check=self.check._where() if self.check is not None else None, reason=reason, detail=detail,
                  action="retrying; nothing read from this answer is stored or acted on")
        self._bad[name] = reason
        return None

    def _endpoint_ok(self, name: str) -> None:
        if self._bad.pop(name, None) is not None:
            alert(log, _BACK[name], level=logging.INFO,
                  endpoint=self.rpc.name)

    async def _reset(self) -> Reorg:
        recorded = self.recorded_blocks()
        canonical = await self.rpc.get_blocks([r.number for r in recorded])
        ancestor: Block | None = None
        for record, block in zip(reversed(recorded), reversed(canonical)):
            if block is not None and block.hash == record.hash:
                ancestor = record
                break
        if ancestor is None and recorded and recorded[0].number == self.start_block:
            # Every block since the start is recorded and none is canonical: the reorg reaches below the
            # deployment block. Unwind everything and read again from the start.
            return self._unwind(None, recorded)
        if ancestor is None:
            raise FollowerCritical(
                f"L1 reorg deeper than the {len(recorded)} recorded blocks (from {recorded[0].number if recorded else '?'}): "
                "no recorded block is canonical; raise node.reorg_window and resync the data directory"
            )
        return self._unwind(ancestor, recorded)

    def _unwind(self, ancestor: Block | None, recorded: list[Block]) -> Reorg:
        """Delete the blocks and events after ``ancestor`` (None: everything, back to the start) and
        move the position there, in one write batch."""
        keep = self.start_block - 1 if ancestor is None else ancestor.number
        removed: list[L1Event] = []
        end = keys.prefix_end(keys.prefix_of(keys.Prefix.L1_EVENT))
        with self.store.write_batch(sync=False) as batch:
            for key, value in self.store.iterate(start=keys.l1_events_from(keep + 1), stop=end):
                removed.append(EVENT_CODEC.decode(value, key=key))
                batch.delete(key)
            for record in recorded:
                if record.number > keep:
                    batch.delete(keys.l1_block(record.number))
            if ancestor is None:
                batch.delete(keys.L1_HEAD)
            else:
                batch.put(keys.L1_HEAD, BLOCK.encode(ancestor))
        log.warning(
            "L1 reorg: blocks after %d left the chain (%d were read, %d events unwound); re-reading",
            keep,
            recorded[-1].number - keep,
            len(removed),
        )
        return Reorg(keep, tuple(reversed(removed)))


def stored_events(store: KV, from_block: int = 0) -> Iterator[L1Event]:
    """The events a follower stored in ``store`` (the canonical chain as it last read it), in L1 order."""
    end = keys.prefix_end(keys.prefix_of(keys.Prefix.L1_EVENT))
    for key, value in store.iterate(start=keys.l1_events_from(from_block), stop=end):
        yield EVENT_CODEC.decode(value, key=key)


_APPENDED, _DISCARDED = TYPES["BatchAppended"], TYPES["BatchesDiscarded"]


def live_batches_before(store: KV, position: tuple[int, int]) -> dict[int, tuple[bytes, int]]:
    """The Rollup's live batches just before L1 position ``(block, log index)``, as the follower's
    stored (canonical) events tell — appends, minus what earlier discards removed: index -> (state
    root, declared L1 time), which tells one append of a batch index from another (a rebuilt batch
    can have its predecessor's root, never its time). What a ``BatchesDiscarded`` at that position
    discarded is ``[from_index]`` of it."""
    live: dict[int, tuple[bytes, int]] = {}
    for event in stored_events(store):
        if (event.block_number, event.log_index) >= position:
            break
        if isinstance(event, _APPENDED):
            live[event.index] = (event.state_root, event.l1_timestamp)
        elif isinstance(event, _DISCARDED):
            for index in [i for i in live if i >= event.from_index]:
                del live[index]
    return live


async def run(
    follower: Follower,
    send: trio.MemorySendChannel[Output],
    *,
    poll_interval: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The follower as a trio service: poll, send every output (back-pressure: a full channel
    slows the follower, never drops), sleep ``poll_interval`` once caught up."""
    task_status.started()
    async with send:
        while True:
            outputs, caught_up = await follower.poll()
            for output in outputs:
                await send.send(output)
            if caught_up or not outputs:
                await trio.sleep(poll_interval)
