"""The dispute game's rules (optinode.spec.game): safety properties over random games, clocks,
the bisection arithmetic against the contract's formula, and every InvalidMove code.

Games are played in Python between an honest side (the spec's strategies, thinking for a random
part of its remaining time) and a random opponent that posts true, garbage, shifted or mixed roots,
chooses random parts, steps or not, tries invalid moves, and stalls. `truth[i]` is the correct root
after i transactions: runs of equal roots (transactions that change nothing) and values that come
back (period), because the honest choice must not be fooled by repeats. The one-step prover is
modelled as a deterministic function of (transaction index, pre-root) that maps the true root at s
to the true root at s + 1.

Properties (DESIGN.md, safety 1-2):
  (a) an honest challenger against a wrong posted root always wins: by a step over a transaction
      whose agreed root is true and whose claimed next root is wrong, or on the proposer's clock;
  (b) an honest proposer whose root is right never loses, whatever the challenger does;
  (c) a game takes at most 2·ceil(log_k n) + 1 accepted moves (the brief's bound is + 2), and
      the bound is tight;
  (d) a side that never moves loses by timeout exactly when its clock runs out, not a second before;
  (e) invalid moves raise InvalidMove with the contract's error, in the contract's rule order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from optinode.spec.tx_tree import MAX_BATCH_TXS
from optinode.spec.crypto import keccak
from optinode.spec.game import (
    Bisect,
    Cancel,
    Choose,
    Game,
    GameError,
    InvalidMove,
    Phase,
    Side,
    Step,
    Timeout,
    compute_split_point,
    compute_split_points,
    get_winner,
    is_timed_out,
    max_moves,
    max_rounds,
    on_bisect,
    on_cancel,
    on_choose,
    on_move,
    on_open,
    on_step,
    on_timeout,
    parts_of,
    roots_hash,
    time_left,
    turn,
)
from optinode.spec.player import choose_first_disagreement, honest_challenger_move, honest_proposer_move

T0 = 1_700_000_000
GAMES = settings(max_examples=max(150, settings.default.max_examples), deadline=None)


# --- the world: true roots, lies and the one-step prover ------------------------------------------------


class TrueRoots:
    """root(0 … n) computed on demand: runs of `block` equal roots, values repeating every `period` runs."""

    def __init__(self, seed: int, n: int, block: int = 1, period: int = 2**40) -> None:
        self.seed, self.n, self.block, self.period = seed, n, block, period

    def __getitem__(self, i: int) -> bytes:
        if not 0 <= i <= self.n:
            raise IndexError(i)
        return keccak(b"true" + self.seed.to_bytes(8, "big") + ((i // self.block) % self.period).to_bytes(8, "big"))

    def __len__(self) -> int:
        return self.n + 1


def garbage(*parts: int) -> bytes:
    return keccak(b"garbage" + b"".join(p.to_bytes(8, "big") for p in parts))


def osp(truth: TrueRoots, s: int, pre_root: bytes) -> bytes:
    """The modelled one-step prover: transaction s executed from `pre_root`."""
    return truth[s + 1] if pre_root == truth[s] else keccak(b"osp" + pre_root + s.to_bytes(4, "big"))


def contract_split_points(start: int, end: int, arity: int) -> list[int]:
    """DisputeGame's formula, transcribed independently (partsOf and splitPoint)."""
    length = end - start
    parts = length if length < arity else arity
    return [start + length * j // parts for j in range(parts + 1)]


def ceil_log(n: int, k: int) -> int:
    r = 0
    while k**r < n:
        r += 1
    return r


@st.composite
def worlds(draw: st.DrawFn, *, valid: bool) -> tuple[TrueRoots, Game]:
    """A batch (its truth) and a freshly opened game against it: `valid` says whether the posted
    root is the true one."""
    n = draw(st.one_of(st.integers(1, 40), st.integers(1, MAX_BATCH_TXS), st.sampled_from([MAX_BATCH_TXS, 2**10, 300, 17])))
    arity = draw(st.one_of(st.sampled_from([2, 3, 16, 256]), st.integers(2, 256)))
    clock = draw(st.one_of(st.integers(1, 5), st.integers(1, 10**6)))
    block = draw(st.one_of(st.just(1), st.integers(1, n + 1)))
    period = draw(st.one_of(st.just(2**40), st.integers(1, 3)))
    truth = TrueRoots(draw(st.integers(0, 2**32)), n, block, period)
    if valid:
        post = truth[n]
    else:
        # a wrong root: garbage, or a true root of another index (a plausible lie)
        other = [truth[j] for j in (0, n - 1, draw(st.integers(0, n))) if truth[j] != truth[n]]
        post = draw(st.sampled_from(other)) if other and draw(st.booleans()) else garbage(n, 1)
    game = on_open(n, truth[0], post, T0 + draw(st.integers(0, 10**6)), arity=arity, clock=clock)
    return truth, game


# --- playing ---------------------------------------------------------------------------------------------


@dataclass
class Record:
    games: list[Game] = field(default_factory=list)  # the game after each accepted move (and at open)
    moves: list[str] = field(default_factory=list)
    ended_by: str = ""
    step_result: bytes | None = None


def mover_left(game: Game) -> int:
    return game.proposer_time_left if turn(game) == Side.PROPOSER else game.challenger_time_left


def lying_roots(data: st.DataObject, truth: TrueRoots, points: tuple[int, ...], salt: int) -> tuple[bytes, ...]:
    inner = points[1:-1]
    mode = data.draw(st.sampled_from(["true", "garbage", "prefix", "shifted", "mixed"]), label="lie")
    if mode == "true":
        return tuple(truth[p] for p in inner)
    if mode == "garbage":
        return tuple(garbage(salt, p) for p in inner)
    if mode == "prefix":  # true up to some point, then wrong
        m = data.draw(st.integers(0, len(inner)), label="prefix")
        return tuple(truth[p] if j < m else garbage(salt, p) for j, p in enumerate(inner))
    if mode == "shifted":  # a neighbour's true root: wrong unless the transaction changed nothing
        return tuple(truth[min(p + 1, truth.n)] for p in inner)
    rng = random.Random(data.draw(st.integers(0, 2**32), label="mix"))
    return tuple(rng.choice((truth[p], garbage(salt, p), truth[rng.randint(0, truth.n)])) for p in inner)


def try_invalid(data: st.DataObject, game: Game, now: int) -> None:
    """The opponent sends an invalid move first: it raises the expected error (and, the spec being
    pure, changes nothing)."""
    if not data.draw(st.integers(0, 4), label="try invalid") == 0:
        return
    parts = parts_of(game.start, game.end, game.arity)
    if game.phase == Phase.BISECT:
        bad = [
            (lambda: on_bisect(game, [garbage(0)] * parts, now), GameError.WRONG_ROOT_COUNT),
            (lambda: on_bisect(game, [garbage(0)] * (parts - 1), now, by=Side.CHALLENGER), GameError.NOT_YOUR_TURN),
            (lambda: on_choose(game, 0, game.roots, now), GameError.NOT_YOUR_TURN),
            (lambda: on_step(game, garbage(1), now), GameError.NOT_YOUR_TURN),
        ]
    elif game.phase == Phase.CHOOSE:
        bad = [
            (lambda: on_choose(game, len(game.roots) + 1, game.roots, now), GameError.INDEX_OUT_OF_RANGE),
            (lambda: on_choose(game, 0, game.roots + (garbage(2),), now), GameError.ROOTS_MISMATCH),
            (lambda: on_choose(game, 0, game.roots, now, by=Side.PROPOSER), GameError.NOT_YOUR_TURN),
            (lambda: on_bisect(game, game.roots, now), GameError.NOT_YOUR_TURN),
        ]
    else:
        bad = [
            (lambda: on_bisect(game, [], now), GameError.NOT_YOUR_TURN),
            (lambda: on_choose(game, 0, game.roots, now), GameError.NOT_YOUR_TURN),
            (lambda: on_cancel(game, batch_live=True), GameError.BATCH_STILL_LIVE),
        ]
    bad.append((lambda: on_timeout(game, now), GameError.CLOCK_NOT_EXPIRED))
    attempt, code = data.draw(st.sampled_from(bad), label="invalid move")
    with pytest.raises(InvalidMove) as info:
        attempt()
    assert info.value.code == code


def play(data: st.DataObject, truth: TrueRoots, game: Game, *, honest: Side) -> Record:
    """Play to the end: `honest` follows the spec's strategy, the other side is random."""
    rec = Record(games=[game])
    opened, clock = game.turn_start, game.proposer_time_left
    while get_winner(game) is None:
        assert game.phase in (Phase.BISECT, Phase.CHOOSE, Phase.STEP)
        # the game can always be ended within two clocks of its opening
        assert game.turn_start + mover_left(game) <= opened + 2 * clock
        side = turn(game)
        left = mover_left(game)
        if side == honest:
            now = game.turn_start + data.draw(st.integers(0, left), label="honest thinks")
            assert not is_timed_out(game, now)
            move = (honest_proposer_move if honest == Side.PROPOSER else honest_challenger_move)(game, truth, now)
            assert move is not None and type(move) is not Timeout
            if type(move) is Step:
                result = osp(truth, game.start, game.start_root)
                assert move.post_root == result  # the challenger knows what the prover will say
                move, rec.step_result, rec.ended_by = Step(result), result, "step"
            game = on_move(game, move, now)
            rec.games.append(game)
            rec.moves.append(type(move).__name__)
            continue
        # the random side to move (in the step phase of an honest proposer: the random challenger,
        # the proposer itself or a third party may step; the proposer may as well wait)
        stall = data.draw(st.integers(0, 15), label="stall?") == 7
        if not stall:
            now = game.turn_start + data.draw(st.integers(0, left), label="opponent thinks")
            try_invalid(data, game, now)
            if game.phase == Phase.BISECT:
                points = compute_split_points(game.start, game.end, game.arity)
                move = Bisect(lying_roots(data, truth, points, len(rec.moves)))
            elif game.phase == Phase.CHOOSE:
                move = Choose(data.draw(st.integers(0, len(game.roots)), label="part"), game.roots)
            else:  # the step: the random challenger, the waiting honest proposer, or a third party
                result = osp(truth, game.start, game.start_root)
                move, rec.step_result, rec.ended_by = Step(result), result, "step"
            game = on_move(game, move, now)
            rec.games.append(game)
            rec.moves.append(type(move).__name__)
            continue
        # nobody moves: just before the end of the clock the game goes on, one second later the
        # honest side claims the win
        deadline = game.turn_start + left
        with pytest.raises(InvalidMove) as info:
            on_timeout(game, deadline)
        assert info.value.code == GameError.CLOCK_NOT_EXPIRED
        assert time_left(game, deadline) in ((0, game.challenger_time_left), (game.proposer_time_left, 0))
        now = deadline + 1 + data.draw(st.integers(0, 3), label="late")
        claim = (honest_proposer_move if honest == Side.PROPOSER else honest_challenger_move)(game, truth, now)
        assert claim == Timeout(), "the honest side claims the timeout"
        game = on_move(game, claim, now)
        rec.games.append(game)
        rec.moves.append("Timeout")
        rec.ended_by = "timeout"
    event(f"ended by {rec.ended_by} after {len(rec.moves) if len(rec.moves) < 4 else '4+'} moves")
    return rec


# --- (a), (b), (c): safety over random games ---------------------------------------------------------------


@GAMES
@given(world=worlds(valid=False), data=st.data())
def test_honest_challenger_always_wins_against_a_wrong_root(world, data) -> None:
    truth, game = world
    assert game.start_root == truth[0] and game.end_root != truth[game.tx_count]
    rec = play(data, truth, game, honest=Side.CHALLENGER)
    final = rec.games[-1]
    assert get_winner(final) == Side.CHALLENGER and final.phase == Phase.CHALLENGER_WON
    # the honest challenger's invariant held after every move: agreed root true, disputed root wrong
    for g in rec.games[:-1]:
        assert g.start_root == truth[g.start] and g.end_root != truth[g.end]
    if rec.ended_by == "step":
        # one transaction whose agreed root is true and whose claimed next root is wrong
        assert final.end == final.start + 1
        assert final.start_root == truth[final.start] and final.end_root != truth[final.end]
        assert rec.step_result == truth[final.end]
    else:
        assert rec.ended_by == "timeout" and rec.games[-2].phase == Phase.BISECT  # the proposer ran out
    # (c)
    assert len(rec.moves) <= max_moves(game.tx_count, game.arity) <= 2 * ceil_log(game.tx_count, game.arity) + 2


@GAMES
@given(world=worlds(valid=True), data=st.data())
def test_honest_proposer_never_loses(world, data) -> None:
    truth, game = world
    rec = play(data, truth, game, honest=Side.PROPOSER)
    final = rec.games[-1]
    assert get_winner(final) == Side.PROPOSER and final.phase == Phase.PROPOSER_WON
    # every root the game ever held was true: the step can only confirm the proposer
    for g in rec.games:
        assert g.start_root == truth[g.start] and g.end_root == truth[g.end]
    if rec.ended_by == "step":
        assert final.end == final.start + 1 and rec.step_result == final.end_root
    else:
        assert rec.ended_by == "timeout" and rec.games[-2].phase in (Phase.CHOOSE, Phase.STEP)  # the challenger ran out
    # (c)
    assert len(rec.moves) <= max_moves(game.tx_count, game.arity) <= 2 * ceil_log(game.tx_count, game.arity) + 2


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, MAX_BATCH_TXS), arity=st.integers(2, 256))
def test_round_bound_is_ceil_log_and_tight(n, arity) -> None:
    # A challenger that always takes a longest part against a proposer that always bisects needs
    # exactly ceil(log_k n) rounds: parts differ by at most one transaction.
    assert max_rounds(n, arity) == ceil_log(n, arity)
    game = on_open(n, garbage(0), garbage(1), T0, arity=arity, clock=100)
    rounds = 0
    while game.phase != Phase.STEP:
        points = compute_split_points(game.start, game.end, game.arity)
        lengths = [b - a for a, b in zip(points, points[1:])]
        assert max(lengths) - min(lengths) <= 1
        game = on_bisect(game, [garbage(p) for p in points[1:-1]], T0)
        game = on_choose(game, lengths.index(max(lengths)), game.roots, T0)
        rounds += 1
    assert rounds == max_rounds(n, arity)
    assert max_moves(n, arity) == 2 * rounds + 1


