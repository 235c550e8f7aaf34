"""The dispute player's watchtower side, against a game read from a fake L1: `clock_low` once per turn
(not at every head), each move counted, a game's end reported once, and games that ended before the
process started not reported again."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import eth_abi
import pytest

from optinode.l1 import events
from optinode.l1.follower import Head
from optinode.metrics import NodeMetrics
from optinode.services import dispute
from optinode.spec.game import Phase

pytestmark = pytest.mark.trio

ME, THEM = b"\x11" * 20, b"\x22" * 20
ROOTS = [bytes([i]) * 32 for i in range(5)]  # after every transaction of a 4-transaction batch


class FakeSender:
    address = ME

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def record(self, item: int):
        return next((s for s in self.sent if s.item == item), None)

    async def submit(self, **tx):
        self.sent.append(SimpleNamespace(status="pending", **tx))


class FakeRpc:
    def __init__(self) -> None:
        self.phase, self.proposer_left, self.turn_start = Phase.BISECT, 10, 1_000

    async def eth_call(self, tx, tag="latest") -> bytes:
        game = (1, 7, 0, 4, "0x" + THEM.hex(), self.turn_start, int(self.phase), "0x" + ME.hex(), self.proposer_left, 60,
                ROOTS[0], b"\xee" * 32, bytes(32))
        return eth_abi.encode([dispute.GAME_TUPLE], [game])


def opened() -> events.GameOpened:
    where = dict(block_number=5, block_hash=b"\x05" * 32, log_index=0, tx_hash=b"\x00" * 32, address=b"\x00" * 20)
    return events.GameOpened(game_id=3, batch_index=1, batch_id=7, challenger=THEM, proposer=ME, tx_count=4, start_root=ROOTS[0],
                             end_root=b"\xee" * 32, **where)


def resolved(outcome: Phase) -> events.GameResolved:
    where = dict(block_number=9, block_hash=b"\x09" * 32, log_index=0, tx_hash=b"\x00" * 32, address=b"\x00" * 20)
    return events.GameResolved(game_id=3, outcome=int(outcome), **where)


def player(rpc: FakeRpc, metrics: NodeMetrics) -> dispute.Player:
    deps = dispute.PlayerDeps(rpc=rpc, sender=FakeSender(), game_address=b"\x99" * 20, arity=2, challenger_bond=1, clock_warning=20,
                              metrics=metrics)
    return dispute.Player(deps, roots=lambda index: ROOTS)


def alerts(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


async def test_clock_low_once_per_turn_and_the_end_once(caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.dispute")
    rpc, metrics = FakeRpc(), NodeMetrics()
    p = player(rpc, metrics)
    p.load([])
    p.note(opened(), live=True)  # the defender's game, just opened on L1
    assert [r.fields["role"] for r in alerts(caplog, "game_opened")] == ["proposer"]
    for number in (10, 11, 12):  # three heads, our turn, 10 s left < 20 s
        await p.act(Head(number, bytes(32), 1_000))
    assert len(alerts(caplog, "clock_low")) == 1 and alerts(caplog, "clock_low")[0].fields["left"] == 10
    assert [r.fields["move"] for r in alerts(caplog, "game_move")] == ["Bisect"]  # sent once: the sender's record dedupes
    exposed = metrics.expose()
    assert b"optinode_game_clock_low_total 1.0" in exposed and b'optinode_game_moves_total{move="bisect",side="proposer"} 1.0' in exposed
    assert b"optinode_games_open 1.0" in exposed and b'optinode_games_opened_total{role="proposer"} 1.0' in exposed
    p.note(resolved(Phase.PROPOSER_WON), live=True)
    for number in (13, 14):
        await p.act(Head(number, bytes(32), 1_001))
    assert [r.levelno for r in alerts(caplog, "game_won")] == [logging.INFO]
    assert b'optinode_games_resolved_total{result="won"} 1.0' in metrics.expose() and b"optinode_games_open 0.0" in metrics.expose()


async def test_a_game_that_ended_before_the_restart_is_not_reported_again(caplog) -> None:
    caplog.set_level(logging.INFO, logger="optinode.services.dispute")
    metrics = NodeMetrics()
    p = player(FakeRpc(), metrics)
    p.load([opened(), resolved(Phase.CHALLENGER_WON)])  # the store after a restart
    await p.act(Head(20, bytes(32), 2_000))
    assert not alerts(caplog, "game_lost") and not alerts(caplog, "game_opened")
    assert b"optinode_games_resolved_total{" not in metrics.expose()
