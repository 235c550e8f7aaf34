"""Bonds and credits: where every wei of the proposer and challenger bonds goes.

The bond ledger of `contracts/src/Rollup.sol` (with the challenger bonds `DisputeGame.sol` holds
while a game runs) as pure functions over a frozen `Ledger`, function by function
(`# sol: Rollup.<function>` marks each mirror). Each `process_*` takes the ledger, its arguments
and the L1 facts it depends on (is the challenge window over? is the rollup frozen?) and returns
the next ledger, or raises `BondRuleError` with the name of the custom error the contract reverts
with. docs/contracts.md (Bonds) and docs/dispute-game.md explain the rules; `spec.game` decides
how a game ends, and `process_game_end` turns that outcome into bond flows.

    ledger = genesis_ledger(BondParams(proposer_bond, challenger_bond, slash_reward_bps))
    ledger, index = process_append(ledger, proposer, value=proposer_bond)
    ledger, game_id = process_open_game(ledger, index, challenger, value=challenger_bond, window_open=True)
    ledger = process_game_end(ledger, game_id, game.phase)      # a spec.game outcome
    ledger = process_forfeit_bond(ledger, batch_id)             # a discarded successor, by anyone
    ledger, released = process_release_frozen_bonds(ledger, max_count, frozen=True)
    ledger, amount = process_withdraw(ledger, who)

The rules, in one place:

- Posting a batch locks `proposer_bond`; opening a game locks `challenger_bond` (in DisputeGame).
- A batch that finalizes returns its bond to its proposer (`RETURNED`).
- A batch that is discarded — rejected by a game its challenger won, or a later batch discarded
  with it — has its bond `FORFEITED`, whoever posted it: `slash_reward_bps` of it is split equally
  between the games that were open against that batch when it was discarded (whichever of them won
  first), and the rest, rounding dust included, is burned (`compute_forfeit`). Nothing of a
  discarded bond ever returns to a proposer key.
- A game the challenger wins returns its challenger bond (and pays its share); a game the
  proposer wins pays the challenger bond to the proposer; a game whose batch was discarded
  meanwhile is void and returns its challenger bond with its share.
- Once the rollup is frozen no batch finalizes and no game opens; the bonds of the batches still
  pending are sent to the Bridge for the escaping users (`ESCAPED`), from the top of the chain down,
  each once no game against it is open (`process_release_frozen_bonds`).
- Every payment is a credit, withdrawn by its owner.

Invariant (tests/l1/system/test_bond_conservation.py): the ETH the two contracts hold equals
`get_held(ledger)`, the bonds outstanding plus the credits owed, after every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum

import msgspec

from .errors import InvalidInput
from .game import Phase

__all__ = [
    "BPS",
    "Bond",
    "BondError",
    "BondParams",
    "BondRuleError",
    "BondState",
    "GameStake",
    "Ledger",
    "Slot",
    "compute_forfeit",
    "genesis_ledger",
    "get_bonds_outstanding",
    "get_credits_owed",
    "get_game_held",
    "get_held",
    "get_reserved_shares",
    "get_rollup_held",
    "is_live",
    "process_append",
    "process_finalize",
    "process_forfeit_bond",
    "process_game_end",
    "process_open_game",
    "process_release_frozen_bonds",
    "process_withdraw",
]

BPS = 10_000  # sol: Rollup.BPS


class BondState(IntEnum):
    """sol: Rollup.BondState (same numbers). POSTED ends in exactly one of RETURNED, FORFEITED or
    ESCAPED."""

    NONE = 0
    POSTED = 1
    RETURNED = 2  # the batch finalized: the bond was credited back to its proposer
    FORFEITED = 3  # the batch was discarded: shared between its games, the rest burned
    ESCAPED = 4  # the batch was pending at a freeze: sent to the Bridge for the escaping users (spec.escape)


class BondError(StrEnum):
    """The contracts' custom errors a bond rule reverts with; the value is the Solidity name."""

    WRONG_BOND = "WrongBond"
    ROLLUP_FROZEN = "RollupFrozen"
    BATCH_NOT_FOUND = "BatchNotFound"
    BATCH_ALREADY_FINAL = "BatchAlreadyFinal"
    NOT_NEXT_TO_FINALIZE = "NotNextToFinalize"
    CHALLENGE_WINDOW_OPEN = "ChallengeWindowOpen"
    CHALLENGE_WINDOW_CLOSED = "ChallengeWindowClosed"
    GAME_OPEN = "GameOpen"
    BOND_NOT_FORFEITABLE = "BondNotForfeitable"
    NOTHING_TO_WITHDRAW = "NothingToWithdraw"
    NOT_FROZEN = "NotFrozen"
    GAMES_OPEN = "GamesOpen"


