"""The pinned order flow of tests/exchange/test_pinned_flow.py through the real engine: the log's
records (the batch bytes), the order history it stores and the root of the batch it cuts are pinned
byte for byte, so a speed change of the engine's per-command path (`process`, `_book_submission`,
`_book_records`, the history) cannot change what reaches L1 or what `optinode_getOrder` answers."""

from __future__ import annotations

import msgspec
import pytest
import trio

from optinode.exchange.history import History
from optinode.exchange.orders import CancelAll, CancelOrder, Placement
from optinode.services import engine as engine_mod
from optinode.spec.commitment import compute_state_root
from optinode.spec.crypto import keccak
from optinode.spec.state import copy_state
from optinode.store import keys
from optinode.store.memory import open_memory
from tests.exchange.test_pinned_flow import new_world, run_matcher_flow
from tests.services.conftest import make_policy

PINNED_ENGINE = {
    "records": "a934410905d07b5c8a83d959c8875869eca079a81caae5b53ef42e66480a215d",
    "history": "c8dc8062c7afb2086155368fc134eda52dd547b77db57a4203b3d3a368f01dec",
    "root": "8da0dd61a679b78d6c59036121c4779da34bb3f030aab62c00eaa109730ca25f",
}


class _Reply:
    def __init__(self) -> None:
        self.answers: list = []

    def send_nowait(self, answer: object) -> None:
        self.answers.append(answer)


async def engine_digests(fresh_history_at: int | None = None) -> dict[str, str]:
    """`fresh_history_at`: give the engine a new `History` (an empty memory, as after a restart)
    after that many groups: the answers must not depend on what the history remembers."""
    # The book commands of the pinned flow (the price moves are spec transactions with their own
    # L1 times: the matcher-level pin covers them; here the flow runs at one batch time).
    _, _, log, _ = run_matcher_flow()
    commands = [c for kind, c in log if kind == "cmd" and type(c) in (Placement, CancelOrder, CancelAll)]
    genesis = copy_state(new_world().state)
    store = open_memory("pinned")
    engine = engine_mod.Engine(store, genesis, policy=make_policy(), confirmations=0, deadlines=engine_mod.Deadlines(3600, 3600))
    reply = _Reply()
    batches_send, batches_receive = trio.open_memory_channel(16)
    messages = [engine_mod.BookSubmission(c, reply) for c in commands]
    for group, i in enumerate(range(0, len(messages), 7)):
        if group == fresh_history_at:
            engine.history = History(store)
        await engine.process(messages[i:i + 7], batches_send)
    record = await engine.cut(batches_send, "test")
    assert (await batches_receive.receive()) == record
    entries = list(engine.journal.entries(0))
    assert sum(len(e.records) for e in entries) > 150  # the flow fills (and its cancel-alls post CancelAlls)
    records = msgspec.msgpack.encode([(e.seq, e.l1_timestamp, e.records, e.codes) for e in entries])
    start = keys.prefix_of(keys.Prefix.ORDER)
    history = msgspec.msgpack.encode(list(store.iterate(start=start, stop=keys.prefix_end(start))))
    assert record.state_root == compute_state_root(engine.state)
    # What the engine's history remembers is what the store holds.
    stored = History(store)
    hashes = [engine.matcher.order_hash(c.order) for c in commands if type(c) is Placement]
    assert [engine.history.get(h) for h in hashes] == [stored.get(h) for h in hashes]
    return {"records": keccak(records).hex(), "history": keccak(history).hex(), "root": record.state_root.hex()}


@pytest.mark.trio
@pytest.mark.parametrize("fresh_history_at", [None, 40])
async def test_the_engine_flow_is_pinned(fresh_history_at) -> None:
    assert await engine_digests(fresh_history_at) == PINNED_ENGINE
