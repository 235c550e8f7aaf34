"""The risk engine's findings (issue 7, findings 1, 2, 3 and 6a) and the rules that close them.

Each finding is the reviewer's sequence replayed on the spec; the assertion is the outcome that must
hold (written before the fix and seen failing on the old rules). Units: 1 ETH = 10**9 base units, so
an ETH price of P USD is `P * PRICE_ONE // 1000` collateral units per base unit; 1 USD = 10**6.
"""

from __future__ import annotations

from optinode.spec import Receipt
from optinode.spec.constants import PRICE_ONE
from optinode.spec.errors import ErrorCode
from optinode.spec.margin import compute_settled_funding, get_total_risk, get_total_value
from optinode.spec.types import Deleverage, Liquidate, Trade

from optinode.testing.world import BTC, BTC_UNIT, ETH, ETH_UNIT, USD, World


def eth(usd: int) -> int:
    """The ETH oracle/limit price for `usd` dollars per ETH."""
    return usd * PRICE_ONE // 1000


def btc(usd: int) -> int:
    return usd * PRICE_ONE // 100


def value_and_risk(w: World, name: str) -> tuple[int, int]:
    collateral, positions, _ = compute_settled_funding(w.state, w.account(name))
    return get_total_value(w.state, collateral, positions), get_total_risk(w.state, positions, initial=False)


def alice_buys_one_eth_from_bob(bob_usd: int) -> World:
    """alice (300 USD) buys 1 ETH at 3000 from bob (`bob_usd`); carol holds 1,000 USD."""
    w = World()
    w.deposit("alice", 300 * USD)
    w.deposit("bob", bob_usd * USD)
    w.deposit("carol", 1_000 * USD)
    bob_sells = w.order("bob", is_buy=False, size=ETH_UNIT, limit_price=eth(3000))
    assert w.apply(Trade(bob_sells, w.order("alice", size=ETH_UNIT, limit_price=eth(3000)), ETH_UNIT)).ok
    return w


def alice_long_one_eth_at_3000() -> World:
    """Finding 1's opening: alice (300 USD) long 1 ETH at 3000 from bob; carol holds 1000 USD; the
    oracle then moves to 2800 (alice: value 100, maintenance 140, so liquidatable)."""
    w = alice_buys_one_eth_from_bob(1_000)
    w.set_price(ETH, eth(2800))
    assert value_and_risk(w, "alice") == (100 * USD, 140 * USD)
    return w


# --- finding 1: a liquidation at the band edge left unreachable bad debt --------------------------


def test_finding_1_full_liquidation_at_the_band_edge_cannot_leave_bad_debt():
    w = alice_long_one_eth_at_3000()
    # carol's bid at 2660 = oracle x (1 - 5%): the old rules applied it and left alice at -40 USD
    # with no position (and bob and carol then withdrew 2,340 USD of 2,300 deposited).
    receipt = w.apply(Liquidate(w.order("carol", size=ETH_UNIT, limit_price=eth(2660)), w.ids["alice"], ETH_UNIT))
    assert receipt == Receipt(ErrorCode.INSUFFICIENT_MARGIN, False)
    assert w.collateral("alice") == -2_700 * USD and w.size("alice") == ETH_UNIT
    w.check_conservation()


def test_finding_1_liquidation_at_the_oracle_price_leaves_the_account_non_negative():
    w = alice_long_one_eth_at_3000()
    assert w.apply(Liquidate(w.order("carol", size=ETH_UNIT, limit_price=eth(2800)), w.ids["alice"], ETH_UNIT)).ok
    # the fill leaves 100 USD; the 1% penalty (28 USD) fits in it
    assert (w.collateral("alice"), w.size("alice")) == (72 * USD, 0)
    assert w.state.insurance == 28 * USD
    w.check_conservation()


def test_finding_1_penalty_only_takes_what_keeps_the_account_healthier():
    w = alice_long_one_eth_at_3000()
    # Half at 2730: the fill alone leaves value 65 against risk 70 (ratio 0.93 >= 0.71 before); the
    # penalty (1% of 1400 = 14) is capped at the room that keeps the ratio: 65 - ceil(100 * 70 / 140) = 15.
    half = ETH_UNIT // 2
    assert w.apply(Liquidate(w.order("carol", size=half, limit_price=eth(2730)), w.ids["alice"], half)).ok
    value, risk = value_and_risk(w, "alice")
    assert (value, risk) == (51 * USD, 70 * USD)
    assert w.state.insurance == 14 * USD
    # a discount that would make alice's value/risk ratio worse is refused: at 2690 the fill leaves
    # 45 against 70 (0.64 < 0.71); at 2700 (50 against 70, the same ratio) it would pass, penalty-free.
    w2 = alice_long_one_eth_at_3000()
    receipt = w2.apply(Liquidate(w2.order("carol", size=half, limit_price=eth(2690)), w2.ids["alice"], half))
    assert receipt == Receipt(ErrorCode.INSUFFICIENT_MARGIN, False)