# --- (d): clocks ----------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(world=worlds(valid=False), data=st.data())
def test_a_silent_side_loses_exactly_when_its_clock_runs_out(world, data) -> None:
    truth, game = world
    # both sides play honestly-shaped moves for a while, spending random time
    for _ in range(data.draw(st.integers(0, 6), label="moves before silence")):
        if game.phase == Phase.STEP:
            break
        now = game.turn_start + data.draw(st.integers(0, mover_left(game)))
        move = honest_challenger_move(game, truth) if game.phase == Phase.CHOOSE else honest_proposer_move(game, truth)
        game = on_move(game, move, now)
    silent = turn(game)
    left = mover_left(game)
    deadline = game.turn_start + left
    other = game.challenger_time_left if silent == Side.PROPOSER else game.proposer_time_left
    # at the deadline: no timeout, the clock shows zero, and the silent side may still move
    assert not is_timed_out(game, deadline)
    with pytest.raises(InvalidMove) as info:
        on_timeout(game, deadline)
    assert info.value.code == GameError.CLOCK_NOT_EXPIRED
    assert time_left(game, deadline) == ((0, other) if silent == Side.PROPOSER else (other, 0))
    own = honest_proposer_move(game, truth) if silent == Side.PROPOSER else honest_challenger_move(game, truth)
    moved = on_move(game, own, deadline)
    if get_winner(moved) is None:
        assert moved.turn_start == deadline
    # one second later: its move fails with ClockExpired and the timeout gives the other side the win
    late = deadline + 1 + data.draw(st.integers(0, 10**6))
    assert is_timed_out(game, late)
    with pytest.raises(InvalidMove) as info:
        on_move(game, own, late)
    assert info.value.code == GameError.CLOCK_EXPIRED
    ended = on_timeout(game, late)
    assert get_winner(ended) == (Side.CHALLENGER if silent == Side.PROPOSER else Side.PROPOSER)
    assert (ended.proposer_time_left, ended.challenger_time_left, ended.turn_start) == (
        game.proposer_time_left,
        game.challenger_time_left,
        game.turn_start,
    )
    # a timeout on a game whose batch was discarded cancels it instead
    assert on_timeout(game, late, batch_live=False).phase == Phase.CANCELLED


