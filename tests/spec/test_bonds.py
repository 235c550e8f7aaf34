"""optinode.spec.bonds: the bond ledger's rules without a chain (the contracts are compared with it
on anvil by tests/l1/system/test_game_spec_differential.py and test_bond_conservation.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optinode.spec import bonds
from optinode.spec.bonds import BondError, BondParams, BondRuleError, BondState
from optinode.spec.game import Phase

B, C = 10**18, 3 * 10**17
PARAMS = BondParams(B, C, 5000)
P, Q, H, S = "proposer", "second-key", "honest", "puppet"


def held(ledger: bonds.Ledger) -> int:
    """Wei in: every bond ever posted; out: burned, escaped and withdrawn (none here)."""
    return bonds.get_held(ledger) + ledger.burned + ledger.escaped


@given(st.integers(0, 9_999), st.integers(0, 200), st.integers(1, 10**20))
def test_a_forfeit_splits_the_reward_and_burns_the_rest(bps: int, games: int, bond: int) -> None:
    per_game, burned = bonds.compute_forfeit(BondParams(bond, C, bps), games)
    assert per_game * games + burned == bond
    assert burned >= bond - bond * bps // 10_000  # at least the non-reward share burns
    assert per_game == (bond * bps // 10_000 // games if games else 0)


def test_rejection_shares_between_every_open_game_and_successors_are_forfeit() -> None:
    ledger = bonds.genesis_ledger(PARAMS)
    ledger, i1 = bonds.process_append(ledger, P, value=B)
    ledger, i2 = bonds.process_append(ledger, Q, value=B)  # another key, on top
    ledger, g_honest = bonds.process_open_game(ledger, i1, H, value=C, window_open=True)
    ledger, g_puppet = bonds.process_open_game(ledger, i1, S, value=C, window_open=True)
    ledger, g_top = bonds.process_open_game(ledger, i2, H, value=C, window_open=True)
    total = held(ledger)
    ledger = bonds.process_game_end(ledger, g_puppet, Phase.CHALLENGER_WON)  # the puppet wins first
    assert ledger.batch_count == 1 and not bonds.is_live(ledger, i2, 2)
    assert ledger.bonds[1].state == BondState.FORFEITED and ledger.bonds[2].state == BondState.POSTED
    share = B // 2 // 2
    assert ledger.credits == {S: C + share}
    ledger = bonds.process_game_end(ledger, g_honest, Phase.CANCELLED)  # void: the same share
    ledger = bonds.process_game_end(ledger, g_top, Phase.CANCELLED)  # the successor's only game
    assert ledger.credits == {S: C + share, H: 2 * C + share + B // 2}
    assert ledger.bonds[2].state == BondState.FORFEITED
    assert ledger.burned == (B - 2 * share) + B // 2
    assert P not in ledger.credits and Q not in ledger.credits  # no proposer key gets anything back
    assert held(ledger) == total
    with pytest.raises(BondRuleError) as info:
        bonds.process_forfeit_bond(ledger, 2)
    assert info.value.code == BondError.BOND_NOT_FORFEITABLE


def test_reusing_an_index_forfeits_the_discarded_batch_first() -> None:
    ledger = bonds.genesis_ledger(PARAMS)
    ledger, _ = bonds.process_append(ledger, P, value=B)
    ledger, top = bonds.process_append(ledger, P, value=B)
    ledger, g = bonds.process_open_game(ledger, 1, H, value=C, window_open=True)
    ledger = bonds.process_game_end(ledger, g, Phase.PROPOSER_WON)
    ledger, g = bonds.process_open_game(ledger, 1, H, value=C, window_open=True)
    ledger = bonds.process_game_end(ledger, g, Phase.CHALLENGER_WON)
    ledger, again = bonds.process_append(ledger, P, value=B)
    ledger, again2 = bonds.process_append(ledger, P, value=B)
    assert again2 == top and ledger.bonds[2].state == BondState.FORFEITED  # no game: all burned
    assert ledger.credits == {P: C, H: C + B // 2}
    assert ledger.burned == B // 2 + B


def test_finalize_and_freeze_rules_in_the_contracts_order() -> None:
    ledger = bonds.genesis_ledger(PARAMS)
    ledger, i = bonds.process_append(ledger, P, value=B)
    cases = [
        (dict(index=i, window_over=True, frozen=True), BondError.ROLLUP_FROZEN),
        (dict(index=2, window_over=True), BondError.BATCH_NOT_FOUND),
        (dict(index=0, window_over=True), BondError.NOT_NEXT_TO_FINALIZE),
        (dict(index=i, window_over=False), BondError.CHALLENGE_WINDOW_OPEN),
    ]
    for kwargs, code in cases:
        with pytest.raises(BondRuleError) as info:
            bonds.process_finalize(ledger, kwargs.pop("index"), **kwargs)
        assert info.value.code == code
    with pytest.raises(BondRuleError) as info:
        bonds.process_append(ledger, P, value=B - 1)
    assert info.value.code == BondError.WRONG_BOND
    ledger, g = bonds.process_open_game(ledger, i, H, value=C, window_open=True)
    with pytest.raises(BondRuleError) as info:
        bonds.process_finalize(ledger, i, window_over=True)
    assert info.value.code == BondError.GAME_OPEN
    # frozen: no game opens; the top batch's open game stops the release until it ends
    with pytest.raises(BondRuleError) as info:
        bonds.process_open_game(ledger, i, H, value=C, window_open=True, frozen=True)
    assert info.value.code == BondError.ROLLUP_FROZEN
    with pytest.raises(BondRuleError) as info:
        bonds.process_release_frozen_bonds(ledger, 5, frozen=True)
    assert info.value.code == BondError.GAMES_OPEN
    ledger = bonds.process_game_end(ledger, g, Phase.PROPOSER_WON)
    ledger, released = bonds.process_release_frozen_bonds(ledger, 5, frozen=True)
    assert released == 1 and ledger.bonds[1].state == BondState.ESCAPED and ledger.escaped == B
    assert bonds.get_held(ledger) == bonds.get_credits_owed(ledger) == C
    ledger, amount = bonds.process_withdraw(ledger, P)
    assert amount == C and bonds.get_held(ledger) == 0
    with pytest.raises(BondRuleError) as info:
        bonds.process_withdraw(ledger, P)
    assert info.value.code == BondError.NOTHING_TO_WITHDRAW