# --- finding 2: an account below maintenance sold itself out to its owner's other account ------------


def test_finding_2_self_dealing_at_a_discount_is_refused():
    w = alice_long_one_eth_at_3000()
    w.deposit("alice2", 1_000 * USD, owner="alice")  # a second account of the same owner
    buyer = w.order("alice2", size=ETH_UNIT, limit_price=eth(2660))
    receipt = w.apply(Trade(buyer, w.order("alice", is_buy=False, size=ETH_UNIT, limit_price=eth(2660)), ETH_UNIT))
    # The old rule ("value minus maintenance risk not worse") let alice end at -40 USD, no position.
    assert receipt == Receipt(ErrorCode.INSUFFICIENT_MARGIN, False)
    assert w.collateral("alice") == -2_700 * USD


def test_finding_2_a_bankrupt_account_cannot_be_bought_out_at_a_discount():
    w = alice_long_one_eth_at_3000()
    w.set_price(ETH, eth(2600))  # alice: value -100, bankrupt
    buyer = w.order("carol", size=ETH_UNIT, limit_price=eth(2590))
    receipt = w.apply(Trade(buyer, w.order("alice", is_buy=False, size=ETH_UNIT, limit_price=eth(2590)), ETH_UNIT))
    assert receipt == Receipt(ErrorCode.INSUFFICIENT_MARGIN, False)


def test_finding_2_an_account_below_maintenance_may_still_close_at_a_fair_price():
    w = alice_long_one_eth_at_3000()
    buyer = w.order("carol", size=ETH_UNIT, limit_price=eth(2800))
    assert w.apply(Trade(buyer, w.order("alice", is_buy=False, size=ETH_UNIT, limit_price=eth(2800)), ETH_UNIT)).ok
    assert (w.collateral("alice"), w.size("alice")) == (100 * USD, 0)


# --- finding 3: a deleverage moved a whole cross-market deficit onto a tiny holder --------------------


def whale_world() -> World:
    """The whale (10,000 USD) is long 1 BTC at 60,000 and 0.001 ETH at 3,000; `tiny` (10 USD) is short
    that 0.001 ETH; `bear` is short the BTC. BTC then falls by a third: the whale is at -10,000 USD."""
    w = World()
    w.deposit("whale", 10_000 * USD)
    w.deposit("bear", 100_000 * USD)
    w.deposit("tiny", 10 * USD)
    bear_sells = w.order("bear", market=BTC, is_buy=False, size=BTC_UNIT, limit_price=btc(60_000))
    whale_buys = w.order("whale", market=BTC, size=BTC_UNIT, limit_price=btc(60_000))
    assert w.apply(Trade(bear_sells, whale_buys, BTC_UNIT)).ok
    milli = ETH_UNIT // 1000
    tiny_sells = w.order("tiny", is_buy=False, size=milli, limit_price=eth(3000))
    assert w.apply(Trade(tiny_sells, w.order("whale", size=milli, limit_price=eth(3000)), milli)).ok
    w.set_price(BTC, btc(40_000))
    assert value_and_risk(w, "whale")[0] == -10_000 * USD
    return w


def test_finding_3_a_deleverage_charges_each_holder_only_its_markets_share():
    w = whale_world()
    milli = ETH_UNIT // 1000
    value, risk = value_and_risk(w, "whale")
    eth_risk = get_total_risk(w.state, {ETH: w.position("whale", ETH)}, initial=False)
    receipt = w.apply(Deleverage(w.ids["whale"], w.ids["tiny"], ETH, milli))
    # The old rule moved the whole deficit: tiny at -9,990 USD, the whale at 0 still long its BTC.
    assert receipt.ok
    # The ETH leg is 0.15 USD of the whale's 1,000.15 USD maintenance risk: its share of the deficit
    # is 10,000 * 0.15 / 1,000.15 = 1.4998 USD, which is all tiny pays beyond the 3 USD notional.
    tiny_value, _ = value_and_risk(w, "tiny")
    share = -value * eth_risk // risk
    assert tiny_value == 10 * USD - share - 1 or tiny_value == 10 * USD - share
    assert w.size("whale", BTC) == BTC_UNIT
    whale_value, whale_risk = value_and_risk(w, "whale")
    assert whale_value * risk >= value * whale_risk  # the whale's value/risk ratio did not get worse
    w.check_conservation()


