"""End to end on anvil with real processes: `optinode sequencer` (with a devnet fault switch) and
`optinode verifier`, the real one-step prover. Every outcome is read from L1."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest
from web3 import Web3

from optinode.l1.artifacts import load_artifact
from optinode.spec.game import Phase
from optinode.testing.seqnode import optinode_command, optinode_env
from optinode.testing.world import USD

from .conftest import CHALLENGER_KEYS, VerifierProc, wait_until

BURN = "0x000000000000000000000000000000000000dEaD"


def _game_contract(chain):
    return chain.w3.eth.contract(address=chain.deployment.contracts.game, abi=load_artifact("DisputeGame")["abi"])


def _deposit_two(chain, users) -> None:
    chain.deposit(users["alice"], 1_000 * USD)
    chain.deposit(users["bob"], 5_000 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)


def _logs(chain, event):
    return event.get_logs(from_block=chain.deployment.deployment_block, to_block="latest")


def _deposit_four(chain, users) -> None:
    """Four deposits in one L1 block range: batch 1 holds Deposit(0..3) (accounts 0..3)."""
    alice, bob = users["alice"], users["bob"]
    chain.deposit(alice, 1_000 * USD)
    chain.deposit(bob, 5_000 * USD)
    chain.deposit(alice, 700 * USD, owner=Web3.to_checksum_address("0x" + "c0" * 20))
    chain.deposit(bob, 300 * USD, owner=Web3.to_checksum_address("0x" + "d0" * 20))
    chain.mine(chain.config.node.batch.queue_confirmations)


@pytest.mark.parametrize(("k", "disturb", "verifiers"), [
    pytest.param(0, None, 1, id="first-tx"),
    pytest.param(2, None, 1, id="middle-tx"),
    pytest.param(3, None, 1, id="last-tx"),
    pytest.param(2, "kill", 1, id="kill-9-verifier-mid-game"),
    pytest.param(2, "reorg", 1, id="reorg-3-mid-game"),
    pytest.param(1, None, 2, id="two-verifiers"),
])
def test_verifier_catches_a_bad_root_and_wins_with_the_real_prover(chain, users, anvil, tmp_path, processes, k, disturb, verifiers):
    params = chain.deployment.params
    seq = chain.start_sequencer(tmp_path / "seq", fault=f"corrupt:1:{k}")  # batch 1's roots are wrong from index k + 1
    processes.append(seq)
    vs = [VerifierProc(chain, tmp_path / f"ver{i}", anvil.private_keys[CHALLENGER_KEYS[i]]) for i in range(verifiers)]
    processes.extend(vs)
    game = _game_contract(chain)
    burned = chain.w3.eth.get_balance(BURN)
    wait_until(lambda: all(v.status() for v in vs), "the verifiers to follow L1", chain=chain, procs=processes)

    _deposit_four(chain, users)
    appended = wait_until(lambda: _logs(chain, chain.rollup.events.BatchAppended()), "batch 1 on L1", chain=chain, procs=processes)
    assert appended[0]["args"]["txCount"] == 4
    opened = wait_until(lambda: len(o := _logs(chain, game.events.GameOpened())) >= verifiers and o, "the games on batch 1",
                        chain=chain, procs=processes)
    assert {o["args"]["challenger"] for o in opened} == {v.address for v in vs} and all(o["args"]["batchIndex"] == 1 for o in opened)
    detect_blocks = opened[0]["blockNumber"] - appended[0]["blockNumber"]
    # the target (<= 2 blocks) is bench/verifier.py's `detect_blocks` on a quiet machine (1 block at the end
    # of session 4); here, with a sequencer, verifiers, anvil and pytest on CI's two cores and 1 s
    # blocks, one block more is load (seen once in a fresh-clone CI run: 3), more is a regression
    assert detect_blocks <= 3, f"the challenge was mined {detect_blocks} blocks after the bad batch"
    if disturb is None:  # the watchtower port: optinode_status over HTTP shows the game with both clocks
        def ours(st):  # the status also lists the other verifier's game (role observer)
            return [g for g in st["games"] if g["role"] == "challenger" and g["proposer_time_left"] is not None]

        live = wait_until(lambda: ours(st := vs[0].rpc("optinode_status")) and st, "the game and its clocks in optinode_status",
                          chain=chain, procs=processes)
        (shown,) = ours(live)
        assert shown["batch"] == 1 and live["invalid_batches"] == [1] and live["l1_up"] is True
        assert [g["role"] for g in live["games"] if g["game"] != shown["game"]] in ([], ["observer"] * (verifiers - 1))
        assert 0 < shown["proposer_time_left"] <= params.clock and 0 < shown["challenger_time_left"] <= params.clock
        assert live["bonds_at_stake_wei"] == (params.challenger_bond if shown["resolved"] is None else 0)
        assert set(live) == set(vs[0].status())  # `optinode verifier status` prints the same function's output
    if disturb is not None:
        wait_until(lambda: _logs(chain, game.events.Bisected()), "the proposer's first bisect", chain=chain, procs=processes)
    if disturb == "kill":  # kill -9 mid-game (after the first bisect), restart on the same data directory
        vs[0].stop(signal.SIGKILL)
        vs[0].start()
    elif disturb == "reorg":  # the last 3 blocks (moves of the game among them) replaced by empty ones; the senders re-send
        chain.rpc("anvil_reorg", [3, []])
        seen = ("L1 reorg", "left the chain")  # the follower unwound, or a sender saw its mined move leave the chain
        wait_until(lambda: any(m in p.log_tail(200_000) for p in (vs[0], seq) for m in seen), "a node to see the reorg",
                   chain=chain, procs=processes)
    resolved = wait_until(lambda: len(r := _logs(chain, game.events.GameResolved())) >= verifiers and r, "the games to end",
                          chain=chain, procs=processes, timeout=120)
    outcomes = sorted(r["args"]["outcome"] for r in resolved)
    assert outcomes == sorted([Phase.CHALLENGER_WON] + [Phase.CANCELLED] * (verifiers - 1))
    stepped = _logs(chain, game.events.Stepped())
    assert [s["args"]["txIndex"] for s in stepped][:1] == [k]  # the proposer defended down to the corrupted tx
    assert _logs(chain, game.events.Bisected()), "the sequencer defended its (corrupted) roots"
    # the batch is discarded once; the proposer's bond: rewardPerGame to each game, the rest burned
    (discarded,) = _logs(chain, chain.rollup.events.BatchesDiscarded())
    assert discarded["args"]["fromIndex"] == 1 and discarded["args"]["toIndex"] == 2
    (forfeit,) = _logs(chain, chain.rollup.events.BondForfeited())
    per_game, games = forfeit["args"]["rewardPerGame"], forfeit["args"]["games"]
    assert games == verifiers and per_game * games + forfeit["args"]["burned"] == params.proposer_bond
    if verifiers == 1:
        assert per_game == params.proposer_bond * params.slash_reward_bps // 10_000
    for v in vs:
        assert chain.rollup.functions.credits(v.address).call() == per_game + params.challenger_bond
    assert chain.w3.eth.get_balance(BURN) - burned == forfeit["args"]["burned"]
    assert any(v.alerts("invalid_batch") for v in vs)
    assert all(len(v.alerts("invalid_batch")) <= 1 for v in vs)  # one alert per bad batch, a reorg raises no second one
    wait_until(lambda: vs[0].alerts("game_won") or vs[-1].alerts("game_won"), "a verifier to report its win", chain=chain, procs=processes)
    if disturb is None and verifiers == 1:  # its /metrics counted what happened, once each
        m = vs[0].metrics()
        assert m[("optinode_verifier_invalid_batches_total", ())] == 1
        assert m[("optinode_games_opened_total", (("role", "challenger"),))] == 1
        assert m[("optinode_games_resolved_total", (("result", "won"),))] == 1
        moves = {labels: v for (name, labels), v in m.items() if name == "optinode_game_moves_total"}
        assert sum(moves.values()) >= 1 and all(dict(labels)["side"] == "challenger" for labels in moves)
        (opened_alert,) = vs[0].alerts("game_opened")
        assert opened_alert["fields"]["batch"] == 1 and opened_alert["fields"]["role"] == "challenger"
        assert vs[0].alerts("game_move") and vs[0].alerts("invalid_batch")[0]["fields"]["batch"] == 1
    # issue 11 item 3: the sequencer rolls back to batch 0's checkpoint, re-posts batch 1 (now honest), and it finalizes
    wait_until(lambda: len(chain.append_transactions()) >= 2 and chain.batch_count() == 2, "the sequencer to re-post batch 1", chain=chain,
               procs=processes)
    for v in vs:
        wait_until(lambda: (s := v.status()) and s["synced_batch"] == 1, "the verifier to follow the re-posted batch", chain=chain,
                   procs=processes)
    assert all(len(v.alerts("invalid_batch")) == 1 for v in vs if v.alerts("invalid_batch"))  # the re-post is not challenged
    chain.travel(params.challenge_window + 1)
    wait_until(lambda: chain.finalized_count() == 2, "the re-posted batch 1 to finalize", chain=chain, procs=processes)
    (batch,) = chain.l1_batches()
    roots, _, state = chain.replay([batch])
    assert roots == [batch.state_root] and state.deposits_done == 4 and len(batch.records) == 4  # each deposit once
    assert len(_logs(chain, game.events.GameOpened())) == verifiers  # no game against the re-posted batch


@pytest.mark.parametrize("kill_sequencer", [pytest.param(False, id="live"), pytest.param(True, id="kill-9-sequencer-mid-defence")])
def test_malicious_challenger_loses_and_the_honest_batch_finalizes(chain, users, anvil, tmp_path, processes, kill_sequencer) -> None:
    params = chain.deployment.params
    seq = chain.start_sequencer(tmp_path / "seq")
    processes.append(seq)
    liar = VerifierProc(chain, tmp_path / "liar", anvil.private_keys[CHALLENGER_KEYS[1]], fault="challenge:1:0")
    honest = VerifierProc(chain, tmp_path / "honest", anvil.private_keys[CHALLENGER_KEYS[0]])  # must never challenge it
    processes.extend([liar, honest])
    game = _game_contract(chain)
    proposer = chain.deployment.params.proposers[0]
    before = chain.rollup.functions.credits(proposer).call()

    _deposit_two(chain, users)
    wait_until(lambda: _logs(chain, game.events.GameOpened()), "the false challenge", chain=chain, procs=processes)
    if kill_sequencer:  # SIGKILL before or around its first bisect; it restarts on its data directory and defends
        seq.stop(signal.SIGKILL)
        processes.remove(seq)
        seq = chain.start_sequencer(tmp_path / "seq")
        processes.append(seq)
    resolved = wait_until(lambda: _logs(chain, game.events.GameResolved()), "the game to end", chain=chain, procs=processes)
    assert resolved[0]["args"]["outcome"] == Phase.PROPOSER_WON
    assert chain.rollup.functions.credits(proposer).call() - before == params.challenger_bond
    assert chain.batch_count() == 2 and not _logs(chain, chain.rollup.events.BatchesDiscarded())
    wait_until(lambda: liar.alerts("game_lost"), "the liar to report its loss", chain=chain, procs=processes)
    assert liar.metrics()[("optinode_games_resolved_total", (("result", "lost"),))] == 1
    assert [o["args"]["challenger"] for o in _logs(chain, game.events.GameOpened())] == [liar.address]
    shown = subprocess.run(optinode_command("verifier", "status", "--data-dir", str(liar.data_dir)), env=optinode_env(),
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    (liar_game,) = json.loads(shown.stdout)["games"]  # `optinode verifier status`: its game, with both clocks
    assert liar_game["role"] == "challenger" and liar_game["batch"] == 1 and liar_game["proposer_time_left"] <= params.clock
    status = honest.status()
    assert status["synced_batch"] == 1 and status["invalid_batches"] == [] and not honest.alerts("invalid_batch")
    assert [(g["role"], g["batch"]) for g in status["games"]] == [("observer", 1)]  # it watches the liar's game, plays none
    assert not honest.alerts("game_losing")  # the proposer it agrees with won
    chain.travel(params.challenge_window + 1)
    wait_until(lambda: chain.finalized_count() >= 2, "batch 1 to finalize after the game", chain=chain, procs=processes)
