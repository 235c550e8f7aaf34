"""The watchtower's reading of other people's games (`services/game_watch.py`), against games read
from a fake L1 contract: who is losing by position (our own roots), by clock, and by the end; each
alert once per turn; nothing about our own games. The anvil tests (tests/l1/verifier/test_watch_games.py)
run the same code against the real contracts."""

from __future__ import annotations

import logging

import eth_abi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optinode.l1 import events
from optinode.l1.follower import Head
from optinode.metrics import VerifierMetrics
from optinode.services import dispute
from optinode.services.game_watch import GameWatch, losing_position
from optinode.services.replayer import INVALID, VALID
from optinode.spec.game import Bisect, Choose, Game, Phase, Side, compute_split_points, on_move
from optinode.spec.player import honest_challenger_move, honest_proposer_move

ME, ALICE, SEQ = b"\x11" * 20, b"\x22" * 20, b"\x33" * 20
N = 8
TRUE = [bytes([i + 1]) * 32 for i in range(N + 1)]  # our roots after every transaction
WHERE = dict(block_hash=b"\x05" * 32, log_index=0, tx_hash=b"\x00" * 32, address=b"\x00" * 20)


class FakeRpc:
    """getGame of one game: the tuple the contract returns, from a spec `Game`."""

    def __init__(self, game: Game, challenger: bytes = ALICE) -> None:
        self.game, self.challenger = game, challenger

    async def eth_call(self, tx, tag="latest") -> bytes:
        g = self.game
        t = (1, 7, g.start, g.end, "0x" + self.challenger.hex(), g.turn_start, int(g.phase), "0x" + SEQ.hex(), g.proposer_time_left,
             g.challenger_time_left, g.start_root, g.end_root, bytes(32))
        return eth_abi.encode([dispute.GAME_TUPLE], [t])


def opened(game_id: int = 3, challenger: bytes = ALICE) -> events.GameOpened:
    return events.GameOpened(game_id=game_id, batch_index=1, batch_id=7, challenger=challenger, proposer=SEQ, tx_count=N,
                             start_root=TRUE[0], end_root=b"\xee" * 32, block_number=5, **WHERE)


def game(**fields) -> Game:
    base = dict(tx_count=N, arity=2, start=0, end=N, start_root=TRUE[0], end_root=b"\xee" * 32, phase=Phase.BISECT, turn_start=1_000,
                proposer_time_left=60, challenger_time_left=60)
    return Game(**{**base, **fields})


def alerts(caplog, name: str) -> list[dict]:
    return [r.fields for r in caplog.records if getattr(r, "event", None) == name]


def watch(rpc: FakeRpc, ours=lambda o: False) -> tuple[GameWatch, VerifierMetrics]:
    metrics = VerifierMetrics()
    return GameWatch(rpc, b"\x99" * 20, arity=2, clock_warning=20, metrics=metrics, ours=ours), metrics


