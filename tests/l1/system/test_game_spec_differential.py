"""DisputeGame.sol against optinode.spec.game, move by move, on anvil (MockOneStepProver).

Random games — one or two challengers per batch, played interleaved, by truthful, lying and random
players, sent by the right side or the wrong one, on time or after a clock ran out, with valid and
invalid roots and parts, steps, timeouts and cancels — are sent to the contract and applied to the
spec. Every attempt is first run as an `eth_call` on the pending block with its timestamp pinned
(`evm_setNextBlockTimestamp`): if the spec raises `InvalidMove(code, *values)` the contract must
revert with the error named `code` carrying the same arguments (the batch's index and id, which
the spec's game does not hold, excepted); otherwise the transaction is mined at exactly that timestamp and the
contract's game (segment, roots, phase, turn start, both clocks, rootsHash) must equal the spec's.
The L1 facts the spec takes as arguments come from the chain: `now` is the block's timestamp,
`batch_live` is `Rollup.isLive`, and a step's post-root is what the prover returns.

The bond flows follow `optinode.spec.bonds`: every append, open and game end (the terminal phase
the spec's game reached) is applied to a `bonds.Ledger` too, and after every move each bond
(state, share per game), each party's credit, the burned total and the ETH each contract holds
must equal the ledger's. After the last round every discarded bond is forfeited and every credit
withdrawn through both, and the contracts are left holding exactly the bonds still posted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from optinode.l1.contracts import System, error_args, error_name, tx_proof
from optinode.spec import bonds
from optinode.spec import game as spec
from optinode.spec.player import choose_first_disagreement
from optinode.spec.crypto import keccak

from .support import EMPTY_WITNESS, Books, MockBatch, latest_time, mock_l1, pending_revert, pin_time, post_mock_batch

RECORDS = [bytes((0x04,)) if i % 3 else bytes((0x01, i % 100)) for i in range(300)]
GAS = 3_000_000
CASES = [(0, 2), (1, 3), (2, 16), (3, 5), (4, 256), (5, 4), (6, 7), (7, 16)]  # (seed, arity)


def garbage(*parts: int) -> bytes:
    return keccak(b"differential" + b"".join(p.to_bytes(8, "big") for p in parts))


@dataclass
class Live:
    """A game as both sides see it: its id on chain, its spec value and the players' views."""

    gid: int
    challenger: str
    game: spec.Game
    proposer_view: Any  # i -> the root the proposer posts at i
    challenger_view: Any  # i -> the root the challenger believes at i


# errors whose arguments name the batch (index, id): the spec's game is not about a batch index
BATCH_ERRORS = {"BatchNotLive", "BatchStillLive"}


def revert_of(fn: Any, sender: str) -> tuple[str, tuple] | None:
    """None if the call succeeds on the pending block, else the custom error's name and arguments."""
    raw = pending_revert(fn, sender)
    if raw is None:
        return None
    name = error_name(raw) or f"unknown: 0x{raw.hex()}"
    return (name, () if name in BATCH_ERRORS else error_args(raw))


def assert_same(system: System, live: Live) -> None:
    g = system.game_state(live.gid)
    s = live.game
    names = ("start", "end", "phase", "startRoot", "endRoot", "turnStart", "proposerTimeLeft", "challengerTimeLeft")
    values = (s.start, s.end, int(s.phase), s.start_root, s.end_root, s.turn_start, s.proposer_time_left, s.challenger_time_left)
    assert tuple(g[k] for k in names) == values
    assert g["rootsHash"] == spec.roots_hash(s)
    now = latest_time(system)
    if now >= s.turn_start:
        assert tuple(system.game.functions.timeLeft(live.gid).call()) == spec.time_left(s, now)


def attempt(system: System, live: Live, move: spec.Move, fn: Any, sender: str, now: int, batch_index: int, batch_id: int) -> str:
    """Send `move` to both; returns the spec's outcome ("ok" or the error name)."""
    batch_live = system.rollup.functions.isLive(batch_index, batch_id).call()
    try:
        after = spec.on_move(live.game, move, now, batch_live=batch_live)
        expected = None
    except spec.InvalidMove as exc:
        expected = (exc.code.value, tuple(exc.values))
    pin_time(system, now)
    assert revert_of(fn, sender) == expected, (move, sender, now, live.game)
    if expected is not None:
        return expected[0]
    pin_time(system, now)
    receipt = system.w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": GAS}))
    assert receipt["status"] == 1
    assert system.w3.eth.get_block(receipt["blockNumber"])["timestamp"] == now
    live.game = after
    assert_same(system, live)
    return "ok"


