"""A signed cancel-all the spec refuses (docs/risk.md §7: the floor must rise, by at most 2^32) is
refused over the real public API with the spec's ErrorCode, and nothing acts as if it happened:
the book keeps the orders, the mempool and the book keep accepting nonces above the old floor, and
nothing is logged or posted. Before, the book cancelled every order below the floor and answered
success while L1 never saw the floor rise ("honoured off-chain only"): the user believed their
signed orders dead while their signatures stayed valid on L1, and the book refused nonces L1 allows.
A real `optinode sequencer --api-port` on anvil, the client of tests/api/client.py (eth-account
signatures, plain JSON-RPC)."""

from __future__ import annotations

import pytest

from optinode.spec.constants import NONCE_HORIZON
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import CancelAll

from tests.api.client import RpcFailure
from tests.l1.api.test_trading import funded_clients


@pytest.fixture
def api_node(chain, tmp_path):
    seq = chain.start_sequencer(tmp_path / "seq", api=True)
    yield seq
    assert seq.stop() == 0, seq.log_tail()


def _cancel_all(client, account_id: int, floor: int):
    message = {"accountId": account_id, "nonceFloor": str(floor)}
    return client.call("optinode_cancelOrder", message, client.sign("CancelAll", message))


def _refusal(client, account_id: int, floor: int) -> dict:
    with pytest.raises(RpcFailure) as refused:
        _cancel_all(client, account_id, floor)
    return refused.value.error


def test_a_cancel_all_the_spec_refuses_is_an_error_and_changes_nothing(chain, users, api_node, anvil) -> None:
    alice, bob, a_id, b_id, market = funded_clients(chain, users, api_node, anvil)
    price, step, tick = market["price"], market["stepSize"], market["tickSize"]
    expiry = chain.genesis.time + 86_400
    for nonce in (1, 2):
        assert alice.send_order(a_id, market=0, is_buy=True, size=10 * step, price=price - nonce * tick, nonce=nonce,
                                expiry=expiry)["status"] == "resting"
    book = alice.call("optinode_getBook", 0, 5)["bids"]
    assert len(book) == 2

    # a floor more than 2^32 above the account's (0): the state would never raise it
    error = _refusal(alice, a_id, NONCE_HORIZON + 1)
    assert error["code"] == -32000 and error["data"] == "NONCE_TOO_HIGH"
    assert alice.call("optinode_getBook", 0, 5)["bids"] == book  # nothing cancelled
    # the book and mempool still take alice's nonces as L1 does, and her orders still fill
    assert alice.send_order(a_id, market=0, is_buy=True, size=10 * step, price=price - 3 * tick, nonce=7,
                            expiry=expiry)["status"] == "resting"
    take = bob.send_order(b_id, market=0, is_buy=False, size=10 * step, price=price - tick, nonce=1, expiry=expiry)
    assert take["status"] == "filled"

    # a valid cancel-all, then the same again (a replay) and a lower one: the floor must rise
    assert _cancel_all(alice, a_id, 8)["seq"] is not None
    assert alice.call("optinode_getBook", 0, 5)["bids"] == []
    for floor in (8, 5):
        error = _refusal(alice, a_id, floor)
        assert error["data"] == "NONCE_TOO_LOW", error

    def cancels_on_l1():
        batches = chain.l1_batches()
        return api_node.status()["pending_entries"] == 0 and [tx for b in batches for tx in map(decode_transaction, b.records)
                                                              if isinstance(tx, CancelAll)]

    posted = api_node.wait_for(cancels_on_l1, "the valid CancelAll on L1", mine_every=0.5)
    assert [(c.account_id, c.nonce_floor) for c in posted] == [(a_id, 8)]  # only the valid one was logged and posted
    batches = chain.l1_batches()
    roots, _, state = chain.replay(batches)
    assert roots == [b.state_root for b in batches] and state.accounts[a_id].nonce_base == 8