def test_finding_3_the_whole_leg_of_the_market_carrying_the_loss_settles_it():
    w = whale_world()
    # The BTC leg carries all but the ETH leg's share: the bear (short 1 BTC, 120,000 USD of value)
    # closes it at the BTC bankruptcy price and keeps 110,000 - the ETH share.
    value, risk = value_and_risk(w, "whale")
    assert w.apply(Deleverage(w.ids["whale"], w.ids["bear"], BTC, BTC_UNIT)).ok
    assert w.size("whale", BTC) == 0 and w.size("whale", ETH) == ETH_UNIT // 1000
    whale_value, whale_risk = value_and_risk(w, "whale")
    assert whale_value * risk >= value * whale_risk and whale_value < 0
    w.check_conservation()


def test_finding_3_a_deleverager_that_cannot_absorb_its_share_gives_up_its_value_and_no_more():
    w = World()
    w.deposit("whale", 10_000 * USD)
    w.deposit("bear", 4_000 * USD)
    w.deposit("lender", 1_000_000 * USD)
    bear_sells = w.order("bear", market=BTC, is_buy=False, size=BTC_UNIT, limit_price=btc(60_000))
    assert w.apply(Trade(bear_sells, w.order("whale", market=BTC, size=BTC_UNIT, limit_price=btc(60_000)), BTC_UNIT)).ok
    w.set_price(BTC, btc(40_000))  # whale at -10,000 USD; the bear at 24,000
    seventy = 70 * ETH_UNIT
    lender_sells = w.order("lender", is_buy=False, size=seventy, limit_price=eth(3000))
    assert w.apply(Trade(lender_sells, w.order("bear", size=seventy, limit_price=eth(3000)), seventy)).ok
    w.set_price(ETH, eth(2790))  # the bear: value 9,300 against maintenance 10,765
    # Half of the whale's deficit (5,000) leaves the bear at 4,300 with 10,265 of risk: worse, but with
    # the insurance fund empty this is the last resort, and the bear keeps a non-negative value.
    half = BTC_UNIT // 2
    assert w.apply(Deleverage(w.ids["whale"], w.ids["bear"], BTC, half)).ok
    bear_value, bear_risk = value_and_risk(w, "bear")
    assert 0 <= bear_value < bear_risk and w.state.socialized_loss == 0
    # The other half (5,000) is more than the bear has left (4,300): it gives up all of it, never
    # more, and the 700 it cannot pay are socialized (before the socialized-loss rule: refused,
    # INSUFFICIENT_MARGIN, and the rest of the whale's debt had no path).
    assert w.apply(Deleverage(w.ids["whale"], w.ids["bear"], BTC, half)).ok
    assert value_and_risk(w, "bear")[0] == 0 and value_and_risk(w, "whale") == (0, 0)
    assert w.state.socialized_loss == 700 * USD
    w.check_conservation()


def test_the_last_resort_takes_the_fund_first_and_never_more_than_the_counterparty_has():
    w = insured_world()  # the fund holds 280 USD; bob is short 11 ETH
    w.set_price(ETH, eth(2000))  # dave at -500 USD
    bob = w.ids["bob"]
    w.state.accounts[bob].collateral = 22_300 * USD  # value 300: it ends at 80 USD, below maintenance
    w.touch(bob)
    assert w.apply(Deleverage(w.ids["dave"], bob, ETH, ETH_UNIT)).ok
    assert value_and_risk(w, "bob")[0] == 80 * USD and w.state.insurance == 0
    assert (w.collateral("dave"), w.size("dave"), w.state.socialized_loss) == (0, 0, 0)


