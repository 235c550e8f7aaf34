"""Property tests of the matcher on random order flows (hypothesis).

Each flow mixes placements (all order types, sizes up to past the accounts' margin, prices around
the oracle, short expiries), cancels, cancel-alls and oracle price moves (spec transactions the
engine interleaves, each followed by an ExpireOrders command). Checked on every flow:

- (on both markets: a position in one counts in the margin of the other) every emitted Trade, replayed in order with the same price moves by `spec.state_transition` on an
  independent copy of the starting state, applies OK, and the copy ends equal to the live state;
- a fill of a reduce-only order never grows or flips that account's position;
- a rejected order emits nothing and leaves the state exactly as it was, and a rejection for a
  spec rule names a spec ErrorCode;
- the book is a function of the command log: replaying it on a fresh state and matcher gives the
  same books, the same Trades and the same state.
"""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optinode.exchange.matching import Matcher, UnknownOrder
from optinode.exchange.orders import CancelAll, CancelOrder, Command, ExpireOrders, Placement, Reason, Status, TimeInForce
from optinode.spec.errors import ErrorCode
from optinode.spec.state import copy_state
from optinode.spec.transition import state_transition
from optinode.spec.types import OraclePrice, Trade
from optinode.testing.world import BTC, BTC_PRICE, BTC_STEP, BTC_TICK, ETH, ETH_PRICE, ETH_STEP, ETH_TICK, World

NAMES = ("alice", "bob", "carol", "dave", "alice-2")
FUNDS = 1_000 * 10**6
EXCHANGE_REASONS = {r.value for r in Reason}
# Per market: (lot in base units, genesis price, tick, one price step of a move). A lot is ~3 USD in
# both markets, so the same lot counts reach past the accounts' margin in either; positions in one
# market count in the other's margin (the spec values the whole account).
MARKETS = {
    ETH: (ETH_STEP, ETH_PRICE, ETH_TICK, 10**5),  # 0.001 ETH; moves of 1 USD/ETH
    BTC: (50 * BTC_STEP, BTC_PRICE, BTC_TICK, 2 * 10**7),  # 0.00005 BTC; moves of 20 USD/BTC
}

place = st.tuples(
    st.just("place"),
    st.sampled_from(NAMES),
    st.sampled_from([ETH, ETH, BTC]),
    st.booleans(),  # buy
    st.one_of(st.integers(1, 20), st.integers(100, 4_000)),  # lots: small, or up to past the margin
    st.integers(-6, 6),  # ticks off the genesis price
    st.sampled_from(list(TimeInForce)),
    st.sampled_from([False, False, False, True]),  # reduce-only
    st.one_of(st.none(), st.integers(0, 30)),  # expiry: far, or seconds after now
)
cancel = st.tuples(st.just("cancel"), st.integers(0, 50))
cancel_all = st.tuples(st.just("cancel_all"), st.sampled_from(NAMES), st.integers(0, 8))
price = st.tuples(st.just("price"), st.sampled_from([ETH, BTC]), st.integers(-300, 300))  # steps off the genesis price
steps = st.lists(st.one_of(place, place, place, place, place, place, cancel, cancel_all, price, price), min_size=1, max_size=40)


def new_world() -> World:
    w = World()
    for name in NAMES:
        w.deposit(name, FUNDS, owner="alice" if name == "alice-2" else None)
    return w


def placement_of(w: World, step: tuple) -> Placement:
    """The signed placement of a flow's ("place", ...) step, on the world as it is now."""
    _, name, market, buy, lots, ticks, tif, reduce_only, expiry = step
    lot, genesis_price, tick, _ = MARKETS[market]
    fields = {} if expiry is None else {"expiry": w.state.time + expiry}
    order = w.order(name, market=market, is_buy=buy, size=lots * lot, limit_price=genesis_price + ticks * tick, **fields)
    return Placement(order, tif, reduce_only)


