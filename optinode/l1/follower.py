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
and each poll first checks that the recorded tip is still canonical. Failures are classified:

- *temporary* — the endpoint is down (the RPC client retries), or the chain moved between two reads
  (a header missing, a log's block hash not matching): nothing is written, the next poll retries;
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
from optinode.l1.rpc import Block, RpcClient
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
    ) -> None:
        self.rpc = rpc
        self.store = store
        self.contracts = dict(contracts)
        self.start_block = start_block
        self.depth = confirmation_depth
        self.window = window
        self.max_range = max_range

    @classmethod
    def for_deployment(cls, rpc: RpcClient, store: KV, deployment: Any, node: Any) -> Follower:
        """Wired from a `deploy.Deployment` and the config's ``[node]`` (NodeSection)."""
        return cls(
            rpc,
            store,
            deployment.followed_contracts(),
            start_block=deployment.deployment_block,
            confirmation_depth=node.confirmation_depth,
            window=node.reorg_window,
            max_range=node.log_block_range,
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
        previous = position.hash if position is not None and keep_from == first else None
        for block in blocks:
            if previous is not None and block.parent_hash != previous:
                log.info("L1 block %d does not extend the block before it (reorg under way); retrying", block.number)
                return []
            previous = block.hash
        by_number = {b.number: b.hash for b in blocks}
        logs = await self.rpc.get_logs(list(self.contracts), first, last)
        events: list[L1Event] = []
        for entry in sorted(logs, key=lambda e: (e.block_number, e.log_index)):
            if entry.removed:
                continue
            expected = by_number.get(entry.block_number)
            if expected is not None and entry.block_hash != expected:
                log.info("log of L1 block %d has another block hash than its header (reorg under way); retrying", entry.block_number)
                return []
            try:
                events.append(decode_log(self.contracts, entry))
            except UnknownLog as error:
                # Our contracts emit only their ABI's events; anything else is not ours to act on.
                log.warning("ignoring an L1 log: %s", error)
        tip = blocks[-1]
        # Logs of blocks older than the recorded window are not hash-checked against a header; they are
        # `window` blocks deep, beyond any reorg this node is configured to survive.
        with self.store.write_batch(sync=False) as batch:
            for block in blocks:
                batch.put(keys.l1_block(block.number), BLOCK.encode(block))
            for event in events:
                batch.put(keys.l1_event(event.block_number, event.log_index), EVENT_CODEC.encode(event))
            for key, _ in self.store.iterate(start=keys.l1_block(0), stop=keys.l1_block(max(0, tip.number - self.window + 1))):
                batch.delete(key)
            batch.put(keys.L1_HEAD, BLOCK.encode(tip))
        return [*events, Head(tip.number, tip.hash, tip.timestamp)]

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