def test_the_socialized_loss_takes_only_what_the_fund_and_the_counterparty_cannot_pay():
    w = insured_world()
    w.set_price(ETH, eth(2000))  # dave at -500 USD
    bob = w.ids["bob"]
    w.state.accounts[bob].collateral = 22_100 * USD  # bob: value 100 USD
    w.touch(bob)
    # The fund pays 280 of dave's 500; bob pays the 100 he has; 120 are socialized.
    assert w.apply(Deleverage(w.ids["dave"], bob, ETH, ETH_UNIT)).ok
    assert (value_and_risk(w, "bob")[0], w.state.insurance, w.state.socialized_loss) == (0, 0, 120 * USD)
    assert (w.collateral("dave"), w.size("dave")) == (0, 0)


# --- finding 6a: the insurance fund pays bad debt first ----------------------------------------------


def insured_world() -> World:
    """eve (3,000 USD, long 10 ETH at 3000) is liquidated at 2800 by carol: the penalty, 1% of 28,000,
    puts 280 USD in the insurance fund. dave (300 USD) then buys 1 ETH at 2800 from bob."""
    w = World()
    w.deposit("eve", 3_000 * USD)
    w.deposit("bob", 20_000 * USD)
    w.deposit("carol", 5_000 * USD)
    w.deposit("dave", 300 * USD)
    w.deposit("frank", 1_000 * USD)
    ten = 10 * ETH_UNIT
    bob_sells = w.order("bob", is_buy=False, size=ten, limit_price=eth(3000))
    assert w.apply(Trade(bob_sells, w.order("eve", size=ten, limit_price=eth(3000)), ten)).ok
    w.set_price(ETH, eth(2800))
    assert w.apply(Liquidate(w.order("carol", size=ten, limit_price=eth(2800)), w.ids["eve"], ten)).ok
    assert w.state.insurance == 280 * USD
    bob_sells = w.order("bob", is_buy=False, size=ETH_UNIT, limit_price=eth(2800))
    assert w.apply(Trade(bob_sells, w.order("dave", size=ETH_UNIT, limit_price=eth(2800)), ETH_UNIT)).ok
    return w


def test_finding_6a_a_liquidation_of_a_bankrupt_account_is_covered_by_the_insurance_fund():
    w = insured_world()
    w.set_price(ETH, eth(2450))  # a gap: dave at -50 USD before anyone could liquidate him
    assert value_and_risk(w, "dave")[0] == -50 * USD
    assert w.apply(Liquidate(w.order("frank", size=ETH_UNIT, limit_price=eth(2450)), w.ids["dave"], ETH_UNIT)).ok
    assert (w.collateral("dave"), w.size("dave")) == (0, 0)
    assert w.state.insurance == 230 * USD
    w.check_conservation()


def test_finding_6a_the_fund_never_pays_a_liquidators_discount():
    w = insured_world()
    w.set_price(ETH, eth(2450))  # dave at -50 USD
    # At 2400 (inside the band) frank would gain 50 USD at the fund's expense on top of dave's debt.
    receipt = w.apply(Liquidate(w.order("frank", size=ETH_UNIT, limit_price=eth(2400)), w.ids["dave"], ETH_UNIT))
    assert receipt == Receipt(ErrorCode.INSUFFICIENT_MARGIN, False)
    assert w.state.insurance == 280 * USD


def test_finding_6a_a_deleverage_spends_the_insurance_fund_before_the_counterparty():
    w = insured_world()
    w.set_price(ETH, eth(2400))  # dave at -100 USD
    bob_before = value_and_risk(w, "bob")[0]
    assert w.apply(Deleverage(w.ids["dave"], w.ids["bob"], ETH, ETH_UNIT)).ok
    assert (w.collateral("dave"), w.size("dave")) == (0, 0)
    # the fund (280) covers all 100 of dave's deficit: bob is closed at the oracle price, losing nothing
    assert w.state.insurance == 180 * USD
    assert value_and_risk(w, "bob")[0] == bob_before
    w.check_conservation()


def test_finding_6a_a_liquidation_needing_more_than_the_fund_is_refused_and_deleverage_takes_the_rest():
    w = insured_world()
    w.set_price(ETH, eth(2000))  # dave at -500 USD; the fund holds 280
    receipt = w.apply(Liquidate(w.order("frank", size=ETH_UNIT, limit_price=eth(2000)), w.ids["dave"], ETH_UNIT))
    assert receipt == Receipt(ErrorCode.INSUFFICIENT_MARGIN, False)
    bob_before = value_and_risk(w, "bob")[0]
    assert w.apply(Deleverage(w.ids["dave"], w.ids["bob"], ETH, ETH_UNIT)).ok
    assert (w.collateral("dave"), w.size("dave"), w.state.insurance) == (0, 0, 0)
    assert value_and_risk(w, "bob")[0] == bob_before - 220 * USD
    w.check_conservation()