def run_flow(flow):
    """Apply a flow to a fresh world + matcher. Returns (world, matcher, log, emitted, start, reduce-only fills)."""
    w = new_world()
    start = copy_state(w.state)
    m = Matcher(w.state)
    log: list = []  # ("cmd", command) | ("tx", spec transaction): what the engine's durable log holds
    emitted: list = []  # the spec transactions, in order: trades and price moves
    reduce_only_hashes: set[bytes] = set()
    rejected_hashes: set[bytes] = set()
    filled_hashes: set[bytes] = set()
    placed: list[tuple[int, bytes]] = []
    for step in flow:
        kind = step[0]
        if kind == "place":
            command = placement_of(w, step)
            order, reduce_only = command.order, command.reduce_only
            before = msgspec.msgpack.encode(w.state)
            result = m.apply(command, w.ctx)
            if result.logged:  # what the engine logs; the rebuild below proves nothing else is needed
                log.append(("cmd", command))
            else:
                assert result.status is Status.REJECTED and not result.cancelled
            for fill in result.fills:
                filled_hashes.update((fill.maker_hash, fill.taker_hash))
            if result.status is Status.REJECTED:
                rejected_hashes.add(result.order_hash)
                assert result.fills == ()
                assert msgspec.msgpack.encode(w.state) == before, "a rejected order changed the state"
                assert result.reason in ErrorCode.__members__ or result.reason in EXCHANGE_REASONS
            else:
                if reduce_only:
                    reduce_only_hashes.add(result.order_hash)
                placed.append((order.account_id, result.order_hash))
            emitted.extend(result.trades)
        elif kind == "cancel":
            if placed:
                account_id, order_hash = placed[step[1] % len(placed)]
                command = CancelOrder(account_id, order_hash)
                try:
                    m.apply(command)
                except UnknownOrder:
                    continue  # not logged: the engine answers the client and records nothing
                log.append(("cmd", command))
        elif kind == "cancel_all":
            command = CancelAll(w.ids[step[1]], step[2])
            m.apply(command)
            log.append(("cmd", command))
        else:
            _, market, moves = step
            _, genesis_price, _, move = MARKETS[market]
            new_price, at = genesis_price + moves * move, w.state.time + 5
            tx = w.prices(market, [(0, new_price, at), (1, new_price, at)])
            assert state_transition(w.state, tx, w.ctx).ok
            log.append(("tx", tx))
            emitted.append(tx)
            m.apply(ExpireOrders())
            log.append(("cmd", ExpireOrders()))
    # A rejected order never trades, then or later (it never rests).
    assert not rejected_hashes & filled_hashes
    return w, m, log, emitted, start, reduce_only_hashes


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_every_emitted_trade_applies_and_reduce_only_never_grows(flow) -> None:
    w, m, log, emitted, start, reduce_only_hashes = run_flow(flow)
    shadow = start
    digests = {}
    for tx in emitted:
        if isinstance(tx, Trade):
            sides = []
            for handle in (tx.maker, tx.taker):
                if hasattr(handle, "slot"):
                    sides.append(digests[handle.slot])
                else:
                    sides.append(m.order_hash(handle))
            market = tx.maker.market if not hasattr(tx.maker, "slot") else shadow.slots[tx.maker.slot].market
            positions_before = {a: (acct.positions[market].size if market in acct.positions else 0) for a, acct in shadow.accounts.items()}
            next_slot = shadow.next_slot
        receipt = state_transition(shadow, tx, w.ctx)
        assert receipt.ok, f"an emitted {type(tx).__name__} is invalid: {receipt.code.name}"
        if isinstance(tx, Trade):
            # follow slot ids the way the spec assigns them (maker first), to know each side's order
            for handle, order_hash in zip((tx.maker, tx.taker), sides):
                if not hasattr(handle, "slot") and handle.size > tx.size:
                    digests[next_slot] = order_hash
                    next_slot += 1
            for handle, order_hash in zip((tx.maker, tx.taker), sides):
                if order_hash in reduce_only_hashes:
                    account_id = handle.account_id if not hasattr(handle, "slot") else shadow.slots[handle.slot].account_id
                    old = positions_before.get(account_id, 0)
                    new = shadow.accounts[account_id].positions.get(market)
                    new = new.size if new else 0
                    assert abs(new) < abs(old) and old * new >= 0, "a reduce-only fill grew or flipped a position"
    assert msgspec.msgpack.encode(shadow) == msgspec.msgpack.encode(w.state)


def _replay_log(world: World, matcher: Matcher, log: list) -> list:
    """Replay a flow's log on `world` and `matcher` (commands through the log's encoding, as a restart
    reads them); returns the spec transactions it emits, in order."""
    replayed: list = []
    for kind, item in log:
        if kind == "tx":
            assert state_transition(world.state, item, world.ctx).ok
            replayed.append(item)
        else:
            item = msgspec.msgpack.decode(msgspec.msgpack.encode(item), type=Command)
            result = matcher.apply(item, world.ctx)
            if isinstance(item, Placement):
                replayed.extend(result.trades)
    return replayed


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_the_book_is_rebuilt_exactly_from_the_command_log(flow) -> None:
    w, m, log, emitted, start, _ = run_flow(flow)
    rebuilt_world = new_world()
    rebuilt = Matcher(rebuilt_world.state)
    replayed = _replay_log(rebuilt_world, rebuilt, log)
    assert rebuilt.snapshot() == m.snapshot()
    assert replayed == emitted
    assert msgspec.msgpack.encode(rebuilt_world.state) == msgspec.msgpack.encode(w.state)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.floats(0, 1))
