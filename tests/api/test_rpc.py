"""The public JSON-RPC API in process: an engine on LevelDB, the rpc service on 127.0.0.1 (services/http_server.py:
h11, wsproto), and clients from tests/api/client.py (eth-account + httpx + websockets, no optinode
imports) driven from worker threads, as separate programs would be."""

from __future__ import annotations

from functools import partial

import msgspec
import pytest
import trio

from optinode.exchange.mempool import Mempool
from optinode.services import rpc
from optinode.spec.commitment import compute_state_root
from optinode.store.db import open_store
from optinode.testing.world import CHAIN_ID, ETH_PRICE, ETH_STEP, ETH_TICK, FAR_EXPIRY, ROLLUP_ADDRESS, test_key

from tests.api.client import Client, RpcFailure, Subscription
from tests.services.conftest import FakeL1
from tests.services.test_engine import Harness, funded

pytestmark = pytest.mark.trio


def private_key(name: str) -> str:
    return "0x" + test_key(name).private.secret.hex()


class Api:
    def __init__(self, harness: Harness, port: int) -> None:
        self.h, self.url, self.ws = harness, f"http://127.0.0.1:{port}/", f"ws://127.0.0.1:{port}/"

    def client(self, name: str) -> Client:
        return Client(self.url, private_key(name), chain_id=CHAIN_ID, verifying_contract="0x" + ROLLUP_ADDRESS.hex())

    async def run(self, fn, *args, **kwargs):
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs))


@pytest.fixture
async def api(tmp_path, world, nursery):
    store = open_store(tmp_path / "db", identity="test")
    h = await Harness(store, nursery).start()
    await funded(h, world, FakeL1(store, world))
    port = await nursery.start(rpc.run, rpc.RpcDeps(h.engine, h.submitter, Mempool(h.engine.state)))
    yield Api(h, port)
    nursery.cancel_scope.cancel()


async def test_an_order_rests_is_filled_by_a_crossing_order_and_the_fill_is_pushed(api) -> None:
    alice, bob = api.client("alice"), api.client("bob")
    fills = await api.run(Subscription, api.ws, "fills", {"account": 0})
    book = await api.run(Subscription, api.ws, "book", {"market": 0, "depth": 5})
    assert (await api.run(book.next))["bids"] == []  # the current book comes first
    rest = await api.run(alice.send_order, 0, market=0, is_buy=True, size=3 * ETH_STEP, price=ETH_PRICE, nonce=1, expiry=FAR_EXPIRY)
    assert rest["status"] == "resting" and rest["fills"] == [] and rest["seq"] is not None
    assert (await api.run(book.next))["bids"] == [[ETH_PRICE, 3 * ETH_STEP, 1]]
    got = await api.run(alice.call, "optinode_getBook", 0, 5)
    assert got["bids"] == [[ETH_PRICE, 3 * ETH_STEP, 1]] and got["asks"] == []
    take = await api.run(bob.send_order, 1, market=0, is_buy=False, size=ETH_STEP, price=ETH_PRICE - 2 * ETH_TICK, nonce=1, expiry=FAR_EXPIRY)
    assert take["status"] == "filled" and take["filled"] == ETH_STEP
    [fill] = take["fills"]
    assert fill["price"] == ETH_PRICE and fill["maker"] == rest["hash"] and fill["makerAccount"] == 0
    assert await api.run(fills.next) == fill  # pushed to alice's subscription after the durable write
    order = await api.run(alice.call, "optinode_getOrder", rest["hash"])
    assert order["status"] == "partially_filled" and order["remaining"] == 2 * ETH_STEP
    account = await api.run(alice.call, "optinode_getAccount", "0x" + test_key("alice").address.hex())
    assert account["id"] == 0 and account["positions"][0]["size"] == ETH_STEP and len(account["openOrders"]) == 1
    cancelled = await api.run(alice.cancel_order, 0, rest["hash"])
    assert cancelled["cancelled"][0]["reason"] == "USER_CANCELLED"
    assert (await api.run(alice.call, "optinode_getOrder", rest["hash"]))["status"] == "cancelled"
    with pytest.raises(RpcFailure) as replay:  # the same signed order again
        await api.run(bob.send_order, 1, market=0, is_buy=False, size=ETH_STEP, price=ETH_PRICE - 2 * ETH_TICK, nonce=1, expiry=FAR_EXPIRY)
    assert replay.value.error["code"] == -32000 and replay.value.error["data"] == "NONCE_USED"
    post_only = await api.run(bob.send_order, 1, market=0, is_buy=True, size=ETH_STEP, price=ETH_PRICE, nonce=2, expiry=FAR_EXPIRY, timeInForce="post_only")
    assert post_only["status"] == "resting"
    crossing = await api.run(alice.send_order, 0, market=0, is_buy=False, size=ETH_STEP, price=ETH_PRICE, nonce=3, expiry=FAR_EXPIRY, timeInForce="post_only")
    assert crossing["status"] == "rejected" and crossing["reason"] == "POST_ONLY_WOULD_CROSS"
    withdrawn = await api.run(alice.withdraw, 0, 10 * 10**6, nonce=4, expiry=FAR_EXPIRY)
    assert withdrawn["status"] == "accepted"
    status = await api.run(alice.call, "optinode_status")
    assert status["l2"]["stateRoot"] == "0x" + compute_state_root(api.h.engine.state).hex()
    for sub in (fills, book):
        await api.run(sub.close)


