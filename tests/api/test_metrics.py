"""GET /metrics on the public API: after an order flow over plain HTTP JSON-RPC the counters, gauges and
histograms moved by exactly what happened (the exposition is parsed, not grepped)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from optinode.metrics import SequencerMetrics
from optinode.services.batcher import CutRequest
from optinode.testing.world import ETH_PRICE, ETH_STEP, ETH_TICK, FAR_EXPIRY

from tests.api.client import RpcFailure
from tests.api.test_rpc import api  # noqa: F401 - the fixture


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(url + "metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.trio
async def test_metrics_count_the_order_flow(api) -> None:  # noqa: F811 - the fixture
    alice, bob = api.client("alice"), api.client("bob")
    before = await api.run(scrape, api.url)
    assert value(before, "optinode_book_orders", market="0", side="bid") == 0

    rest = await api.run(alice.send_order, 0, market=0, is_buy=True, size=3 * ETH_STEP, price=ETH_PRICE, nonce=1, expiry=FAR_EXPIRY)
    take = await api.run(bob.send_order, 1, market=0, is_buy=False, size=ETH_STEP, price=ETH_PRICE, nonce=1, expiry=FAR_EXPIRY)
    assert rest["status"] == "resting" and take["status"] == "filled"
    with pytest.raises(RpcFailure):  # the same signed order again
        await api.run(bob.send_order, 1, market=0, is_buy=False, size=ETH_STEP, price=ETH_PRICE, nonce=1, expiry=FAR_EXPIRY)
    crossing = await api.run(bob.send_order, 1, market=0, is_buy=False, size=ETH_STEP, price=ETH_PRICE, nonce=2, expiry=FAR_EXPIRY,
                             timeInForce="post_only")
    assert crossing["status"] == "rejected"
    with pytest.raises(RpcFailure):  # malformed params
        await api.run(alice.call, "optinode_sendOrder", {"accountId": 0}, "0x00")
    # a JSON-RPC batch of orders (taken in together by the mempool): counted the same way
    order = {"accountId": 1, "market": 0, "isBuy": False, "size": str(ETH_STEP), "limitPrice": str(ETH_PRICE + 50 * ETH_TICK),
             "feeRate": 0, "expiry": str(FAR_EXPIRY), "nonce": "3"}
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "optinode_sendOrder", "params": [order, bob.sign("Order", order)]},
             {"jsonrpc": "2.0", "id": 2, "method": "optinode_sendOrder", "params": [order]}]
    answers = await api.run(lambda: httpx.post(api.url, json=batch, timeout=30).json())
    assert answers[0]["result"]["status"] == "resting" and answers[1]["error"]["code"] == -32602
    await api.h.send(CutRequest("test"))
    await api.h.batches.receive()

    after = await api.run(scrape, api.url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("optinode_orders_accepted_total", status="resting") == 2
    assert moved("optinode_orders_accepted_total", status="filled") == 1
    assert moved("optinode_orders_rejected_total", reason="NONCE_USED") == 1
    assert moved("optinode_orders_rejected_total", reason="POST_ONLY_WOULD_CROSS") == 1
    assert moved("optinode_orders_rejected_total", reason="INVALID_PARAMS") == 2
    assert moved("optinode_fills_total") == 1
    assert moved("optinode_ack_latency_seconds_count") == 3  # the three durable answers
    assert 0 < moved("optinode_ack_latency_seconds_sum") < 5
    assert moved("optinode_ack_latency_seconds_bucket", le="+Inf") == 3
    assert moved("optinode_log_fsync_seconds_count") >= 2 and moved("optinode_log_entries_total") >= 2
    assert moved("optinode_batches_cut_total", reason="test") == 1
    assert value(after, "optinode_last_cut_batch") == api.h.engine.batch_index - 1
    # the book: alice's bid has 2 steps left; bob's batched ask rests above it
    assert value(after, "optinode_book_orders", market="0", side="bid") == 1
    assert value(after, "optinode_book_size", market="0", side="bid") == 2 * ETH_STEP
    assert value(after, "optinode_book_best_price", market="0", side="bid") == ETH_PRICE
    assert value(after, "optinode_book_orders", market="0", side="ask") == 1
    assert value(after, "optinode_book_size", market="0", side="ask") == ETH_STEP
    assert value(after, "optinode_l1_head_block") == api.h.engine.head.number


def test_each_node_has_its_own_registry() -> None:
    """Several nodes in one process (as the tests run them) never share or collide on a registry."""
    one, two = SequencerMetrics(), SequencerMetrics()
    one.accepted("resting")
    one.fills.inc(3)
    assert b'optinode_orders_accepted_total{status="resting"} 1.0' in one.expose()
    assert b"optinode_fills_total 3.0" in one.expose() and b"optinode_fills_total 0.0" in two.expose()
    assert b"orders_accepted_total{" not in two.expose()


def test_the_process_memory_is_exported() -> None:
    """The resident memory is where a leak would show (the sequencer freezes its collector's
    survivors: services/heap_freezer.py), so /metrics carries it, with a plausible value."""
    families = {f.name: f for f in text_string_to_metric_families(SequencerMetrics().expose().decode())}
    (sample,) = families["process_resident_memory_bytes"].samples
    assert 10_000_000 < sample.value < 10_000_000_000


@pytest.mark.parametrize("seconds", [0.0, 0.0004, 0.001, 0.0031, 0.25, 7.0, 1e6])
def test_acked_counts_a_request_of_answers_as_that_many_observes(seconds: float) -> None:
    """`SequencerMetrics.acked(seconds, n)` (one update per request: it writes prometheus_client's
    histogram internals) exposes what n calls of ``ack_latency.observe(seconds)`` do, on bucket
    bounds too: the same buckets and count, the same sum but for float rounding."""
    one_by_one, at_once = SequencerMetrics(), SequencerMetrics()
    for _ in range(7):
        one_by_one.ack_latency.observe(seconds)
    at_once.acked(seconds, 7)

    def samples(metrics: SequencerMetrics) -> dict:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(metrics.expose().decode())
                for s in family.samples if s.name.startswith("optinode_ack_latency")}

    expected, got = samples(one_by_one), samples(at_once)
    key = ("optinode_ack_latency_seconds_sum", ())
    assert got.pop(key) == pytest.approx(expected.pop(key), rel=1e-12)
    assert got == expected and expected[("optinode_ack_latency_seconds_count", ())] == 7
