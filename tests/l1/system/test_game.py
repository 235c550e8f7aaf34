"""DisputeGame mechanics with the MockOneStepProver: bisection, step, clocks, parallel games,
discarding successors, and where every bond ends (to the wei)."""

from __future__ import annotations

import eth_abi
import pytest

from optinode.l1.contracts import BURN_ADDRESS, Phase, QueueEntries, transact, tx_proof, increase_time
from optinode.spec.game import compute_split_points
from optinode.spec.crypto import keccak

from .support import (
    events,
    BAD_WITNESS,
    EMPTY_WITNESS,
    MockBatch,
    Player,
    expect_revert,
    mock_l1,
    mock_step,
    parts_for,
    play_game,
    post_mock_batch,
)

RECORDS = [bytes((0x04,)) if i % 3 else bytes((0x01, i % 100)) for i in range(300)]


def garbage(i: int) -> bytes:
    return keccak(b"garbage" + i.to_bytes(4, "big"))


def truthful(batch: MockBatch):
    return lambda i: batch.true_roots[i]


def lying_from(batch: MockBatch, m: int):
    """Claims the truth before index m and garbage from m on (ending at the posted root)."""
    n = len(batch.records)
    return lambda i: batch.true_roots[i] if i < m else (batch.posted_root if i == n else garbage(i))


def credits(system, who: str) -> int:
    return system.rollup.functions.credits(who).call()


def eth(system, who: str) -> int:
    return system.w3.eth.get_balance(who)


def test_invalid_root_loses_to_honest_challenger(system, proposer, challenger) -> None:
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=False, tag="bad")
    burned_before = eth(system, BURN_ADDRESS)
    game_id = system.open_game(challenger, batch.index)
    assert system.rollup.functions.getBatch(batch.index).call()[5] == 1  # openGames
    liar = Player(system, proposer, lying_from(batch, 137))
    honest = Player(system, challenger, truthful(batch))
    assert play_game(system, game_id, batch, liar, honest) == Phase.CHALLENGER_WON
    g = system.game_state(game_id)
    assert (g["start"], g["end"]) == (136, 137)
    assert len(liar.moves) == 3  # 300 -> 19 -> 2 -> 1 with arity 16: three bisections
    # the batch is gone, the chain is back at genesis
    assert system.rollup.functions.batchCount().call() == 1
    # bonds: half the proposer's bond to the challenger, half burned, challenger's bond returned
    reward = p.proposer_bond * p.slash_reward_bps // 10_000
    assert credits(system, challenger) == reward + p.challenger_bond
    assert credits(system, proposer) == 0
    assert eth(system, BURN_ADDRESS) - burned_before == p.proposer_bond - reward
    assert eth(system, system.rollup.address) == reward + p.challenger_bond
    assert eth(system, system.game.address) == 0
    before = eth(system, challenger)
    receipt = transact(system.w3, system.rollup.functions.withdrawCredit(), challenger)
    assert eth(system, challenger) == before + reward + p.challenger_bond - receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert eth(system, system.rollup.address) == 0
    # the forfeit bond is settled: it cannot be forfeited (or paid) again
    bond_id = system.batch(0)["id"] + 1
    expect_revert("BondNotForfeitable", lambda: transact(system.w3, system.rollup.functions.forfeitBond(bond_id), proposer))


def test_step_result_uses_l1_inputs_from_storage(system, proposer, challenger, users) -> None:
    # One transaction: the game opens directly in the step phase. The mock's result hashes the L1
    # inputs, so the Stepped root shows what the game passed: the batch timestamp and the deposit at
    # the witness's counter, present because the batch saw it.
    owner = users[0]
    system.deposit(users[1], owner, 777)
    system.request_forced(users[2], 5, 99)
    index = system.append_batch(proposer, [b"\x01\x00"], parts_for("one"))
    batch = system.batch(index)
    game_id = system.open_game(challenger, index)
    assert system.game_state(game_id)["phase"] == Phase.STEP
    entries = QueueEntries(owner, 777, users[2], 5, 99)
    expect_revert("BadQueueEntry", lambda: system.step(challenger, game_id, b"\x01\x00", tx_proof([b"\x01\x00"], 0), EMPTY_WITNESS, QueueEntries(owner, 778, users[2], 5, 99)))
    expect_revert("BadQueueEntry", lambda: system.step(challenger, game_id, b"\x01\x00", tx_proof([b"\x01\x00"], 0), EMPTY_WITNESS, QueueEntries(owner, 777, users[2], 6, 99)))
    expect_revert("MalformedWitness", lambda: system.step(challenger, game_id, b"\x01\x00", tx_proof([b"\x01\x00"], 0), b"\x00" * 64, entries))
    expect_revert("BadWitness", lambda: system.step(challenger, game_id, b"\x01\x00", tx_proof([b"\x01\x00"], 0), BAD_WITNESS, entries))
    receipt = system.step(challenger, game_id, b"\x01\x00", tx_proof([b"\x01\x00"], 0), EMPTY_WITNESS, entries)
    (stepped,) = events(system.game.events.Stepped, receipt)
    l1 = (batch["timestamp"], True, owner, 777, True, users[2], 5, 99)
    assert stepped.args.postRoot == mock_step(system.batch(0)["stateRoot"], b"\x01\x00", l1)
    assert system.game_state(game_id)["phase"] == Phase.CHALLENGER_WON