def test_clock_bookkeeping() -> None:
    game = on_open(300, garbage(0), garbage(1), T0, arity=16, clock=1800)
    assert (game.phase, game.start, game.end, game.turn_start) == (Phase.BISECT, 0, 300, T0)
    assert time_left(game, T0 + 600) == (1200, 1800)
    points = compute_split_points(0, 300, 16)
    game = on_bisect(game, [garbage(p) for p in points[1:-1]], T0 + 600)
    assert (game.proposer_time_left, game.challenger_time_left, game.turn_start) == (1200, 1800, T0 + 600)
    assert time_left(game, T0 + 900) == (1200, 1500)
    game = on_choose(game, 3, game.roots, T0 + 900)
    assert (game.proposer_time_left, game.challenger_time_left, game.turn_start) == (1200, 1500, T0 + 900)
    # the proposer's clock was not reset by the challenger's move: it runs out 1200 s later
    assert not is_timed_out(game, T0 + 2100) and is_timed_out(game, T0 + 2101)
    assert get_winner(on_timeout(game, T0 + 2101)) == Side.CHALLENGER
    # the step does not charge the clock
    one = on_open(1, garbage(0), garbage(1), T0, arity=16, clock=10)
    assert one.phase == Phase.STEP
    done = on_step(one, garbage(1), T0 + 10)
    assert get_winner(done) == Side.PROPOSER and done.challenger_time_left == 10 and done.turn_start == T0
    with pytest.raises(InvalidMove, match="ClockExpired"):
        on_step(one, garbage(1), T0 + 11)
    with pytest.raises(ValueError):
        on_bisect(game, [], T0)  # time never goes back
    assert time_left(done, T0 + 10**9) == (10, 10)  # frozen once over