class BondRuleError(InvalidInput):
    """A call the contract would revert; the ledger is unchanged (processes return a new one)."""

    def __init__(self, code: BondError, detail: str = "") -> None:
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code
        self.detail = detail


def require(condition: bool, code: BondError, detail: str = "") -> None:
    if not condition:
        raise BondRuleError(code, detail)


class BondParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The immutable parameters: Rollup.proposerBond, DisputeGame.challengerBond, Rollup.slashRewardBps."""

    proposer_bond: int
    challenger_bond: int
    slash_reward_bps: int  # < BPS (the Rollup constructor's rule): self-challenge never pays


class Slot(msgspec.Struct, frozen=True):
    """What Rollup._batches[index] holds that bonds depend on: the last batch appended at that index
    (it stays after a discard until the index is reused) and the games open against it."""

    batch_id: int
    open_games: int = 0


class Bond(msgspec.Struct, frozen=True):
    """sol: Rollup.Bond, by batch id."""

    proposer: str
    batch_index: int
    state: BondState
    reward_per_game: int = 0  # set when forfeited


class GameStake(msgspec.Struct, frozen=True):
    """A challenger bond DisputeGame holds while the game runs (its Game's who-and-what fields)."""

    batch_index: int
    batch_id: int
    challenger: str
    proposer: str
    open: bool = True


class Ledger(msgspec.Struct, frozen=True):
    """The bond-relevant state of Rollup and DisputeGame. Treat the mappings as read-only: every
    `process_*` returns a new ledger."""

    params: BondParams
    slots: tuple[Slot, ...]  # by index; slot 0 is genesis (id 0, no bond)
    batch_count: int  # batches [0, batch_count) are live
    finalized_count: int  # batches [0, finalized_count) are final
    next_id: int
    bonds: Mapping[int, Bond]  # by batch id
    games: tuple[GameStake, ...]  # by game id
    credits: Mapping[str, int]
    burned: int = 0  # wei sent to the burn address
    escaped: int = 0  # wei sent to the Bridge for the escaping users (bonds pending at a freeze)


def genesis_ledger(params: BondParams) -> Ledger:
    """sol: Rollup.constructor (batch 0 final, no bond) and an empty DisputeGame."""
    if not (0 <= params.slash_reward_bps < BPS):
        raise ValueError(f"slash_reward_bps {params.slash_reward_bps} not in [0, {BPS})")
    return Ledger(params, (Slot(0),), batch_count=1, finalized_count=1, next_id=1, bonds={}, games=(), credits={})


# --- views --------------------------------------------------------------------------------------------


def is_live(ledger: Ledger, index: int, batch_id: int) -> bool:
    """Whether batch `index` is in the chain and still the one with `batch_id`. # sol: Rollup.isLive"""
    return index < ledger.batch_count and ledger.slots[index].batch_id == batch_id


def compute_forfeit(params: BondParams, games: int) -> tuple[int, int]:
    """(reward per game, burned) of a forfeited bond whose batch had `games` games open against it
    when it was discarded. The reward is split equally; the rest, rounding dust included, burns.
    # sol: Rollup._forfeit"""
    per_game = params.proposer_bond * params.slash_reward_bps // BPS // games if games else 0
    return per_game, params.proposer_bond - per_game * games


def get_reserved_shares(ledger: Ledger) -> int:
    """Shares of forfeited bonds kept for games still running against the discarded batch (each
    is credited when its game is voided)."""
    return sum(
        ledger.bonds[g.batch_id].reward_per_game
        for g in ledger.games
        if g.open and ledger.bonds[g.batch_id].state == BondState.FORFEITED
    )


def get_bonds_outstanding(ledger: Ledger) -> int:
    """Wei locked in bonds not yet settled: posted proposer bonds, the shares reserved for running
    games, and those games' challenger bonds."""
    stakes = sum(1 for g in ledger.games if g.open)
    return _posted(ledger) + get_reserved_shares(ledger) + stakes * ledger.params.challenger_bond


def get_credits_owed(ledger: Ledger) -> int:
    return sum(ledger.credits.values())


def get_rollup_held(ledger: Ledger) -> int:
    """What the Rollup must hold: the posted proposer bonds, the reserved shares and every credit."""
    return _posted(ledger) + get_reserved_shares(ledger) + get_credits_owed(ledger)


def get_game_held(ledger: Ledger) -> int:
    """What DisputeGame must hold: the challenger bonds of the games still running."""
    return sum(1 for g in ledger.games if g.open) * ledger.params.challenger_bond


def get_held(ledger: Ledger) -> int:
    """Bonds outstanding plus credits owed: what Rollup and DisputeGame hold together."""
    return get_bonds_outstanding(ledger) + get_credits_owed(ledger)


# --- internals ----------------------------------------------------------------------------------------


def _posted(ledger: Ledger) -> int:
    return sum(1 for b in ledger.bonds.values() if b.state == BondState.POSTED) * ledger.params.proposer_bond


def _credit(credits: Mapping[str, int], to: str, amount: int) -> Mapping[str, int]:
    if amount == 0:
        return credits
    out = dict(credits)
    out[to] = out.get(to, 0) + amount
    return out


def _with_slot(slots: tuple[Slot, ...], index: int, slot: Slot) -> tuple[Slot, ...]:
    return slots[:index] + (slot,) + slots[index + 1 :] if index < len(slots) else slots + (slot,)


def _with_bond(bonds: Mapping[int, Bond], batch_id: int, bond: Bond) -> Mapping[int, Bond]:
    out = dict(bonds)
    out[batch_id] = bond
    return out


def _forfeit(ledger: Ledger, batch_id: int) -> Ledger:
    """sol: Rollup._forfeit — the game count is the discarded batch's, frozen since its discard."""
    bond = ledger.bonds[batch_id]
    games = ledger.slots[bond.batch_index].open_games
    per_game, burned = compute_forfeit(ledger.params, games)
    forfeited = msgspec.structs.replace(bond, state=BondState.FORFEITED, reward_per_game=per_game)
    return msgspec.structs.replace(ledger, bonds=_with_bond(ledger.bonds, batch_id, forfeited), burned=ledger.burned + burned)


# --- processes ----------------------------------------------------------------------------------------


def process_append(ledger: Ledger, proposer: str, *, value: int, frozen: bool = False) -> tuple[Ledger, int]:
    """A proposer appends a batch with its bond; returns the batch's index. The other checks of
    appendBatch (the sender, the parent, the queue counters, the framing) are not bond rules. # sol: Rollup.appendBatch"""
    # 1. The bond is exactly proposer_bond.
    require(value == ledger.params.proposer_bond, BondError.WRONG_BOND, f"{value} sent")
    # 2. The rollup is not frozen.
    require(not frozen, BondError.ROLLUP_FROZEN)
    index = ledger.batch_count
    # 3. A discarded batch still at this index is forfeited before its slot is overwritten.
    if index < len(ledger.slots):
        previous = ledger.slots[index].batch_id
        if ledger.bonds[previous].state == BondState.POSTED:
            ledger = _forfeit(ledger, previous)
    batch_id = ledger.next_id
    return (
        msgspec.structs.replace(
            ledger,
            slots=_with_slot(ledger.slots, index, Slot(batch_id)),
            batch_count=index + 1,
            next_id=batch_id + 1,
            bonds=_with_bond(ledger.bonds, batch_id, Bond(proposer, index, BondState.POSTED)),
        ),
        index,
    )


def process_finalize(ledger: Ledger, index: int, *, window_over: bool, frozen: bool = False) -> Ledger:
    """Finalize the next batch and credit its bond back to its proposer. # sol: Rollup.finalize"""
    # 1. The rollup is not frozen.
    require(not frozen, BondError.ROLLUP_FROZEN)
    # 2. The batch exists.
    require(index < ledger.batch_count, BondError.BATCH_NOT_FOUND, f"index {index}")
    # 3. It is the one after the last final batch.
    require(index == ledger.finalized_count, BondError.NOT_NEXT_TO_FINALIZE, f"index {index}, next {ledger.finalized_count}")
    # 4. Its challenge window has passed.
    require(window_over, BondError.CHALLENGE_WINDOW_OPEN)
    # 5. No game against it is open.
    slot = ledger.slots[index]
    require(slot.open_games == 0, BondError.GAME_OPEN, f"{slot.open_games} open")
    bond = ledger.bonds[slot.batch_id]
    return msgspec.structs.replace(
        ledger,
        finalized_count=index + 1,
        bonds=_with_bond(ledger.bonds, slot.batch_id, msgspec.structs.replace(bond, state=BondState.RETURNED)),
        credits=_credit(ledger.credits, bond.proposer, ledger.params.proposer_bond),
    )


def process_open_game(
    ledger: Ledger, index: int, challenger: str, *, value: int, window_open: bool, frozen: bool = False
) -> tuple[Ledger, int]:
    """A challenger opens a game against pending batch `index` with its bond; returns the game id.
    # sol: DisputeGame.open, Rollup.registerGame"""
    # 1. The bond is exactly challenger_bond.
    require(value == ledger.params.challenger_bond, BondError.WRONG_BOND, f"{value} sent")
    # 2. The rollup is not frozen (no batch can be decided any more: its bond is the escapers').
    require(not frozen, BondError.ROLLUP_FROZEN)
    # 3. The batch exists (genesis cannot be challenged).
    require(0 < index < ledger.batch_count, BondError.BATCH_NOT_FOUND, f"index {index}")
    # 4. It is not final.
    require(index >= ledger.finalized_count, BondError.BATCH_ALREADY_FINAL)
    # 5. Its challenge window is open.
    require(window_open, BondError.CHALLENGE_WINDOW_CLOSED)
    slot = ledger.slots[index]
    stake = GameStake(index, slot.batch_id, challenger, ledger.bonds[slot.batch_id].proposer)
    return (
        msgspec.structs.replace(
            ledger,
            slots=_with_slot(ledger.slots, index, msgspec.structs.replace(slot, open_games=slot.open_games + 1)),
            games=ledger.games + (stake,),
        ),
        len(ledger.games),
    )


def process_game_end(ledger: Ledger, game_id: int, outcome: Phase) -> Ledger:
    """Settle the bonds of a game that ended with `outcome` (a terminal `spec.game.Phase`, decided by
    `spec.game`: it is CANCELLED whenever the batch was no longer live). # sol: DisputeGame._resolve,
    DisputeGame._cancel, Rollup.rejectBatch, Rollup.releaseGame, Rollup.voidGame, Rollup.payout"""
    stake = ledger.games[game_id]
    if not stake.open:
        raise ValueError(f"game {game_id} already ended")
    live = is_live(ledger, stake.batch_index, stake.batch_id)
    games = ledger.games[:game_id] + (msgspec.structs.replace(stake, open=False),) + ledger.games[game_id + 1 :]
    ledger = msgspec.structs.replace(ledger, games=games)
    bond = ledger.params.challenger_bond
    if outcome == Phase.CHALLENGER_WON:
        if not live or stake.batch_index < ledger.finalized_count:
            raise ValueError("a challenger can only win against a live, pending batch")
        # The batch and its successors are discarded; its bond is forfeited at once and the winner
        # gets its share with its own bond back. The successors' bonds stay posted until settled.
        ledger = msgspec.structs.replace(ledger, batch_count=stake.batch_index)
        ledger = _forfeit(ledger, stake.batch_id)
        share = ledger.bonds[stake.batch_id].reward_per_game
        return msgspec.structs.replace(ledger, credits=_credit(ledger.credits, stake.challenger, share + bond))
    if outcome == Phase.PROPOSER_WON:
        if not live:
            raise ValueError("a game on a discarded batch is cancelled, never won")
        slot = ledger.slots[stake.batch_index]
        slots = _with_slot(ledger.slots, stake.batch_index, msgspec.structs.replace(slot, open_games=slot.open_games - 1))
        return msgspec.structs.replace(ledger, slots=slots, credits=_credit(ledger.credits, stake.proposer, bond))
    if outcome == Phase.CANCELLED:
        if live:
            raise ValueError("only a game on a discarded batch is cancelled")
        # Void: the bond returns with the game's share of the discarded batch's forfeited bond.
        if ledger.bonds[stake.batch_id].state == BondState.POSTED:
            ledger = _forfeit(ledger, stake.batch_id)
        share = ledger.bonds[stake.batch_id].reward_per_game
        return msgspec.structs.replace(ledger, credits=_credit(ledger.credits, stake.challenger, share + bond))
    raise ValueError(f"not a terminal phase: {outcome!r}")


def process_forfeit_bond(ledger: Ledger, batch_id: int) -> Ledger:
    """Anyone settles the bond of a discarded batch. # sol: Rollup.forfeitBond"""
    bond = ledger.bonds.get(batch_id)
    # 1. The bond is still posted and its batch is no longer in the chain.
    require(
        bond is not None and bond.state == BondState.POSTED and not is_live(ledger, bond.batch_index, batch_id),
        BondError.BOND_NOT_FORFEITABLE,
        f"batch id {batch_id}",
    )
    return _forfeit(ledger, batch_id)


def process_release_frozen_bonds(ledger: Ledger, max_count: int, *, frozen: bool) -> tuple[Ledger, int]:
    """After a freeze, send the bonds of up to `max_count` pending batches to the Bridge, from the top
    of the chain down, stopping at a batch with a game still open; the released batches leave the
    chain. Returns how many were released. # sol: Rollup.releaseFrozenBonds"""
    # 1. The rollup is frozen.
    require(frozen, BondError.NOT_FROZEN)
    count, released = ledger.batch_count, 0
    slots, bonds = ledger.slots, dict(ledger.bonds)
    while released < max_count and count > ledger.finalized_count:
        slot = slots[count - 1]
        if slot.open_games != 0:
            # 2. The top pending batch has no game open (a later one only stops the page).
            require(released != 0, BondError.GAMES_OPEN, f"index {count - 1}, {slot.open_games} open")
            break
        bonds[slot.batch_id] = msgspec.structs.replace(bonds[slot.batch_id], state=BondState.ESCAPED)
        count -= 1
        released += 1
    escaped = ledger.escaped + released * ledger.params.proposer_bond
    return msgspec.structs.replace(ledger, batch_count=count, bonds=bonds, escaped=escaped), released


def process_withdraw(ledger: Ledger, who: str) -> tuple[Ledger, int]:
    """Pay `who` its whole credit; returns the amount. # sol: Rollup.withdrawCredit"""
    amount = ledger.credits.get(who, 0)
    # 1. Something is owed.
    require(amount != 0, BondError.NOTHING_TO_WITHDRAW)
    credits = dict(ledger.credits)
    del credits[who]
    return msgspec.structs.replace(ledger, credits=credits), amount