async def test_batched_requests_and_standard_errors(api) -> None:
    import httpx

    def post(body: bytes | str):
        return httpx.post(api.url, content=body, headers={"content-type": "application/json"}).json()

    batch = await api.run(post, '[{"jsonrpc":"2.0","id":1,"method":"optinode_status"},{"jsonrpc":"2.0","id":2,"method":"nope"},'
                                '{"jsonrpc":"2.0","method":"optinode_status"},{"jsonrpc":"2.0","id":3,"method":"optinode_getBook","params":[9]}]')
    assert [r["id"] for r in batch] == [1, 2, 3]  # the notification (no id) gets no answer
    assert "result" in batch[0] and batch[1]["error"]["code"] == -32601 and batch[2]["error"]["data"] == "MARKET_NOT_FOUND"
    assert (await api.run(post, "{nope"))["error"]["code"] == -32700
    assert (await api.run(post, "[]"))["error"]["code"] == -32600
    assert (await api.run(post, '{"jsonrpc":"1.0","id":1,"method":"optinode_status"}'))["error"]["code"] == -32600
    assert (await api.run(post, '{"jsonrpc":"2.0","id":1,"method":"optinode_getBook","params":["x"]}'))["error"]["code"] == -32602
    bad_sig = {"accountId": 0, "market": 0, "isBuy": True, "size": "1000000", "limitPrice": str(ETH_PRICE), "feeRate": 0, "expiry": str(FAR_EXPIRY), "nonce": "9"}
    with pytest.raises(RpcFailure) as wrong:
        await api.run(api.client("bob").call, "optinode_sendOrder", bad_sig, api.client("bob").sign("Order", bad_sig))
    assert wrong.value.error["data"] == "WRONG_SIGNER"


async def test_a_cancel_answers_an_order_still_waiting_in_the_mempool(tmp_path, world, nursery) -> None:
    store = open_store(tmp_path / "db2", identity="test")
    h = await Harness(store, nursery).start()
    await funded(h, world, FakeL1(store, world))
    # No rpc.run: nothing feeds the mempool's queue to the engine, so the order stays queued.
    deps = rpc.RpcDeps(h.engine, h.submitter, Mempool(h.engine.state))
    alice = Api(h, 0).client("alice")
    order = {"accountId": 0, "market": 0, "isBuy": True, "size": str(ETH_STEP), "limitPrice": str(ETH_PRICE), "feeRate": 0,
             "expiry": str(FAR_EXPIRY), "nonce": "1"}
    answers = []

    async def place() -> None:
        answers.append(msgspec.to_builtins(await rpc.send_order(deps, [order, alice.sign("Order", order)], None)))  # (as encoded)

    nursery.start_soon(place)
    while not deps.waiting:
        await trio.sleep(0.01)
    [order_hash] = deps.waiting
    before = h.engine.next_seq
    cancel = {"accountId": 0, "orderHash": "0x" + order_hash.hex()}
    result = await rpc.cancel_order(deps, [cancel, alice.sign("CancelOrder", cancel)], None)
    assert result == {"cancelled": [{"hash": cancel["orderHash"], "accountId": 0, "reason": "USER_CANCELLED"}], "seq": None}
    await trio.testing.wait_all_tasks_blocked()
    [answer] = answers
    assert answer["status"] == "cancelled" and answer["reason"] == "USER_CANCELLED" and answer["seq"] is None
    assert h.engine.next_seq == before and not deps.waiting and h.engine.matcher.get(order_hash) is None
    assert len(deps.mempool.queue) == 1 and order_hash in deps.mempool.withdrawn  # dropped when the queue is next served