# --- (e): invalid moves --------------------------------------------------------------------------------------


def opened(n: int = 300, arity: int = 16, clock: int = 1800) -> Game:
    return on_open(n, garbage(0), garbage(1), T0, arity=arity, clock=clock)


def bisected(game: Game, now: int = T0) -> Game:
    points = compute_split_points(game.start, game.end, game.arity)
    return on_bisect(game, [garbage(p) for p in points[1:-1]], now)


def code_of(fn) -> GameError:
    with pytest.raises(InvalidMove) as info:
        fn()
    return info.value.code


def test_open_rejects_what_the_contracts_reject() -> None:
    root = garbage(0)
    assert code_of(lambda: on_open(10, root, root, T0, arity=1, clock=10)) == GameError.INVALID_PARAMETER
    assert code_of(lambda: on_open(10, root, root, T0, arity=257, clock=10)) == GameError.INVALID_PARAMETER
    assert code_of(lambda: on_open(10, root, root, T0, arity=2, clock=0)) == GameError.INVALID_PARAMETER
    assert code_of(lambda: on_open(10, root, root, T0, arity=2, clock=2**48)) == GameError.INVALID_PARAMETER
    assert code_of(lambda: on_open(0, root, root, T0, arity=2, clock=10)) == GameError.EMPTY_BATCH
    assert code_of(lambda: on_open(MAX_BATCH_TXS + 1, root, root, T0, arity=2, clock=10)) == GameError.TOO_MANY_TRANSACTIONS
    assert on_open(MAX_BATCH_TXS, root, root, T0, arity=256, clock=2**48 - 1).phase == Phase.BISECT
    with pytest.raises(TypeError):
        on_open(10, b"short", root, T0, arity=2, clock=10)


