"""The liquidator's risk index: a small move re-checks only the accounts near their maintenance line;
a large one re-anchors once; accounts the engine changed are re-valued before the next look."""

from __future__ import annotations

from optinode.exchange.risk_index import RiskIndex
from optinode.testing.world import ETH, ETH_UNIT, USD, World, price_of


def crowd(leverages: list[int]) -> World:
    """A market maker short against traders long 1 ETH each at 3000, with 3000 / leverage USD each."""
    w = World()
    w.deposit("maker", 10**7 * USD)
    for i, leverage in enumerate(leverages):
        w.deposit(f"t{i}", 3_000 * USD // leverage)
        w.must(w.trade("maker", f"t{i}", ETH_UNIT))
    w.state.dirty_accounts.clear()
    return w


def test_a_small_move_re_checks_only_the_accounts_near_their_line() -> None:
    w = crowd([2] * 300 + [10] * 3)  # 300 at 2x (1,500 USD), 3 at the 10x maximum (300 USD)
    levered = {w.ids[f"t{i}"] for i in range(300, 303)}
    index = RiskIndex(w.state, exclude={w.ids["maker"]}, rebase_ppm=100_000)
    assert index.due() == []  # nobody is below maintenance at 3000
    start = index.evaluations
    w.set_price(ETH, price_of(ETH, "2850"))  # 10x: TV 150 >= TR 142.5, close to the line
    due = index.due()
    assert set(due) <= levered
    index.mark(due)
    w.set_price(ETH, price_of(ETH, "2840"))  # 10x: TV 140 < TR 142
    assert set(index.due()) == levered
    assert index.evaluations - start <= 2 * len(levered)  # the 300 others were never valued again
    assert index.rebases == 0


def test_a_large_move_re_anchors_the_index_once_and_finds_everyone_below() -> None:
    w = crowd([2] * 50 + [10] * 2)
    index = RiskIndex(w.state, exclude={w.ids["maker"]}, rebase_ppm=50_000)
    assert index.due() == []
    w.set_price(ETH, price_of(ETH, "1550"))  # 2x: TV 1500 - 1450 = 50 < TR 77.5; 10x: bankrupt
    due = set(index.due())
    assert index.rebases == 1
    assert due == {i for i in w.state.accounts if i != w.ids["maker"]}


def test_accounts_the_engine_changed_are_re_valued_before_the_next_look() -> None:
    w = crowd([2])
    index = RiskIndex(w.state, exclude={w.ids["maker"]})
    assert index.due() == []
    w.must(w.trade("maker", "t0", ETH_UNIT * 2))  # long 3 ETH on 1,500 USD
    index.mark(w.state.dirty_accounts)
    w.set_price(ETH, price_of(ETH, "2600"))  # TV 1500 - 1200 = 300 < TR 390
    assert index.due() == [w.ids["t0"]]
