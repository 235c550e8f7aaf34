"""The dispute game: k-ary bisection over a batch's transactions, ending in one L1-executed step.

The rules of `contracts/src/DisputeGame.sol` as pure functions over a frozen `Game`, function by
function (`# sol: DisputeGame.<function>` marks each mirror). Every move takes the game, its
arguments and `now` (the L1 block timestamp) and returns the next game, or raises `InvalidMove`
with the code of the custom error the contract would revert with. The rules of each move are
numbered and checked in the contract's order, so both report the same error for the same call.
Time and L1 facts (is the batch still in the chain? what did the one-step prover return?) are
arguments: nothing here reads a clock or a chain. docs/dispute-game.md explains the game.

    game = on_open(n, pre_root, post_root, now, arity=16, clock=1800)
    game = on_bisect(game, roots, now)               # proposer: roots at the inner split points
    game = on_choose(game, part, game.roots, now)    # challenger: the first part it disputes
    game = on_step(game, osp_post_root, now)         # anyone, once the segment is one transaction
    game = on_timeout(game, now)                     # anyone, once the side to move is out of time
    get_winner(game)                                 # Side.PROPOSER, Side.CHALLENGER or None

The honest strategies that play these rules are in `spec/player.py` (rules here, strategy there).

Root(i) is the state root after the first i transactions of the batch: root(0) is the parent
batch's post-state root (agreed), root(n) the batch's post-state root (disputed). The segment
[start, end] always has an agreed `start_root` and a disputed `end_root`.

What the contract does that is not the game's business stays outside: bonds and payouts are
`spec/bonds.py`'s (`process_game_end(ledger, game_id, game.phase)` turns the terminal phase a game
reaches here into the Rollup's credits: CHALLENGER_WON forfeits the batch's bond, shared between
every game open against it; PROPOSER_WON pays the challenger bond to the proposer; CANCELLED — the
batch was discarded meanwhile — returns the challenger bond with the game's share), which batch a
game may open against (`Rollup.registerGame`, `bonds.process_open_game`), and the step's evidence —
the record's proof against the batch's tx root, the witness, the queue entries and the one-step
execution itself. `on_step` receives the root the one-step prover computed (`spec.witness` computes
the same root in Python). Game ids (`GameNotFound`) and senders are replaced by the `Game` value
and a `Side`.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum, StrEnum
from typing import Union

import msgspec

from .constants import HASH_LEN
from .crypto import keccak
from .errors import InvalidInput
from .fields import Hash32
from .tx_tree import MAX_BATCH_TXS

__all__ = [
    "MAX_ARITY",
    "MAX_CLOCK",
    "Bisect",
    "Cancel",
    "Choose",
    "Game",
    "GameError",
    "InvalidMove",
    "Move",
    "Phase",
    "Side",
    "Step",
    "Timeout",
    "compute_split_point",
    "compute_split_points",
    "get_winner",
    "is_over",
    "is_timed_out",
    "max_moves",
    "max_rounds",
    "on_bisect",
    "on_cancel",
    "on_choose",
    "on_move",
    "on_open",
    "on_step",
    "on_timeout",
    "parts_of",
    "roots_hash",
    "time_left",
    "turn",
]

MAX_ARITY = 256  # sol: DisputeGame.MAX_ARITY
MAX_CLOCK = 2**48 - 1  # clocks are uint48 on chain
ZERO_HASH = bytes(32)


class Phase(IntEnum):
    """sol: DisputeGame.Phase (same numbers)."""

    NONE = 0
    BISECT = 1  # the proposer's turn: post the roots at the split points
    CHOOSE = 2  # the challenger's turn: pick a part
    STEP = 3  # the challenger's turn (anyone may step): a one-transaction segment
    CHALLENGER_WON = 4
    PROPOSER_WON = 5
    CANCELLED = 6


class Side(IntEnum):
    """Who sends a move (the contract compares msg.sender with the game's two addresses)."""

    PROPOSER = 0
    CHALLENGER = 1
    ANYONE = 2  # a third party: may only step, timeout and cancel


class GameError(StrEnum):
    """The contract's custom errors a move can revert with; the value is the Solidity name."""

    GAME_OVER = "GameOver"
    NOT_YOUR_TURN = "NotYourTurn"
    CLOCK_EXPIRED = "ClockExpired"
    CLOCK_NOT_EXPIRED = "ClockNotExpired"
    WRONG_ROOT_COUNT = "WrongRootCount"
    ROOTS_MISMATCH = "RootsMismatch"
    INDEX_OUT_OF_RANGE = "IndexOutOfRange"
    BATCH_NOT_LIVE = "BatchNotLive"
    BATCH_STILL_LIVE = "BatchStillLive"
    INVALID_PARAMETER = "InvalidParameter"  # DisputeGame's constructor
    EMPTY_BATCH = "EmptyBatch"  # Rollup.appendBatch: no game can exist over zero transactions
    TOO_MANY_TRANSACTIONS = "TooManyTransactions"  # BatchFraming: more than MAX_BATCH_TXS records


class InvalidMove(InvalidInput):
    """A move the contract would revert. The game is unchanged (moves return a new `Game`).

    `values` are the arguments of the contract's custom error, in its order (for example
    `ClockExpired(spent, left)`): what explains the rejection, the same on both sides."""

    def __init__(self, code: GameError, *values: int | bytes) -> None:
        shown = ", ".join(f"0x{v.hex()}" if isinstance(v, bytes) else str(v) for v in values)
        super().__init__(f"{code.value}({shown})")
        self.code = code
        self.values = values


def require(condition: bool, code: GameError, *values: int | bytes) -> None:
    if not condition:
        raise InvalidMove(code, *values)


class Game(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One game's state: the two-party part of sol: DisputeGame.Game (plus the immutable arity).

    The Solidity struct's batchIndex, batchId, challenger and proposer are who and what the game is
    about, not its rules; `rootsHash` is `roots_hash(game)`: the contract keeps only the hash of the
    last bisect's roots and the challenger resupplies them (they are in the Bisected event).
    """

    tx_count: int  # n: the batch's number of transactions
    arity: int  # k: parts per round (DisputeGame.arity)
    start: int  # the segment's start: root(start) is agreed
    end: int  # the segment's end: root(end) is disputed
    start_root: Hash32
    end_root: Hash32
    phase: Phase  # whose turn it is, or how the game ended
    turn_start: int  # L1 time at which the current turn began (the last move's time)
    proposer_time_left: int  # seconds, not counting the running turn
    challenger_time_left: int
    roots: tuple[Hash32, ...] = ()  # the roots of the last bisect (kept after the choose, like rootsHash)


# --- the bisection rule -------------------------------------------------------------------------------


def parts_of(start: int, end: int, arity: int) -> int:
    """How many parts the segment [start, end] is cut into. # sol: DisputeGame.partsOf"""
    length = end - start
    return length if length < arity else arity


def compute_split_point(start: int, end: int, parts: int, j: int) -> int:
    """Split point j (0 <= j <= parts) of the segment [start, end] cut into `parts` parts:
    p_j = start + (end - start)·j // parts. The one formula the rules (`on_choose`), the players and
    the bindings use. # sol: DisputeGame.splitPoint"""
    return start + (end - start) * j // parts


def compute_split_points(start: int, end: int, arity: int) -> tuple[int, ...]:
    """The points start = p_0 < p_1 < ... < p_parts = end of the segment [start, end], parts =
    min(arity, end - start). The proposer posts the roots at p_1 … p_{parts-1}; part j is
    [p_j, p_{j+1}]."""
    if not (0 <= start < end):
        raise ValueError(f"not a segment: [{start}, {end}]")
    if arity < 2:
        raise ValueError(f"arity {arity} < 2")
    parts = parts_of(start, end, arity)
    return tuple(compute_split_point(start, end, parts, j) for j in range(parts + 1))


def max_rounds(tx_count: int, arity: int) -> int:
    """Bisect/choose rounds a game over `tx_count` transactions takes at most: ceil(log_arity(n)),
    computed in integers (the largest part of [s, e] has ceil((e - s) / parts) transactions)."""
    rounds, reach = 0, 1
    while reach < tx_count:
        reach *= arity
        rounds += 1
    return rounds


def max_moves(tx_count: int, arity: int) -> int:
    """Accepted moves of a game, opening excluded: a bisect and a choose per round, then one step or
    timeout (a game that times out during bisection has fewer)."""
    return 2 * max_rounds(tx_count, arity) + 1


def roots_hash(game: Game) -> bytes:
    """What DisputeGame stores as rootsHash: keccak(abi.encodePacked(roots)), zero before the first bisect."""
    return keccak(b"".join(game.roots)) if game.roots else ZERO_HASH


# --- views --------------------------------------------------------------------------------------------


def is_over(game: Game) -> bool:
    return game.phase >= Phase.CHALLENGER_WON


def turn(game: Game) -> Side | None:
    """The side whose clock runs: the proposer in the bisect phase, the challenger in the choose
    and step phases; None once the game is over."""
    if is_over(game) or game.phase == Phase.NONE:
        return None
    return Side.PROPOSER if game.phase == Phase.BISECT else Side.CHALLENGER


def time_left(game: Game, now: int) -> tuple[int, int]:
    """(proposer, challenger) seconds left at `now`, the running clock included. # sol: DisputeGame.timeLeft"""
    proposer, challenger = game.proposer_time_left, game.challenger_time_left
    if game.phase == Phase.NONE or is_over(game):
        return proposer, challenger
    spent = _elapsed(game, now)
    if game.phase == Phase.BISECT:
        proposer = 0 if spent >= proposer else proposer - spent
    else:
        challenger = 0 if spent >= challenger else challenger - spent
    return proposer, challenger


def is_timed_out(game: Game, now: int) -> bool:
    """Whether the side to move has run out of time at `now` (`on_timeout` succeeds on an active
    game exactly then, and that side's own move fails with ClockExpired)."""
    left = game.proposer_time_left if game.phase == Phase.BISECT else game.challenger_time_left
    return _elapsed(game, now) > left


def get_winner(game: Game) -> Side | None:
    """The side that won, or None while the game runs or if it was cancelled."""
    if game.phase == Phase.CHALLENGER_WON:
        return Side.CHALLENGER
    if game.phase == Phase.PROPOSER_WON:
        return Side.PROPOSER
    return None


# --- internals ----------------------------------------------------------------------------------------


def _elapsed(game: Game, now: int) -> int:
    # L1 time never goes back (the contract's subtraction would panic).
    if now < game.turn_start:
        raise ValueError(f"time went backwards: now {now} < turn start {game.turn_start}")
    return now - game.turn_start


def _require_active(game: Game) -> None:
    """sol: DisputeGame._active (GameNotFound has no counterpart: the caller holds the game)."""
    require(not is_over(game), GameError.GAME_OVER, game.phase)


def _spend(game: Game, left: int, now: int) -> int:
    """Charge the mover for the time since its turn began. # sol: DisputeGame._spend"""
    spent = _elapsed(game, now)
    require(spent <= left, GameError.CLOCK_EXPIRED, spent, left)
    return left - spent


def _resolve(game: Game, challenger_wins: bool, batch_live: bool) -> Game:
    """sol: DisputeGame._resolve — a game whose batch is gone is cancelled instead."""
    if not batch_live:
        return msgspec.structs.replace(game, phase=Phase.CANCELLED)
    return msgspec.structs.replace(game, phase=Phase.CHALLENGER_WON if challenger_wins else Phase.PROPOSER_WON)


def _check_roots(roots: Sequence[bytes]) -> tuple[bytes, ...]:
    # bytes32[] in the ABI: anything else cannot even be sent.
    out = tuple(roots)
    if not all(isinstance(r, bytes) and len(r) == HASH_LEN for r in out):
        raise TypeError(f"roots are {HASH_LEN}-byte values")
    return out


# --- moves --------------------------------------------------------------------------------------------


def on_open(tx_count: int, pre_root: bytes, post_root: bytes, now: int, *, arity: int, clock: int) -> Game:
    """A challenger opens a game against a batch of `tx_count` transactions whose parent's root is
    `pre_root` and whose posted root is `post_root`. # sol: DisputeGame.open

    The bond, the batch's existence, its finality and its challenge window are checked by the
    contract (`WrongBond`) and by Rollup.registerGame before the game exists; they are not rules of
    the game."""
    # 1. The parameters the DisputeGame constructor accepts. # sol: DisputeGame.constructor
    require(2 <= arity <= MAX_ARITY and 1 <= clock <= MAX_CLOCK, GameError.INVALID_PARAMETER)
    # 2. A batch holds 1 … MAX_BATCH_TXS transactions. # sol: Rollup.appendBatch, BatchFraming.txRoot
    require(tx_count >= 1, GameError.EMPTY_BATCH)
    require(tx_count <= MAX_BATCH_TXS, GameError.TOO_MANY_TRANSACTIONS)
    pre_root, post_root = _check_roots((pre_root, post_root))
    # The segment is [0, n]; a one-transaction batch goes straight to the step.
    return Game(
        tx_count=tx_count,
        arity=arity,
        start=0,
        end=tx_count,
        start_root=pre_root,
        end_root=post_root,
        phase=Phase.STEP if tx_count == 1 else Phase.BISECT,
        turn_start=now,
        proposer_time_left=clock,
        challenger_time_left=clock,
    )


def on_bisect(game: Game, roots: Sequence[bytes], now: int, *, by: Side = Side.PROPOSER) -> Game:
    """The proposer posts the roots at the inner split points of the segment. # sol: DisputeGame.bisect"""
    roots = _check_roots(roots)
    # 1. The game is not over.
    _require_active(game)
    # 2. It is the bisect phase and the proposer moves.
    require(game.phase == Phase.BISECT and by == Side.PROPOSER, GameError.NOT_YOUR_TURN, game.phase)
    # 3. The proposer's clock has not run out; it is charged the time since its turn began.
    left = _spend(game, game.proposer_time_left, now)
    # 4. One root per inner split point: parts - 1 of them.
    expected = parts_of(game.start, game.end, game.arity) - 1
    require(len(roots) == expected, GameError.WRONG_ROOT_COUNT, len(roots), expected)
    # The challenger's turn begins.
    return msgspec.structs.replace(game, proposer_time_left=left, turn_start=now, roots=roots, phase=Phase.CHOOSE)


def on_choose(game: Game, part: int, roots: Sequence[bytes], now: int, *, by: Side = Side.CHALLENGER) -> Game:
    """The challenger names the first part (0-based) it disagrees with, resupplying the roots the
    proposer posted: it agrees with the root at the part's start and disputes the one at its end.
    # sol: DisputeGame.choose"""
    roots = _check_roots(roots)
    # 1. The game is not over.
    _require_active(game)
    # 2. It is the choose phase and the challenger moves.
    require(game.phase == Phase.CHOOSE and by == Side.CHALLENGER, GameError.NOT_YOUR_TURN, game.phase)
    # 3. The challenger's clock has not run out; it is charged the time since its turn began.
    left = _spend(game, game.challenger_time_left, now)
    # 4. The roots are those of the last bisect (the contract compares their keccak with rootsHash).
    require(roots == game.roots, GameError.ROOTS_MISMATCH, keccak(b"".join(roots)), roots_hash(game))
    # 5. The part exists (a uint256 on chain: negative values cannot be sent, and are out of range here).
    parts = len(roots) + 1
    require(0 <= part < parts, GameError.INDEX_OUT_OF_RANGE, part, parts)
    new_start = compute_split_point(game.start, game.end, parts, part)
    new_end = compute_split_point(game.start, game.end, parts, part + 1)
    start_root = roots[part - 1] if part != 0 else game.start_root
    end_root = roots[part] if part + 1 != parts else game.end_root
    # The segment becomes the part; a one-transaction part goes to the step (still the challenger's
    # turn, its clock keeps running from now), a longer one back to the proposer.
    return msgspec.structs.replace(
        game,
        challenger_time_left=left,
        turn_start=now,
        start=new_start,
        end=new_end,
        start_root=start_root,
        end_root=end_root,
        phase=Phase.STEP if new_end - new_start == 1 else Phase.BISECT,
    )


def on_step(game: Game, post_root: bytes, now: int, *, batch_live: bool = True) -> Game:
    """Resolve a one-transaction segment [s, s + 1]: `post_root` is what the one-step prover
    returned for transaction s executed from `start_root` (the contract computes it; nobody claims
    it). The challenger wins iff it differs from the proposer's `end_root`. Anyone may step, while
    the challenger's clock runs; the step charges no clock. # sol: DisputeGame.step

    Between rules 4 and the execution the contract checks the step's evidence (BadTxProof,
    MalformedWitness, BadQueueEntry, the prover's own errors); a step that passes them reaches here."""
    (post_root,) = _check_roots((post_root,))
    # 1. The game is not over.
    _require_active(game)
    # 2. The segment is one transaction.
    require(game.phase == Phase.STEP, GameError.NOT_YOUR_TURN, game.phase)
    # 3. The challenger's clock has not run out (not charged: the game ends now).
    spent = _elapsed(game, now)
    require(spent <= game.challenger_time_left, GameError.CLOCK_EXPIRED, spent, game.challenger_time_left)
    # 4. The batch is still in the chain.
    require(batch_live, GameError.BATCH_NOT_LIVE)
    # 5. Resolution: a result other than the proposer's claim proves the claim wrong.
    return _resolve(game, post_root != game.end_root, batch_live)


def on_timeout(game: Game, now: int, *, batch_live: bool = True) -> Game:
    """End a game whose side to move has run out of time: the other side wins (a game whose batch
    is gone is cancelled instead). Anyone may call it. # sol: DisputeGame.timeout"""
    # 1. The game is not over.
    _require_active(game)
    # 2. The side to move has spent strictly more than what it had left (at exactly its time left
    #    it may still move, so the two never overlap).
    left = game.proposer_time_left if game.phase == Phase.BISECT else game.challenger_time_left
    require(is_timed_out(game, now), GameError.CLOCK_NOT_EXPIRED, _elapsed(game, now), left)
    proposer_turn = game.phase == Phase.BISECT
    # 3. Resolution: the proposer ran out -> the challenger wins, and vice versa.
    return _resolve(game, proposer_turn, batch_live)


def on_cancel(game: Game, *, batch_live: bool) -> Game:
    """Void a game whose batch was discarded meanwhile (by another game, or because an earlier batch
    was rejected); the challenger's bond is returned. Anyone may call it. # sol: DisputeGame.cancel"""
    # 1. The game is not over.
    _require_active(game)
    # 2. Its batch is no longer in the chain.
    require(not batch_live, GameError.BATCH_STILL_LIVE)
    return msgspec.structs.replace(game, phase=Phase.CANCELLED)


# --- moves as values ------------------------------------------------------------------------------------


class Bisect(msgspec.Struct, frozen=True, tag=True):
    roots: tuple[Hash32, ...]
    by: Side = Side.PROPOSER


class Choose(msgspec.Struct, frozen=True, tag=True):
    part: int
    roots: tuple[Hash32, ...]
    by: Side = Side.CHALLENGER


class Step(msgspec.Struct, frozen=True, tag=True):
    post_root: Hash32  # the one-step prover's result (an L1 fact, not the sender's claim)


class Timeout(msgspec.Struct, frozen=True, tag=True):
    pass


class Cancel(msgspec.Struct, frozen=True, tag=True):
    pass


Move = Union[Bisect, Choose, Step, Timeout, Cancel]


def on_move(game: Game, move: Move, now: int, *, batch_live: bool = True) -> Game:
    """Apply any move: `now` is the L1 time of the block that includes it, `batch_live` whether the
    game's batch is still in the chain then."""
    kind = type(move)
    if kind is Bisect:
        return on_bisect(game, move.roots, now, by=move.by)
    if kind is Choose:
        return on_choose(game, move.part, move.roots, now, by=move.by)
    if kind is Step:
        return on_step(game, move.post_root, now, batch_live=batch_live)
    if kind is Timeout:
        return on_timeout(game, now, batch_live=batch_live)
    if kind is Cancel:
        return on_cancel(game, batch_live=batch_live)
    raise TypeError(f"not a move: {move!r}")