def test_bisect_errors_in_the_contracts_order() -> None:
    game = opened()
    roots = [garbage(p) for p in compute_split_points(0, 300, 16)[1:-1]]
    assert code_of(lambda: on_bisect(game, roots, T0, by=Side.CHALLENGER)) == GameError.NOT_YOUR_TURN
    assert code_of(lambda: on_bisect(game, roots, T0, by=Side.ANYONE)) == GameError.NOT_YOUR_TURN
    assert code_of(lambda: on_bisect(game, roots[:-1], T0)) == GameError.WRONG_ROOT_COUNT
    assert code_of(lambda: on_bisect(game, roots + roots[:1], T0)) == GameError.WRONG_ROOT_COUNT
    assert code_of(lambda: on_bisect(game, roots, T0 + 1801)) == GameError.CLOCK_EXPIRED
    # precedence: turn before clock before count
    assert code_of(lambda: on_bisect(game, roots[:-1], T0 + 1801, by=Side.CHALLENGER)) == GameError.NOT_YOUR_TURN
    assert code_of(lambda: on_bisect(game, roots[:-1], T0 + 1801)) == GameError.CLOCK_EXPIRED
    after = on_bisect(game, roots, T0 + 1800)
    assert after.phase == Phase.CHOOSE and after.proposer_time_left == 0 and after.roots == tuple(roots)
    assert roots_hash(after) == keccak(b"".join(roots)) and roots_hash(game) == bytes(32)
    assert code_of(lambda: on_bisect(after, roots, T0 + 1800)) == GameError.NOT_YOUR_TURN  # twice
    won = on_timeout(game, T0 + 1801)
    assert code_of(lambda: on_bisect(won, roots, T0 + 1801)) == GameError.GAME_OVER  # over beats everything
    assert code_of(lambda: on_bisect(won, [], T0 + 10**6, by=Side.CHALLENGER)) == GameError.GAME_OVER


