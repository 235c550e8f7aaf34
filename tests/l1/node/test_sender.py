"""The L1 sender on anvil: one item one transaction, fee-bump replacement, restart, crash before
broadcast, reorg re-sending, rejected calls, a nonce taken by someone else."""

from __future__ import annotations

import pytest
import trio
from eth_account import Account

from optinode.l1.rpc import RpcClient
from optinode.l1.sender import Sender, SenderPolicy, SendRejected

SINK = bytes.fromhex("00000000000000000000000000000000000000ff")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def account(accounts):
    return Account.from_key(accounts[6].key)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_sender(rpc, store, account, anvil, clock):
    def make(**policy) -> Sender:
        return Sender(rpc, store, account, chain_id=anvil.chain_id, policy=SenderPolicy(**{"resubmit_after": 5.0, **policy}), clock=clock)

    return make


@pytest.fixture
def no_automine(anvil, snapshot):
    anvil.rpc("evm_setAutomine", [False])
    yield
    anvil.rpc("evm_setAutomine", [True])


def our_txs(w3, address: str, first_block: int) -> list:
    """Every transaction from ``address`` in the canonical chain since ``first_block``."""
    found = []
    for n in range(first_block, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] == address:
                found.append(tx)
    return found


@pytest.mark.trio
async def test_one_item_is_one_transaction(make_sender, account, w3, snapshot) -> None:
    start = w3.eth.block_number + 1
    sender = make_sender()
    await sender.start()
    first = await sender.submit(item=1, to=SINK, data=b"\x01", value=5, label="batch 1")
    again = await sender.submit(item=1, to=SINK, data=b"\x02", value=6)
    assert again == first  # the same record, nothing sent
    record = await sender.wait(1)
    assert record.status == "mined" and record.tx_hash == first.attempts[0].tx_hash
    assert w3.eth.get_balance("0x" + SINK.hex()) >= 5
    second = await sender.submit(item=2, to=SINK, data=b"")
    assert second.nonce == first.nonce + 1
    await sender.wait(2)
    assert len(our_txs(w3, account.address, start)) == 2
    # a restarted sender (same store) sends neither again
    restarted = make_sender()
    await restarted.start()
    assert (await restarted.submit(item=1, to=SINK, data=b"")).tx_hash == record.tx_hash
    await restarted.poll()
    assert len(our_txs(w3, account.address, start)) == 2


@pytest.mark.trio
async def test_unmined_transaction_is_replaced_with_bumped_fees(make_sender, account, anvil, w3, clock, no_automine) -> None:
    start = w3.eth.block_number + 1
    sender = make_sender(fee_bump_percent=20)
    await sender.start()
    record = await sender.submit(item=7, to=SINK, data=b"\x07", label="batch 7")
    assert await sender.poll() == []  # not mined, not yet due
    clock.now += 6
    await sender.poll()
    record = sender.record(7)
    assert len(record.attempts) == 2
    old, new = record.attempts
    assert new.max_fee >= old.max_fee * 120 // 100 and new.tip >= old.tip * 120 // 100
    assert new.tx_hash != old.tx_hash
    anvil.rpc("evm_mine")
    changed = await sender.poll()
    assert [(r.item, r.status) for r in changed] == [(7, "mined")]
    mined = sender.record(7)
    assert mined.tx_hash == new.tx_hash  # the replacement, which outbid the original
    txs = our_txs(w3, account.address, start)
    assert [bytes(t["hash"]) for t in txs] == [new.tx_hash]  # exactly one transaction for the item


@pytest.mark.trio
async def test_crash_between_write_and_broadcast_is_resent_on_restart(make_sender, rpc, account, w3, monkeypatch, snapshot) -> None:
    start = w3.eth.block_number + 1
    sender = make_sender()
    await sender.start()

    async def crash(raw: bytes) -> bytes:
        raise KeyboardInterrupt  # the process dies here: the record is written, nothing was sent

    monkeypatch.setattr(rpc, "send_raw_transaction", crash)
    with pytest.raises(KeyboardInterrupt):
        await sender.submit(item=3, to=SINK, data=b"")
    monkeypatch.undo()
    assert our_txs(w3, account.address, start) == []
    restarted = make_sender()
    await restarted.start()  # re-broadcasts the stored signed bytes
    record = await restarted.wait(3)
    assert record.status == "mined"
    assert [bytes(t["hash"]) for t in our_txs(w3, account.address, start)] == [record.attempts[0].tx_hash]


