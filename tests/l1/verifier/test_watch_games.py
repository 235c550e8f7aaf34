"""A watch-only verifier follows everyone's dispute games on anvil (real processes, the real contracts):
it wakes a human when an honest party went offline — the side whose clock runs low (`clock_low`), the
side it agrees with losing (`game_losing`: clock, then lost) — and when an invalid batch is not
challenged within a share of its window (`invalid_batch_unchallenged`)."""

from __future__ import annotations

import signal

from optinode.spec.game import Phase

from .conftest import CHALLENGER_KEYS, VerifierProc, wait_until
from .test_games_e2e import _deposit_four, _deposit_two, _game_contract, _logs


def _fields(proc: VerifierProc, name: str) -> list[dict]:
    return [a["fields"] for a in proc.alerts(name)]


def _travel_to_left(chain, watcher: VerifierProc, game_id: int, side: str, left: int) -> None:
    """Move anvil's clock so that ``side`` has ``left`` seconds on its running clock in game ``game_id``
    (as the watcher's optinode_status reads the game)."""
    (row,) = [g for g in watcher.rpc("optinode_status")["games"] if g["game"] == game_id]
    now = chain.w3.eth.get_block("latest")["timestamp"]
    chain.travel(max(0, row["turn_start"] + row[f"{side}_time_left"] - left - now))