def test_choose_errors_in_the_contracts_order() -> None:
    game = bisected(opened())
    roots = game.roots
    assert code_of(lambda: on_choose(game, 0, roots, T0, by=Side.PROPOSER)) == GameError.NOT_YOUR_TURN
    assert code_of(lambda: on_choose(opened(), 0, (), T0)) == GameError.NOT_YOUR_TURN  # bisect phase
    assert code_of(lambda: on_choose(game, 0, roots[::-1], T0)) == GameError.ROOTS_MISMATCH
    assert code_of(lambda: on_choose(game, 0, roots[:-1], T0)) == GameError.ROOTS_MISMATCH
    assert code_of(lambda: on_choose(game, 16, roots, T0)) == GameError.INDEX_OUT_OF_RANGE
    assert code_of(lambda: on_choose(game, -1, roots, T0)) == GameError.INDEX_OUT_OF_RANGE
    assert code_of(lambda: on_choose(game, 0, roots, T0 + 1801)) == GameError.CLOCK_EXPIRED
    # precedence: turn, clock, roots, index
    assert code_of(lambda: on_choose(game, 99, roots[::-1], T0 + 1801, by=Side.PROPOSER)) == GameError.NOT_YOUR_TURN
    assert code_of(lambda: on_choose(game, 99, roots[::-1], T0 + 1801)) == GameError.CLOCK_EXPIRED
    assert code_of(lambda: on_choose(game, 99, roots[::-1], T0)) == GameError.ROOTS_MISMATCH
    # the last part keeps the disputed end root, the first the agreed start root
    last = on_choose(game, 15, roots, T0)
    assert (last.start, last.end, last.start_root, last.end_root) == (281, 300, roots[14], game.end_root)
    first = on_choose(game, 0, roots, T0)
    assert (first.start, first.end, first.start_root, first.end_root) == (0, 18, game.start_root, roots[0])
    assert first.phase == last.phase == Phase.BISECT and first.roots == roots  # roots kept, like rootsHash


def values_of(fn) -> tuple:
    with pytest.raises(InvalidMove) as info:
        fn()
    return (info.value.code, *info.value.values)


def test_errors_carry_the_values_that_explain_them() -> None:
    # the same arguments as DisputeGame's custom errors (compared on anvil by the differential test)
    game = opened()
    roots = [garbage(p) for p in compute_split_points(0, 300, 16)[1:-1]]
    assert values_of(lambda: on_bisect(game, roots[:-1], T0)) == (GameError.WRONG_ROOT_COUNT, 14, 15)
    assert values_of(lambda: on_bisect(game, roots, T0 + 1801)) == (GameError.CLOCK_EXPIRED, 1801, 1800)
    assert values_of(lambda: on_bisect(game, roots, T0, by=Side.CHALLENGER)) == (GameError.NOT_YOUR_TURN, Phase.BISECT)
    assert values_of(lambda: on_timeout(game, T0 + 1800)) == (GameError.CLOCK_NOT_EXPIRED, 1800, 1800)
    chosen = bisected(game)
    assert values_of(lambda: on_choose(chosen, 16, chosen.roots, T0)) == (GameError.INDEX_OUT_OF_RANGE, 16, 16)
    swapped = chosen.roots[::-1]
    assert values_of(lambda: on_choose(chosen, 0, swapped, T0)) == (
        GameError.ROOTS_MISMATCH,
        keccak(b"".join(swapped)),
        roots_hash(chosen),
    )
    over = on_timeout(game, T0 + 1801)
    assert values_of(lambda: on_bisect(over, roots, T0 + 1801)) == (GameError.GAME_OVER, Phase.CHALLENGER_WON)
    assert str(InvalidMove(GameError.WRONG_ROOT_COUNT, 14, 15)) == "WrongRootCount(14, 15)"


