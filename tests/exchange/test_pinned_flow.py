"""A fixed order flow pinned to its outcome, byte for byte: the guard of every speed change of the
matcher, the probe and the spec's trade path (docs/benchmarks.md, "The engine thread's CPU").

The flow (a seeded generator, not hypothesis: it must be the same flow on every run) mixes both
markets, every time in force, reduce-only, sizes past the accounts' margin, self-trades (alice and
alice-2 share a key), short expiries, cancels, cancel-alls and oracle price moves each followed by
an `ExpireOrders`. What is pinned:

- the matcher's answers (status, reason, remaining, cancelled orders) and every emitted Trade's
  batch record (`encode_transaction`), hashed in order;
- the state root after the flow (`World.root`, the incremental root checked against the root from
  scratch) and the matcher's snapshot;
- the same for the engine (`services/engine.py`): the log's records and the history's writes, and
  the root of the batch it cuts.

If a change makes one of these differ, it changed what the exchange does, not only how fast: the
digests are only ever updated for a change of the rules, with the reason in the commit message.
"""

from __future__ import annotations

import random

import msgspec

from optinode.exchange.matching import Matcher, UnknownOrder
from optinode.exchange.orders import CancelAll, CancelOrder, ExpireOrders, PlaceResult, TimeInForce
from optinode.spec.crypto import keccak
from optinode.spec.record_codec import encode_transaction
from optinode.spec.transition import state_transition
from optinode.testing.world import BTC, ETH, World
from tests.exchange.test_matching_properties import MARKETS, placement_of

NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "alice-2")
FUNDS = 1_000 * 10**6
STEPS = 900

PINNED_MATCHER = {
    "results": "06167e29bda9f7387db92db96118c476ebd4031b63970d011296ee72b6adb561",
    "root": "624c083072c76ec22688335bfbcb6706f7f61c06ec1389a0cc2ebff51509e87b",
    "snapshot": "309de1c69325a6ba42de893652ceaca2f63395cc0aa38e05895f666e0997cf93",  # (seen holds (expiry, account, nonce) since the cut work)
}


def new_world() -> World:
    w = World()
    for name in NAMES:
        w.deposit(name, FUNDS, owner="alice" if name == "alice-2" else None)
    return w


def flow_steps(seed: int = 20261201) -> list[tuple]:
    rng = random.Random(seed)
    steps: list[tuple] = []
    for _ in range(STEPS):
        r = rng.random()
        if r < 0.80:
            market = ETH if rng.random() < 0.7 else BTC
            lots = rng.randrange(1, 8) if rng.random() < 0.8 else rng.randrange(300, 5_000)
            tif = rng.choices(list(TimeInForce), weights=(8, 1, 1))[0]
            expiry = None if rng.random() < 0.9 else rng.randrange(0, 30)
            steps.append(("place", rng.choice(NAMES), market, rng.random() < 0.5, lots, rng.randrange(-4, 5), tif,
                          rng.random() < 0.1, expiry))
        elif r < 0.90:
            steps.append(("cancel", rng.randrange(0, 10_000)))
        elif r < 0.92:
            steps.append(("cancel_all", rng.choice(NAMES), rng.randrange(0, 40)))
        else:
            steps.append(("price", rng.choice((ETH, BTC)), rng.randrange(-400, 400)))
    return steps


def describe(result: PlaceResult) -> bytes:
    """A placement's answer and its Trades' batch records, as bytes."""
    head = msgspec.msgpack.encode((result.order_hash, result.status.value, result.reason, result.remaining,
                                   [(c.order_hash, c.account_id, c.reason) for c in result.cancelled], result.logged))
    return head + b"".join(encode_transaction(t) for t in result.trades)


def run_matcher_flow() -> tuple[World, Matcher, list, bytes]:
    """The flow on a fresh world and matcher: (world, matcher, the engine-style command log, the
    concatenated answers)."""
    w = new_world()
    m = Matcher(w.state)
    log: list = []  # ("cmd", command) | ("tx", spec transaction)
    out = bytearray()
    placed: list[tuple[int, bytes]] = []
    for step in flow_steps():
        kind = step[0]
        if kind == "place":
            command = placement_of(w, step)
            order = command.order
            result = m.apply(command, w.ctx)
            out += describe(result)
            if result.logged:
                log.append(("cmd", command))
            if result.remaining:
                placed.append((order.account_id, result.order_hash))
        elif kind == "cancel":
            if placed:
                account_id, order_hash = placed[step[1] % len(placed)]
                try:
                    cancelled = m.apply(CancelOrder(account_id, order_hash))
                except UnknownOrder:
                    out += b"unknown"
                    continue
                out += msgspec.msgpack.encode((cancelled.order_hash, cancelled.reason))
                log.append(("cmd", CancelOrder(account_id, order_hash)))
        elif kind == "cancel_all":
            command = CancelAll(w.ids[step[1]], step[2])
            out += msgspec.msgpack.encode([(c.order_hash, c.reason) for c in m.apply(command)])
            log.append(("cmd", command))
        else:
            _, market, moves = step
            _, genesis_price, _, move = MARKETS[market]
            at = w.state.time + 5
            tx = w.prices(market, [(0, genesis_price + moves * move, at), (1, genesis_price + moves * move, at)])
            assert state_transition(w.state, tx, w.ctx).ok
            log.append(("tx", tx))
            out += encode_transaction(tx)
            out += msgspec.msgpack.encode([(c.order_hash, c.reason) for c in m.apply(ExpireOrders())])
            log.append(("cmd", ExpireOrders()))
    return w, m, log, bytes(out)


def matcher_digests() -> dict[str, str]:
    w, m, _, out = run_matcher_flow()
    return {
        "results": keccak(out).hex(),
        "root": w.root().hex(),
        "snapshot": keccak(msgspec.msgpack.encode(m.snapshot())).hex(),
    }


def test_the_flow_is_diverse() -> None:
    """The pin covers what it claims to: fills, rests, each kind of refusal and cancel."""
    _, _, _, out = run_matcher_flow()
    for word in (b"filled", b"partially_filled", b"resting", b"rejected", b"cancelled", b"SELF_TRADE",
                 b"INSUFFICIENT_MARGIN", b"POST_ONLY_WOULD_CROSS", b"REDUCE_ONLY", b"IOC_UNFILLED", b"EXPIRED"):
        assert word in out, word


def test_the_matcher_flow_is_pinned() -> None:
    assert matcher_digests() == PINNED_MATCHER
