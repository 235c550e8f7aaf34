"""The proposer's view of its own batches, for the dispute player defending them in the sequencer.

    view = DefenceView(journal, rpc, rollup, follower, faults)
    roots = await view.roots(batch_index)     # the root after every transaction of the batch

The sequencer knows what it posted: the batch's records (its log range) and the state before it
(the checkpoint of the batch before). The L1 time a verifier replays with is the append block's
timestamp (``Rollup.getBatch``), and the queue entries are the Bridge's events the follower
stored. Roots are replayed once per batch and cached. With the devnet fault ``corrupt:B:K`` the
roots of batch B are the corrupted ones (the state gains one unit after transaction K), so the
sequencer defends the root it posted, as a dishonest proposer would.
"""

from __future__ import annotations

import logging
from typing import Any

import eth_abi

from optinode.l1 import events
from optinode.l1.rpc import RpcClient, hexbytes
from optinode.services.faults import Faults
from optinode.services.journal import Journal
from optinode.spec.crypto import keccak
from optinode.spec.state import copy_state
from optinode.spec.types import DepositEntry, ForcedEntry, L1Context
from optinode.replay import Replay

__all__ = ["DefenceView"]

log = logging.getLogger("optinode.services.defence")

GET_BATCH = keccak(b"getBatch(uint256)")[:4]
BATCH_TUPLE = "(bytes32,bytes32,uint64,uint64,uint32,uint32,uint64,uint64,uint64,uint64)"


class DefenceView:
    def __init__(self, journal: Journal, rpc: RpcClient, rollup: bytes, stored_events: Any, faults: Faults) -> None:
        self.journal = journal
        self.rpc = rpc
        self.rollup = rollup
        self.stored_events = stored_events
        self.faults = faults
        self._cache: dict[tuple[int, bytes], list[bytes]] = {}

    async def _on_chain(self, index: int) -> tuple[bytes, int]:
        data = await self.rpc.eth_call({"to": hexbytes(self.rollup), "data": hexbytes(GET_BATCH + eth_abi.encode(["uint256"], [index]))})
        (batch,) = eth_abi.decode([BATCH_TUPLE], data)
        return batch[0], batch[3]  # state root, timestamp

    async def roots(self, index: int) -> list[bytes] | None:
        record = self.journal.batch(index)
        before = self.journal.state_at(index - 1)
        if record is None or before is None:
            return None
        posted_root, timestamp = await self._on_chain(index)
        if posted_root != record.state_root:
            log.error("batch %d on L1 is not ours (root 0x%s): nothing to defend", index, posted_root.hex()[:16])
            return None
        key = (index, posted_root)
        if key not in self._cache:
            deposits, forced = {}, {}
            for event in self.stored_events():
                if isinstance(event, events.Deposited):
                    deposits[event.index] = DepositEntry(event.owner, event.amount)
                elif isinstance(event, events.ForcedWithdrawalRequested):
                    forced[event.index] = ForcedEntry(event.requester, event.account_id, event.amount)
            ctx = L1Context(timestamp, deposits=deposits, forced=forced)
            records = self.journal.batch_records(record)
            tamper = self.faults.tamper_after(index) if record.epoch == 0 else None  # (a rebuilt batch is honest)
            replay = Replay(copy_state(before), records, ctx, tamper_after=tamper)
            if replay.roots[-1] != posted_root and tamper is not None:
                replay = Replay(copy_state(before), records, ctx, tamper_after=len(records) - 1)
            if replay.roots[-1] != posted_root:
                log.error("batch %d: our replay gives root 0x%s, we posted 0x%s: cannot defend it", index, replay.roots[-1].hex()[:16],
                          posted_root.hex()[:16])
                return None
            self._cache[key] = replay.roots
        return self._cache[key]