def test_step_timeout_cancel_errors() -> None:
    game = opened()
    assert code_of(lambda: on_step(game, garbage(1), T0)) == GameError.NOT_YOUR_TURN
    assert code_of(lambda: on_step(bisected(game), garbage(1), T0)) == GameError.NOT_YOUR_TURN
    one = opened(n=1)
    assert code_of(lambda: on_step(one, garbage(1), T0 + 1801)) == GameError.CLOCK_EXPIRED
    assert code_of(lambda: on_step(one, garbage(1), T0, batch_live=False)) == GameError.BATCH_NOT_LIVE
    assert code_of(lambda: on_step(one, garbage(1), T0 + 1801, batch_live=False)) == GameError.CLOCK_EXPIRED
    assert get_winner(on_step(one, garbage(2), T0)) == Side.CHALLENGER
    assert get_winner(on_step(one, garbage(1), T0)) == Side.PROPOSER
    assert code_of(lambda: on_timeout(one, T0 + 1800)) == GameError.CLOCK_NOT_EXPIRED
    assert get_winner(on_timeout(one, T0 + 1801)) == Side.PROPOSER
    assert code_of(lambda: on_cancel(one, batch_live=True)) == GameError.BATCH_STILL_LIVE
    cancelled = on_cancel(one, batch_live=False)
    assert cancelled.phase == Phase.CANCELLED and get_winner(cancelled) is None
    for over in (cancelled, on_step(one, garbage(2), T0)):
        assert code_of(lambda: on_step(over, garbage(1), T0)) == GameError.GAME_OVER
        assert code_of(lambda: on_timeout(over, T0 + 10**6)) == GameError.GAME_OVER
        assert code_of(lambda: on_cancel(over, batch_live=False)) == GameError.GAME_OVER
        assert code_of(lambda: on_choose(over, 0, (), T0)) == GameError.GAME_OVER
    with pytest.raises(TypeError):
        on_move(one, "step", T0)  # type: ignore[arg-type]


def expected_error(game: Game, move, by: Side, now: int, live: bool) -> GameError | None:
    """The contract's checks, transcribed from DisputeGame.sol in source order."""
    if game.phase >= Phase.CHALLENGER_WON:
        return GameError.GAME_OVER
    spent = now - game.turn_start
    if type(move) is Bisect:
        if game.phase != Phase.BISECT or by != Side.PROPOSER:
            return GameError.NOT_YOUR_TURN
        if spent > game.proposer_time_left:
            return GameError.CLOCK_EXPIRED
        if len(move.roots) != min(game.arity, game.end - game.start) - 1:
            return GameError.WRONG_ROOT_COUNT
    elif type(move) is Choose:
        if game.phase != Phase.CHOOSE or by != Side.CHALLENGER:
            return GameError.NOT_YOUR_TURN
        if spent > game.challenger_time_left:
            return GameError.CLOCK_EXPIRED
        if keccak(b"".join(move.roots)) != keccak(b"".join(game.roots)):
            return GameError.ROOTS_MISMATCH
        if move.part >= len(move.roots) + 1:
            return GameError.INDEX_OUT_OF_RANGE
    elif type(move) is Step:
        if game.phase != Phase.STEP:
            return GameError.NOT_YOUR_TURN
        if spent > game.challenger_time_left:
            return GameError.CLOCK_EXPIRED
        if not live:
            return GameError.BATCH_NOT_LIVE
    elif type(move) is Timeout:
        if spent <= (game.proposer_time_left if game.phase == Phase.BISECT else game.challenger_time_left):
            return GameError.CLOCK_NOT_EXPIRED
    elif live:
        return GameError.BATCH_STILL_LIVE
    return None


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_any_move_is_accepted_or_rejected_as_the_contract_would(data) -> None:
    n = data.draw(st.integers(1, 400))
    arity = data.draw(st.integers(2, 20))
    clock = data.draw(st.integers(1, 100))
    game = on_open(n, garbage(0), garbage(1), T0, arity=arity, clock=clock)
    for i in range(data.draw(st.integers(0, 12))):
        if get_winner(game) is not None or game.phase == Phase.CANCELLED:
            break
        now = game.turn_start + data.draw(st.integers(0, 2 * clock))
        by = data.draw(st.sampled_from(list(Side)))
        live = data.draw(st.integers(0, 9)) > 0
        parts = parts_of(game.start, game.end, arity)
        kind = data.draw(st.sampled_from(["bisect", "choose", "step", "timeout", "cancel"]))
        if kind == "bisect":
            count = data.draw(st.sampled_from([parts - 1, parts - 2, parts, 0]).filter(lambda c: c >= 0))
            move = Bisect(tuple(garbage(i, j) for j in range(count)), by)
        elif kind == "choose":
            roots = game.roots if data.draw(st.integers(0, 4)) else game.roots[1:] + (garbage(7),)
            move = Choose(data.draw(st.integers(0, len(game.roots) + 2)), roots, by)
        elif kind == "step":
            move = Step(data.draw(st.sampled_from([game.end_root, garbage(i, 99)])))
        else:
            move = Timeout() if kind == "timeout" else Cancel()
        expected = expected_error(game, move, by, now, live)
        try:
            after = on_move(game, move, now, batch_live=live)
        except InvalidMove as exc:
            assert exc.code == expected, (game, move, by, now, live)
            continue
        assert expected is None, (game, move, by, now, live)
        game = after


