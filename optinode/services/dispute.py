"""The dispute player, for both roles: the challenger in a verifier, the defender in the sequencer.

    player = Player(deps, roots=…, step_input=…, targets=…)   # what each role knows about batches
    player.load(follower.stored_events())                      # its memory: the game contract + the store
    await run(player, heads)                                   # acts once per L1 head

Strategy is `spec/player.py`'s (pure: the move to make now, given the game as the contract holds it
and the player's own roots); this module reads the game (``getGame`` + the last ``Bisected`` roots
from the follower's stored events), asks the strategy, and sends the move with the L1 sender. It
keeps no state of its own that is not on L1 or in the store: after a crash `load` rebuilds it, and
the sender's records (one logical item per game, move number and kind) mean a move is never sent
twice, a reverted one is retried under the next attempt number.

- **Challenger**: ``targets()`` names the batches to challenge (the verifier's first invalid live
  batch, inside its window); a game is opened on each with the challenger bond unless this key
  already has one on that batch. In its games it chooses the first part it disagrees with, steps a
  one-transaction segment with the witness from its checkpoint, and claims the proposer's timeout.
- **Defender**: in games against this key's batches it posts its roots at the split points and
  claims the challenger's timeout; an honest batch can only be upheld by the step.

Alerts are structured log lines (`optinode.logs.alert`, docs/verifier.md "Alerts"): ``game_opened``
(seen on L1, live), ``game_move`` (each move sent), ``game_won`` / ``game_lost`` / ``game_cancelled``,
and ``clock_low`` once per turn when our clock is below ``clock_warning`` seconds; each also moves a
counter in ``deps.metrics``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import eth_abi
import trio

from optinode.l1 import events
from optinode.l1.follower import Head, Reorg
from optinode.l1.rpc import RpcClient, RpcError, hexbytes
from optinode.l1.sender import Sender, SendRejected
from optinode.logs import alert
from optinode.metrics import NodeMetrics
from optinode.spec.crypto import keccak
from optinode.spec.game import Bisect, Cancel, Choose, Game, Phase, Side, Step, Timeout, is_over, time_left, turn
from optinode.spec.player import honest_challenger_move, honest_proposer_move

__all__ = ["GAME_TUPLE", "KnownGame", "OnChainGame", "Player", "PlayerDeps", "StepInput", "read_game", "run", "track"]

log = logging.getLogger("optinode.services.dispute")

OPEN_ITEM = 1 << 48  # sender items: opening a game on batch id b is OPEN_ITEM + 16 b + attempt
MOVE_ITEM = 1 << 56  # a move: MOVE_ITEM + (game << 16) + (move number << 6) + (kind << 3) + attempt
ATTEMPTS = 8
GAME_TUPLE = "(uint64,uint64,uint64,uint64,address,uint64,uint8,address,uint48,uint48,bytes32,bytes32,bytes32)"
ENTRIES_TUPLE = "(address,uint256,address,uint256,uint256)"


def _selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


OPEN = _selector("open(uint256)")
BISECT = _selector("bisect(uint256,bytes32[])")
CHOOSE = _selector("choose(uint256,bytes32[],uint256)")
STEP = _selector(f"step(uint256,bytes,bytes32[],bytes,{ENTRIES_TUPLE})")
TIMEOUT = _selector("timeout(uint256)")
CANCEL = _selector("cancel(uint256)")
GET_GAME = _selector("getGame(uint256)")
_KIND = {Bisect: 1, Choose: 2, Step: 3, Timeout: 4, Cancel: 5}


@dataclass(frozen=True)
class StepInput:
    """What DisputeGame.step takes besides the game id."""

    record: bytes
    tx_proof: Sequence[bytes]
    witness: bytes  # abi-encoded (osp.encode_witness)
    entries: tuple[bytes, int, bytes, int, int]  # deposit owner, amount, forced requester, account id, amount


@dataclass
class OnChainGame:
    game_id: int
    batch_index: int
    batch_id: int
    challenger: bytes
    proposer: bytes
    game: Game


@dataclass
class PlayerDeps:
    rpc: RpcClient
    sender: Sender
    game_address: bytes
    arity: int
    challenger_bond: int
    clock_warning: int = 20  # seconds left on our clock before a warning
    metrics: NodeMetrics = field(default_factory=NodeMetrics)


async def read_game(rpc: RpcClient, game_address: bytes, game_id: int, tx_count: int, arity: int, roots: tuple[bytes, ...]) -> OnChainGame:
    data = await rpc.eth_call({"to": hexbytes(game_address), "data": hexbytes(GET_GAME + eth_abi.encode(["uint256"], [game_id]))})
    (g,) = eth_abi.decode([GAME_TUPLE], data)
    batch_index, batch_id, start, end, challenger, turn_start, phase, proposer, p_left, c_left, start_root, end_root, _ = g
    game = Game(tx_count=tx_count, arity=arity, start=start, end=end, start_root=start_root, end_root=end_root, phase=Phase(phase),
                turn_start=turn_start, proposer_time_left=p_left, challenger_time_left=c_left, roots=roots)
    return OnChainGame(game_id, batch_index, batch_id, bytes.fromhex(challenger[2:]), bytes.fromhex(proposer[2:]), game)


@dataclass
class KnownGame:
    """A game as the follower's events describe it (what `read_game` needs besides the contract)."""

    opened: Any  # GameOpened
    roots: tuple[bytes, ...] = ()  # of the last Bisected
    moves: int = 0  # Bisected + Chosen seen
    resolved: int | None = None  # GameResolved.outcome
    discarded: bool = False  # its batch was discarded (another game won): cancel it for the bond and share


