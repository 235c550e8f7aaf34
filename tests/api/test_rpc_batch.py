"""Orders sent in one JSON-RPC batch: taken in together (one mempool request, one group commit), yet
answered exactly as one request after the other would be — in order, each with its own result or
error, and an order later in the batch sees the book the earlier ones left."""

from __future__ import annotations

import httpx
import pytest

from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK, FAR_EXPIRY

from tests.api.test_rpc import api  # noqa: F401 - the fixture

pytestmark = pytest.mark.trio


def order(account_id: int, *, is_buy: bool, price: int, nonce: int, size: int = ETH_STEP) -> dict:
    return {"accountId": account_id, "market": 0, "isBuy": is_buy, "size": str(size), "limitPrice": str(price),
            "feeRate": 0, "expiry": str(FAR_EXPIRY), "nonce": str(nonce)}


async def test_a_batch_of_orders_is_answered_in_order_as_single_requests_would_be(api) -> None:  # noqa: F811
    alice, bob = api.client("alice"), api.client("bob")
    rest = order(0, is_buy=True, price=ETH_PRICE, nonce=1, size=2 * ETH_STEP)
    take = order(1, is_buy=False, price=ETH_PRICE - ETH_TICK, nonce=1)
    again = order(1, is_buy=False, price=ETH_PRICE - ETH_TICK, nonce=2)
    wrong = order(0, is_buy=True, price=ETH_PRICE, nonce=5)
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "optinode_sendOrder", "params": [rest, alice.sign("Order", rest)]},
        {"jsonrpc": "2.0", "id": 2, "method": "optinode_sendOrder", "params": [take, bob.sign("Order", take)]},
        {"jsonrpc": "2.0", "id": 3, "method": "optinode_sendOrder", "params": [take, bob.sign("Order", take)]},  # the same again
        {"jsonrpc": "2.0", "id": 4, "method": "optinode_sendOrder", "params": [wrong, bob.sign("Order", wrong)]},  # bob signs alice's
        {"jsonrpc": "2.0", "id": 5, "method": "optinode_sendOrder", "params": [{"accountId": 0}, "0x00"]},
        {"jsonrpc": "2.0", "id": 6, "method": "optinode_getBook", "params": [0, 5]},
        {"jsonrpc": "2.0", "method": "optinode_sendOrder", "params": [again, bob.sign("Order", again)]},  # a notification
        {"jsonrpc": "2.0", "id": 7, "method": "optinode_getOrder", "params": []},
    ]
    answers = await api.run(lambda: httpx.post(api.url, json=batch, timeout=30).json())
    assert [a["id"] for a in answers] == [1, 2, 3, 4, 5, 6, 7]
    first, second, third, fourth, fifth, book, seventh = answers
    assert first["result"]["status"] == "resting" and first["result"]["seq"] is not None
    assert second["result"]["status"] == "filled" and second["result"]["fills"][0]["maker"] == first["result"]["hash"]
    assert third["error"]["code"] == -32000 and third["error"]["data"] == "DUPLICATE_ORDER"
    assert fourth["error"]["data"] == "WRONG_SIGNER"
    assert fifth["error"]["code"] == -32602 and seventh["error"]["code"] == -32602
    # getBook (id 6) comes before the notification in the batch: one step is left
    assert book["result"]["bids"] == [[ETH_PRICE, ETH_STEP, 1]]
    final = await api.run(alice.call, "optinode_getBook", 0, 5)
    assert final["bids"] == []  # the notification's order (bob, nonce 2) filled the rest after getBook
    assert api.h.engine.matcher.get(bytes.fromhex(first["result"]["hash"][2:])) is None
