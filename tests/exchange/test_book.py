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