def test_queue_entries_beyond_the_batch_snapshot_are_absent(system, proposer, challenger, users) -> None:
    index = system.append_batch(proposer, [b"\x01\x00"], parts_for("one"))
    timestamp = system.batch(index)["timestamp"]
    system.deposit(users[1], users[0], 5)  # after the batch: not an input of it
    game_id = system.open_game(challenger, index)
    receipt = system.step(challenger, game_id, b"\x01\x00", tx_proof([b"\x01\x00"], 0), EMPTY_WITNESS, QueueEntries(users[0], 5))
    (stepped,) = events(system.game.events.Stepped, receipt)
    assert stepped.args.postRoot == mock_step(system.batch(0)["stateRoot"], b"\x01\x00", mock_l1(timestamp))


@pytest.mark.parametrize("lie", ["first", "last", "middle"])
def test_valid_root_survives_a_false_challenge(system, proposer, challenger, lie) -> None:
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=True, tag="good")
    n = len(RECORDS)
    m = {"first": 1, "last": n, "middle": 200}[lie]
    game_id = system.open_game(challenger, batch.index)
    honest = Player(system, proposer, truthful(batch))
    troll = Player(system, challenger, lambda i: batch.true_roots[i] if i < m else garbage(i))
    assert play_game(system, game_id, batch, honest, troll) == Phase.PROPOSER_WON
    g = system.game_state(game_id)
    assert (g["start"], g["end"]) == (m - 1, m)
    assert credits(system, proposer) == p.challenger_bond
    assert credits(system, challenger) == 0
    assert system.rollup.functions.getBatch(batch.index).call()[5] == 0  # no open game
    increase_time(system.w3, p.challenge_window)
    system.finalize(challenger, batch.index)
    assert credits(system, proposer) == p.challenger_bond + p.proposer_bond
    assert eth(system, system.rollup.address) == p.challenger_bond + p.proposer_bond


def test_anyone_may_step_for_the_honest_proposer(system, proposer, challenger, users) -> None:
    batch = post_mock_batch(system, proposer, RECORDS[:20], valid=True, tag="good")
    game_id = system.open_game(challenger, batch.index)
    honest = Player(system, proposer, truthful(batch))
    troll = Player(system, challenger, lambda i: garbage(i) if i else batch.true_roots[0])
    assert play_game(system, game_id, batch, honest, troll, step_by=users[0]) == Phase.PROPOSER_WON


def test_silent_proposer_loses_on_its_clock(system, proposer, challenger) -> None:
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=True, tag="good")
    game_id = system.open_game(challenger, batch.index)
    increase_time(system.w3, p.clock - 5)
    expect_revert("ClockNotExpired", lambda: system.timeout(challenger, game_id))
    increase_time(system.w3, 10)
    points = compute_split_points(0, len(RECORDS), p.arity)
    roots = [batch.true_roots[x] for x in points[1:-1]]
    expect_revert("ClockExpired", lambda: system.bisect(proposer, game_id, roots))
    system.timeout(challenger, game_id)
    assert system.game_state(game_id)["phase"] == Phase.CHALLENGER_WON
    assert system.rollup.functions.batchCount().call() == 1
    expect_revert("GameOver", lambda: system.bisect(proposer, game_id, roots))
    expect_revert("GameOver", lambda: system.timeout(challenger, game_id))
    assert credits(system, challenger) == p.proposer_bond * p.slash_reward_bps // 10_000 + p.challenger_bond


