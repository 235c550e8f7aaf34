"""The watchtower's view of the Bridge's queues: which entries no finalized batch has consumed yet, and
how close each is to its deadline (docs/verifier.md, "Queue deadlines").

    watch = QueueWatch(rpc, rollup, deadlines={"forced": 300, "deposit": 300}, warning={...}, metrics=m)
    watch.note(event)                 # Deposited / ForcedWithdrawalRequested, from the follower
    await watch.check(head, last_final)   # once per head: gauges, and the alerts below

Once the oldest entry that the *finalized* state has not consumed is older than its deadline, anyone
may freeze the rollup (Bridge.freeze): the escape hatch. A sequencer that censors a forced withdrawal
gets there; a watchtower must say so before it happens. So, once per entry: ``forced_deadline_near``
(``deposit_deadline_near``) when ``seconds_left <= warning``, and ``forced_deadline_passed`` when the
deadline is over. The consumed counts are the Rollup's own (``lastFinalized()``, what the Bridge
checks), read again whenever the last final batch changes; an entry's time is its block's timestamp
(the Bridge records ``block.timestamp``).
"""

from __future__ import annotations

import logging
from typing import Any

import eth_abi

from optinode.l1 import events
from optinode.l1.follower import Head
from optinode.l1.rpc import RpcClient, hexbytes
from optinode.logs import alert
from optinode.metrics import VerifierMetrics
from optinode.spec.crypto import keccak

__all__ = ["QueueWatch"]

log = logging.getLogger("optinode.services.queue_watch")

_LAST_FINALIZED = keccak(b"lastFinalized()")[:4]
KINDS = {events.ForcedWithdrawalRequested: "forced", events.Deposited: "deposit"}


class QueueWatch:
    def __init__(self, rpc: RpcClient, rollup: bytes, *, deadlines: dict[str, int], warning: dict[str, int], metrics: VerifierMetrics) -> None:
        self.rpc, self.rollup, self.deadlines, self.warning, self.metrics = rpc, rollup, deadlines, warning, metrics
        self.entries: dict[str, dict[int, Any]] = {kind: {} for kind in deadlines}
        self.served: dict[str, int] = {kind: 0 for kind in deadlines}  # consumed by the last finalized batch
        self._served_for: int | None = None  # the last_final the counts were read at
        self._times: dict[bytes, int] = {}  # block hash -> timestamp
        self._alerted: set[tuple[str, str, int, bytes]] = set()  # (alert, kind, index, block hash)

    def note(self, event: Any) -> None:
        kind = KINDS.get(type(event))
        if kind is not None and kind in self.entries:
            self.entries[kind][event.index] = event

    def forget(self, event: Any) -> None:
        """A reorg removed it."""
        kind = KINDS.get(type(event))
        if kind is not None and kind in self.entries and self.entries[kind].get(event.index) == event:
            del self.entries[kind][event.index]
        self._served_for = None  # a removed BatchFinalized changes the counts too

    async def _read_served(self, last_final: int) -> None:
        if self._served_for == last_final:
            return
        data = await self.rpc.eth_call({"to": hexbytes(self.rollup), "data": hexbytes(_LAST_FINALIZED)})
        _, _, deposits_done, forced_done = eth_abi.decode(["uint256", "bytes32", "uint64", "uint64"], data)
        self.served = {kind: {"forced": forced_done, "deposit": deposits_done}[kind] for kind in self.deadlines}
        self._served_for = last_final

    async def _time_of(self, event: Any) -> int | None:
        known = self._times.get(event.block_hash)
        if known is None:
            block = await self.rpc.get_block(event.block_number)
            if block is None or block.hash != event.block_hash:
                return None  # a reorg is under way: the follower will say
            known = self._times[event.block_hash] = block.timestamp
        return known

    async def unserved(self, head: Head, last_final: int) -> dict[str, list[dict[str, Any]]]:
        """Per queue, the entries no finalized batch consumed: index, requested_at, deadline_at, seconds_left."""
        await self._read_served(last_final)
        out: dict[str, list[dict[str, Any]]] = {}
        for kind, table in self.entries.items():
            for index in [i for i in table if i < self.served[kind]]:
                del table[index]  # served for good (a reorg deeper than finality is not survivable anyway)
            rows = []
            for index in sorted(table):
                event = table[index]
                requested_at = await self._time_of(event)
                if requested_at is None:
                    continue
                deadline_at = requested_at + self.deadlines[kind]
                rows.append({"index": index, "block": event.block_number, "block_hash": event.block_hash, "requested_at": requested_at,
                             "deadline_at": deadline_at, "seconds_left": deadline_at - head.timestamp})
            out[kind] = rows
        return out

    async def check(self, head: Head, last_final: int) -> dict[str, list[dict[str, Any]]]:
        """Gauges and alerts at this head; returns what `unserved` found (for the status)."""
        found = await self.unserved(head, last_final)
        for kind, rows in found.items():
            self.metrics.queue_unserved.labels(kind).set(len(rows))
            self.metrics.queue_seconds_left.labels(kind).set(min((r["seconds_left"] for r in rows), default=float("nan")))
            for row in rows:
                left = row["seconds_left"]
                name = f"{kind}_deadline_passed" if left <= 0 else f"{kind}_deadline_near" if left <= self.warning[kind] else None
                if name is None or (name, kind, row["index"], row["block_hash"]) in self._alerted:
                    continue
                self._alerted.add((name, kind, row["index"], row["block_hash"]))
                if name.endswith("near"):
                    self.metrics.queue_deadline_near.labels(kind).inc()
                alert(log, name, level=logging.ERROR if left <= 0 else logging.WARNING, queue=kind, index=row["index"],
                      requested_at=row["requested_at"], deadline_at=row["deadline_at"], seconds_left=left,
                      served_by_final=self.served[kind], threshold=self.warning[kind])
        return found
