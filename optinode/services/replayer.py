"""The verifier's replay: every live batch L1 holds, replayed with the spec from the previous batch's
checkpoint, its posted root compared with the one the spec computes.

    replayer = Replayer(store, genesis_state)
    replayer.note_queue_event(deposited)                  # Bridge queue entries (from the follower)
    verdict = await verify_batch(replayer, batch_appended, data, ts)  # data: the framed records from the calldata
                                                          # (its signatures recovered on worker threads first)
    replayer.discard_from(index)                          # Rollup.BatchesDiscarded, or an L1 reorg
    replay = replayer.replay_of(index)                    # roots after every tx + witnesses, for a game

What a verifier needs comes from L1 alone: the batch bytes are the input of its append transaction
(`batch_fetcher`), the L1 time is the one the proposer declared in ``appendBatch`` (the Rollup
bounds it, stores it as the batch's timestamp and emits it; the one-step proof reads the same), so
an honest sequencer, which executed the whole batch at that time, is replayed exactly, whenever its
append landed; and the queue entries are the Bridge's events.

**Store.** Each verified batch (`keys.verified_batch`: raw data, posted root, the replay's root and
verdict, the append transaction it came from and the one before it), the honest state after it
(`keys.verifier_checkpoint`) and the batch decoded with the signer of every signature in it
(`keys.verifier_decoded`) go in one write batch, so a game replays at most one batch and neither a
game nor a restart decodes or recovers a signature twice. A checkpoint and a decoded batch name the
append transaction they follow or come from: after a discard or a reorg a new batch at the same
index never builds on a stale state. Queue entries are not copied: the follower already stores the
Bridge's events (`Follower.stored_events`), which are read back at start-up.

**Signatures on every core.** Recovery costs ~4x applying a trade, so `verify_batch` recovers a
batch's signatures (`eip712.get_signed_digests`) on worker threads first — coincurve releases the
GIL, and the threads fill the spec's memo of `recover_signer` — and the replay on this thread then
only meets memo hits (bench/verifier.py measures threads against worker processes;
docs/benchmarks.md). Signers recovered in worker processes or loaded from the store go into the memo with
`recover_signer.remember`.

**Verdicts.** ``valid``; ``invalid`` (the spec's root differs from the posted one: challenge it);
``descends`` (its parent is invalid: its pre-root is one the honest replay never agreed with, so no
game on it can be won; it falls with the first invalid batch, which is the one challenged).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
import trio

from optinode.exchange.mempool import recover_chunk
from optinode.l1 import events
from optinode.services.journal import decode_state, encode_state
from optinode.spec.batch_framing import split_records
from optinode.spec.commitment import Commitment
from optinode.spec.crypto import recover_signer
from optinode.spec.eip712 import get_signed_digests
from optinode.spec.record_codec import decode_transaction
from optinode.spec.state import State
from optinode.spec.transition import state_transition
from optinode.spec.types import DepositEntry, ForcedEntry, L1Context, Transaction
from optinode.store import keys
from optinode.store.codec import Codec
from optinode.store.kv import KV
from optinode.replay import Replay

__all__ = ["VALID", "INVALID", "DESCENDS", "DecodedBatch", "Replayer", "VerifiedBatch", "prepare_batch", "recover_signers", "verify_batch"]

log = logging.getLogger("optinode.services.replayer")

VALID, INVALID, DESCENDS = "valid", "invalid", "descends"
GENESIS_TX = bytes(32)  # the "append transaction" of batch 0
RECOVERY_CHUNK = 64  # signatures per worker call: the hand-off is noise next to 64 recoveries, and chunks spread evenly
RECOVERY_WORKERS = os.cpu_count() or 2


class VerifiedBatch(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    batch_id: int
    tx_hash: bytes  # the append transaction (its input holds `data`)
    parent_tx: bytes  # the append transaction of batch index - 1 this verdict was computed on
    block_number: int
    timestamp: int  # the batch's L1 time, as its proposer declared it (Rollup.appendBatch bounds it)
    appended_at: int = 0  # the append block's time: the challenge window runs from it
    proposer: bytes
    data: bytes  # the framed records, as posted
    tx_count: int
    posted_root: bytes
    computed_root: bytes | None  # None when not replayed (descends from an invalid batch)
    verdict: str
    first_bad: int | None = None  # the first transaction index whose root is wrong (found for a game)


class VerifierCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    tx_hash: bytes  # the append transaction of the batch this is the state after
    state: bytes  # msgpack of the spec State


class DecodedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A batch's records decoded, and the signer of each signature in them (`signed_pairs` order;
    None: that signature recovers no key)."""

    index: int
    tx_hash: bytes  # the append transaction the records came from
    txs: list[Transaction]
    signers: list[bytes | None] | None = None  # None: not recovered (yet)