def test_a_checkpoint_with_the_books_plus_the_later_log_equals_the_whole_log(flow, where) -> None:
    """Issue 9 open item 2: a full snapshot anywhere in the log (state and `MatcherSnapshot`, through the
    store's own codecs; the genesis checkpoint's form), restored and followed by the rest of the log, gives the same books, Trades
    and state as the whole log from the start."""
    from optinode.exchange.matching import MatcherSnapshot
    from optinode.services.journal import decode_state, encode_state
    from optinode.store.codec import Codec

    w, m, log, emitted, _, _ = run_flow(flow)
    split = int(where * len(log))
    first = new_world()
    first_matcher = Matcher(first.state)
    head = _replay_log(first, first_matcher, log[:split])
    books = Codec(MatcherSnapshot)
    restored_world = new_world()
    restored_world.state = decode_state(encode_state(first.state))
    restored = Matcher.restore(restored_world.state, books.decode(books.encode(first_matcher.export())))
    assert restored.snapshot() == first_matcher.snapshot()
    tail = _replay_log(restored_world, restored, log[split:])
    assert restored.snapshot() == m.snapshot()
    assert head + tail == emitted
    assert msgspec.msgpack.encode(restored_world.state) == msgspec.msgpack.encode(w.state)


# Flows that trade (the flows above mostly refuse or rest): small GTC orders either side of the price
# on both markets, with cancels and price moves, so that resting orders fill, partly fill and leave
# the book across the checkpoints.
trading = st.lists(st.one_of(*[st.tuples(st.just("place"), st.sampled_from(NAMES), st.sampled_from([ETH, ETH, BTC]), st.booleans(),
                                         st.integers(1, 5), st.integers(-3, 3), st.just(TimeInForce.GTC), st.just(False),
                                         st.just(None))] * 6, cancel, cancel_all, price),
                   min_size=8, max_size=40)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(steps, trading), st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_incremental_checkpoints_read_back_exactly_and_the_later_log_equals_the_whole_log(flow, wheres) -> None:
    """Issue 10 (the cut's cost): checkpoints written as the rows that changed since the previous one
    (the state's dirty leaves, `Matcher.take_changes`) with an undo record each, through the real
    `Journal` on a store: every checkpoint reads back (`restore_point`, the later ones rolled back
    through their undo records) to exactly the state and books at its point, and the last one
    followed by the rest of the log gives the same books, Trades and state as the whole log."""
    from optinode.services.journal import BatchRecord, Checkpoint, CheckpointDelta, Journal, encode_globals_row
    from optinode.store.memory import open_memory

    w, m, log, emitted, _, _ = run_flow(flow)
    splits = sorted({int(where * len(log)) for where in wheres} | {len(log)})  # (the last: every change is in a checkpoint)
    live = new_world()
    live_matcher = Matcher(live.state)
    journal = Journal(open_memory())
    journal.write_genesis(live.state, live_matcher.export())
    live.state.dirty_accounts.clear()
    live.state.dirty_slots.clear()
    done, head, at = 0, [], {}
    for index, split in enumerate(splits, start=1):
        head += _replay_log(live, live_matcher, log[done:split])
        done = split
        state = live.state
        delta = CheckpointDelta(state, set(state.dirty_accounts), set(state.dirty_slots), live_matcher.take_changes())
        state.dirty_accounts.clear()
        state.dirty_slots.clear()
        record = BatchRecord(index=index, first_seq=0, end_seq=split, record_count=0, data_bytes=0, accounts_root=b"", slots_root=b"",
                             globals_hash=b"", deposits_done=0, forced_done=0, state_root=b"")
        journal.cut(record, Checkpoint(batch_index=index, next_seq=split, l1_time=0, globals=encode_globals_row(state),
                                       book_seq=live_matcher.seq), delta)
        at[index] = (live_matcher.snapshot(), msgspec.msgpack.encode(state))
    unmarked = lambda state: msgspec.msgpack.encode(msgspec.structs.replace(state, dirty_accounts=set(), dirty_slots=set()))  # noqa: E731
    for index, split in enumerate(splits, start=1):
        _, state, book = journal.restore_point(index)
        restored = Matcher.restore(state, book)
        assert (restored.snapshot(), msgspec.msgpack.encode(state)) == at[index]
        restored_world = new_world()
        restored_world.state = state
        tail = _replay_log(restored_world, restored, log[split:])
        assert restored.snapshot() == m.snapshot()
        assert emitted[:len(emitted) - len(tail)] + tail == emitted
        assert unmarked(restored_world.state) == unmarked(w.state)