def test_silent_challenger_loses_on_its_clock(system, proposer, challenger) -> None:
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=False, tag="bad")
    game_id = system.open_game(challenger, batch.index)
    # the proposer uses 100 s of its clock, then the challenger never answers
    increase_time(system.w3, 100)
    points = compute_split_points(0, len(RECORDS), p.arity)
    roots = [garbage(x) for x in points[1:-1]]
    system.bisect(proposer, game_id, roots)
    left = system.game.functions.timeLeft(game_id).call()
    assert left[0] == p.clock - 100 - 1 or left[0] == p.clock - 100  # one second of mining jitter
    increase_time(system.w3, p.clock + 1)
    expect_revert("ClockExpired", lambda: system.choose(challenger, game_id, roots, 0))
    system.timeout(proposer, game_id)
    assert system.game_state(game_id)["phase"] == Phase.PROPOSER_WON
    assert credits(system, proposer) == p.challenger_bond
    # the (invalid!) batch survives this game: one honest, live verifier is needed
    assert system.rollup.functions.batchCount().call() == 2


def test_clocks_accumulate_per_side(system, proposer, challenger) -> None:
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=True, tag="good")
    game_id = system.open_game(challenger, batch.index)
    points = compute_split_points(0, len(RECORDS), p.arity)
    roots = [batch.true_roots[x] for x in points[1:-1]]
    increase_time(system.w3, 600)
    system.bisect(proposer, game_id, roots)
    increase_time(system.w3, 300)
    system.choose(challenger, game_id, roots, 3)
    g = system.game_state(game_id)
    # each move's block is mined one second after the previous block at most
    assert p.clock - 602 <= g["proposerTimeLeft"] <= p.clock - 600
    assert p.clock - 302 <= g["challengerTimeLeft"] <= p.clock - 300
    # the proposer has ~1200 s left: 1000 more is fine, its clock is not reset by the challenger's move
    increase_time(system.w3, g["proposerTimeLeft"] + 1)
    system.timeout(challenger, game_id)
    assert system.game_state(game_id)["phase"] == Phase.CHALLENGER_WON


def test_two_challengers_on_an_invalid_batch(system, proposer, challenger, challenger2) -> None:
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=False, tag="bad")
    g1 = system.open_game(challenger, batch.index)
    g2 = system.open_game(challenger2, batch.index)
    assert system.rollup.functions.getBatch(batch.index).call()[5] == 2
    liar = Player(system, proposer, lying_from(batch, 50))
    # both games progress in parallel
    points = compute_split_points(0, len(RECORDS), p.arity)
    for gid in (g1, g2):
        system.bisect(proposer, gid, [liar.roots(x) for x in points[1:-1]])
    assert play_game(system, g1, batch, liar, Player(system, challenger, truthful(batch))) == Phase.CHALLENGER_WON
    # game 2's batch is gone: moves still go on, but it can only end cancelled: bond returned with
    # its half of the reward (both games were open when the batch was rejected)
    expect_revert("BatchNotLive", lambda: play_game(system, g2, batch, liar, Player(system, challenger2, truthful(batch))))
    system.cancel(challenger, g2)
    assert system.game_state(g2)["phase"] == Phase.CANCELLED
    share = p.proposer_bond * p.slash_reward_bps // 10_000 // 2
    assert credits(system, challenger) == share + p.challenger_bond
    assert credits(system, challenger2) == share + p.challenger_bond
    assert eth(system, system.rollup.address) == 2 * (share + p.challenger_bond)
    assert eth(system, system.game.address) == 0


def test_two_false_challengers_pay_the_proposer_and_block_finality_until_resolved(system, proposer, challenger, challenger2) -> None:
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=True, tag="good")
    g1 = system.open_game(challenger, batch.index)
    g2 = system.open_game(challenger2, batch.index)
    honest = Player(system, proposer, truthful(batch))
    # game 1 is played to the end; in game 2 the proposer answers and challenger 2 goes silent
    troll = Player(system, challenger, lambda i: garbage(i) if i else batch.true_roots[0])
    assert play_game(system, g1, batch, honest, troll) == Phase.PROPOSER_WON
    points = compute_split_points(0, len(RECORDS), p.arity)
    system.bisect(proposer, g2, [batch.true_roots[x] for x in points[1:-1]])
    increase_time(system.w3, p.challenge_window)
    expect_revert("GameOpen", lambda: system.finalize(proposer, batch.index))
    expect_revert("ChallengeWindowClosed", lambda: system.open_game(challenger, batch.index))
    system.timeout(proposer, g2)
    assert system.game_state(g2)["phase"] == Phase.PROPOSER_WON
    system.finalize(proposer, batch.index)
    assert credits(system, proposer) == 2 * p.challenger_bond + p.proposer_bond
    assert credits(system, challenger) == credits(system, challenger2) == 0
    assert eth(system, system.rollup.address) == 2 * p.challenger_bond + p.proposer_bond
    assert eth(system, system.game.address) == 0