BATCH = Codec(VerifiedBatch)
CHECKPOINT = Codec(VerifierCheckpoint)
DECODED = Codec(DecodedBatch)


def signed_pairs(domain_separator: bytes, txs: Sequence[Transaction]) -> list[tuple[bytes, bytes]]:
    """Every (digest, signature) pair the replay of `txs` may recover, in order."""
    return [pair for tx in txs for pair in get_signed_digests(domain_separator, tx)]


def remember(pairs: Sequence[tuple[bytes, bytes]], signers: Sequence[bytes | None]) -> None:
    """Put signers recovered elsewhere (worker processes, the store) in the spec's memo."""
    for (digest, signature), signer in zip(pairs, signers, strict=True):
        recover_signer.remember(digest, signature, signer)


async def recover_signers(pairs: Sequence[tuple[bytes, bytes]], *, limiter: trio.CapacityLimiter | None = None,
                          run_sync: Callable[..., Any] = trio.to_thread.run_sync, chunk: int = RECOVERY_CHUNK) -> list[bytes | None]:
    """The signers of `pairs`, chunks of `chunk` recovered concurrently by `run_sync` (worker threads by
    default; `trio_parallel.run_sync` for worker processes), at most `limiter`'s workers at once."""
    limiter = limiter or trio.CapacityLimiter(RECOVERY_WORKERS)
    chunks = [pairs[i:i + chunk] for i in range(0, len(pairs), chunk)]
    results: list[list[bytes | None]] = [[] for _ in chunks]

    async def one(i: int) -> None:
        results[i] = await run_sync(recover_chunk, chunks[i], limiter=limiter)

    async with trio.open_nursery() as nursery:
        for i in range(len(chunks)):
            nursery.start_soon(one, i)
    return [signer for chunk in results for signer in chunk]


