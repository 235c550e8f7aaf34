"""The L1 sender of one key: nonces, EIP-1559 fees, fee-bump replacement, receipts, re-sending what a
reorg dropped, and never sending the same logical item twice.

    sender = Sender(rpc, store, account, chain_id=31337, policy=SenderPolicy.from_config(node.sender))
    await sender.start()                                   # reconcile with the chain, re-broadcast pending
    record = await sender.submit(item=17, to=rollup, data=calldata, value=bond, label="batch 17")
    changed = await sender.poll()                          # receipts, bumps, reorg checks (the service loops it)

**One item, one nonce.** A caller names each logical item with a number it will never reuse for
anything else (e.g. the batch index, in a range of item ids reserved per kind). `submit` for an item
that already has a record returns that record and sends nothing. The first time, it assigns the next
nonce, signs, and writes the record (nonce, the signed transaction, the new next-nonce) in one synced
write batch *before* broadcasting. A crash after that write re-broadcasts the same signed bytes on
restart; replacements reuse the nonce, so at most one transaction of an item can ever be mined.

**Fees.** ``maxPriorityFeePerGas`` from ``eth_maxPriorityFeePerGas`` (the policy's tip where the endpoint
lacks it), ``maxFeePerGas = 2 * baseFee + tip`` (survives six full blocks of base-fee rises), both
capped by the policy. A transaction not mined ``resubmit_after`` seconds after its last send is
replaced: both fees raised by ``fee_bump_percent`` (>= 10%, what clients require) or to the market,
whichever is higher; at the cap it is re-broadcast unchanged and a warning says so.

**Reorgs.** A mined record is re-checked each poll until ``settle_depth`` blocks deep: if its receipt
disappeared (the block left the chain) it is pending again and its signed bytes are re-broadcast
(same nonce, same hash); if it moved to another block the record follows it.

**Reverted transactions** are final for the sender (status ``reverted``, the receipt kept): re-sending
the same call would fail the same way; the caller decides what a failed item means. A call that
``eth_estimateGas`` already rejects raises `SendRejected` and stores nothing.

If the nonce of a pending record is consumed by a transaction that is not one of its attempts
(another process signing with the same key), the record becomes ``conflict`` and an error is
logged: one key, one sender.

Only standard ``eth_*`` methods are used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import msgspec
import trio

from optinode.l1.rpc import Receipt, RpcClient, RpcError, hexbytes, hexint
from optinode.store import keys
from optinode.store.codec import Codec
from optinode.store.kv import KV

__all__ = ["Attempt", "SendRecord", "SendRejected", "Sender", "SenderPolicy", "run"]

log = logging.getLogger("optinode.l1.sender")

GWEI = 10**9
Status = Literal["pending", "mined", "reverted", "settled", "conflict"]


class Signer(Protocol):
    address: str

    def sign_transaction(self, tx: dict[str, Any]) -> Any: ...


class Attempt(msgspec.Struct, frozen=True, array_like=True):
    tx_hash: bytes
    raw: bytes
    max_fee: int
    tip: int
    sent_at: float  # unix time of the last broadcast of these bytes


class SendRecord(msgspec.Struct, frozen=True, kw_only=True):
    item: int
    label: str
    nonce: int
    to: bytes
    data: bytes
    value: int
    gas: int
    attempts: tuple[Attempt, ...]
    status: Status = "pending"
    block_number: int = -1  # where the mined attempt is (mined/reverted/settled)
    block_hash: bytes = b""
    tx_hash: bytes = b""  # the mined attempt
    gas_used: int = 0


class NextNonce(msgspec.Struct, frozen=True, array_like=True):
    value: int


RECORD = Codec(SendRecord)
NONCE = Codec(NextNonce)
ITEM = Codec(int)


class SendRejected(Exception):
    """The endpoint refuses the call before anything is sent (``eth_estimateGas`` reverts)."""

    def __init__(self, label: str, error: RpcError) -> None:
        self.error = error
        super().__init__(f"{label}: the call would fail: {error.message}")


@dataclass(frozen=True)
class SenderPolicy:
    resubmit_after: float = 24.0
    fee_bump_percent: int = 15
    max_fee_per_gas: int = 500 * GWEI
    default_tip: int = 1 * GWEI
    settle_depth: int = 64  # re-check a mined record's receipt until this deep
    gas_margin_percent: int = 25  # over eth_estimateGas

    @classmethod
    def from_config(cls, section: Any, *, settle_depth: int = 64) -> SenderPolicy:
        """From the config's ``[node.sender]`` (optinode.config.SenderSection)."""
        return cls(
            resubmit_after=section.resubmit_after,
            fee_bump_percent=section.fee_bump_percent,
            max_fee_per_gas=section.max_fee_per_gas_gwei * GWEI,
            default_tip=int(section.priority_fee_gwei * GWEI),
            settle_depth=settle_depth,
        )


