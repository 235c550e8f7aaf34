"""Issue 11 item 3, after a lost game: the sequencer detects that L1 discarded its batch and the
successors, rolls back to the checkpoint of the last valid batch, re-applies its log from there and
re-posts; the verifier follows the new batches, which finalize. Real processes on anvil (the devnet
fault switch makes the sequencer post wrong roots); every outcome is read from L1."""

from __future__ import annotations

import pytest

from optinode.l1.contracts import Reverted
from optinode.spec.errors import ErrorCode
from optinode.spec.game import Phase
from optinode.spec.record_codec import decode_transaction
from optinode.testing.seqnode import AdminError
from optinode.testing.world import USD

from optinode.testing.seqnode import DEVNET, DevChain
from optinode.testing.world import World
from optinode.wallet import Key

from .conftest import CHALLENGER_KEYS, VerifierProc, wait_until
from .test_games_e2e import _game_contract, _logs


def test_two_consecutive_bad_batches_are_discarded_and_the_sequencer_recovers_and_finalizes(users, anvil, snapshot, tmp_path,
                                                                                             processes) -> None:
    # two records per batch, so a burst of commands cuts several batches at once
    config = DEVNET.read_text().replace("max_records = 4096 ", "max_records = 2    ", 1)
    assert "max_records = 2 " in config
    chain = DevChain.deploy(anvil.url, tmp_path / "chain", config_text=config)
    world = World(chain.genesis, keys={n: Key(bytes.fromhex(anvil.private_keys[i][2:])) for n, i in (("alice", 2), ("bob", 3))})
    params = chain.deployment.params
    alice, bob = users["alice"], users["bob"]
    # batch 1 (the deposits) is honest; batches 2 and 3 both post wrong roots
    seq = chain.start_sequencer(tmp_path / "seq", fault="corrupt:2:1,corrupt:3:0")
    processes.append(seq)
    verifier = VerifierProc(chain, tmp_path / "ver", anvil.private_keys[CHALLENGER_KEYS[0]])
    processes.append(verifier)
    game = _game_contract(chain)
    proposer = params.proposers[0]
    proposer_credit = chain.rollup.functions.credits(proposer).call()
    wait_until(lambda: verifier.status(), "the verifier to follow L1", chain=chain, procs=processes)

    chain.deposit(alice, 1_000 * USD)
    chain.deposit(bob, 5_000 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)
    wait_until(lambda: chain.batch_count() >= 2, "batch 1 (the deposits) on L1", chain=chain, procs=processes)
    world.ids.update(alice=0, bob=1)
    # five withdrawals in a burst: batches 2 (1, 2 USD) and 3 (3, 4 USD) are cut at the size limit at once and
    # posted back to back, long before a game can end; batch 4 (5 USD) follows by age
    withdrawals = [world.withdraw("alice", n * USD) for n in (1, 2, 3, 4, 5)]
    acks = [seq.submit(w) for w in withdrawals]
    chain.request_forced(bob, 1, 100 * USD)  # a forced request, consumed after them
    wait_until(lambda: chain.batch_count() >= 4, "bad batches 2 and 3 on L1", chain=chain, procs=processes)
    first_posts = [decode_transaction(r) for b in chain.l1_batches()[1:3] for r in b.records]
    bad_root = chain.l1_batches()[1].state_root
    assert first_posts == withdrawals[:4]
    discarded = wait_until(lambda: _logs(chain, chain.rollup.events.BatchesDiscarded()), "the batches to be discarded", chain=chain,
                           procs=processes, timeout=180)
    assert discarded[0]["args"]["fromIndex"] == 2 and discarded[0]["args"]["toIndex"] >= 4  # both bad batches go (and any after)
    won = [r for r in _logs(chain, game.events.GameResolved()) if r["args"]["outcome"] == Phase.CHALLENGER_WON]
    assert won, "the verifier won against the first bad batch"
    forfeit = _logs(chain, chain.rollup.events.BondForfeited())[0]["args"]
    assert chain.rollup.functions.credits(verifier.address).call() >= forfeit["rewardPerGame"] + params.challenger_bond

    # the sequencer rolls back to batch 1 (the last valid root) and re-posts; the verifier agrees with the new batches
    # (the re-post may land before this line runs: wait for a batch 2 whose root is not the bad one)
    wait_until(lambda: chain.batch_count() >= 3 and chain.l1_batches()[1].state_root != bad_root, "the re-posted batches",
               chain=chain, procs=processes, timeout=60)
    assert "alert=batches_rebuilt from_index=2" in seq.log_tail(400_000)  # rolled back to batch 1's checkpoint
    invalid_alerts = len(verifier.alerts("invalid_batch"))
    wait_until(lambda: (s := verifier.status()) and s["synced_batch"] == chain.batch_count() - 1, "the verifier to follow the re-post",
               chain=chain, procs=processes)
    wait_until(lambda: chain.l1_batches()[-1].forced_done == 1, "the forced request re-consumed", chain=chain, procs=processes)
    chain.travel(params.challenge_window + 1)
    wait_until(lambda: chain.finalized_count() == chain.batch_count(), "the re-posted batches to finalize", chain=chain, procs=processes,
               timeout=90)
    assert len(verifier.alerts("invalid_batch")) == invalid_alerts and len(_logs(chain, game.events.GameOpened())) == len(
        _logs(chain, game.events.GameResolved()))  # no new game: the re-posted batches are right

    # L1 alone: roots valid, each deposit and the forced request consumed once, the withdrawal once
    batches = chain.l1_batches()
    roots, receipts, state = chain.replay(batches)
    assert roots == [b.state_root for b in batches]
    txs = [decode_transaction(r) for b in batches for r in b.records]
    assert all(txs.count(w) == 1 for w in withdrawals) and state.deposits_done == 2 and state.forced_done == 1
    assert state.accounts[0].collateral == 1_000 * USD - 15 * USD and state.accounts[0].withdrawn == 15 * USD
    forced_codes = [r.code for applied in receipts for tx, r in applied if type(tx).__name__ == "ForcedWithdraw"]
    assert forced_codes == [ErrorCode.OK] and state.accounts[1].collateral == 5_000 * USD - 100 * USD
    assert all(seq.call("optinode_adminCommand", a["seq"])["status"] == "final" for a in acks)
    try:  # the same signed withdrawal again: its nonce is used in the re-posted history
        seq.submit(withdrawals[0])
        raise AssertionError("a replayed withdrawal was accepted")
    except AdminError as refused:
        assert refused.error["data"] == ErrorCode.NONCE_USED.name
    token = chain.token.functions.balanceOf(alice)
    before = token.call()
    chain.claim(alice, seq.claim(0))
    assert token.call() - before == 15 * USD  # paid exactly once
    with pytest.raises(Reverted, match="NothingToPay"):
        chain.claim(alice, seq.claim(0))
    assert token.call() - before == 15 * USD
    # bonds: batch 1's and the re-posted batches' come back at finalization; the discarded ones' were forfeit
    returned = len(batches)
    assert chain.rollup.functions.credits(proposer).call() - proposer_credit == returned * params.proposer_bond
