"""The watchtower's eye on other people's dispute games (docs/verifier.md, "Watching games").

    watch = GameWatch(rpc, game_address, arity=…, clock_warning=…, metrics=…, ours=player.plays)
    watch.load(follower.stored_events())       # after a start or a reorg: the follower's store is the memory
    watch.note(event, live=True)               # GameOpened / Bisected / Chosen / GameResolved / BatchesDiscarded
    await watch.check(head, verdict_of, roots_of)   # once per head: read every open game, alert

A verifier's own games are played (and watched) by its `dispute.Player`. Every other game on L1 —
all of them in watch-only mode — is followed here, because a watchtower exists to wake a human
before a wrong root finalizes (or a right one is discarded) when the honest party of a game went
offline. Nothing here sends a transaction. At each head each open game is read from the contract
(``getGame``), and, once per turn:

- ``clock_low``: the side to move has less than ``clock_warning`` seconds left (whoever it is);
- ``game_losing``: the side this node agrees with (the challenger of a batch it judged ``invalid``,
  the proposer of one it judged ``valid``) is losing: ``reason`` ``clock`` (its turn, its clock below
  the threshold; 0 left: anyone may claim the timeout), ``position`` (by this node's own roots the game
  has left that side's path: the segment's agreed start root is not ours, or its disputed end root is
  ours; or, in the choose phase, the proposer posted a root that is not ours), or ``lost`` (it ended
  against that side: an invalid root can now finalize unless another game wins, or a valid batch was
  discarded).

`unchallenged` is the third check: a batch judged ``invalid`` on which no game (anyone's) has been
opened once ``share`` of its challenge window has passed (``invalid_batch_unchallenged``, once per
append).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from optinode.l1 import events
from optinode.l1.follower import Head
from optinode.l1.rpc import RpcClient, RpcError
from optinode.logs import alert
from optinode.metrics import VerifierMetrics
from optinode.services.dispute import KnownGame, OnChainGame, read_game, track
from optinode.services.replayer import INVALID, VALID
from optinode.spec.game import Phase, Side, compute_split_points, is_over, time_left, turn

__all__ = ["GameWatch", "agreed_side", "game_row", "losing_position"]

log = logging.getLogger("optinode.services.game_watch")


def agreed_side(verdict: str | None) -> Side | None:
    """The side of a game this node's verdict on its batch agrees with (None: no view, or a batch
    that descends from an invalid one, which no game on it can save)."""
    return Side.CHALLENGER if verdict == INVALID else Side.PROPOSER if verdict == VALID else None


def losing_position(game: Any, side: Side, roots: Sequence[bytes]) -> str | None:
    """Why, by our roots (after every transaction of the batch), ``side`` can no longer win ``game``
    by playing on (None: it can). The challenger wins from a segment whose start root is true and
    whose end root is false; the proposer keeps a valid batch only while every root it claims is true."""
    start_true, end_true = game.start_root == roots[game.start], game.end_root == roots[game.end]
    if side == Side.CHALLENGER:
        if not start_true:
            return f"the challenger agreed to root({game.start}), which is not ours"
        if end_true:
            return f"the challenger disputes root({game.end}), which is ours"
        return None
    if not end_true:
        return f"the proposer claims root({game.end}) that is not ours"
    if game.phase == Phase.CHOOSE and game.roots:
        points = compute_split_points(game.start, game.end, game.arity)[1:-1]
        wrong = [p for p, root in zip(points, game.roots) if root != roots[p]]
        if wrong:
            return f"the proposer posted root({wrong[0]}) that is not ours; the challenger can pick it"
    return None


class GameWatch:
    def __init__(self, rpc: RpcClient, game_address: bytes, *, arity: int, clock_warning: int, metrics: VerifierMetrics,
                 ours: Callable[[Any], bool] = lambda opened: False) -> None:
        self.rpc, self.game_address, self.arity, self.clock_warning, self.metrics = rpc, game_address, arity, clock_warning, metrics
        self.ours = ours  # GameOpened -> whether our own player plays it (then it is not watched here)
        self.games: dict[int, KnownGame] = {}
        self.views: dict[int, OnChainGame] = {}  # the last read of each watched game (status)
        self.challenged: dict[int, int] = {}  # batch id -> games opened on it (anyone's, ours too)
        self.agreed: dict[int, Side] = {}  # game id -> the side our verdict on its batch took (kept after a discard)
        self._alerted: set[tuple[Any, ...]] = set()
        self._reported: set[int] = set()
        self._started = False
        metrics.games_watched.set_function(lambda: sum(1 for k in self.games.values() if k.resolved is None))

    # --- memory ---------------------------------------------------------------------------------------

    def load(self, stored: Iterable[Any]) -> None:
        self.games, self.challenged = {}, {}
        for event in stored:
            self.note(event)
        if not self._started:  # games that ended before this process started are not reported again
            self._started = True
            self._reported |= {game_id for game_id, known in self.games.items() if known.resolved is not None}

    def note(self, event: Any, *, live: bool = False) -> None:
        if isinstance(event, events.GameOpened):
            self.challenged[event.batch_id] = self.challenged.get(event.batch_id, 0) + 1
        opened = track(self.games, event, lambda o: not self.ours(o))
        if opened is not None and live:
            o = opened.opened
            alert(log, "game_opened", game=o.game_id, batch=o.batch_index, role="observer", challenger=o.challenger, proposer=o.proposer)

    # --- at each head ---------------------------------------------------------------------------------

    async def check(self, head: Head, verdict_of: Callable[[int, int], str | None], roots_of: Callable[[int], Sequence[bytes] | None]) -> None:
        """Read every open watched game and alert. ``verdict_of(batch index, batch id)``: our verdict on
        that batch (None: not replayed, or another batch is at that index now); ``roots_of(index)``:
        our roots after every transaction of it."""
        for game_id, known in list(self.games.items()):
            if known.resolved is not None and game_id in self._reported:
                continue
            if known.discarded and known.resolved is None:
                continue  # its batch is gone: nothing to protect (anyone may cancel it)
            opened = known.opened
            try:
                onchain = await read_game(self.rpc, self.game_address, game_id, opened.tx_count, self.arity, known.roots)
            except (RpcError, LookupError, ValueError) as error:
                log.info("game %d not read at block %d (%s); retrying at the next head", game_id, head.number, error)
                continue
            self.views[game_id] = onchain
            side = agreed_side(verdict_of(opened.batch_index, opened.batch_id))
            if side is None:  # a batch a game discarded has no verdict any more: the side we took before
                side = self.agreed.get(game_id)
            else:
                self.agreed[game_id] = side
            if is_over(onchain.game):
                known.resolved = int(onchain.game.phase)
                self._report_end(game_id, known, side)
                continue
            self._check_clocks(game_id, known, onchain, side, head.timestamp)
            roots = roots_of(opened.batch_index) if side is not None else None
            if side is not None and roots is not None and len(roots) == opened.tx_count + 1:
                why = losing_position(onchain.game, side, roots)
                if why is not None:
                    self._losing(game_id, known, onchain, side, "position", head.timestamp, detail=why)

    def _check_clocks(self, game_id: int, known: KnownGame, onchain: OnChainGame, agreed: Side | None, now: int) -> None:
        game = onchain.game
        moving = turn(game)
        if moving is None:
            return
        left = time_left(game, max(now, game.turn_start))[0 if moving == Side.PROPOSER else 1]
        if left >= self.clock_warning:
            return
        if self._once("clock_low", game_id, known.moves):
            self.metrics.clock_low.inc()
            alert(log, "clock_low", game=game_id, batch=onchain.batch_index, side=moving.name, left=left, threshold=self.clock_warning,
                  player=onchain.challenger if moving == Side.CHALLENGER else onchain.proposer, ours=False)
        if moving == agreed:
            self._losing(game_id, known, onchain, agreed, "clock", now)

    def _losing(self, game_id: int, known: KnownGame, onchain: OnChainGame, side: Side, reason: str, now: int, **more: Any) -> None:
        if not self._once("game_losing", game_id, known.moves, reason):
            return
        self.metrics.game_losing.labels(reason).inc()
        game = onchain.game
        left = time_left(game, max(now, game.turn_start))[0 if side == Side.PROPOSER else 1]
        alert(log, "game_losing", level=logging.ERROR, game=game_id, batch=onchain.batch_index, side=side.name, reason=reason, left=left,
              segment=[game.start, game.end], phase=game.phase.name,
              player=onchain.challenger if side == Side.CHALLENGER else onchain.proposer, **more)

    def _report_end(self, game_id: int, known: KnownGame, agreed: Side | None) -> None:
        if game_id in self._reported:
            return
        self._reported.add(game_id)
        outcome = Phase(known.resolved) if known.resolved is not None else None
        winner = Side.CHALLENGER if outcome == Phase.CHALLENGER_WON else Side.PROPOSER if outcome == Phase.PROPOSER_WON else None
        if agreed is not None and winner is not None and winner != agreed:
            self.metrics.game_losing.labels("lost").inc()
            alert(log, "game_losing", level=logging.ERROR, game=game_id, batch=known.opened.batch_index, side=agreed.name, reason="lost",
                  outcome=outcome.name if outcome else "?")
        else:
            log.info("watched game %d on batch %d ended: %s", game_id, known.opened.batch_index, outcome.name if outcome else "?")

    def _once(self, *key: Any) -> bool:
        if key in self._alerted:
            return False
        self._alerted.add(key)
        return True

    # --- unchallenged invalid batches -------------------------------------------------------------------

    def unchallenged(self, verdicts: Iterable[Any], now: int, *, window: int, share: float) -> None:
        """``invalid_batch_unchallenged`` once per append: an ``invalid`` verdict with no game on its
        batch once ``share`` of its challenge window is over."""
        for v in verdicts:
            if v.verdict != INVALID or self.challenged.get(v.batch_id) or now < v.appended_at + int(window * share):
                continue
            if self._once("invalid_batch_unchallenged", v.tx_hash):
                self.metrics.unchallenged.inc()
                ends = v.appended_at + window
                alert(log, "invalid_batch_unchallenged", level=logging.ERROR, batch=v.index, batch_id=v.batch_id, appended_at=v.appended_at,
                      window_ends=ends, seconds_left=max(0, ends - now), share=share)

    def status(self) -> list[dict[str, Any]]:
        """The watched games, in `Verifier.status`'s game shape (role ``observer``)."""
        return [game_row(game_id, known, self.views.get(game_id), "observer") for game_id, known in sorted(self.games.items())]


def game_row(game_id: int, known: KnownGame, view: OnChainGame | None, role: str) -> dict[str, Any]:
    """One game in the status (`optinode_status` ``games``): the same keys for our games and watched ones."""
    game = view.game if view else None
    return {
        "game": game_id, "batch": known.opened.batch_index, "role": role, "resolved": known.resolved,
        "phase": game.phase.name if game else None, "segment": [game.start, game.end] if game else None,
        "proposer_time_left": game.proposer_time_left if game else None,
        "challenger_time_left": game.challenger_time_left if game else None,
        "turn_start": game.turn_start if game else None,
    }
