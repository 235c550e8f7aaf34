"""Which accounts can have become liquidatable since they were last looked at, without a full scan.

A production liquidation engine does not value every account on every price tick: it keeps each
account's distance to its maintenance line and re-checks only those that a move could have pushed
over it. `RiskIndex` does that with a bound that is exact integer arithmetic, so it can only
re-check too often, never miss an account (docs/market-services.md, "The risk index").

**The bound.** Fix reference prices `P_ref` and funding indices `I_ref` (one set for the whole
index). For market m, the distance of the current state from the reference is

    r_m = (|p_m - P_ref,m| × (1 + maintenance_m) + |I_m - I_ref,m|) / P_ref,m      and  R = max_m r_m.

An account with positions `s_m` loses at most `|s_m| × (|Δp| × (1 + maintenance) + |ΔI|)` of its
buffer `B = TV - TR` (value minus maintenance risk) in market m when the price moves by Δp and the
funding index by ΔI, plus rounding (a unit per position for value, risk and funding each). By the
triangle inequality, between an evaluation at distance R₁ and a later state at distance R₂ the
loss is at most `S × (R₁ + R₂) + 3n`, where `S = Σ |s_m| × P_ref,m` and n is the number of
positions. So the account cannot be liquidatable while

    R₂ < key = (B₁ - 3n - 1) / S - R₁

and the index keeps accounts sorted by that key: after any price or funding change, the accounts to
re-check are those with key <= R, a prefix of the sorted list (`due`). The work per tick is the
number of accounts near their line, not the number of accounts.

**Keeping it current.** Trades, deposits, withdrawals and liquidations change an account's buffer:
the engine hands the liquidator the accounts its transactions touched (`mark`), and they are
re-indexed before the next look. When R grows past `rebase` (a 5% move by default) the keys of
accounts evaluated long ago have become loose, so the index re-anchors at the current prices and
re-indexes everyone: a full scan, once per large move rather than once per tick.

**Parking.** An account below maintenance for which nothing valid can be done now (no opposite
holder can absorb its deficit, the liquidator lacks margin) would be due on every round. The
liquidator `park`s it with a token of what its options depend on (prices, funding, the insurance
fund, the liquidator's own account); it is looked at again once the token changes or the engine
changes the account, not on every round.

It also keeps, per market, who holds a position and its size (`holders`): the counterparties a
deleverage may choose from.
"""

from __future__ import annotations

from sortedcontainers import SortedList

from optinode.spec.constants import FRACTION_ONE, PRICE_ONE
from optinode.spec.margin import compute_settled_funding, get_value_and_risk
from optinode.spec.state import State

SCALE = 10**18  # fixed point of the distances and keys


class RiskIndex:
    def __init__(self, state: State, *, rebase_ppm: int = 50_000, exclude: set[int] | None = None) -> None:
        self.state = state
        self.rebase = rebase_ppm * SCALE // FRACTION_ONE
        self.exclude = exclude if exclude is not None else set()
        self.queue: SortedList = SortedList()  # (key, account_id)
        self.keys: dict[int, int] = {}
        self.holders: list[dict[int, int]] = [{} for _ in state.markets]
        self.stale: set[int] = set()
        self.parked: dict[int, object] = {}  # account -> the token it was parked under
        self.rebases = 0
        self.evaluations = 0
        self._anchor()
        self.mark(state.accounts)

    # --- the reference --------------------------------------------------------------------------

    def _anchor(self) -> None:
        self.ref_prices = [m.price for m in self.state.markets]
        self.ref_indices = [m.funding_index for m in self.state.markets]

    def distance(self) -> int:
        """R: the current prices' and funding indices' distance from the reference (SCALE, rounded up)."""
        worst = 0
        configs = self.state.config.markets
        for market, (now, p_ref, i_ref) in enumerate(zip(self.state.markets, self.ref_prices, self.ref_indices)):
            weight = FRACTION_ONE + configs[market].maintenance_margin
            moved = abs(now.price - p_ref) * weight + abs(now.funding_index - i_ref) * FRACTION_ONE
            worst = max(worst, -((-moved * SCALE) // (p_ref * FRACTION_ONE)))
        return worst

    # --- keeping it current -----------------------------------------------------------------------

    def mark(self, account_ids) -> None:
        """These accounts changed (their keys are recomputed before the next `due`)."""
        self.stale.update(account_ids)
        if self.parked:
            for account_id in self.parked.keys() & set(account_ids):
                del self.parked[account_id]

    def park(self, account_id: int, token: object) -> None:
        """Nothing can be done for the account until `token` changes or the account does."""
        self._drop(account_id)
        self.stale.discard(account_id)
        self.parked[account_id] = token

    def unpark(self, token: object) -> None:
        """Accounts parked under another token are looked at again."""
        if self.parked:
            moved = [account_id for account_id, parked in self.parked.items() if parked != token]
            for account_id in moved:
                del self.parked[account_id]
            self.stale.update(moved)

    def _drop(self, account_id: int) -> None:
        key = self.keys.pop(account_id, None)
        if key is not None:
            self.queue.remove((key, account_id))

    def reindex(self, account_id: int, distance: int | None = None) -> int | None:
        """Recompute the account's key at the current state; None if it holds nothing (it cannot be
        liquidated) or is excluded."""
        self._drop(account_id)
        account = self.state.accounts.get(account_id)
        for holders in self.holders:
            holders.pop(account_id, None)
        if account is None or not account.positions:
            return None
        for market, position in account.positions.items():
            self.holders[market][account_id] = position.size
        if account_id in self.exclude:
            return None
        self.evaluations += 1
        collateral, positions, _ = compute_settled_funding(self.state, account)
        value, risk = get_value_and_risk(self.state, collateral, positions)
        buffer = value - risk - 3 * len(positions) - 1
        exposure = sum(abs(p.size) * self.ref_prices[m] for m, p in positions.items())  # S × PRICE_ONE
        if buffer < 0:
            key = -1  # (maybe) liquidatable now
        else:
            r_eval = self.distance() if distance is None else distance
            key = buffer * PRICE_ONE * SCALE // exposure - r_eval
        self.keys[account_id] = key
        self.queue.add((key, account_id))
        return key

    def refresh(self) -> int:
        """Re-index the stale accounts (re-anchoring first if the move since the reference is large);
        returns the current distance."""
        distance = self.distance()
        if distance > self.rebase:
            self._anchor()
            self.rebases += 1
            self.stale.update(self.keys)
            distance = 0
        stale, self.stale = self.stale, set()
        for account_id in sorted(stale):
            self.reindex(account_id, distance)
        return distance

    def due(self) -> list[int]:
        """Accounts that may be below maintenance now (keys <= R), closest to their line first. They
        leave the queue: the caller re-checks each and `mark`s it (or `reindex`es it) afterwards."""
        distance = self.refresh()
        due = [account_id for _, account_id in self.queue.irange(maximum=(distance, float("inf")))]
        for account_id in due:
            self._drop(account_id)
            self.stale.add(account_id)  # re-indexed at the next look unless the caller does it first
        return due
