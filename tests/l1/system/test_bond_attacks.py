"""Issue 8 item 2: a fraudulent proposer cannot take back its bond or the honest challenger's reward.

The adversary is the proposer key plus any other address it controls (a "sock puppet" challenger,
a second proposer key). After every game has ended and every permissionless settlement has been
called, each test checks where each wei of the bonds went: the honest challenger is paid its share
of the reward whichever game won first, and the adversary ends down at least the full bond of every
fraudulent batch minus what it can recover through the games its puppets held open against that batch.
"""

from __future__ import annotations

from optinode.l1.contracts import BURN_ADDRESS, Phase, Reverted, increase_time, transact

from .support import MockBatch, Player, parts_for, play_game, post_mock_batch

RECORDS = [bytes((0x04,)) if i % 3 else bytes((0x01, i % 100)) for i in range(300)]


def truthful(batch: MockBatch):
    return lambda i: batch.true_roots[i]


def lying_from(batch: MockBatch, m: int, tag: bytes = b"lie"):
    """Claims the truth before index m and garbage from m on (ending at the posted root)."""
    from optinode.spec.crypto import keccak

    n = len(batch.records)
    return lambda i: batch.true_roots[i] if i < m else (batch.posted_root if i == n else keccak(tag + i.to_bytes(4, "big")))


def credits(system, who: str) -> int:
    return system.rollup.functions.credits(who).call()


def eth(system, who: str) -> int:
    return system.w3.eth.get_balance(who)


def settle_everything(system, sender: str, bond_ids: list[int]) -> None:
    """Call every permissionless bond settlement the Rollup offers on `bond_ids`, as the adversary
    would: whatever succeeds, succeeds (the test then checks the balances)."""
    for name in ("refundBond", "forfeitBond"):
        fn = getattr(system.rollup.functions, name, None)
        if fn is None:
            continue
        for bond_id in bond_ids:
            try:
                transact(system.w3, fn(bond_id), sender)
            except Reverted:
                pass


def test_sock_puppet_winning_first_does_not_take_the_honest_challengers_reward(system, proposer, challenger, challenger2) -> None:
    # (a) The honest challenger opens first; the proposer stalls in its game while the proposer's
    # puppet opens a second game on the same batch and wins it in a few blocks.
    p = system.params
    honest, puppet = challenger, challenger2
    batch = post_mock_batch(system, proposer, RECORDS, valid=False, tag="fraud")
    bond_id = system.batch(batch.index)["id"]
    burned_before = eth(system, BURN_ADDRESS)
    honest_game = system.open_game(honest, batch.index)
    puppet_game = system.open_game(puppet, batch.index)
    liar = Player(system, proposer, lying_from(batch, 3))
    assert play_game(system, puppet_game, batch, liar, Player(system, puppet, truthful(batch))) == Phase.CHALLENGER_WON
    assert system.rollup.functions.batchCount().call() == 1
    # the honest game can only end now: cancelled (anyone), or its timeout, which cancels too
    system.cancel(honest, honest_game)
    assert system.game_state(honest_game)["phase"] == Phase.CANCELLED
    settle_everything(system, proposer, [bond_id])
    reward = p.proposer_bond * p.slash_reward_bps // 10_000
    share = reward // 2  # two games were open against the batch when it was rejected
    # the honest challenger is paid whichever game won first
    assert credits(system, honest) == p.challenger_bond + share
    # the adversary (proposer key + puppet) recovers at most the puppet's share; the rest is burned
    assert credits(system, proposer) == 0
    assert credits(system, puppet) == p.challenger_bond + share
    assert eth(system, BURN_ADDRESS) - burned_before == p.proposer_bond - 2 * share
    assert eth(system, system.rollup.address) == 2 * p.challenger_bond + 2 * share
    assert eth(system, system.game.address) == 0