@pytest.mark.trio
async def test_a_challenger_that_agreed_to_a_false_root_is_losing_once(caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.game_watch")
    # the challenger chose [4, 8] although the proposer's root(4) is false: it agreed to a wrong root
    rpc = FakeRpc(game(start=4, end=8, start_root=b"\xaa" * 32, phase=Phase.BISECT))
    w, metrics = watch(rpc)
    w.load([opened()])
    for n in (10, 11):
        await w.check(Head(n, bytes(32), 1_001), lambda i, b: INVALID, lambda i: TRUE)
    (losing,) = alerts(caplog, "game_losing")
    assert losing["side"] == "CHALLENGER" and losing["reason"] == "position" and losing["segment"] == [4, 8]
    assert b'optinode_game_losing_total{reason="position"} 1.0' in metrics.expose()
    assert not alerts(caplog, "clock_low")  # the proposer's turn, 59 s left


@pytest.mark.trio
async def test_a_proposer_that_posted_a_false_root_is_losing_a_valid_batch(caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.game_watch")
    roots = (TRUE[4][:-1] + b"\x00",)  # the proposer's bisect root at 4 is not ours
    rpc = FakeRpc(game(phase=Phase.CHOOSE, end_root=TRUE[N], roots=roots))
    w, _ = watch(rpc)
    w.load([opened(), events.Bisected(game_id=3, start=0, end=N, roots=list(roots), block_number=6, **WHERE)])
    await w.check(Head(10, bytes(32), 1_001), lambda i, b: VALID, lambda i: TRUE)
    (losing,) = alerts(caplog, "game_losing")
    assert losing["side"] == "PROPOSER" and losing["reason"] == "position" and "root(4)" in losing["detail"]


@pytest.mark.trio
async def test_clock_low_for_any_side_and_losing_only_for_ours(caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.game_watch")
    rpc = FakeRpc(game(phase=Phase.BISECT, proposer_time_left=30))  # the proposer's turn, 30 s, we agree with the challenger
    w, metrics = watch(rpc)
    w.load([opened()])
    await w.check(Head(10, bytes(32), 1_015), lambda i, b: INVALID, lambda i: TRUE)  # 15 s left
    (low,) = alerts(caplog, "clock_low")
    assert low["side"] == "PROPOSER" and low["left"] == 15 and low["threshold"] == 20 and low["player"] == SEQ
    assert not alerts(caplog, "game_losing")  # the proposer's clock running out is what an invalid batch needs
    rpc.game = game(phase=Phase.BISECT, proposer_time_left=30, end_root=TRUE[N])  # a valid batch instead: the proposer is ours
    await w.check(Head(11, bytes(32), 1_016), lambda i, b: VALID, lambda i: TRUE)
    (losing,) = alerts(caplog, "game_losing")
    assert losing["side"] == "PROPOSER" and losing["reason"] == "clock" and losing["left"] == 14
    assert len(alerts(caplog, "clock_low")) == 1 and b"optinode_game_clock_low_total 1.0" in metrics.expose()


@pytest.mark.trio
async def test_the_end_against_our_side_is_reported_once_and_our_own_games_are_not_watched(caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.game_watch")
    rpc = FakeRpc(game(phase=Phase.PROPOSER_WON))
    w, metrics = watch(rpc, ours=lambda o: o.challenger == ME)
    w.load([opened(), opened(game_id=4, challenger=ME)])
    assert set(w.games) == {3} and w.challenged == {7: 2}  # both count as challenges of the batch
    w.note(events.GameResolved(game_id=3, outcome=int(Phase.PROPOSER_WON), block_number=9, **WHERE), live=True)
    for n in (10, 11):
        await w.check(Head(n, bytes(32), 1_001), lambda i, b: INVALID, lambda i: TRUE)
    (lost,) = alerts(caplog, "game_losing")
    assert lost == {"alert": True, "game": 3, "batch": 1, "side": "CHALLENGER", "reason": "lost", "outcome": "PROPOSER_WON"}
    assert b"optinode_games_watched 0.0" in metrics.expose()


def _play(honest: Side, roots_of_liar: list[bytes], parts: list[int]) -> list[Game]:
    """Games along a play where ``honest`` follows the honest strategy on TRUE and the other side
    answers from ``roots_of_liar`` (the proposer) or picks ``parts`` (the challenger)."""
    g, seen, now = game(end_root=TRUE[N] if honest == Side.PROPOSER else roots_of_liar[N]), [], 1_000
    while g.end - g.start > 1 and g.phase in (Phase.BISECT, Phase.CHOOSE):
        seen.append(g)
        if g.phase == Phase.BISECT:
            move = honest_proposer_move(g, TRUE, now) if honest == Side.PROPOSER else Bisect(
                tuple(roots_of_liar[p] for p in compute_split_points(g.start, g.end, g.arity)[1:-1]))
        else:
            if honest == Side.CHALLENGER:
                move = honest_challenger_move(g, TRUE, now)
            else:
                move = Choose(parts.pop(0) % len(compute_split_points(g.start, g.end, g.arity)[1:]), g.roots)
        assert move is not None
        g = on_move(g, move, now)
    seen.append(g)
    return seen


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=N + 1, max_size=N + 1), st.lists(st.integers(0, 7), min_size=8, max_size=8))
def test_an_honest_side_is_never_called_losing_by_position(liar, parts) -> None:
    liar[0] = TRUE[0]  # the agreed pre-state root
    if liar[N] == TRUE[N]:
        liar[N] = b"\xee" * 32  # a batch the challenger disputes: its posted root is false
    for g in _play(Side.CHALLENGER, liar, parts):
        assert losing_position(g, Side.CHALLENGER, TRUE) is None
    for g in _play(Side.PROPOSER, liar, parts):
        assert losing_position(g, Side.PROPOSER, TRUE) is None