def pick_move(
    rng: random.Random, system: System, live: Live, batch: MockBatch, batch_time: int, users: list[str], proposer: str
) -> tuple[spec.Move, Any, str]:
    """A move for the game's phase, usually well-formed and from the right side, sometimes not."""
    game = live.game
    kind = rng.choices(["phase", "bisect", "choose", "step", "timeout", "cancel"], [12, 1, 1, 1, 2, 1])[0]
    if kind == "phase":
        kind = {spec.Phase.BISECT: "bisect", spec.Phase.CHOOSE: "choose", spec.Phase.STEP: "step"}.get(game.phase, "timeout")
    sides = {spec.Side.PROPOSER: proposer, spec.Side.CHALLENGER: live.challenger, spec.Side.ANYONE: users[0]}
    if kind == "bisect":
        by = spec.Side.PROPOSER if rng.random() < 0.85 else rng.choice([spec.Side.CHALLENGER, spec.Side.ANYONE])
        count = spec.parts_of(game.start, game.end, game.arity) - 1 if game.end > game.start else 0
        if game.end - game.start > 1:
            points = spec.compute_split_points(game.start, game.end, game.arity)
            roots = [live.proposer_view(p) for p in points[1:-1]]
        else:
            roots = []
        if rng.random() < 0.1:
            roots = roots[:-1] if roots and rng.random() < 0.5 else roots + [garbage(count)]
        return spec.Bisect(tuple(roots), by), system.game.functions.bisect(live.gid, roots), sides[by]
    if kind == "choose":
        by = spec.Side.CHALLENGER if rng.random() < 0.85 else rng.choice([spec.Side.PROPOSER, spec.Side.ANYONE])
        roots = list(game.roots)
        if rng.random() < 0.1:
            roots = roots[::-1] if len(roots) > 1 else roots + [garbage(9)]
        if game.phase == spec.Phase.CHOOSE and rng.random() < 0.7:
            points = spec.compute_split_points(game.start, game.end, game.arity)
            part = choose_first_disagreement(points, game.roots, live.challenger_view)
        else:
            part = rng.randint(0, len(roots) + 1)
        return spec.Choose(part, tuple(roots), by), system.game.functions.choose(live.gid, roots, part), sides[by]
    sender = rng.choice(list(sides.values()))
    if kind == "step":
        k = min(game.start, len(batch.records) - 1)
        record, proof = batch.records[k], tx_proof(batch.records, k)
        l1 = mock_l1(batch_time)
        # the post-root is an L1 fact: what the prover returns from the agreed root
        post_root = system.prover.functions.executeOneStep(game.start_root, record, l1, EMPTY_WITNESS).call()[0]
        fn = system.game.functions.step(live.gid, record, proof, EMPTY_WITNESS, ("0x" + "00" * 20, 0, "0x" + "00" * 20, 0, 0))
        return spec.Step(post_root), fn, sender
    if kind == "timeout":
        return spec.Timeout(), system.game.functions.timeout(live.gid), sender
    return spec.Cancel(), system.game.functions.cancel(live.gid), sender


@pytest.mark.parametrize(("seed", "arity"), CASES)
def test_contract_and_spec_agree_on_random_games(make_system, proposer, challenger, challenger2, users, seed, arity) -> None:
    rng = random.Random(seed)
    clock = rng.choice([30, 600, 1800])
    system = make_system(arity=arity, clock=clock)
    p = system.params
    books = Books.open(system, [proposer, challenger, challenger2, users[0]])
    outcomes: dict[str, int] = {}
    for round_ in range(3):
        n = rng.choice([1, 2, 3, 17, 40, 130, 300])
        valid = rng.random() < 0.5
        batch = post_mock_batch(system, proposer, RECORDS[:n], valid=valid, tag=f"{seed}-{round_}")
        books.ledger, index = bonds.process_append(books.ledger, proposer, value=p.proposer_bond)
        assert index == batch.index
        batch_id, batch_time = system.batch(batch.index)["id"], system.batch(batch.index)["timestamp"]
        truth = batch.true_roots.__getitem__
        lie_from = rng.randint(1, n)
        liar = lambda i, m=lie_from: batch.true_roots[i] if i < m else garbage(seed, i)  # noqa: E731
        troll = lambda i, m=rng.randint(1, n): batch.true_roots[i] if i < m else garbage(seed, i, 1)  # noqa: E731
        games: list[Live] = []
        for who in [challenger, challenger2][: rng.randint(1, 2)]:
            now = latest_time(system) + rng.randint(1, 5)
            pin_time(system, now)
            gid = system.open_game(who, batch.index)
            books.ledger, ledger_gid = bonds.process_open_game(books.ledger, batch.index, who, value=p.challenger_bond, window_open=True)
            assert ledger_gid == gid
            game = spec.on_open(n, batch.true_roots[0], batch.posted_root, now, arity=arity, clock=clock)
            live = Live(gid, who, game, truth if valid else liar, troll if valid else truth)
            assert_same(system, live)
            games.append(live)
        for _ in range(120):
            running = [g for g in games if spec.get_winner(g.game) is None and g.game.phase != spec.Phase.CANCELLED]
            live = rng.choice(running or games)
            game = live.game
            if running:
                left = game.proposer_time_left if game.phase == spec.Phase.BISECT else game.challenger_time_left
                r = rng.random()  # on time, exactly at the deadline (still on time), or late
                now = game.turn_start + (left if r < 0.1 else left + rng.randint(1, 3) if r < 0.22 else rng.randint(0, left // 3))
            else:
                now = latest_time(system)
            now = max(now, latest_time(system) + 1)
            move, fn, sender = pick_move(rng, system, live, batch, batch_time, users, proposer)
            was_over = spec.is_over(live.game)
            outcome = attempt(system, live, move, fn, sender, now, batch.index, batch_id)
            if spec.is_over(live.game) and not was_over:
                books.ledger = bonds.process_game_end(books.ledger, live.gid, live.game.phase)
            books.check()
            key = f"{type(move).__name__}:{outcome}"
            outcomes[key] = outcomes.get(key, 0) + 1
            if not running:
                break
        assert all(spec.is_over(g.game) for g in games), [g.game for g in games]
    books.settle(users[0])
    # every game is over: what the Rollup still holds is the bonds of the batches still pending
    assert bonds.get_credits_owed(books.ledger) == bonds.get_reserved_shares(books.ledger) == 0
    assert system.w3.eth.get_balance(system.rollup.address) == bonds.get_bonds_outstanding(books.ledger)
    # the run exercised accepted moves of every kind and several rejections
    assert {"Bisect:ok", "Choose:ok"} <= outcomes.keys(), outcomes
    assert any(k.endswith(":ok") and k.startswith(("Step", "Timeout")) for k in outcomes), outcomes
    assert sum(v for k, v in outcomes.items() if not k.endswith(":ok")) >= 3, outcomes