@pytest.mark.trio
async def test_a_reorg_that_drops_the_transaction_gets_it_resent(make_sender, account, anvil, w3, snapshot) -> None:
    anvil.rpc("anvil_mine", ["0x5"])  # a chain deep enough to reorg
    start = w3.eth.block_number + 1
    sender = make_sender()
    await sender.start()
    await sender.submit(item=5, to=SINK, data=b"\x05")
    mined = await sender.wait(5)
    anvil.rpc("anvil_mine", ["0x1"])
    anvil.rpc("anvil_reorg", [3, []])  # the block with our transaction is replaced by an empty one
    changed = await sender.poll()  # notices, goes back to pending, re-broadcasts (automine mines it)
    assert [(r.item, r.status) for r in changed] == [(5, "pending")]
    again = await sender.wait(5)
    assert again.status == "mined" and again.block_hash != mined.block_hash
    txs = our_txs(w3, account.address, start)
    assert [bytes(t["hash"]) for t in txs] == [again.tx_hash]  # once in the canonical chain
    assert w3.eth.get_transaction_count(account.address) == mined.nonce + 1


@pytest.mark.trio
async def test_a_call_that_would_revert_is_rejected_and_nothing_stored(make_sender, system, snapshot) -> None:
    sender = make_sender()
    await sender.start()
    data = system.rollup.functions.finalize(99)._encode_transaction_data()
    with pytest.raises(SendRejected, match="would fail"):
        await sender.submit(item=9, to=bytes.fromhex(system.rollup.address[2:]), data=bytes.fromhex(data[2:]))
    assert sender.record(9) is None
    assert sender.records() == []


@pytest.mark.trio
async def test_a_nonce_taken_by_another_signer_is_a_conflict(make_sender, account, anvil, w3, clock, no_automine) -> None:
    sender = make_sender()
    await sender.start()
    record = await sender.submit(item=4, to=SINK, data=b"")
    # someone else signs a different transaction with the same key and nonce, paying far more
    rival = account.sign_transaction(
        {"type": 2, "chainId": anvil.chain_id, "nonce": record.nonce, "to": account.address, "value": 0, "gas": 21000,
         "maxFeePerGas": record.attempts[0].max_fee * 3, "maxPriorityFeePerGas": record.attempts[0].tip * 3}
    )
    w3.eth.send_raw_transaction(rival.raw_transaction)
    anvil.rpc("evm_mine")
    changed = await sender.poll()
    assert [(r.item, r.status) for r in changed] == [(4, "conflict")]
    clock.now += 100
    assert await sender.poll() == []  # a conflict is not retried: it would need a new nonce


@pytest.mark.trio
async def test_sender_service_reports_changes(make_sender, snapshot) -> None:
    from optinode.l1.sender import run

    sender = make_sender()
    send, receive = trio.open_memory_channel(4)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status=trio.TASK_STATUS_IGNORED: run(sender, send, poll_interval=0.05, task_status=task_status))
            await sender.submit(item=11, to=SINK, data=b"")
            change = await receive.receive()
            nursery.cancel_scope.cancel()
    assert (change.item, change.status) == (11, "mined")


@pytest.mark.trio
async def test_sender_for_a_configured_role(rpc, store, anvil, accounts, snapshot) -> None:
    from pathlib import Path

    from optinode.config import load_config

    node = load_config(Path(__file__).resolve().parents[3] / "configs" / "devnet.toml").node
    sender = Sender.for_role(rpc, store, node, "proposer", chain_id=anvil.chain_id, environ={"OPTINODE_PROPOSER_KEY": anvil.private_keys[1]})
    assert sender.signer.address == accounts[1].address
    assert sender.policy.resubmit_after == node.sender.resubmit_after
    assert sender.policy.max_fee_per_gas == node.sender.max_fee_per_gas_gwei * 10**9
    assert sender.policy.settle_depth == node.reorg_window
    await sender.start()
    assert (await sender.wait((await sender.submit(item=1, to=SINK, data=b"")).item)).status == "mined"