def test_deleverage_6a_must_lower_the_deleveraged_risk():
    from optinode.testing.vectors import _dust_market_world

    w = _dust_market_world()
    # risk ceil(10^9 x 1 x 5% / 10^8) = 1 before and after closing 1,000 units: nothing would move.
    assert w.apply(Deleverage(0, 1, 1, 1_000)) == Receipt(ErrorCode.NOT_REDUCING, False)
    assert w.apply(Deleverage(0, 1, 1, 10**9)).ok  # closing all of it: risk 1 -> 0
    assert (w.collateral("alice"), w.size("alice", 1)) == (0, 0)


# --- bad debt nobody can absorb: the socialized loss (docs/risk.md §4.3-4.4) ------------------------


def stuck_world() -> World:
    """alice (300 USD) long 1 ETH at 3000 from bob (the only short); carol holds 1,000 USD and no
    position. The price gaps to 2000: alice is at -700 USD. 1,290 USD of bob's collateral is crafted over
    to carol, leaving bob a value of 10 USD (as if he had lost it to her in another market): the only
    opposite holder cannot absorb alice's deficit, and the insurance fund is empty."""
    w = alice_buys_one_eth_from_bob(300)
    w.set_price(ETH, eth(2000))
    bob, carol = w.ids["bob"], w.ids["carol"]
    w.state.accounts[bob].collateral -= 1_290 * USD
    w.state.accounts[carol].collateral += 1_290 * USD
    w.touch(bob, carol)
    assert value_and_risk(w, "alice")[0] == -700 * USD and value_and_risk(w, "bob")[0] == 10 * USD
    assert w.state.insurance == 0
    return w


def test_a_deficit_no_opposite_holder_can_absorb_is_resolved_by_the_socialized_loss():
    # Seen failing before the socialized-loss rule: the deleverage was refused (INSUFFICIENT_MARGIN)
    # and alice's -700 USD stayed forever with her position open.
    w = stuck_world()
    alice, bob = w.ids["alice"], w.ids["bob"]
    assert w.apply(Deleverage(alice, bob, ETH, ETH_UNIT)).ok
    # alice ends at 0 with nothing open; bob gives up everything he had (10 USD), and the other
    # 690 USD is socialized over every balance.
    assert (w.collateral("alice"), w.size("alice")) == (0, 0)
    assert value_and_risk(w, "bob")[0] == 0 and w.size("bob") == 0
    assert w.state.socialized_loss == 690 * USD
    for account_id in w.state.accounts:
        collateral, positions, _ = compute_settled_funding(w.state, w.state.accounts[account_id])
        assert get_total_value(w.state, collateral, positions) >= 0
    # Every collateral unit is now worth (1 - L/T) of a token: carol withdraws all of her 2,290 USD
    # of collateral and receives what the bridge holds, 1,600 USD; nothing is left unbacked.
    assert (w.state.total_collateral, w.collateral("carol")) == (2_290 * USD, 2_290 * USD)
    assert w.apply(w.withdraw("carol", 2_290 * USD)).ok
    assert w.state.accounts[w.ids["carol"]].withdrawn == 1_600 * USD
    assert (w.state.total_collateral, w.state.socialized_loss) == (0, 0)
    w.check_conservation()


def test_a_censored_user_forces_the_insurance_fund_to_cover_a_bankrupt_account():
    # Seen failing before the forced deleverage request: the sequencer had to consume the request,
    # but it was rejected (the amount word was read as a withdrawal of someone else's account).
    from optinode.spec.types import ForcedWithdraw

    w = insured_world()  # the fund holds 280 USD
    w.set_price(ETH, eth(2450))  # dave at -50 USD; the sequencer liquidates nobody
    dave, bob = w.ids["dave"], w.ids["bob"]
    word = 2**254 | bob << 72 | ETH << 64 | ETH_UNIT  # frank, not dave's owner, asks on L1
    w.queue_forced("dave", word, requester="frank")
    assert w.apply(ForcedWithdraw()) == Receipt(ErrorCode.OK, True)
    assert (w.collateral("dave"), w.size("dave")) == (0, 0)
    assert w.state.insurance == 230 * USD and w.state.forced_done == 1
    w.check_conservation()
