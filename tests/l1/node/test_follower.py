"""The L1 follower on anvil: typed events, restart, reorgs (anvil_reorg, evm_revert), depth."""

from __future__ import annotations

import pytest
import trio

from optinode.l1 import events
from optinode.l1.follower import Follower, FollowerCritical, Head, Reorg, run
from optinode.store import keys


def addr(text: str) -> bytes:
    return bytes.fromhex(text[2:])


async def drain(follower: Follower, limit: int = 50) -> list:
    """Poll until caught up; everything emitted."""
    out: list = []
    for _ in range(limit):
        outputs, caught_up = await follower.poll()
        out.extend(outputs)
        if caught_up:
            return out
    raise AssertionError("follower never caught up")


def deposits(outputs) -> list[tuple[int, bytes, int]]:
    return [(e.index, e.owner, e.amount) for e in outputs if isinstance(e, events.Deposited)]


@pytest.fixture
def follower(rpc, store, contracts, deployment_block) -> Follower:
    return Follower(rpc, store, contracts, start_block=deployment_block - 3, window=16, max_range=4)


@pytest.mark.trio
async def test_reads_typed_events_from_the_deployment_block(follower, system, accounts, w3) -> None:
    user_a, user_b = accounts[4].address, accounts[5].address
    system.deposit(user_a, user_a, 1_000_000)
    system.deposit(user_b, user_a, 2_500_000)  # b pays into a's account
    out = await drain(follower)
    assert deposits(out) == [(0, addr(user_a), 1_000_000), (1, addr(user_a), 2_500_000)]
    deposited = [e for e in out if isinstance(e, events.Deposited)]
    assert deposited[1].from_ == addr(user_b)
    assert deposited[1].address == addr(system.bridge.address)
    receipt_block = w3.eth.get_block(deposited[1].block_number)
    assert deposited[1].block_hash == bytes(receipt_block["hash"])
    head = out[-1]
    assert isinstance(head, Head) and head.number == w3.eth.block_number
    assert head.timestamp == w3.eth.get_block("latest")["timestamp"]
    # several ranges of max_range=4 blocks were needed, each ending with its Head
    assert sum(isinstance(o, Head) for o in out) >= 2
    assert follower.position.number == w3.eth.block_number
    assert [e.index for e in follower.stored_events() if isinstance(e, events.Deposited)] == [0, 1]


@pytest.mark.trio
async def test_restart_resumes_without_re_emitting(follower, rpc, store, contracts, system, accounts) -> None:
    user = accounts[4].address
    system.deposit(user, user, 7)
    assert deposits(await drain(follower)) == [(0, addr(user), 7)]
    again = Follower(rpc, store, contracts, start_block=follower.start_block, window=16, max_range=4)
    assert await drain(again) == []  # nothing new: nothing emitted twice
    system.deposit(user, user, 8)
    assert deposits(await drain(again)) == [(1, addr(user), 8)]


@pytest.mark.trio
async def test_anvil_reorg_unwinds_the_removed_deposit(follower, system, accounts, anvil, w3) -> None:
    user = accounts[4].address
    system.deposit(user, user, 5)  # mint, approve, deposit: the deposit is in the last block
    out = await drain(follower)
    assert deposits(out) == [(0, addr(user), 5)]
    tip_before = follower.position
    anvil.rpc("anvil_reorg", [3, []])  # replace the last 3 blocks (approve, deposit and one more) with empty ones
    out = await drain(follower)
    reorg = out[0]
    assert isinstance(reorg, Reorg)
    # the deposit's block (the tip) changed; the two blocks under it held txs too, so changed as well
    assert tip_before.number - 3 <= reorg.common_ancestor < tip_before.number
    assert [(e.index, e.amount) for e in reorg.removed if isinstance(e, events.Deposited)] == [(0, 5)]
    assert deposits(out) == []  # the new chain has no deposit
    assert follower.position.number == w3.eth.block_number
    assert follower.position.hash == bytes(w3.eth.get_block("latest")["hash"])
    assert list(follower.stored_events()) == [e for e in follower.stored_events() if e.block_number <= reorg.common_ancestor]
    # and the chain goes on: a new deposit is index 0 again (the removed one never happened)
    system.deposit(user, user, 6)
    assert deposits(await drain(follower)) == [(0, addr(user), 6)]


@pytest.mark.trio
async def test_evm_revert_to_a_longer_other_chain(follower, system, accounts, anvil) -> None:
    user_a, user_b = accounts[4].address, accounts[5].address
    snap = anvil.rpc("evm_snapshot")
    system.deposit(user_a, user_a, 11)
    assert deposits(await drain(follower)) == [(0, addr(user_a), 11)]
    anvil.rpc("evm_revert", [snap])
    system.deposit(user_b, user_b, 22)  # same heights, other blocks, one more block
    anvil.rpc("evm_mine")
    out = await drain(follower)
    assert isinstance(out[0], Reorg)
    assert [e.amount for e in out[0].removed if isinstance(e, events.Deposited)] == [11]
    assert deposits(out[1:]) == [(0, addr(user_b), 22)]


