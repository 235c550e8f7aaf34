"""The engine refuses a signed cancel-all whose floor the spec would not raise (the engine is the single
writer: the mempool's intake check can race a forced cancel-all from L1 that raises the floor first).
Over the real API on anvil: tests/l1/sequencer/test_cancel_all_refused.py."""

from __future__ import annotations

import pytest

from optinode.exchange.orders import CancelAll, Placement, Status
from optinode.services.engine import Rejected
from optinode.services.journal import Journal
from optinode.spec.constants import NONCE_HORIZON
from optinode.spec.errors import ErrorCode
from optinode.testing.world import ETH_PRICE, ETH_STEP

from tests.services.conftest import FakeL1
from tests.services.test_engine import Harness, db, funded  # noqa: F401 - the db fixture

SIGNED = b"\x01" * 65  # (the engine does not check signatures: intake did)


@pytest.mark.trio
@pytest.mark.parametrize(("floor", "code"), [(NONCE_HORIZON + 1, ErrorCode.NONCE_TOO_HIGH), (0, ErrorCode.NONCE_TOO_LOW)])
async def test_a_refused_cancel_all_cancels_nothing_and_logs_nothing(db, world, nursery, floor, code) -> None:
    h = await Harness(db, nursery).start()
    await funded(h, world, FakeL1(db, world))
    resting = await h.submitter.submit_book(Placement(world.order("alice", is_buy=True, size=ETH_STEP, limit_price=ETH_PRICE // 2, nonce=3)))
    assert resting.result.status is Status.RESTING
    logged = Journal(db).next_seq()
    with pytest.raises(Rejected) as refused:
        await h.submitter.submit_book(CancelAll(0, floor, SIGNED))
    assert refused.value.code == code
    assert h.engine.matcher.get(resting.result.order_hash) is not None  # still resting
    assert Journal(db).next_seq() == logged and h.engine.state.accounts[0].nonce_base == 0
    # a valid one still works, and cancels
    accepted = await h.submitter.submit_book(CancelAll(0, 4, SIGNED))
    assert accepted.seq == logged and h.engine.matcher.get(resting.result.order_hash) is None