def track(games: dict[int, KnownGame], event: Any, keep: Callable[[Any], bool]) -> KnownGame | None:
    """Apply one follower event to ``games`` (the games ``keep(GameOpened)`` selects); returns the
    entry a GameOpened just added. The player (its own games) and the watchtower (everyone else's,
    `game_watch`) keep their books with it."""
    if isinstance(event, events.GameOpened):
        if event.game_id not in games and keep(event):
            known = games[event.game_id] = KnownGame(event)
            return known
    elif isinstance(event, events.Bisected) and event.game_id in games:
        known = games[event.game_id]
        known.roots, known.moves = tuple(event.roots), known.moves + 1
    elif isinstance(event, events.Chosen) and event.game_id in games:
        games[event.game_id].moves += 1
    elif isinstance(event, events.GameResolved) and event.game_id in games:
        games[event.game_id].resolved = event.outcome
    elif isinstance(event, events.BatchesDiscarded):
        for known in games.values():
            if known.opened.batch_index >= event.from_index and known.resolved is None:
                known.discarded = True
    return None


@dataclass
class Player:
    deps: PlayerDeps
    # batch index -> my roots after every transaction (None: I have no view of that batch)
    roots: Callable[[int], Any]  # -> Sequence[bytes] | None, or an awaitable of it
    # (batch index, tx index) -> the one-step proof input (challenger); None for a defender
    step_input: Callable[[int, int], StepInput] | None = None
    # [(batch index, batch id)] to challenge now (challenger); None for a defender
    targets: Callable[[], list[tuple[int, int]]] | None = None
    # the follower's stored events (the player's memory, re-read after a reorg)
    stored: Callable[[], Iterable[Any]] = tuple
    games: dict[int, KnownGame] = field(default_factory=dict)
    last_seen: dict[int, OnChainGame] = field(default_factory=dict)  # for the status surface
    _reported: set[int] = field(default_factory=set)
    _clock_warned: set[tuple[int, int]] = field(default_factory=set)  # (game, moves): once per turn
    _started: bool = False

    def __post_init__(self) -> None:
        self.deps.metrics.open_games.set_function(lambda: sum(1 for k in self.games.values() if k.resolved is None))

    @property
    def me(self) -> bytes:
        return self.deps.sender.address

    # --- memory -------------------------------------------------------------------------------------

    def load(self, stored: Iterable[Any]) -> None:
        self.games = {}
        for event in stored:
            self.note(event)
        if not self._started:  # games that ended before this process started were reported by the one before
            self._started = True
            self._reported |= {game_id for game_id, known in self.games.items() if known.resolved is not None}

    def note(self, event: Any, *, live: bool = False) -> None:
        """Remember a game event; ``live``: it just arrived from the follower (alerts and counters)."""
        opened = track(self.games, event, self.plays)
        if opened is not None and live:
            event = opened.opened
            role = "challenger" if event.challenger == self.me else "proposer"
            self.deps.metrics.games_opened.labels(role).inc()
            alert(log, "game_opened", game=event.game_id, batch=event.batch_index, role=role,
                  challenger=event.challenger, proposer=event.proposer)

    def plays(self, opened: Any) -> bool:
        """Whether this key is a party to the game ``opened`` (a GameOpened) announces."""
        return self.me in (opened.challenger, opened.proposer)

    # --- acting -------------------------------------------------------------------------------------

    async def _send(self, base: int, label: str, data: bytes, value: int = 0) -> bool:
        sender = self.deps.sender
        for attempt in range(ATTEMPTS):
            record = sender.record(base + attempt)
            if record is None:
                break
            if record.status != "reverted":
                return False  # sent already: its event will tell
        else:
            log.error("%s: %d attempts reverted; giving up", label, ATTEMPTS)
            return False
        try:
            await sender.submit(item=base + attempt, to=self.deps.game_address, data=data, value=value, label=label)
        except SendRejected as error:
            log.info("%s not accepted yet (%s); retrying at the next head", label, error)
            return False
        return True

    async def open_games(self) -> None:
        if self.targets is None:
            return
        mine = {k.opened.batch_id for k in self.games.values() if k.opened.challenger == self.me}
        for index, batch_id in self.targets():
            if batch_id in mine:
                continue
            data = OPEN + eth_abi.encode(["uint256"], [index])
            if await self._send(OPEN_ITEM + 16 * batch_id, f"open game on batch {index}", data, self.deps.challenger_bond):
                alert(log, "game_opening", batch=index, batch_id=batch_id, bond=self.deps.challenger_bond)

    async def act(self, head: Head) -> None:
        await self.open_games()
        for game_id, known in list(self.games.items()):
            if known.resolved is not None:
                self._report_end(game_id, known)
                continue
            try:
                await self._play(game_id, known, head.timestamp)
            except (LookupError, RpcError) as error:
                log.error("game %d: cannot play now (%s); retrying at the next head", game_id, error)

    def _report_end(self, game_id: int, known: KnownGame) -> None:
        if game_id in self._reported:
            return
        self._reported.add(game_id)
        outcome = Phase(known.resolved) if known.resolved is not None else None
        mine = Phase.CHALLENGER_WON if known.opened.challenger == self.me else Phase.PROPOSER_WON
        verdict = "won" if outcome == mine else "cancelled" if outcome == Phase.CANCELLED else "lost"
        self.deps.metrics.games_resolved.labels(verdict).inc()
        alert(log, f"game_{verdict}", level=logging.WARNING if verdict == "lost" else logging.INFO, game=game_id,
              batch=known.opened.batch_index, outcome=outcome.name if outcome else "?")

    async def _play(self, game_id: int, known: KnownGame, now: int) -> None:
        opened = known.opened
        onchain = await read_game(self.deps.rpc, self.deps.game_address, game_id, opened.tx_count, self.deps.arity, known.roots)
        game = onchain.game
        self.last_seen[game_id] = onchain
        if is_over(game):
            known.resolved = int(game.phase)
            self._report_end(game_id, known)
            return
        side = Side.CHALLENGER if onchain.challenger == self.me else Side.PROPOSER
        if known.discarded:
            data = CANCEL + eth_abi.encode(["uint256"], [game_id])
            if await self._send(MOVE_ITEM + (game_id << 16) + (known.moves << 6) + (_KIND[Cancel] << 3), f"cancel game {game_id}", data):
                self.deps.metrics.game_moves.labels(side.name.lower(), "cancel").inc()
                alert(log, "game_move", level=logging.INFO, game=game_id, batch=onchain.batch_index, side=side.name, move="Cancel",
                      why="its batch was discarded")
            return
        true_roots = self.roots(onchain.batch_index)
        if inspect.isawaitable(true_roots):
            true_roots = await true_roots
        if true_roots is None:
            log.error("game %d: no view of batch %d to play from", game_id, onchain.batch_index)
            return
        if turn(game) == side:
            left = time_left(game, max(now, game.turn_start))[0 if side == Side.PROPOSER else 1]
            if left < self.deps.clock_warning and (game_id, known.moves) not in self._clock_warned:
                self._clock_warned.add((game_id, known.moves))
                self.deps.metrics.clock_low.inc()
                alert(log, "clock_low", game=game_id, batch=onchain.batch_index, side=side.name, left=left,
                      threshold=self.deps.clock_warning)
        strategy = honest_challenger_move if side == Side.CHALLENGER else honest_proposer_move
        move = strategy(game, true_roots, max(now, game.turn_start))
        if move is None:
            return
        base = MOVE_ITEM + (game_id << 16) + (known.moves << 6) + (_KIND[type(move)] << 3)
        label = f"game {game_id} {type(move).__name__.lower()} [{game.start},{game.end}]"
        if isinstance(move, Bisect):
            data = BISECT + eth_abi.encode(["uint256", "bytes32[]"], [game_id, list(move.roots)])
        elif isinstance(move, Choose):
            data = CHOOSE + eth_abi.encode(["uint256", "bytes32[]", "uint256"], [game_id, list(move.roots), move.part])
        elif isinstance(move, Step):
            if self.step_input is None:
                return
            s = self.step_input(onchain.batch_index, game.start)
            data = STEP + eth_abi.encode(["uint256", "bytes", "bytes32[]", "bytes", ENTRIES_TUPLE],
                                         [game_id, s.record, list(s.tx_proof), s.witness, s.entries])
        else:
            data = TIMEOUT + eth_abi.encode(["uint256"], [game_id])
        if await self._send(base, label, data):
            self.deps.metrics.game_moves.labels(side.name.lower(), type(move).__name__.lower()).inc()
            alert(log, "game_move", level=logging.INFO, game=game_id, batch=onchain.batch_index, side=side.name,
                  move=type(move).__name__, segment=[game.start, game.end])


async def run(player: Player, inbox: trio.MemoryReceiveChannel[Any], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The player as a service: its inbox carries the follower's game events, heads and reorgs."""
    task_status.started()
    async with inbox:
        async for message in inbox:
            if isinstance(message, Head):
                await player.act(message)
            elif isinstance(message, Reorg):
                player.load(player.stored())  # the follower's store already holds the chain as it is now
            else:
                player.note(message, live=True)
