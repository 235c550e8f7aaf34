"""A reorg of up to 5 blocks that removes a posted batch and a deposit: the follower unwinds both,
the sender re-posts the batch (the same signed transaction: one nonce, never twice), the deposit is
gone from the follower's view until it happens again."""

from __future__ import annotations

import pytest
from eth_account import Account

from optinode.l1 import events
from optinode.l1.contracts import StateParts
from optinode.l1.follower import Follower, Reorg
from optinode.l1.sender import Sender, SenderPolicy
from optinode.spec.batch_framing import frame_records
from optinode.spec.crypto import keccak

from tests.l1.node.test_follower import drain


def appended(outputs) -> list[int]:
    return [e.index for e in outputs if isinstance(e, events.BatchAppended)]


def deposited(outputs) -> list[int]:
    return [e.amount for e in outputs if isinstance(e, events.Deposited)]


@pytest.mark.parametrize("depth", [1, 3, 5])
@pytest.mark.trio
async def test_reorg_removes_a_batch_and_a_deposit(depth, rpc, store, contracts, deployment_block, system, accounts, anvil, w3) -> None:
    proposer = Account.from_key(accounts[1].key)
    user = accounts[4].address
    follower = Follower(rpc, store, contracts, start_block=deployment_block, window=32)
    sender = Sender(rpc, store, proposer, chain_id=anvil.chain_id, policy=SenderPolicy(resubmit_after=1000))
    await sender.start()
    anvil.rpc("anvil_mine", ["0x5"])  # room below the reorg: the contracts stay deployed
    await drain(follower)

    parts = StateParts(keccak(b"a"), keccak(b"s"), keccak(b"g"), 0, 0)
    calldata = system.rollup.functions.appendBatch(frame_records([b"\x01\x02", b"\x03"]), *parts.as_tuple(), w3.eth.get_block("latest")["timestamp"], system.batch(0)["stateRoot"])._encode_transaction_data()
    posted = await sender.submit(
        item=1, to=bytes.fromhex(system.rollup.address[2:]), data=bytes.fromhex(calldata[2:]), value=system.params.proposer_bond, label="batch 1"
    )
    mined = await sender.wait(1)
    system.deposit(user, user, 123_456)  # mint, approve, deposit: the three blocks after the batch's
    assert w3.eth.block_number == mined.block_number + 3
    out = await drain(follower)
    assert appended(out) == [1] and deposited(out) == [123_456]
    tip = w3.eth.block_number
    # remove the last `depth` blocks; with depth < 4 the batch's block survives, only the deposit goes
    anvil.rpc("anvil_reorg", [depth, []])
    batch_removed = mined.block_number > tip - depth
    assert batch_removed == (depth == 5)

    out = await drain(follower)
    reorg = out[0]
    # An empty block rebuilt with the same parent and timestamp has the same hash: it is not removed,
    # so the common ancestor may be above tip - depth, but never at or above a changed block.
    assert isinstance(reorg, Reorg) and tip - depth <= reorg.common_ancestor < tip
    assert 123_456 in deposited(reorg.removed)
    assert (1 in appended(reorg.removed)) == batch_removed
    assert reorg.common_ancestor < (mined.block_number if batch_removed else tip)

    await sender.poll()  # re-posts what the reorg dropped
    record = await sender.wait(1)
    assert record.status == "mined"
    out += await drain(follower)
    # The batch is on the chain exactly once, with the same transaction as before.
    assert system.rollup.functions.batchCount().call() == 2  # genesis + batch 1
    assert record.tx_hash == posted.attempts[0].tx_hash
    assert w3.eth.get_transaction_count(proposer.address) == posted.nonce + 1
    if batch_removed:
        assert appended(out[1:]) == [1]  # read again from the new chain
    assert sorted(e.index for e in follower.stored_events() if isinstance(e, events.BatchAppended)) == [1]
    # The deposit is gone: the bridge's queue is empty on the canonical chain, and so is the follower's view.
    assert system.bridge.functions.depositCount().call() == 0
    assert [e for e in follower.stored_events() if isinstance(e, events.Deposited)] == []
