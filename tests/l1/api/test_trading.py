"""Acceptance, on anvil with real processes: two clients that know only docs/api.md and
docs/eip712.md (tests/api/client.py: eth-account `sign_typed_data`, plain HTTP JSON-RPC, a
WebSocket; no optinode imports) trade through `optinode sequencer --api-port`. The maker's order
rests and shows in optinode_getBook, the taker's crossing order fills it, the maker receives the
fill over its subscription, and the Trade is in a batch posted on L1 (read from anvil)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import Trade
from optinode.testing.world import USD

from tests.api.client import Client, Subscription


def test_two_clients_trade_over_json_rpc_and_the_trade_lands_on_l1(chain, users, api_node, anvil) -> None:
    d = chain.deployment
    client = {name: Client(api_node.api_url, anvil.private_keys[i], chain_id=d.chain_id, verifying_contract=d.contracts.rollup)
              for name, i in (("alice", 2), ("bob", 3))}
    alice, bob = client["alice"], client["bob"]
    chain.deposit(users["alice"], 1_000 * USD)
    chain.deposit(users["bob"], 1_000 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)
    api_node.wait_for(lambda: alice.call("optinode_status")["queues"]["depositsDone"] == 2, "the deposits", mine_every=0.5)
    a_id, b_id = alice.call("optinode_getAccount", users["alice"])["id"], bob.call("optinode_getAccount", users["bob"])["id"]
    market = alice.call("optinode_status")["markets"][0]
    price, step, tick = market["price"], market["stepSize"], market["tickSize"]
    expiry = chain.genesis.time + 86_400

    fills = Subscription(api_node.api_url.replace("http", "ws", 1), "fills", {"account": a_id})
    rest = alice.send_order(a_id, market=0, is_buy=True, size=100 * step, price=price, nonce=1, expiry=expiry)
    assert rest["status"] == "resting"
    assert alice.call("optinode_getBook", 0, 5)["bids"] == [[price, 100 * step, 1]]
    take = bob.send_order(b_id, market=0, is_buy=False, size=40 * step, price=price - tick, nonce=1, expiry=expiry)
    assert take["status"] == "filled" and take["fills"][0]["price"] == price
    pushed = fills.next()
    assert pushed == take["fills"][0] and pushed["maker"] == rest["hash"] and pushed["size"] == 40 * step
    fills.close()
    assert alice.call("optinode_getBook", 0, 5)["bids"] == [[price, 60 * step, 1]]

    def trades_on_l1():
        return [tx for b in chain.l1_batches() for tx in map(decode_transaction, b.records) if isinstance(tx, Trade)]

    [trade] = api_node.wait_for(trades_on_l1, "the trade in a batch on L1", mine_every=0.5)
    assert trade.size == 40 * step and trade.maker.account_id == a_id and trade.taker.account_id == b_id
    batch = next(b for b in chain.l1_batches() if any(isinstance(decode_transaction(r), Trade) for r in b.records))
    posted = alice.call("optinode_getBatch", batch.index)
    assert posted["stateRoot"] == "0x" + batch.state_root.hex()
    account = alice.call("optinode_getAccount", a_id)
    assert account["positions"] == [{"market": 0, "size": 40 * step, "fundingIndex": account["positions"][0]["fundingIndex"], "markPrice": price}]

    # GET /metrics of the real process: the order flow, and the batch posting seen on L1
    def metrics():
        text = httpx.get(api_node.api_url + "metrics", timeout=10).text
        return {(x.name, tuple(sorted(x.labels.items()))): x.value for f in text_string_to_metric_families(text) for x in f.samples}

    m = api_node.wait_for(lambda: (m := metrics())[("optinode_last_posted_batch", ())] >= batch.index and m, "the append in /metrics")
    assert m[("optinode_orders_accepted_total", (("status", "resting"),))] == 1
    assert m[("optinode_orders_accepted_total", (("status", "filled"),))] == 1
    assert m[("optinode_fills_total", ())] == 1 and m[("optinode_ack_latency_seconds_count", ())] == 2
    assert m[("optinode_book_size", (("market", "0"), ("side", "bid")))] == 60 * step
    assert m[("optinode_batches_posted_total", ())] >= batch.index and m[("optinode_batch_posting_latency_seconds_count", ())] >= 1
    assert m[("optinode_last_cut_batch", ())] >= batch.index and m[("optinode_log_fsync_seconds_count", ())] >= 2
    assert m[("optinode_l1_head_block", ())] >= chain.w3.eth.block_number - 5 and m[("optinode_l1_up", ())] == 1


def test_acknowledged_orders_survive_a_sigkill_with_the_same_book_and_fills(chain, users, anvil, tmp_path) -> None:
    import signal

    d = chain.deployment
    node = chain.start_sequencer(tmp_path / "seq", api=True)
    clients = [Client(node.api_url, anvil.private_keys[i], chain_id=d.chain_id, verifying_contract=d.contracts.rollup) for i in (2, 3)]
    try:
        for user in ("alice", "bob"):
            chain.deposit(users[user], 1_000 * USD)
        chain.mine(chain.config.node.batch.queue_confirmations)
        node.wait_for(lambda: clients[0].call("optinode_status")["queues"]["depositsDone"] == 2, "the deposits", mine_every=0.5)
        ids = [c.call("optinode_getAccount", users[u])["id"] for c, u in zip(clients, ("alice", "bob"))]
        market = clients[0].call("optinode_status")["markets"][0]
        price, step, tick = market["price"], market["stepSize"], market["tickSize"]
        expiry = chain.genesis.time + 86_400
        acked = []
        for n in range(1, 7):  # a ladder of bids by alice, bob sells into some of it
            acked.append(clients[0].send_order(ids[0], market=0, is_buy=True, size=10 * step, price=price - n * tick, nonce=n, expiry=expiry))
        sold = clients[1].send_order(ids[1], market=0, is_buy=False, size=25 * step, price=price - 6 * tick, nonce=1, expiry=expiry)
        assert sold["status"] == "filled" and [f["size"] for f in sold["fills"]] == [10 * step, 10 * step, 5 * step]
        book, status = clients[0].call("optinode_getBook", 0, 20), clients[0].call("optinode_status")
        accounts = [c.call("optinode_getAccount", i) for c, i in zip(clients, ids)]
    finally:
        node.stop(signal.SIGKILL)  # no shutdown at all: what was acknowledged must be in the synced log
    again = chain.start_sequencer(tmp_path / "seq", api=True)
    try:
        client = Client(again.api_url, anvil.private_keys[2], chain_id=d.chain_id, verifying_contract=d.contracts.rollup)
        assert client.call("optinode_getBook", 0, 20) == book
        assert client.call("optinode_status")["l2"]["stateRoot"] == status["l2"]["stateRoot"]
        assert [client.call("optinode_getAccount", i) for i in ids] == accounts
        for order in acked[3:]:  # the untouched rest of the ladder is live again
            assert client.call("optinode_getOrder", order["hash"])["status"] == "resting"
        assert client.call("optinode_getOrder", acked[2]["hash"])["remaining"] == 5 * step
    finally:
        assert again.stop() == 0, again.log_tail()