async def prepare_batch(replayer: Replayer, appended: Any, data: bytes, *, limiter: trio.CapacityLimiter | None = None,
                        run_sync: Callable[..., Any] = trio.to_thread.run_sync, workers: int = RECOVERY_WORKERS) -> DecodedBatch:
    """Batch ``appended.index`` decoded with every signer recovered, ahead of its replay (pipelining:
    while the batch before it replays). Writes nothing and leaves the spec's memo alone; `verify_batch`
    takes the result. The signatures go out in one chunk per worker, so a worker, once started,
    needs nothing from this thread (which is busy replaying) until it is done."""
    decoded = replayer.decode(appended.index, appended.tx_hash, data)
    if decoded.signers is None:
        pairs = signed_pairs(replayer.domain_separator, decoded.txs)
        chunk = max(1, -(-len(pairs) // workers))
        decoded = msgspec.structs.replace(decoded, signers=await recover_signers(pairs, limiter=limiter, run_sync=run_sync, chunk=chunk))
    return decoded


async def verify_batch(replayer: Replayer, appended: Any, data: bytes, timestamp: int, *, limiter: trio.CapacityLimiter | None = None,
                       run_sync: Callable[..., Any] = trio.to_thread.run_sync, prepared: DecodedBatch | None = None) -> VerifiedBatch:
    """`Replayer.verify`, the batch's signatures recovered first by worker threads (or processes) and
    put in the spec's memo, so that the replay itself recovers nothing. ``prepared``: the batch as
    `prepare_batch` decoded it with its signers (used if it is this append's)."""
    if prepared is not None and prepared.index == appended.index and prepared.tx_hash == appended.tx_hash:
        decoded = prepared
    else:
        decoded = replayer.decode(appended.index, appended.tx_hash, data)
    if replayer.replays(appended.index):
        pairs = signed_pairs(replayer.domain_separator, decoded.txs)
        if decoded.signers is None:
            decoded = msgspec.structs.replace(decoded, signers=await recover_signers(pairs, limiter=limiter, run_sync=run_sync))
        assert decoded.signers is not None
        remember(pairs, decoded.signers)
    return replayer.verify(appended, data, timestamp, decoded=decoded)


class Replayer:
    def __init__(self, store: KV, genesis: State) -> None:
        self.store = store
        self.domain_separator = genesis.config.domain_separator
        self.deposits: dict[int, DepositEntry] = {}
        self.forced: dict[int, ForcedEntry] = {}
        self._tip: tuple[int, bytes, State, Commitment] | None = None  # the last replayed batch, kept in memory
        self._replays: dict[tuple[int, bytes], Replay] = {}
        if self.store.get(keys.verifier_checkpoint(0)) is None:
            with self.store.write_batch(sync=True) as batch:
                batch.put(keys.verifier_checkpoint(0), CHECKPOINT.encode(VerifierCheckpoint(index=0, tx_hash=GENESIS_TX, state=encode_state(genesis))))

    # --- queue entries ------------------------------------------------------------------------------

    def note_queue_event(self, event: Any) -> None:
        if isinstance(event, events.Deposited):
            self.deposits[event.index] = DepositEntry(event.owner, event.amount)
        elif isinstance(event, events.ForcedWithdrawalRequested):
            self.forced[event.index] = ForcedEntry(event.requester, event.account_id, event.amount)

    def forget_queue_event(self, event: Any) -> None:
        if isinstance(event, events.Deposited):
            self.deposits.pop(event.index, None)
        elif isinstance(event, events.ForcedWithdrawalRequested):
            self.forced.pop(event.index, None)

    def context(self, timestamp: int) -> L1Context:
        return L1Context(timestamp, deposits=self.deposits, forced=self.forced)

    # --- reads --------------------------------------------------------------------------------------

    def batch(self, index: int) -> VerifiedBatch | None:
        return self.store.get_value(keys.verified_batch(index), BATCH)

    def batches(self, from_index: int = 1) -> list[VerifiedBatch]:
        stop = keys.prefix_end(keys.prefix_of(keys.Prefix.VERIFIED_BATCH))
        return [BATCH.decode(v, key=k) for k, v in self.store.iterate(start=keys.verified_batch(from_index), stop=stop)]

    def synced(self) -> int:
        """The highest batch index replayed (0: only genesis)."""
        last = self.store.last(keys.prefix_of(keys.Prefix.VERIFIED_BATCH))
        return 0 if last is None else keys.parse_verified_batch(last[0])

    def checkpoint(self, index: int) -> VerifierCheckpoint | None:
        return self.store.get_value(keys.verifier_checkpoint(index), CHECKPOINT)

    # --- verify -------------------------------------------------------------------------------------

    def _parent_tx(self, index: int) -> bytes | None:
        if index == 1:
            return GENESIS_TX
        parent = self.batch(index - 1)
        return None if parent is None else parent.tx_hash

    def _pre_state(self, index: int, parent_tx: bytes) -> tuple[State, Commitment]:
        tip = self._tip
        if tip is not None and tip[0] == index - 1 and tip[1] == parent_tx:
            return tip[2], tip[3]
        checkpoint = self.checkpoint(index - 1)
        if checkpoint is None or checkpoint.tx_hash != parent_tx:
            raise LookupError(f"no checkpoint after batch {index - 1} (append 0x{parent_tx.hex()[:16]})")
        state = decode_state(checkpoint.state)
        return state, Commitment.from_state(state)

    def decode(self, index: int, tx_hash: bytes, data: bytes) -> DecodedBatch:
        """Batch ``index`` (appended by ``tx_hash``) decoded, with its signers if the store has them."""
        stored = self.store.get_value(keys.verifier_decoded(index), DECODED)
        if stored is not None and stored.tx_hash == tx_hash:
            return stored
        return DecodedBatch(index=index, tx_hash=tx_hash, txs=[decode_transaction(r) for r in split_records(data)])

    def replays(self, index: int) -> bool:
        """Whether `verify` replays batch ``index`` (not when it builds on a batch that is not valid)."""
        parent = self.batch(index - 1) if index > 1 else None
        return parent is None or parent.verdict == VALID

    def verify(self, appended: Any, data: bytes, timestamp: int, *, decoded: DecodedBatch | None = None) -> VerifiedBatch:
        """Replay batch ``appended.index`` (a BatchAppended event) from the checkpoint before it
        (signatures the spec's memo does not have are recovered on this thread, as the spec meets them)."""
        index = appended.index
        parent_tx = self._parent_tx(index)
        if parent_tx is None:
            raise LookupError(f"batch {index - 1} has not been verified; batches are verified in order")
        parent = self.batch(index - 1) if index > 1 else None
        records = split_records(data)
        fields = dict(index=index, batch_id=appended.id, tx_hash=appended.tx_hash, parent_tx=parent_tx, block_number=appended.block_number,
                      timestamp=timestamp, appended_at=appended.appended_at, proposer=appended.proposer, data=data, tx_count=len(records), posted_root=appended.state_root)
        if parent is not None and parent.verdict != VALID:
            verdict = VerifiedBatch(**fields, computed_root=None, verdict=DESCENDS)
            with self.store.write_batch(sync=True) as batch:
                batch.put(keys.verified_batch(index), BATCH.encode(verdict))
            return verdict
        if decoded is None or decoded.index != index or decoded.tx_hash != appended.tx_hash:
            decoded = self.decode(index, appended.tx_hash, data)
        state, commitment = self._pre_state(index, parent_tx)
        ctx = self.context(timestamp)
        for tx in decoded.txs:
            state_transition(state, tx, ctx)
        root = commitment.update(state)
        if decoded.signers is None:  # recovered by the spec on this thread: read them back from its memo
            signers = [recover_signer(digest, signature) for digest, signature in signed_pairs(self.domain_separator, decoded.txs)]
            decoded = msgspec.structs.replace(decoded, signers=signers)
        verdict = VerifiedBatch(**fields, computed_root=root, verdict=VALID if root == appended.state_root else INVALID)
        with self.store.write_batch(sync=True) as batch:
            batch.put(keys.verified_batch(index), BATCH.encode(verdict))
            batch.put(keys.verifier_checkpoint(index), CHECKPOINT.encode(VerifierCheckpoint(index=index, tx_hash=appended.tx_hash,
                                                                                              state=encode_state(state))))
            batch.put(keys.verifier_decoded(index), DECODED.encode(decoded))
        self._tip = (index, appended.tx_hash, state, commitment)
        return verdict

    # --- unwinding ----------------------------------------------------------------------------------

    def relocate(self, index: int, *, block_number: int, appended_at: int) -> VerifiedBatch:
        """Batch ``index``'s append, unchanged, is now in another block (a reorg re-mined it): the
        verdict names that block and its time (the challenge window's start); nothing is replayed."""
        verified = self.batch(index)
        if verified is None:
            raise LookupError(f"batch {index} is not verified")
        moved = msgspec.structs.replace(verified, block_number=block_number, appended_at=appended_at)
        with self.store.write_batch(sync=True) as batch:
            batch.put(keys.verified_batch(index), BATCH.encode(moved))
        return moved

    def prune(self, through: int) -> int:
        """Delete what batches 1..``through`` no longer need, once they are final beyond any reorg:
        their decoded batches (no game can target a final batch) and the checkpoints before
        ``through`` (the one after it stays: the next batch replays from it). Returns the entries deleted."""
        doomed = [key for key, _ in self.store.iterate(start=keys.verifier_decoded(1), stop=keys.verifier_decoded(through + 1))]
        doomed += [key for key, _ in self.store.iterate(start=keys.verifier_checkpoint(1), stop=keys.verifier_checkpoint(through))]
        if doomed:
            with self.store.write_batch(sync=True) as batch:
                for key in doomed:
                    batch.delete(key)
        self._replays = {k: v for k, v in self._replays.items() if k[0] > through}
        return len(doomed)

    def discard_from(self, index: int) -> list[int]:
        """Forget batches ``index`` and later (discarded on L1, or removed by a reorg)."""
        gone = [b.index for b in self.batches(index)]
        with self.store.write_batch(sync=True) as batch:
            for i in gone:
                batch.delete(keys.verified_batch(i))
                batch.delete(keys.verifier_checkpoint(i))
                batch.delete(keys.verifier_decoded(i))
        if self._tip is not None and self._tip[0] >= index:
            self._tip = None
        self._replays = {k: v for k, v in self._replays.items() if k[0] < index}
        return gone

    # --- games --------------------------------------------------------------------------------------

    def replay_of(self, index: int) -> Replay:
        """The honest roots after every transaction of batch ``index`` and its witnesses (one batch
        replayed from the checkpoint before it; cached while the batch is live)."""
        verified = self.batch(index)
        if verified is None:
            raise LookupError(f"batch {index} is not verified")
        key = (index, verified.tx_hash)
        replay = self._replays.get(key)
        if replay is None:
            checkpoint = self.checkpoint(index - 1)
            if checkpoint is None or checkpoint.tx_hash != verified.parent_tx:
                raise LookupError(f"no checkpoint before batch {index}")
            decoded = self.decode(index, verified.tx_hash, verified.data)
            if decoded.signers is not None:  # a game after a restart recovers nothing
                pairs = signed_pairs(self.domain_separator, decoded.txs)
                remember(pairs, decoded.signers)
            replay = Replay(decode_state(checkpoint.state), split_records(verified.data), self.context(verified.timestamp), txs=decoded.txs)
            self._replays[key] = replay
        return replay


def live_batches(stored: Iterable[Any]) -> dict[int, Any]:
    """The Rollup's live batches {index: BatchAppended} from its events in chain order."""
    live: dict[int, Any] = {}
    for event in stored:
        if isinstance(event, events.BatchAppended):
            live[event.index] = event
        elif isinstance(event, events.BatchesDiscarded):
            for i in [i for i in live if i >= event.from_index]:
                del live[i]
    return live
