"""The honest players of the dispute game: strategy, kept apart from the rules in `spec/game.py`.

A player is a pure function of the game as the contract holds it, the player's own view of the
batch and (optionally) the L1 time: it returns the move to make now, or None when there is nothing
to do but wait. The rules decide whether a move is accepted; the player only decides which move to
make, the way op-challenger's solver is separate from its transaction sender. The dispute service
calls these functions for both roles (proposer defending its batch, challenger attacking a wrong one).

`true_roots[i]` is the correct state root after i transactions of the batch (anything indexable:
a verifier replays the batch lazily). With `now`, a player also claims a win on the opponent's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .game import Bisect, Choose, Game, Move, Phase, Side, Step, Timeout, compute_split_points, is_timed_out, turn

__all__ = ["choose_first_disagreement", "honest_challenger_move", "honest_proposer_move"]


def choose_first_disagreement(points: Sequence[int], claimed: Sequence[bytes], root_at: Callable[[int], bytes]) -> int:
    """The first part whose end root the challenger disputes: `claimed` are the proposer's roots at
    points[1:-1], `root_at(i)` the challenger's root after i transactions. The game guarantees the
    challenger agrees at points[0] and disagrees at points[-1], so with none of the inner roots
    wrong it is the last part."""
    for j, root in enumerate(claimed):
        if root != root_at(points[j + 1]):
            return j
    return len(points) - 2


def _opponent_timed_out(game: Game, me: Side, now: int | None) -> bool:
    side = turn(game)
    return now is not None and side is not None and side != me and is_timed_out(game, now)


def honest_proposer_move(game: Game, true_roots: Sequence[bytes], now: int | None = None) -> Move | None:
    """Post the true roots at the split points on the proposer's turn. In the step phase it waits:
    the challenger (or anyone) steps, or the challenger's clock runs out. A proposer whose batch is
    right keeps every root it ever posted true, so the segment's end root is always true and the
    step, executed from a true start root, can only confirm it."""
    if _opponent_timed_out(game, Side.PROPOSER, now):
        return Timeout()
    if game.phase != Phase.BISECT:
        return None
    points = compute_split_points(game.start, game.end, game.arity)
    return Bisect(tuple(true_roots[p] for p in points[1:-1]))


def honest_challenger_move(game: Game, true_roots: Sequence[bytes], now: int | None = None) -> Move | None:
    """Choose the first part whose end root is wrong; step a one-transaction segment. An honest
    challenger only opens a game whose pre-root is true and posted root is not, and keeps that
    invariant: the start root it agrees with is true and the end root it disputes is not. Its step
    executes a true start root, so the prover returns true_roots[start + 1], which differs from the
    proposer's end root."""
    if _opponent_timed_out(game, Side.CHALLENGER, now):
        return Timeout()
    if game.phase == Phase.CHOOSE:
        points = compute_split_points(game.start, game.end, game.arity)
        part = choose_first_disagreement(points, game.roots, true_roots.__getitem__)
        return Choose(part, game.roots)
    if game.phase == Phase.STEP:
        return Step(true_roots[game.start + 1])
    return None