# --- split points and the honest choice -------------------------------------------------------------------------


def test_split_points_match_the_contract_formula_exhaustively() -> None:
    for start in range(0, 6):
        for end in range(start + 1, start + 200):
            for arity in (2, 3, 4, 5, 7, 16, 255, 256):
                assert list(compute_split_points(start, end, arity)) == contract_split_points(start, end, arity)


@settings(max_examples=500, deadline=None)
@given(end=st.integers(1, MAX_BATCH_TXS), data=st.data(), arity=st.integers(2, 256))
def test_split_points_match_the_contract_formula(end, data, arity) -> None:
    start = data.draw(st.integers(0, end - 1))
    points = compute_split_points(start, end, arity)
    assert list(points) == contract_split_points(start, end, arity)
    assert points[0] == start and points[-1] == end and all(a < b for a, b in zip(points, points[1:]))
    assert len(points) - 1 == parts_of(start, end, arity) == min(arity, end - start)


def test_choose_moves_to_the_split_points() -> None:
    # on_choose's new segment is part `part` of compute_split_points: one formula for rules and players
    rng = random.Random(7)
    for _ in range(2000):
        end = rng.randint(2, MAX_BATCH_TXS)
        start, arity = rng.randint(0, end - 2), rng.randint(2, 256)
        game = msgspec.structs.replace(opened(MAX_BATCH_TXS, arity), start=start, end=end)
        game = bisected(game)
        points = compute_split_points(start, end, arity)
        part = rng.randrange(len(points) - 1)
        chosen = on_choose(game, part, game.roots, T0)
        assert (chosen.start, chosen.end) == (points[part], points[part + 1])
        assert points[part] == compute_split_point(start, end, len(points) - 1, part)


def test_l1_bindings_declare_no_twin_of_the_spec() -> None:
    # the bindings' Phase is the spec's enum and StateParts.root the spec's commitment
    from optinode.l1 import contracts
    from optinode.spec.commitment import compute_state_root_from_parts

    assert contracts.Phase is Phase
    parts = contracts.StateParts(garbage(1), garbage(2), garbage(3), 4, 5)
    assert parts.root() == compute_state_root_from_parts(garbage(1), garbage(2), garbage(3), 4, 5)
    assert not hasattr(contracts, "split_points") and not hasattr(contracts, "choose_part")


@settings(max_examples=300, deadline=None)
@given(parts=st.integers(2, 40), data=st.data())
def test_first_disagreement(parts, data) -> None:
    points = list(range(parts + 1))
    wrong = data.draw(st.lists(st.booleans(), min_size=parts - 1, max_size=parts - 1))
    truth = TrueRoots(1, parts)
    claimed = [garbage(p) if w else truth[p] for p, w in zip(points[1:-1], wrong)]
    j = choose_first_disagreement(points, claimed, truth.__getitem__)
    assert j == (wrong.index(True) if True in wrong else parts - 1)


# --- values ---------------------------------------------------------------------------------------------------


def test_game_is_a_frozen_value_that_round_trips() -> None:
    game = bisected(opened())
    with pytest.raises(AttributeError):
        game.start = 5  # type: ignore[misc]
    again = msgspec.json.decode(msgspec.json.encode(game), type=Game)
    assert again == game and type(again.phase) is Phase
    moves = [Bisect((garbage(1),)), Choose(2, (garbage(1),)), Step(garbage(3)), Timeout(), Cancel()]
    for move in moves:
        assert msgspec.json.decode(msgspec.json.encode(move), type=Bisect | Choose | Step | Timeout | Cancel) == move


def test_honest_strategies_wait_and_claim() -> None:
    truth = TrueRoots(3, 300)
    game = on_open(300, truth[0], garbage(1), T0, arity=16, clock=100)
    assert honest_challenger_move(game, truth) is None and honest_challenger_move(game, truth, T0 + 100) is None
    assert honest_challenger_move(game, truth, T0 + 101) == Timeout()
    after = on_move(game, honest_proposer_move(game, truth), T0 + 5)
    assert honest_proposer_move(after, truth) is None and honest_proposer_move(after, truth, T0 + 105) is None
    assert honest_proposer_move(after, truth, T0 + 106) == Timeout()
    assert honest_proposer_move(on_timeout(after, T0 + 106), truth, T0 + 10**6) is None  # over
