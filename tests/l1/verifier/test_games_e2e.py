"""End to end on anvil with real processes: `optinode sequencer` (with a devnet fault switch) and
`optinode verifier`, the real one-step prover. Every outcome is read from L1."""

from __future__ import annotations

from optinode.l1.artifacts import load_artifact
from optinode.spec.game import Phase
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


def test_verifier_catches_a_bad_root_and_wins_with_the_real_prover(chain, users, anvil, tmp_path, processes) -> None:
    params = chain.deployment.params
    seq = chain.start_sequencer(tmp_path / "seq", fault="corrupt:1:0")  # batch 1's state gains 1 unit after tx 0
    processes.append(seq)
    verifier = VerifierProc(chain, tmp_path / "ver", anvil.private_keys[CHALLENGER_KEYS[0]])
    processes.append(verifier)
    game = _game_contract(chain)
    burned = chain.w3.eth.get_balance(BURN)

    _deposit_two(chain, users)
    appended = wait_until(lambda: _logs(chain, chain.rollup.events.BatchAppended()), "batch 1 on L1", chain=chain, procs=processes)
    opened = wait_until(lambda: _logs(chain, game.events.GameOpened()), "a game on batch 1", chain=chain, procs=processes)
    assert opened[0]["args"]["batchIndex"] == 1 and opened[0]["args"]["challenger"] == verifier.address
    detect_blocks = opened[0]["blockNumber"] - appended[0]["blockNumber"]
    assert detect_blocks <= 2, f"the challenge was mined {detect_blocks} blocks after the bad batch"
    resolved = wait_until(lambda: _logs(chain, game.events.GameResolved()), "the game to end", chain=chain, procs=processes)
    assert resolved[0]["args"]["outcome"] == Phase.CHALLENGER_WON
    stepped = _logs(chain, game.events.Stepped())
    assert len(stepped) == 1 and stepped[0]["args"]["txIndex"] == 0  # the proposer defended down to the corrupted tx
    assert _logs(chain, game.events.Bisected()), "the sequencer defended its (corrupted) roots"
    # the batch is discarded on L1; the proposer's bond is split between the challenger and the burn address
    (discarded,) = _logs(chain, chain.rollup.events.BatchesDiscarded())
    assert discarded["args"]["fromIndex"] == 1 and chain.batch_count() == 1
    reward = params.proposer_bond * params.slash_reward_bps // 10_000
    assert chain.rollup.functions.credits(verifier.address).call() == reward + params.challenger_bond
    assert chain.w3.eth.get_balance(BURN) - burned == params.proposer_bond - reward
    assert verifier.alerts("invalid_batch")
    wait_until(lambda: verifier.alerts("game_won"), "the verifier to report its win", chain=chain, procs=processes)
    status = wait_until(lambda: (s := verifier.status()) and s["synced_batch"] == 0 and s, "the verifier to drop the batch",
                        chain=chain, procs=processes)
    assert status["games"][0]["resolved"] == Phase.CHALLENGER_WON


def test_malicious_challenger_loses_and_the_honest_batch_finalizes(chain, users, anvil, tmp_path, processes) -> None:
    params = chain.deployment.params
    seq = chain.start_sequencer(tmp_path / "seq")
    processes.append(seq)
    liar = VerifierProc(chain, tmp_path / "liar", anvil.private_keys[CHALLENGER_KEYS[1]], fault="challenge:1:0")
    processes.append(liar)
    game = _game_contract(chain)
    proposer = chain.deployment.params.proposers[0]
    before = chain.rollup.functions.credits(proposer).call()

    _deposit_two(chain, users)
    wait_until(lambda: _logs(chain, game.events.GameOpened()), "the false challenge", chain=chain, procs=processes)
    resolved = wait_until(lambda: _logs(chain, game.events.GameResolved()), "the game to end", chain=chain, procs=processes)
    assert resolved[0]["args"]["outcome"] == Phase.PROPOSER_WON
    assert chain.rollup.functions.credits(proposer).call() - before == params.challenger_bond
    assert chain.batch_count() == 2 and not _logs(chain, chain.rollup.events.BatchesDiscarded())
    wait_until(lambda: liar.alerts("game_lost"), "the liar to report its loss", chain=chain, procs=processes)
    chain.travel(params.challenge_window + 1)
    wait_until(lambda: chain.finalized_count() >= 2, "batch 1 to finalize after the game", chain=chain, procs=processes)