def _bumped(value: int, percent: int) -> int:
    return -(-value * (100 + percent) // 100)  # ceiling: never a hair under the client's 10% rule


class Sender:
    def __init__(
        self,
        rpc: RpcClient,
        store: KV,
        signer: Signer,
        *,
        chain_id: int,
        policy: SenderPolicy = SenderPolicy(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rpc = rpc
        self.store = store
        self.signer = signer
        self.address = bytes.fromhex(signer.address[2:])
        self.chain_id = chain_id
        self.policy = policy
        self.clock = clock
        self._open: set[int] = set()  # items not settled/conflict: what poll looks at
        self._lock = trio.Lock()  # submit and poll never interleave their read-modify-write

    @classmethod
    def for_role(
        cls, rpc: RpcClient, store: KV, node: Any, role: str, *, chain_id: int, environ: Any = None, base_dir: Any = None
    ) -> Sender:
        """The sender of ``role``'s key (``[node.keys]``), with ``[node.sender]``'s policy; a mined
        transaction is watched for reorgs over the follower's window (``node.reorg_window``)."""
        from optinode.config import load_key

        secret = load_key(node, role, environ=environ, base_dir=base_dir)
        policy = SenderPolicy.from_config(node.sender, settle_depth=node.reorg_window)
        return cls(rpc, store, secret.account(), chain_id=chain_id, policy=policy)

    # --- records ---------------------------------------------------------------------------------

    def record(self, item: int) -> SendRecord | None:
        return self.store.get_value(keys.sender_item(self.address, item), RECORD)

    def records(self) -> list[SendRecord]:
        return [RECORD.decode(v, key=k) for k, v in self.store.iterate(prefix=keys.sender_items(self.address))]

    def _next_nonce(self) -> int | None:
        stored = self.store.get_value(keys.sender_nonce(self.address), NONCE)
        return None if stored is None else stored.value

    def _save(self, record: SendRecord, *, next_nonce: int | None = None) -> None:
        with self.store.write_batch(sync=True) as batch:
            batch.put(keys.sender_item(self.address, record.item), RECORD.encode(record))
            if next_nonce is not None:
                batch.put(keys.sender_nonce(self.address), NONCE.encode(NextNonce(next_nonce)))
                batch.put(keys.sender_by_nonce(self.address, record.nonce), ITEM.encode(record.item))

    # --- start -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load open records, move the nonce past what the chain has seen, re-broadcast pending ones."""
        async with self._lock:
            chain_nonce = await self.rpc.get_transaction_count(self.address, "pending")
            stored = self._next_nonce()
            if stored is None or chain_nonce > stored:
                if stored is not None:
                    log.warning("%s: the chain has nonce %d past ours (%d): the key was used elsewhere", self.signer.address, chain_nonce, stored)
                with self.store.write_batch(sync=True) as batch:
                    batch.put(keys.sender_nonce(self.address), NONCE.encode(NextNonce(chain_nonce)))
            self._open = {r.item for r in self.records() if r.status in ("pending", "mined", "reverted")}
            for record in sorted((self.record(i) for i in self._open), key=lambda r: r.nonce):  # type: ignore[union-attr]
                if record.status == "pending":
                    await self._broadcast(record, record.attempts[-1])

    # --- submit ----------------------------------------------------------------------------------

    async def submit(self, *, item: int, to: bytes, data: bytes, value: int = 0, gas: int | None = None, label: str = "") -> SendRecord:
        label = label or f"item {item}"
        async with self._lock:
            existing = self.record(item)
            if existing is not None:
                return existing  # never the same item twice
            if gas is None:
                try:
                    # On the pending block: the transaction runs after our own unmined ones (nonce
                    # order), e.g. a pipelined append names as its parent a batch still in the mempool.
                    estimate = await self.rpc.estimate_gas(
                        {"from": self.signer.address, "to": hexbytes(to), "data": hexbytes(data), "value": hexint(value)}, "pending"
                    )
                except RpcError as error:
                    raise SendRejected(label, error) from None
                gas = estimate * (100 + self.policy.gas_margin_percent) // 100
            nonce = self._next_nonce()
            if nonce is None:
                raise RuntimeError("Sender.start() must run before submit()")
            max_fee, tip = await self._market_fees()
            attempt = self._sign(nonce, to, data, value, gas, max_fee, tip)
            record = SendRecord(item=item, label=label, nonce=nonce, to=to, data=data, value=value, gas=gas, attempts=(attempt,))
            self._save(record, next_nonce=nonce + 1)  # durable before it can reach the network
            self._open.add(item)
            log.info("%s: sending with nonce %d (max fee %d, tip %d, gas %d)", label, nonce, max_fee, tip, gas)
            await self._broadcast(record, attempt)
            return record

    async def _market_fees(self) -> tuple[int, int]:
        block = await self.rpc.get_block("latest")
        base = block.base_fee if block is not None else 0
        tip = await self.rpc.max_priority_fee()
        tip = self.policy.default_tip if tip is None else tip
        cap = self.policy.max_fee_per_gas
        max_fee = min(cap, 2 * base + tip)
        return max_fee, min(tip, max_fee)

    def _sign(self, nonce: int, to: bytes, data: bytes, value: int, gas: int, max_fee: int, tip: int) -> Attempt:
        from web3 import Web3

        signed = self.signer.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": Web3.to_checksum_address(to),
                "value": value,
                "data": data,
                "gas": gas,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
            }
        )
        return Attempt(bytes(signed.hash), bytes(signed.raw_transaction), max_fee, tip, self.clock())

    async def _broadcast(self, record: SendRecord, attempt: Attempt) -> None:
        try:
            await self.rpc.send_raw_transaction(attempt.raw)
        except RpcError as error:
            # "already known", "nonce too low" (mined meanwhile), "replacement underpriced": the next
            # poll's receipt check tells what happened; nothing here may send anything else.
            log.info("%s: broadcast of %s answered: %s", record.label, attempt.tx_hash.hex()[:12], error.message)

    # --- poll ------------------------------------------------------------------------------------

    async def poll(self) -> list[SendRecord]:
        """One round over the open records, in nonce order. Returns the records whose status changed."""
        changed: list[SendRecord] = []
        async with self._lock:
            records = sorted((r for r in (self.record(i) for i in self._open) if r is not None), key=lambda r: r.nonce)
            if not records:
                return changed
            head = await self.rpc.block_number()
            for record in records:
                updated = await self._check(record, head)
                if updated is not record:
                    self._save(updated)
                    if updated.status != record.status:
                        changed.append(updated)
                    if updated.status in ("settled", "conflict"):
                        self._open.discard(updated.item)
        return changed

    async def _check(self, record: SendRecord, head: int) -> SendRecord:
        if record.status in ("mined", "reverted"):
            receipt = await self.rpc.get_receipt(record.tx_hash)
            if receipt is None:
                log.warning("%s: its block %d left the chain (reorg); re-broadcasting", record.label, record.block_number)
                # The last attempt carries the highest fees; any attempt is valid for this nonce. Re-sent now:
                # its replacement timer starts again (else a batch sent long ago is fee-bumped at once).
                again = msgspec.structs.replace(record.attempts[-1], sent_at=self.clock())
                record = msgspec.structs.replace(record, status="pending", block_number=-1, block_hash=b"", tx_hash=b"", gas_used=0,
                                                 attempts=(*record.attempts[:-1], again))
                await self._broadcast(record, again)
                return record
            if receipt.block_hash != record.block_hash:
                record = self._mined(record, receipt)
            if head - record.block_number + 1 >= self.policy.settle_depth:
                return msgspec.structs.replace(record, status="settled")
            return record
        # pending: did any attempt land?
        for attempt in reversed(record.attempts):
            receipt = await self.rpc.get_receipt(attempt.tx_hash)
            if receipt is not None:
                mined = self._mined(record, receipt)
                log.info("%s: %s in block %d (attempt %d of %d)", record.label, mined.status, receipt.block_number,
                         record.attempts.index(attempt) + 1, len(record.attempts))
                return mined
        if await self.rpc.get_transaction_count(self.address, "latest") > record.nonce:
            # The nonce is used, by none of our attempts (their receipts would be there). Re-check once
            # more: a receipt can lag the nonce on some endpoints.
            for attempt in reversed(record.attempts):
                receipt = await self.rpc.get_receipt(attempt.tx_hash)
                if receipt is not None:
                    return self._mined(record, receipt)
            log.error("%s: nonce %d was used by a transaction this sender did not sign (key shared?)", record.label, record.nonce)
            return msgspec.structs.replace(record, status="conflict")
        last = record.attempts[-1]
        if self.clock() - last.sent_at < self.policy.resubmit_after:
            return record
        return await self._replace(record)

    def _mined(self, record: SendRecord, receipt: Receipt) -> SendRecord:
        return msgspec.structs.replace(
            record,
            status="mined" if receipt.status == 1 else "reverted",
            block_number=receipt.block_number,
            block_hash=receipt.block_hash,
            tx_hash=receipt.tx_hash,
            gas_used=receipt.gas_used,
        )

    async def _replace(self, record: SendRecord) -> SendRecord:
        last = record.attempts[-1]
        market_max, market_tip = await self._market_fees()
        percent = self.policy.fee_bump_percent
        tip = max(_bumped(last.tip, percent), market_tip)
        max_fee = max(_bumped(last.max_fee, percent), market_max, tip)
        cap = self.policy.max_fee_per_gas
        if max_fee > cap:
            max_fee, tip = cap, min(tip, cap)
        if max_fee < _bumped(last.max_fee, 10) or tip < _bumped(last.tip, 10):
            log.warning("%s: not mined, and the fee cap (%d) leaves no room for a replacement; re-broadcasting", record.label, cap)
            again = msgspec.structs.replace(last, sent_at=self.clock())
            record = msgspec.structs.replace(record, attempts=(*record.attempts[:-1], again))
            await self._broadcast(record, again)
            return record
        attempt = self._sign(record.nonce, record.to, record.data, record.value, record.gas, max_fee, tip)
        record = msgspec.structs.replace(record, attempts=(*record.attempts, attempt))
        self._save(record)  # the replacement is durable before it is sent
        log.info("%s: not mined after %.0f s: replacing (nonce %d, max fee %d -> %d, tip %d -> %d)",
                 record.label, self.policy.resubmit_after, record.nonce, last.max_fee, max_fee, last.tip, tip)
        await self._broadcast(record, attempt)
        return record

    async def wait(self, item: int, *, poll_interval: float = 0.2, depth: int = 1) -> SendRecord:
        """Poll until ``item`` is mined (or reverted/conflict) and ``depth`` blocks deep."""
        while True:
            await self.poll()
            record = self.record(item)
            if record is None:
                raise KeyError(item)
            if record.status == "conflict":
                return record
            if record.status in ("mined", "reverted", "settled"):
                if await self.rpc.block_number() - record.block_number + 1 >= depth:
                    return record
            await trio.sleep(poll_interval)


async def run(
    sender: Sender,
    changes: trio.MemorySendChannel[SendRecord] | None,
    *,
    poll_interval: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The sender as a trio service: start, then poll every ``poll_interval`` and send each status
    change (mined, reverted, back to pending after a reorg, settled, conflict) to ``changes``."""
    await sender.start()
    task_status.started()
    while True:
        for record in await sender.poll():
            if changes is not None:
                await changes.send(record)
        await trio.sleep(poll_interval)
