"""`MarketBook.crossing` (the engine's bound on the Trades one placement can emit) against counting."""

from hypothesis import given
from hypothesis import strategies as st

from optinode.exchange.book import MarketBook, RestingOrder


@given(orders=st.lists(st.tuples(st.booleans(), st.integers(1, 20)), max_size=40), taker_is_buy=st.booleans(), limit=st.integers(0, 21))
def test_crossing_counts_the_resting_orders_a_limit_reaches(orders, taker_is_buy, limit) -> None:
    book = MarketBook()
    for seq, (is_buy, price) in enumerate(orders):
        book.add(RestingOrder(bytes(32), 0, bytes(20), 0, is_buy, price, 1, seq, None, False, 0, seq))  # type: ignore[arg-type]
    expected = sum(1 for is_buy, price in orders
                   if is_buy != taker_is_buy and (price <= limit if taker_is_buy else price >= limit))
    assert book.crossing(taker_is_buy, limit) == expected


@given(ops=st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(1, 8), st.integers(0, 30)), max_size=80))
def test_the_book_keeps_price_time_priority_as_one_sorted_map_would(ops) -> None:
    """Random adds and removes against the reference: one list sorted by (-price, seq) for bids and
    (price, seq) for asks. Best order, iteration, levels and crossing counts agree after every step."""
    book = MarketBook()
    live: dict[int, RestingOrder] = {}
    for seq, (add, is_buy, price, pick) in enumerate(ops):
        if add or not live:
            order = RestingOrder(bytes(32), 0, bytes(20), 0, is_buy, price, 1 + pick, seq, None, False, 0, seq)  # type: ignore[arg-type]
            book.add(order)
            live[seq] = order
        else:
            order = live.pop(sorted(live)[pick % len(live)])
            book.remove(order)
        for side_buy in (True, False):
            reference = sorted((o for o in live.values() if o.is_buy == side_buy), key=lambda o: (-o.price if side_buy else o.price, o.seq))
            assert list(book.side(side_buy).values()) == reference
            assert len(book.side(side_buy)) == len(reference)
            assert book.best(side_buy) is (reference[0] if reference else None)
            levels: list[tuple[int, int, int]] = []
            for o in reference:
                if levels and levels[-1][0] == o.price:
                    levels[-1] = (o.price, levels[-1][1] + o.remaining, levels[-1][2] + 1)
                else:
                    levels.append((o.price, o.remaining, 1))
            assert book.levels(side_buy, 3) == levels[:3]
        for limit in (0, 4, 9):
            for taker_buy in (True, False):
                expected = sum(1 for o in live.values() if o.is_buy != taker_buy and (o.price <= limit if taker_buy else o.price >= limit))
                assert book.crossing(taker_buy, limit) == expected
    assert list(book) == list(book.side(True).values()) + list(book.side(False).values())
