"""What the market services read from the engine, in one narrow place (docs/market-services.md).

The oracle feed, the funding service and the liquidator run in the sequencer's trio process next
to the engine, the single writer. They never write: they read the spec state and the books between
their awaits (trio switches tasks only at an await, so a read sees a state between two groups),
and they change it only by submitting spec transactions through the engine's inbox like any client.
`EngineView` is that read side.
"""

from __future__ import annotations

from collections.abc import Callable

from optinode.spec.state import State


class EngineView:
    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]  # services.engine.Engine
        self.engine = engine

    @property
    def state(self) -> State:
        return self.engine.state

    def l1_time(self) -> int:
        """The newest L1 time the node has seen: what an oracle or funding timestamp may be at most
        (a sample after the open batch's time cuts the batch, engine._needs_later_time)."""
        return max(self.engine.head_time, self.engine.l1_time)

    def tx_time(self) -> int:
        """The L1 time a transaction submitted now runs at: the open batch's, or the next one's."""
        batch_time = self.engine.batch_time
        return batch_time if batch_time is not None else self.l1_time()

    def mid(self, market: int) -> int | None:
        """The book's mid price (rounded down), None when a side is empty."""
        book = self.engine.matcher.books[market]
        bid, ask = book.best(True), book.best(False)
        if bid is None or ask is None:
            return None
        return (bid.price + ask.price) // 2

    def account_of(self, owner: bytes) -> int | None:
        """The lowest account id the L1 address owns (the one deposits credit)."""
        return self.engine.owners.get(owner)

    def nonce_reserved(self, account_id: int) -> Callable[[int], bool]:
        """Whether a nonce of the account is held by one of its resting orders."""
        reserved = self.engine.matcher.reserved
        return lambda nonce: (account_id, nonce) in reserved

    def on_accounts_changed(self, listener: Callable[[set[int]], None]) -> None:
        self.engine.account_listeners.append(listener)
