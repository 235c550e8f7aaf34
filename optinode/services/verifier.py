"""The verifier node: follows L1 alone, replays every batch with the spec, challenges wrong roots.

    trio.run(run_verifier, settings)

```
 l1.follower ─► intake ─► batch_fetcher (append calldata) ─► replayer (spec, checkpoints in LevelDB) ─► verdicts
                   └──► dispute player (challenger) ─► l1.sender ─► L1 DisputeGame
```

It never talks to the sequencer: batches come from the input of their append transactions, queue
entries from the Bridge's events, the L1 time from the append block. The intake applies the
follower's outputs in chain order: queue entries, appends (fetched, replayed, compared),
discards, and, after a reorg or a fetch that failed because the chain moved, a reconciliation of
the stored verdicts with the live batches the follower's stored events describe (a batch whose
append transaction changed is re-fetched and replayed; nothing else is). Game events and heads go on
to the dispute player, which acts once per head.

Alerts are structured log lines (`optinode.logs.alert`; docs/verifier.md lists them and what to do):
``invalid_batch``, ``batches_discarded``, the player's ``game_*`` and ``clock_low``, `QueueWatch`'s
``forced_deadline_near`` / ``..._passed``, the L1 client's ``l1_lost`` / ``l1_back``, and
``l1_unreachable`` when the retry budget ends. `Verifier.status` is the one watchtower view: rewritten
as `status.json` in the data directory at every head (`optinode verifier status`), served live as
``optinode_status`` on the verifier's own JSON-RPC port (`watch_rpc`, with ``GET /metrics``).
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import trio

from optinode.config import Config, Secret
from optinode.exchange.worker_pool import open_worker_pool
from optinode.l1 import events
from optinode.l1 import follower as follower_mod
from optinode.l1 import sender as sender_mod
from optinode.l1.contracts import tx_proof
from optinode.l1.deploy import Deployment
from optinode.l1.follower import Follower, Head, Reorg
from optinode.l1.osp import encode_witness
from optinode.l1.rpc import RpcClient, RpcError, RpcUnavailable
from optinode.l1.sender import Sender, SenderPolicy
from optinode.logs import alert
from optinode.metrics import VerifierMetrics
from optinode.services import dispute, watch_rpc
from optinode.services.batch_fetcher import BatchUnavailable, fetch_batch
from optinode.services.faults import Faults
from optinode.services.game_watch import GameWatch, game_row
from optinode.services.queue_watch import QueueWatch
from optinode.services.signals import stop_on_signal
from optinode.services.replayer import INVALID, RECOVERY_WORKERS, VALID, DecodedBatch, Replayer, live_batches, prepare_batch, verify_batch
from optinode.spec.crypto import keccak
from optinode.spec.genesis import create_genesis_state
from optinode.config import parse_address
from optinode.store.db import open_store

READ_AHEAD_JOBS = 4  # chunks queued in each read-ahead worker (the intake's measured default)
READ_AHEAD_PRELOAD = ("optinode.services.replayer",)  # what a worker imports before it is ready

__all__ = ["Verifier", "VerifierSettings", "run_verifier"]

log = logging.getLogger("optinode.verifier")

L1_OUTPUTS = 256
PLAYER_INBOX = 256
_GAME_EVENTS = (events.GameOpened, events.Bisected, events.Chosen, events.Stepped, events.GameResolved)
ZERO_ADDRESS = bytes(20)
UNAVAILABLE_ALERT_AFTER = 3  # failed fetches of one append (one per head) before batch_unavailable
CHECK_RETRY_FOR = 5.0  # seconds the check endpoint's client retries one call before the follower goes on without it
READ_AHEAD = 16  # follower outputs the intake looks at beyond the one it applies (the next append among them is prefetched)


@dataclass
class _Ahead:
    """A batch fetched and its signatures recovered ahead of its turn (`Verifier.read_ahead`)."""

    done: trio.Event = field(default_factory=trio.Event)
    fetched: tuple[bytes, int, DecodedBatch] | None = None  # data, L1 time, decoded with signers; None: failed (redone in turn)


@dataclass
class VerifierSettings:
    config: Config
    deployment: Deployment
    data_dir: Path
    rpc_url: str
    check_rpc_url: str | None = None  # a second endpoint the follower cross-checks the head and the logs on (docs/verifier.md)
    challenger_key: Secret | None = None  # None: watch and alert only
    faults: Faults = field(default_factory=Faults)
    api_port: int | None = None  # optinode_status + /metrics on 127.0.0.1 (None: node.verifier.api_port)


class Verifier:
    """The intake: follower outputs in, verdicts in the store, game events and heads out."""

    def __init__(self, settings: VerifierSettings, store: Any, rpc: RpcClient, follower: Follower) -> None:
        self.settings = settings
        self.deployment = settings.deployment
        self.params = settings.deployment.params
        self.rollup = parse_address(self.deployment.contracts.rollup)
        self.rpc = rpc
        self.follower = follower
        genesis = create_genesis_state(self.deployment.genesis(settings.config))
        self.replayer = Replayer(store, genesis)
        self.recovery = trio.CapacityLimiter(RECOVERY_WORKERS)  # signature recovery threads (the machine's cores)
        # Pipelining (docs/verifier.md, "Signatures on both cores"): while batch n replays on this thread,
        # batch n + 1's signatures are recovered in worker processes (threads would wait for the GIL the
        # replay holds). None: no read-ahead.
        self.workers: Any = None  # the read-ahead's WorkerPool
        self.ahead_nursery: trio.Nursery | None = None  # where read-ahead tasks run (the intake's)
        self.ahead_limiter = trio.CapacityLimiter(RECOVERY_WORKERS)
        self.ahead: dict[tuple[int, bytes], _Ahead] = {}
        self.head: Head | None = None
        self.last_final = 0
        self.final_at: dict[int, int] = {}  # batch index -> the block of its BatchFinalized (kept until pruned)
        self.pruned = 0  # checkpoints and decoded batches deleted through this batch (docs/verifier.md, "Pruning")
        self.dirty = True  # reconcile with the stored events before trusting the stored verdicts
        self.alerted: set[bytes] = set()
        self.unavailable: dict[bytes, int] = {}  # append tx -> failed fetches in a row (batch_unavailable)
        self.player: dispute.Player | None = None
        self.metrics = VerifierMetrics()
        self.metrics.watch_l1(lambda: self.head)
        self.metrics.synced_batch.set_function(self.replayer.synced)
        self.metrics.last_final.set_function(lambda: self.last_final)
        rpc.on_state = self.metrics.on_l1_state
        p, watch = self.params, settings.config.node.verifier
        self.queues = QueueWatch(rpc, self.rollup, deadlines={"forced": p.forced_deadline, "deposit": p.deposit_deadline},
                                 warning={"forced": watch.deadline_warning or max(1, p.forced_deadline // 3),
                                          "deposit": watch.deadline_warning or max(1, p.deposit_deadline // 3)}, metrics=self.metrics)
        self.unserved: dict[str, list[dict[str, Any]]] = {}  # QueueWatch's last answer (status)
        # everyone else's games (all of them, watch-only); loaded by run_verifier once it knows whether it plays
        self.games = GameWatch(rpc, parse_address(self.deployment.contracts.game), arity=p.arity, metrics=self.metrics,
                               clock_warning=watch.clock_warning or max(1, p.clock // 3))
        for event in follower.stored_events():
            self.replayer.note_queue_event(event)
            self.queues.note(event)
            if isinstance(event, events.BatchFinalized):
                self.last_final = max(self.last_final, event.index)
                self.final_at[event.index] = event.block_number

    # --- the replay -----------------------------------------------------------------------------------

    def read_ahead(self, appended: Any) -> None:
        """Start fetching batch ``appended`` and recovering its signatures (worker processes) now, while
        what comes before it is applied: `_verify` takes the result when its turn comes. Only a head
        start: whatever fails here is done again, and reported, in turn."""
        key = (appended.index, appended.tx_hash)
        if self.workers is None or self.ahead_nursery is None or key in self.ahead:
            return
        self.ahead[key] = slot = _Ahead()
        self.ahead_nursery.start_soon(self._prepare, appended, slot)

    async def _prepare(self, appended: Any, slot: _Ahead) -> None:
        try:
            data, timestamp = await fetch_batch(self.rpc, self.rollup, appended)
            decoded = await prepare_batch(self.replayer, appended, data, limiter=self.ahead_limiter, run_sync=self.workers.run_sync)
            slot.fetched = (data, timestamp, decoded)
        except Exception as error:  # noqa: BLE001 - a head start only: `_verify` fetches and recovers again, and raises there
            log.info("batch %d not read ahead (%s); it is fetched in turn", appended.index, error)
        finally:
            slot.done.set()

    async def _verify(self, appended: Any) -> None:
        slot = self.ahead.pop((appended.index, appended.tx_hash), None)
        if slot is not None:
            await slot.done.wait()
        if slot is not None and slot.fetched is not None:
            data, timestamp, prepared = slot.fetched
        else:
            prepared = None
            try:
                data, timestamp = await fetch_batch(self.rpc, self.rollup, appended)
            except BatchUnavailable as error:
                self._unavailable(appended, error)
                raise
        if self.unavailable.pop(appended.tx_hash, 0) >= UNAVAILABLE_ALERT_AFTER:
            log.info("batch %d: append 0x%s served now", appended.index, appended.tx_hash.hex()[:16])
        verdict = await verify_batch(self.replayer, appended, data, timestamp, limiter=self.recovery, prepared=prepared)
        self.metrics.batches_verified.labels(verdict.verdict).inc()
        if verdict.verdict == INVALID and verdict.tx_hash not in self.alerted:
            self.alerted.add(verdict.tx_hash)
            self.metrics.invalid_batches.inc()
            alert(log, "invalid_batch", batch=verdict.index, batch_id=verdict.batch_id, block=verdict.block_number, posted=verdict.posted_root,
                  computed=verdict.computed_root, txs=verdict.tx_count, challenging=self.player is not None)
        elif verdict.verdict == INVALID:  # the same append again (read again after a reorg): alerted once already
            log.info("batch %d (append 0x%s) is invalid, as already reported", verdict.index, verdict.tx_hash.hex()[:16])
        elif verdict.verdict == VALID:
            log.info("batch %d verified: %d txs, root 0x%s%s", verdict.index, verdict.tx_count, verdict.posted_root.hex()[:16],
                     " (read ahead: its signatures recovered while the batch before it replayed)" if prepared is not None else "")
        else:
            log.info("batch %d builds on an invalid batch (it falls with it)", verdict.index)

    def _unavailable(self, appended: Any, error: BatchUnavailable) -> None:
        """Count a failed fetch; ``batch_unavailable`` once per append when it keeps failing (a reorg
        under way fails once or twice, then the follower reports it and the event is gone)."""
        tries = self.unavailable[appended.tx_hash] = self.unavailable.get(appended.tx_hash, 0) + 1
        if tries == UNAVAILABLE_ALERT_AFTER:
            self.metrics.batch_unavailable.inc()
            ends = appended.appended_at + self.params.challenge_window
            now = self.head.timestamp if self.head else appended.appended_at
            alert(log, "batch_unavailable", level=logging.ERROR, batch=appended.index, batch_id=appended.id, tx=appended.tx_hash,
                  block=appended.block_number, reason=str(error), tries=tries, window_ends=ends, seconds_left=max(0, ends - now))

    async def reconcile(self) -> None:
        """Make the stored verdicts those of the live batches the follower's events describe."""
        live = live_batches(self.follower.stored_events())
        previous = bytes(32)
        indices = sorted(live)
        for n, index in enumerate(indices):
            event = live[index]
            stored = self.replayer.batch(index)
            if stored is None or stored.tx_hash != event.tx_hash or stored.parent_tx != previous:
                if stored is not None:
                    log.info("batch %d: its append changed on L1; replaying again", index)
                self.replayer.discard_from(index)  # every later verdict goes too: the next batch is verified next
                if n + 1 < len(indices):
                    self.read_ahead(live[indices[n + 1]])  # a catch-up or a restart: pipelined
                await self._verify(event)
            elif (stored.block_number, stored.appended_at) != (event.block_number, event.appended_at):
                # The same append re-mined in another block (a reorg; its sender re-broadcast the signed
                # transaction): the same bytes on the same parent, so the same verdict, but its window
                # starts at the new block. The verdict follows it, as a fresh sync would have written it.
                self.replayer.relocate(index, block_number=event.block_number, appended_at=event.appended_at)
                log.info("batch %d: its append moved to block %d; its window now ends at %d", index, event.block_number,
                         event.appended_at + self.params.challenge_window)
            previous = event.tx_hash
        beyond = max(live, default=0) + 1
        self.replayer.discard_from(beyond)
        self.ahead = {key: slot for key, slot in self.ahead.items() if key[0] >= beyond}  # not taken: not live any more
        self.dirty = False

    async def take(self, output: Any) -> bool:
        """Apply one follower output; True if the dispute player should see it."""
        if isinstance(output, (events.Deposited, events.ForcedWithdrawalRequested)):
            self.replayer.note_queue_event(output)
            self.queues.note(output)
        elif isinstance(output, events.BatchAppended):
            if not self.dirty:
                try:
                    await self._verify(output)
                except (BatchUnavailable, LookupError) as error:
                    log.info("batch %d not verified yet (%s); reconciling at the next head", output.index, error)
                    self.dirty = True
        elif isinstance(output, events.BatchesDiscarded):
            self.games.note(output)
            gone = self.replayer.discard_from(output.from_index)
            alert(log, "batches_discarded", from_index=output.from_index, to_index=output.to_index, challenger=output.challenger,
                  verdicts_dropped=len(gone))
            return True  # the player cancels its other games on those batches
        elif isinstance(output, events.BatchFinalized):
            self.last_final = max(self.last_final, output.index)
            self.final_at[output.index] = output.block_number
            log.info("batch %d final on L1", output.index)
        elif isinstance(output, Reorg):
            self.ahead.clear()  # what was read ahead may be gone; in-flight reads finish into forgotten slots
            for event in output.removed:
                self.replayer.forget_queue_event(event)
                self.queues.forget(event)
                if isinstance(event, events.BatchFinalized):
                    self.last_final = min(self.last_final, event.index - 1)
                    self.final_at.pop(event.index, None)
            self.dirty = True
            self.games.load(self.follower.stored_events())
            return True
        elif isinstance(output, Head):
            if self.dirty:
                try:
                    await self.reconcile()
                except (BatchUnavailable, LookupError) as error:
                    log.info("reconciling with L1 failed (%s); retrying at the next head", error)
            self.head = output
            self._prune(output.number)
            try:
                self.unserved = await self.queues.check(output, self.last_final)
            except (RpcError, LookupError) as error:
                log.info("queue deadlines not checked at block %d (%s)", output.number, error)
            await self.games.check(output, self._verdict_of, self._honest_roots)
            if not self.dirty:
                self.games.unchallenged(self.replayer.batches(self.last_final + 1), output.timestamp, window=self.params.challenge_window,
                                        share=self.settings.config.node.verifier.unchallenged_share)
            return True
        if isinstance(output, _GAME_EVENTS):
            self.games.note(output, live=True)
            return True
        return False

    def _prune(self, head: int) -> None:
        settled = settled_final(self.final_at, head, self.settings.config.node.reorg_window)
        if settled > self.pruned and not self.dirty:
            deleted = self.replayer.prune(settled)
            self.final_at = {i: b for i, b in self.final_at.items() if i >= settled}
            self.pruned = settled
            log.info("pruned %d checkpoints and decoded batches through batch %d (final beyond any reorg)", deleted, settled)

    def _verdict_of(self, index: int, batch_id: int) -> str | None:
        """Our verdict on batch ``index`` if it is the batch ``batch_id`` (the watched games' view)."""
        verdict = None if self.dirty else self.replayer.batch(index)
        return verdict.verdict if verdict is not None and verdict.batch_id == batch_id else None

    def _honest_roots(self, index: int) -> list[bytes] | None:
        try:
            return list(self.replayer.replay_of(index).roots)
        except LookupError:
            return None

    # --- what the challenger plays with --------------------------------------------------------------

    def targets(self) -> list[tuple[int, int]]:
        """The first invalid live batch, while its window is open (later ones fall with it)."""
        if self.head is None or self.dirty:
            return []
        forced = self.settings.faults.challenge
        for verdict in self.replayer.batches():
            wrong = verdict.verdict == INVALID or (forced is not None and verdict.index == forced[0])
            if wrong:
                if self.head.timestamp < verdict.appended_at + self.params.challenge_window:
                    return [(verdict.index, verdict.batch_id)]
                return []
            if verdict.verdict != VALID:
                return []
        return []

    def roots(self, index: int) -> list[bytes] | None:
        try:
            roots = list(self.replayer.replay_of(index).roots)
        except LookupError:
            return None
        forced = self.settings.faults.challenge
        if forced is not None and forced[0] == index:  # devnet fault: a challenger wrong from tx k on
            for i in range(forced[1] + 1, len(roots)):
                roots[i] = keccak(b"malicious" + i.to_bytes(8, "big"))
        return roots

    def step_input(self, index: int, k: int) -> dispute.StepInput:
        replay = self.replayer.replay_of(index)
        witness, state = replay.witness(k)
        deposit = self.replayer.deposits.get(state.deposits_done)
        forced = self.replayer.forced.get(state.forced_done)
        entries = (
            deposit.owner if deposit else ZERO_ADDRESS,
            deposit.amount if deposit else 0,
            forced.requester if forced else ZERO_ADDRESS,
            forced.account_id if forced else 0,
            forced.amount if forced else 0,
        )
        return dispute.StepInput(replay.records[k], tx_proof(replay.records, k), encode_witness(witness), entries)

    # --- the watchtower surface ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        head = self.head
        batches = self.replayer.batches()
        pending = [
            {"batch": b.index, "verdict": b.verdict, "window_ends": b.appended_at + self.params.challenge_window,
             "seconds_left": max(0, b.appended_at + self.params.challenge_window - head.timestamp) if head else None}
            for b in batches if b.index > self.last_final
        ]
        games = []
        if self.player is not None:
            for game_id, known in sorted(self.player.games.items()):
                role = "challenger" if known.opened.challenger == self.player.me else "proposer"
                games.append(game_row(game_id, known, self.player.last_seen.get(game_id), role))
        games = sorted(games + self.games.status(), key=lambda g: g["game"])
        at_stake = sum(1 for g in games if g["resolved"] is None and g["role"] == "challenger") * self.params.challenger_bond
        self.metrics.pending_windows.set(len(pending))
        self.metrics.bonds_at_stake.set(at_stake)
        return {
            "l1_head": head.number if head else None, "l1_time": head.timestamp if head else None,
            "l1_up": self.metrics.l1_reachable,
            "synced_batch": self.replayer.synced(), "last_final": self.last_final,
            "invalid_batches": [b.index for b in batches if b.verdict == INVALID],
            "pending": pending, "games": games, "bonds_at_stake_wei": at_stake,
            "challenger": ("0x" + self.player.me.hex()) if self.player else None,
            "unserved": {kind: [{k: v for k, v in row.items() if k != "block_hash"} for row in rows] for kind, rows in self.unserved.items()},
        }

    def write_status(self) -> None:
        path = self.settings.data_dir / "status.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status(), indent=2))
        os.replace(tmp, path)