@pytest.mark.trio
async def test_reorg_deeper_than_the_window_is_critical(rpc, store, contracts, deployment_block, anvil) -> None:
    follower = Follower(rpc, store, contracts, start_block=deployment_block, window=2)
    anvil.rpc("anvil_mine", ["0x5"])
    await drain(follower)
    anvil.rpc("anvil_reorg", [5, []])
    with pytest.raises(FollowerCritical, match="deeper than the 2 recorded blocks"):
        await drain(follower)


@pytest.mark.trio
async def test_only_window_blocks_are_recorded(follower, anvil, store) -> None:
    anvil.rpc("anvil_mine", ["0x30"])
    await drain(follower)
    recorded = follower.recorded_blocks()
    assert len(recorded) == 16
    assert recorded[-1].number == follower.position.number
    assert [r.number for r in recorded] == list(range(recorded[0].number, recorded[-1].number + 1))


@pytest.mark.trio
async def test_confirmation_depth_holds_back_the_last_blocks(rpc, store, contracts, deployment_block, system, accounts, w3) -> None:
    follower = Follower(rpc, store, contracts, start_block=deployment_block, confirmation_depth=2)
    user = accounts[4].address
    system.deposit(user, user, 3)
    out = await drain(follower)
    assert deposits(out) == []
    assert follower.position.number == w3.eth.block_number - 2
    system.token.functions.mint(user, 1).transact({"from": user})
    system.token.functions.mint(user, 1).transact({"from": user})
    assert deposits(await drain(follower)) == [(0, addr(user), 3)]


@pytest.mark.trio
async def test_service_sends_on_a_bounded_channel(follower, system, accounts) -> None:
    user = accounts[4].address
    system.deposit(user, user, 9)
    send, receive = trio.open_memory_channel(1)
    got = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status=trio.TASK_STATUS_IGNORED: run(follower, send, poll_interval=0.05, task_status=task_status))
            async for output in receive:
                got.append(output)
                if isinstance(output, events.Deposited):
                    nursery.cancel_scope.cancel()
    assert deposits(got) == [(0, addr(user), 9)]


@pytest.mark.trio
async def test_leveldb_restart_after_a_reorg_that_happened_while_down(rpc, contracts, deployment_block, system, accounts, anvil, tmp_path) -> None:
    from optinode.store.db import open_store

    user = accounts[4].address
    system.deposit(user, user, 41)
    store = open_store(tmp_path / "db")
    first = Follower(rpc, store, contracts, start_block=deployment_block, window=16)
    assert deposits(await drain(first)) == [(0, addr(user), 41)]
    store.close()  # the node stops; meanwhile the deposit's blocks are replaced
    anvil.rpc("anvil_reorg", [2, []])
    system.deposit(user, user, 42)
    store = open_store(tmp_path / "db")
    try:
        restarted = Follower(rpc, store, contracts, start_block=deployment_block, window=16)
        out = await drain(restarted)
        assert isinstance(out[0], Reorg) and [e.amount for e in out[0].removed if isinstance(e, events.Deposited)] == [41]
        assert deposits(out[1:]) == [(0, addr(user), 42)]
        assert [e.amount for e in restarted.stored_events() if isinstance(e, events.Deposited)] == [42]
    finally:
        store.close()


@pytest.mark.trio
async def test_rollup_and_game_events_are_typed(follower, system, accounts) -> None:
    from optinode.l1.contracts import StateParts
    from optinode.spec.crypto import keccak

    proposer, challenger = accounts[1].address, accounts[2].address
    parts = StateParts(keccak(b"a"), keccak(b"s"), keccak(b"g"), 0, 0)
    index = system.append_batch(proposer, [b"\x01", b"\x02\x03"], parts)
    game_id = system.open_game(challenger, index)
    out = await drain(follower)
    appended = [e for e in out if isinstance(e, events.BatchAppended)]
    committed = [e for e in out if isinstance(e, events.StateCommitted)]
    opened = [e for e in out if isinstance(e, events.GameOpened)]
    assert [(e.index, e.proposer, e.tx_count, e.state_root) for e in appended] == [(index, addr(proposer), 2, parts.root())]
    assert [(e.accounts_root, e.deposits_done) for e in committed] == [(parts.accounts_root, 0)]
    assert [(e.game_id, e.batch_index, e.challenger, e.end_root) for e in opened] == [(game_id, index, addr(challenger), parts.root())]
    assert all(e.address == addr(system.game.address) for e in opened)