def test_a_challenger_gone_offline_is_noticed_by_the_watchtower(chain, users, anvil, tmp_path, processes) -> None:
    params = chain.deployment.params
    warning = params.clock // 3  # node.verifier.clock_warning's default
    seq = chain.start_sequencer(tmp_path / "seq", fault="corrupt:1:0")  # batch 1 is wrong from transaction 1 on
    watcher = VerifierProc(chain, tmp_path / "watch", None)
    challenger = VerifierProc(chain, tmp_path / "honest", anvil.private_keys[CHALLENGER_KEYS[0]])
    processes.extend([seq, watcher, challenger])
    game = _game_contract(chain)
    wait_until(lambda: watcher.status() and challenger.status(), "the verifiers to follow L1", chain=chain, procs=processes)

    _deposit_four(chain, users)
    (opened,) = wait_until(lambda: _logs(chain, game.events.GameOpened()), "the honest challenge", chain=chain, procs=processes)
    challenger.stop(signal.SIGKILL)  # the honest challenger goes offline before its first choose
    processes.remove(challenger)
    game_id = opened["args"]["gameId"]
    wait_until(lambda: _logs(chain, game.events.Bisected()), "the proposer's bisect", chain=chain, procs=processes)
    assert not _logs(chain, game.events.Chosen())  # the challenger's turn, and nobody plays it

    (seen,) = wait_until(lambda: _fields(watcher, "game_opened"), "the watcher to see the game", chain=chain, procs=processes)
    assert seen["game"] == game_id and seen["role"] == "observer" and seen["challenger"] == challenger.address.lower()
    (row,) = wait_until(lambda: [g for g in watcher.rpc("optinode_status")["games"] if g["phase"] == "CHOOSE"], "the game in the status",
                        chain=chain, procs=processes)
    assert row["role"] == "observer" and row["batch"] == 1 and row["resolved"] is None
    assert watcher.rpc("optinode_status")["invalid_batches"] == [1]
    assert not watcher.alerts("clock_low") and not watcher.alerts("game_losing")

    # The challenger's clock runs into the warning: clock_low (the side, the seconds left) and, since the
    # watcher judged the batch invalid, game_losing for the challenger (reason clock).
    _travel_to_left(chain, watcher, game_id, "challenger", warning // 2)
    (low,) = wait_until(lambda: _fields(watcher, "clock_low"), "clock_low", chain=chain, procs=processes)
    assert low["game"] == game_id and low["side"] == "CHALLENGER" and 0 < low["left"] < warning and low["threshold"] == warning
    (losing,) = wait_until(lambda: _fields(watcher, "game_losing"), "game_losing", chain=chain, procs=processes)
    assert losing["side"] == "CHALLENGER" and losing["reason"] == "clock" and losing["game"] == game_id and 0 < losing["left"] < warning
    (line,) = watcher.alerts("game_losing")
    assert line["level"] == "error" and line["logger"] == "optinode.services.game_watch"
    m = watcher.metrics()
    assert m[("optinode_game_clock_low_total", ())] == 1 and m[("optinode_game_losing_total", (("reason", "clock"),))] == 1
    assert m[("optinode_games_watched", ())] == 1

    # It runs out: the sequencer claims the timeout and the invalid batch stands; the watcher says so, once.
    _travel_to_left(chain, watcher, game_id, "challenger", -1)
    (resolved,) = wait_until(lambda: _logs(chain, game.events.GameResolved()), "the timeout", chain=chain, procs=processes)
    assert resolved["args"]["outcome"] == Phase.PROPOSER_WON
    wait_until(lambda: [f for f in _fields(watcher, "game_losing") if f["reason"] == "lost"], "game_losing lost", chain=chain, procs=processes)
    for _ in range(5):
        chain.mine(1)
    wait_until(lambda: (s := watcher.status()) and s["l1_head"] >= chain.w3.eth.block_number, "the watcher at the head", chain=chain,
               procs=processes)
    reasons = [f["reason"] for f in _fields(watcher, "game_losing")]
    assert reasons == ["clock", "lost"], reasons  # once per turn and reason, not once per head
    assert len(watcher.alerts("clock_low")) == 1
    assert watcher.metrics()[("optinode_games_watched", ())] == 0


def test_a_proposer_gone_offline_against_a_false_challenge_is_noticed(chain, users, anvil, tmp_path, processes) -> None:
    params = chain.deployment.params
    warning = params.clock // 3
    seq = chain.start_sequencer(tmp_path / "seq")  # honest batch 1
    watcher = VerifierProc(chain, tmp_path / "watch", None)
    processes.extend([seq, watcher])
    game = _game_contract(chain)
    wait_until(lambda: watcher.status(), "the watcher to follow L1", chain=chain, procs=processes)
    _deposit_two(chain, users)
    wait_until(lambda: (s := watcher.status()) and s["synced_batch"] >= 1, "batch 1 verified", chain=chain, procs=processes)
    seq.stop(signal.SIGKILL)  # the proposer goes offline; then a liar challenges its (valid) batch
    processes.remove(seq)
    liar = VerifierProc(chain, tmp_path / "liar", anvil.private_keys[CHALLENGER_KEYS[1]], fault="challenge:1:0")
    processes.append(liar)
    (opened,) = wait_until(lambda: _logs(chain, game.events.GameOpened()), "the false challenge", chain=chain, procs=processes)
    game_id = opened["args"]["gameId"]
    wait_until(lambda: [g for g in watcher.rpc("optinode_status")["games"] if g["game"] == game_id and g["phase"] == "BISECT"],
               "the game in the watcher's status", chain=chain, procs=processes)
    assert watcher.status()["invalid_batches"] == [] and not watcher.alerts("invalid_batch")

    _travel_to_left(chain, watcher, game_id, "proposer", warning // 2)
    (low,) = wait_until(lambda: _fields(watcher, "clock_low"), "clock_low", chain=chain, procs=processes)
    assert low["side"] == "PROPOSER" and 0 < low["left"] < warning
    (losing,) = wait_until(lambda: _fields(watcher, "game_losing"), "game_losing", chain=chain, procs=processes)
    assert losing["side"] == "PROPOSER" and losing["reason"] == "clock" and losing["game"] == game_id

    _travel_to_left(chain, watcher, game_id, "proposer", -1)  # the liar claims the timeout: a valid batch is discarded
    (resolved,) = wait_until(lambda: _logs(chain, game.events.GameResolved()), "the timeout", chain=chain, procs=processes)
    assert resolved["args"]["outcome"] == Phase.CHALLENGER_WON
    lost = wait_until(lambda: [f for f in _fields(watcher, "game_losing") if f["reason"] == "lost"], "game_losing lost", chain=chain,
                      procs=processes)
    assert lost[0]["side"] == "PROPOSER" and lost[0]["outcome"] == "CHALLENGER_WON"


def test_an_invalid_batch_nobody_challenges_is_alerted_once(chain, users, tmp_path, processes) -> None:
    params = chain.deployment.params
    share = 0.5
    config = tmp_path / "share.toml"
    text = chain.config_path.read_text()
    assert "[node.verifier]" not in text
    config.write_text(text + f"\n[node.verifier]\nunchallenged_share = {share}\n")
    seq = chain.start_sequencer(tmp_path / "seq", fault="corrupt:1:0")
    watcher = VerifierProc(chain, tmp_path / "watch", None, config_path=config)  # watch-only, and no challenger anywhere
    processes.extend([seq, watcher])
    wait_until(lambda: watcher.status(), "the watcher to follow L1", chain=chain, procs=processes)
    _deposit_two(chain, users)
    (bad,) = wait_until(lambda: _fields(watcher, "invalid_batch"), "invalid_batch", chain=chain, procs=processes)
    assert bad["batch"] == 1 and bad["challenging"] is False
    (unchallenged,) = wait_until(lambda: _fields(watcher, "invalid_batch_unchallenged"), "invalid_batch_unchallenged", chain=chain,
                                 procs=processes)
    (pending,) = watcher.status()["pending"]
    assert unchallenged["batch"] == 1 and unchallenged["share"] == share
    assert unchallenged["window_ends"] == unchallenged["appended_at"] + params.challenge_window == pending["window_ends"]
    assert 0 <= unchallenged["seconds_left"] <= params.challenge_window * (1 - share)
    (line,) = watcher.alerts("invalid_batch_unchallenged")
    assert line["level"] == "error"
    chain.travel(params.challenge_window)  # past the window: still one alert
    for _ in range(3):
        chain.mine(1)
    wait_until(lambda: (s := watcher.status()) and s["l1_head"] >= chain.w3.eth.block_number, "the watcher at the head", chain=chain,
               procs=processes)
    assert len(watcher.alerts("invalid_batch_unchallenged")) == 1
    assert watcher.metrics()[("optinode_verifier_unchallenged_total", ())] == 1