def test_honest_proposer_that_stops_answering_loses(system, proposer, challenger) -> None:
    # Liveness is part of honesty: a valid batch whose proposer does not bisect is discarded.
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=True, tag="good")
    gid = system.open_game(challenger, batch.index)
    increase_time(system.w3, p.clock + 1)
    system.timeout(challenger, gid)
    assert system.game_state(gid)["phase"] == Phase.CHALLENGER_WON
    assert system.rollup.functions.batchCount().call() == 1


def test_lost_game_discards_successors_and_forfeits_their_bonds(system, proposer, challenger, challenger2) -> None:
    p = system.params
    b1 = post_mock_batch(system, proposer, RECORDS[:10], valid=True, tag="1")
    b2 = post_mock_batch(system, proposer, RECORDS[:40], valid=False, tag="2")
    b3 = post_mock_batch(system, proposer, RECORDS[:5], valid=True, tag="3")
    b4 = post_mock_batch(system, proposer, RECORDS[:5], valid=True, tag="4")
    ids = {i: system.batch(i)["id"] for i in (1, 2, 3, 4)}
    burned_before = eth(system, BURN_ADDRESS)
    g3 = system.open_game(challenger2, b3.index)  # a game against a successor
    g2 = system.open_game(challenger, b2.index)
    assert play_game(system, g2, b2, Player(system, proposer, lying_from(b2, 17)), Player(system, challenger, truthful(b2))) == Phase.CHALLENGER_WON
    assert system.rollup.functions.batchCount().call() == 2  # genesis and batch 1 remain
    assert system.rollup.functions.isLive(1, ids[1]).call()
    for i in (2, 3, 4):
        assert not system.rollup.functions.isLive(i, ids[i]).call()
    expect_revert("BatchNotFound", lambda: system.open_game(challenger, 3))
    reward = p.proposer_bond * p.slash_reward_bps // 10_000
    # the rejected batch's bond is forfeit at once; the successors' are still held
    assert system.rollup.functions.bonds(ids[2]).call()[2] == 3  # Forfeited
    assert [system.rollup.functions.bonds(ids[i]).call()[2] for i in (3, 4)] == [1, 1]  # Posted
    # the game against batch 3 is void: its bond returns with batch 3's reward (its only game)
    system.cancel(proposer, g3)
    assert credits(system, challenger2) == p.challenger_bond + reward
    # batch 4 had no game: anyone settles it, all burned; nothing is forfeited twice
    transact(system.w3, system.rollup.functions.forfeitBond(ids[4]), challenger)
    for i in (1, 2, 3, 4):
        expect_revert("BondNotForfeitable", lambda: transact(system.w3, system.rollup.functions.forfeitBond(ids[i]), challenger))
    assert credits(system, proposer) == 0
    assert credits(system, challenger) == reward + p.challenger_bond
    assert eth(system, BURN_ADDRESS) - burned_before == 3 * p.proposer_bond - 2 * reward
    # the chain resumes from batch 1: a new batch 2 has a fresh id; batch 1 still finalizes
    new2 = post_mock_batch(system, proposer, RECORDS[:3], valid=True, tag="2b")
    assert new2.index == 2 and system.batch(2)["id"] == max(ids.values()) + 1
    assert new2.true_roots[0] == b1.posted_root
    increase_time(system.w3, p.challenge_window)
    system.finalize(proposer, 1)
    system.finalize(proposer, 2)
    assert credits(system, proposer) == 2 * p.proposer_bond
    # everything held is owed: credits of proposer and challengers
    assert eth(system, system.rollup.address) == 2 * p.proposer_bond + 2 * (reward + p.challenger_bond)


def test_reusing_an_index_settles_the_discarded_batch_first(system, proposer, challenger, challenger2) -> None:
    # A successor's game count is read from its batch record: appending at its index forfeits it
    # first, so the share of a game still open against it survives the overwrite.
    p = system.params
    bad = post_mock_batch(system, proposer, RECORDS[:8], valid=False, tag="bad")
    top = post_mock_batch(system, proposer, RECORDS[:8], valid=False, tag="top")
    top_id = system.batch(top.index)["id"]
    g_top = system.open_game(challenger2, top.index)
    g_bad = system.open_game(challenger, bad.index)
    assert play_game(system, g_bad, bad, Player(system, proposer, lying_from(bad, 2)), Player(system, challenger, truthful(bad))) == Phase.CHALLENGER_WON
    post_mock_batch(system, proposer, RECORDS[:3], valid=True, tag="again1")
    again = post_mock_batch(system, proposer, RECORDS[:3], valid=True, tag="again2")
    assert again.index == top.index and system.batch(top.index)["openGames"] == 0
    assert system.rollup.functions.bonds(top_id).call()[2] == 3  # Forfeited by the append
    system.cancel(challenger2, g_top)
    reward = p.proposer_bond * p.slash_reward_bps // 10_000
    assert credits(system, challenger2) == p.challenger_bond + reward
    assert credits(system, challenger) == p.challenger_bond + reward