def settled_final(final_at: dict[int, int], head: int, reorg_window: int) -> int:
    """The highest batch whose BatchFinalized is deeper than ``reorg_window`` blocks below ``head`` (its
    append is deeper still): nothing a reorg this node survives can bring it back into play. 0: none."""
    return max((index for index, block in final_at.items() if block <= head - reorg_window), default=0)


async def _intake(verifier: Verifier, outputs: trio.MemoryReceiveChannel[Any], player: trio.MemorySendChannel[Any] | None,
                  *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Apply the follower's outputs in order. It looks at up to READ_AHEAD outputs already waiting in
    the channel and reads the next append among them ahead (`Verifier.read_ahead`), so its signatures
    are recovered while the batch before it replays; a catch-up or a restart goes through
    `reconcile`, which reads the next live batch ahead the same way."""
    task_status.started()
    waiting: deque[Any] = deque()
    async with outputs, trio.open_nursery() as nursery:
        verifier.ahead_nursery = nursery
        while True:
            if not waiting:
                try:
                    waiting.append(await outputs.receive())
                except trio.EndOfChannel:
                    break
            while len(waiting) <= READ_AHEAD:
                try:
                    waiting.append(outputs.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            output = waiting.popleft()
            # Only append after append (a catch-up): a lone append at the head, or one after a discard,
            # is verified at once on threads, never kept waiting for worker processes to start.
            following = next((o for o in waiting if isinstance(o, events.BatchAppended)), None)
            if isinstance(output, events.BatchAppended) and following is not None and not verifier.dirty:
                verifier.read_ahead(following)  # (dirty: the next head's reconcile reads ahead itself)
            forward = await verifier.take(output)
            if isinstance(output, Head):
                verifier.write_status()
            if forward and player is not None:
                await player.send(output)
        nursery.cancel_scope.cancel()


async def run_verifier(settings: VerifierSettings, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    deployment, node = settings.deployment, settings.config.node
    assert deployment.params is not None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.data_dir / "db", identity=deployment.store_identity("verifier"))
    try:
        rpc = RpcClient(settings.rpc_url)
        # The check endpoint's calls give up after a while: unreachable, the follower goes on on the
        # primary alone (alerted l1_lost) rather than stop watching.
        check = None if settings.check_rpc_url is None else RpcClient(settings.check_rpc_url, name="L1 check", retry_for=CHECK_RETRY_FOR)
        follower = Follower.for_deployment(rpc, store, deployment, node, check=check)
        verifier = Verifier(settings, store, rpc, follower)
        outputs_send, outputs_receive = trio.open_memory_channel(L1_OUTPUTS)
        # Worker processes for the read-ahead (the intake's pool: several chunks queued in each, so a
        # worker never waits for this thread's replay between chunks; docs/verifier.md, "Pipelining").
        read_ahead = node.verifier.read_ahead
        pool = open_worker_pool(RECOVERY_WORKERS, max_jobs=READ_AHEAD_JOBS, preload=READ_AHEAD_PRELOAD) if read_ahead else nullcontext()
        async with pool as workers, trio.open_nursery() as nursery:
            verifier.workers = workers  # None: no read-ahead
            await nursery.start(stop_on_signal, nursery.cancel_scope)
            player_send = None
            if settings.challenger_key is not None:
                sender = Sender(rpc, store, settings.challenger_key.account(), chain_id=deployment.chain_id,
                                policy=SenderPolicy.from_config(node.sender, settle_depth=node.reorg_window))
                params = deployment.params
                deps = dispute.PlayerDeps(rpc=rpc, sender=sender, game_address=parse_address(deployment.contracts.game), arity=params.arity,
                                          challenger_bond=params.challenger_bond, clock_warning=node.verifier.clock_warning or max(1, params.clock // 3),
                                          metrics=verifier.metrics)
                player = dispute.Player(deps, roots=verifier.roots, step_input=verifier.step_input, targets=verifier.targets,
                                        stored=follower.stored_events)
                player.load(follower.stored_events())
                verifier.player = player
                verifier.games.ours = player.plays
                await nursery.start(partial(sender_mod.run, poll_interval=node.poll_interval), sender, None)
                player_send, player_receive = trio.open_memory_channel(PLAYER_INBOX)
                await nursery.start(dispute.run, player, player_receive)
            verifier.games.load(follower.stored_events())
            await nursery.start(_intake, verifier, outputs_receive, player_send)
            await nursery.start(partial(follower_mod.run, poll_interval=node.poll_interval), follower, outputs_send)
            api_port = settings.api_port if settings.api_port is not None else node.verifier.api_port
            if api_port is not None:
                await nursery.start(watch_rpc.run, verifier, api_port)
            log.info("verifier running: batch %d verified, challenger %s", verifier.replayer.synced(),
                     settings.challenger_key.account().address if settings.challenger_key else "none (watch only)")
            task_status.started()
    except* RpcUnavailable as group:
        alert(log, "l1_unreachable", level=logging.ERROR, error=str(group.exceptions[0]), action="stopping")
        raise
    finally:
        store.close()
        log.info("store closed")