def test_losing_on_purpose_on_an_earlier_valid_batch_forfeits_the_fraudulent_successor(system, proposer, challenger, challenger2) -> None:
    # (b) Batch 1 is valid, batch 2 fraudulent and challenged by an honest verifier. The proposer
    # lets its puppet win a game on batch 1 (garbage split roots), which discards batch 2 as a
    # successor; then it asks for batch 2's bond back.
    p = system.params
    honest, puppet = challenger, challenger2
    b1 = post_mock_batch(system, proposer, RECORDS[:40], valid=True, tag="valid")
    b2 = post_mock_batch(system, proposer, RECORDS, valid=False, tag="fraud")
    ids = [system.batch(i)["id"] for i in (b1.index, b2.index)]
    burned_before = eth(system, BURN_ADDRESS)
    honest_game = system.open_game(honest, b2.index)
    puppet_game = system.open_game(puppet, b1.index)
    # garbage from the first split point on: the puppet (which "agrees with the truth") wins
    saboteur = Player(system, proposer, lambda i: b1.true_roots[0] if i == 0 else (b1.posted_root if i == 40 else bytes([i % 256]) * 32))
    assert play_game(system, puppet_game, b1, saboteur, Player(system, puppet, truthful(b1))) == Phase.CHALLENGER_WON
    assert system.rollup.functions.batchCount().call() == 1  # both batches discarded
    system.cancel(honest, honest_game)
    settle_everything(system, proposer, ids)
    reward = p.proposer_bond * p.slash_reward_bps // 10_000
    # the fraudulent batch's bond is forfeit: nothing of it returns to the proposer ...
    assert credits(system, proposer) == 0
    # ... its reward goes to the honest challenger of batch 2 (the only game open against it) ...
    assert credits(system, honest) == p.challenger_bond + reward
    # ... and the puppet gets no more than batch 1's reward; the rest of both bonds is burned
    assert credits(system, puppet) == p.challenger_bond + reward
    assert eth(system, BURN_ADDRESS) - burned_before == 2 * (p.proposer_bond - reward)
    assert eth(system, system.rollup.address) == 2 * (p.challenger_bond + reward)


def test_unchallenged_successors_are_forfeit_and_burned(system, proposer, challenger, users) -> None:
    # Batches built on top of a rejected one are discarded and their bonds forfeit, whoever posted
    # them; with no game open against a successor its reward share has no one to go to: burned.
    p = system.params
    bad = post_mock_batch(system, proposer, RECORDS[:20], valid=False, tag="bad")
    on_top = [system.append_batch(proposer, [b"\x04"], parts_for(f"top{i}")) for i in range(3)]
    ids = [system.batch(i)["id"] for i in [bad.index, *on_top]]
    burned_before = eth(system, BURN_ADDRESS)
    game = system.open_game(challenger, bad.index)
    assert play_game(system, game, bad, Player(system, proposer, lying_from(bad, 7)), Player(system, challenger, truthful(bad))) == Phase.CHALLENGER_WON
    settle_everything(system, users[0], ids)
    reward = p.proposer_bond * p.slash_reward_bps // 10_000
    assert credits(system, proposer) == 0
    assert credits(system, challenger) == p.challenger_bond + reward
    assert eth(system, BURN_ADDRESS) - burned_before == 4 * p.proposer_bond - reward
    assert eth(system, system.rollup.address) == p.challenger_bond + reward


def test_a_bond_is_settled_once(system, proposer, challenger, users) -> None:
    # Finalized, rejected and forfeited bonds cannot be settled again by any permissionless call.
    p = system.params
    good = post_mock_batch(system, proposer, RECORDS[:5], valid=True, tag="good")
    increase_time(system.w3, p.challenge_window)
    system.finalize(users[0], good.index)
    bad = post_mock_batch(system, proposer, RECORDS[:5], valid=False, tag="bad")
    top = system.append_batch(proposer, [b"\x04"], parts_for("top"))
    ids = [system.batch(i)["id"] for i in (good.index, bad.index, top)]
    game = system.open_game(challenger, bad.index)
    assert play_game(system, game, bad, Player(system, proposer, lying_from(bad, 1)), Player(system, challenger, truthful(bad))) == Phase.CHALLENGER_WON
    for _ in range(2):
        settle_everything(system, users[0], ids)
    reward = p.proposer_bond * p.slash_reward_bps // 10_000
    assert credits(system, proposer) == p.proposer_bond  # the finalized batch's bond, once
    assert credits(system, challenger) == p.challenger_bond + reward
    assert eth(system, system.rollup.address) == p.proposer_bond + p.challenger_bond + reward