def test_bad_moves_revert_with_named_errors(system, proposer, challenger, users) -> None:
    p = system.params
    batch = post_mock_batch(system, proposer, RECORDS, valid=False, tag="bad")
    expect_revert("WrongBond", lambda: system.open_game(challenger, batch.index, value=p.challenger_bond - 1))
    expect_revert("WrongBond", lambda: system.open_game(challenger, batch.index, value=p.challenger_bond + 1))
    expect_revert("BatchNotFound", lambda: system.open_game(challenger, 0))
    expect_revert("BatchNotFound", lambda: system.open_game(challenger, 2))
    expect_revert("GameNotFound", lambda: system.bisect(proposer, 0, []))
    gid = system.open_game(challenger, batch.index)
    points = compute_split_points(0, len(RECORDS), p.arity)
    roots = [garbage(x) for x in points[1:-1]]
    # out of turn
    expect_revert("NotYourTurn", lambda: system.bisect(challenger, gid, roots))
    expect_revert("NotYourTurn", lambda: system.choose(challenger, gid, roots, 0))
    expect_revert("NotYourTurn", lambda: system.step(challenger, gid, RECORDS[0], tx_proof(RECORDS, 0), EMPTY_WITNESS))
    expect_revert("WrongRootCount", lambda: system.bisect(proposer, gid, roots[:-1]))
    expect_revert("WrongRootCount", lambda: system.bisect(proposer, gid, roots + roots[:1]))
    system.bisect(proposer, gid, roots)
    expect_revert("NotYourTurn", lambda: system.bisect(proposer, gid, roots))
    expect_revert("NotYourTurn", lambda: system.choose(proposer, gid, roots, 0))
    expect_revert("RootsMismatch", lambda: system.choose(challenger, gid, roots[::-1], 0))
    expect_revert("IndexOutOfRange", lambda: system.choose(challenger, gid, roots, len(roots) + 1))
    system.choose(challenger, gid, roots, len(roots))  # the last part: [281, 300]
    g = system.game_state(gid)
    assert (g["start"], g["end"]) == (points[-2], points[-1])
    # down to a single transaction
    while system.game_state(gid)["phase"] == Phase.BISECT:
        g = system.game_state(gid)
        pts = compute_split_points(g["start"], g["end"], p.arity)
        rs = [garbage(x) for x in pts[1:-1]]
        system.bisect(proposer, gid, rs)
        system.choose(challenger, gid, rs, 0)
    k = system.game_state(gid)["start"]
    expect_revert("BadTxProof", lambda: system.step(challenger, gid, RECORDS[k] + b"\x00", tx_proof(RECORDS, k), EMPTY_WITNESS))
    expect_revert("BadTxProof", lambda: system.step(challenger, gid, RECORDS[k + 1], tx_proof(RECORDS, k + 1), EMPTY_WITNESS))
    expect_revert("BadTxProof", lambda: system.step(challenger, gid, RECORDS[k], tx_proof(RECORDS, k)[:-1], EMPTY_WITNESS))
    expect_revert("BatchStillLive", lambda: system.cancel(challenger, gid))
    system.step(challenger, gid, RECORDS[k], tx_proof(RECORDS, k), EMPTY_WITNESS)
    assert system.game_state(gid)["phase"] == Phase.CHALLENGER_WON
    expect_revert("GameOver", lambda: system.step(challenger, gid, RECORDS[k], tx_proof(RECORDS, k), EMPTY_WITNESS))
    expect_revert("GameOver", lambda: system.choose(challenger, gid, roots, 0))
    expect_revert("GameOver", lambda: system.cancel(challenger, gid))


def test_cannot_challenge_final_batch(system, proposer, challenger) -> None:
    batch = post_mock_batch(system, proposer, RECORDS[:4], valid=True, tag="good")
    increase_time(system.w3, system.params.challenge_window)
    expect_revert("ChallengeWindowClosed", lambda: system.open_game(challenger, batch.index))
    system.finalize(proposer, batch.index)
    expect_revert("BatchAlreadyFinal", lambda: system.open_game(challenger, batch.index))
