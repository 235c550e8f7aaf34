"""Prometheus metrics, one registry per node instance (docs/api.md "Metrics", docs/verifier.md "Metrics").

    metrics = SequencerMetrics()        # or VerifierMetrics(); each owns its CollectorRegistry
    metrics.fills.inc(2)
    body = metrics.expose()             # the text exposition served at GET /metrics

Tests run several nodes in one process, so nothing registers in prometheus_client's global default
registry: every metric belongs to the registry of the node that made it. Gauges that describe state
the node already holds (book depth, L1 head, synced batch) are read at scrape time (`set_function`,
`BookCollector`): they cost nothing on the hot path. What is counted per order is one counter
increment and one histogram observation in the RPC front, none inside the engine's matching loop;
the engine observes once per group commit (the fsync) and once per batch cut.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "BookCollector", "NodeMetrics", "SequencerMetrics", "VerifierMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAN = float("nan")
disable_created_metrics()  # no `_created` series: they double the exposition and no dashboard here reads them

# Latency buckets in seconds: a durable ack is ~1 ms (one fsync) and must stay under 5 ms at p99.
ACK_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
FSYNC_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
POSTING_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)  # cut -> append seen on L1, seconds


class NodeMetrics:
    """What both nodes export: the L1 endpoint and head, and the dispute games they play."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        # process_resident_memory_bytes and the rest: where a leak shows (the sequencer freezes its
        # collector's survivors, services/heap_freezer.py; a frozen cycle would never be freed)
        ProcessCollector(registry=r)
        self.l1_up = Gauge("optinode_l1_up", "1 while the L1 endpoint answers, 0 after a failed request until one succeeds", registry=r)
        self.l1_up.set(1)
        self.l1_reachable = True
        self.l1_outages = Counter("optinode_l1_outages", "Times the L1 endpoint became unreachable", registry=r)
        self.l1_head = Gauge("optinode_l1_head_block", "Number of the newest L1 head the node has seen", registry=r)
        self.l1_head_time = Gauge("optinode_l1_head_timestamp_seconds", "Timestamp of the newest L1 head the node has seen", registry=r)
        self.games_opened = Counter("optinode_games_opened", "Dispute games this node takes part in, seen opened on L1", ["role"], registry=r)
        self.game_moves = Counter("optinode_game_moves", "Moves this node sent in its games", ["side", "move"], registry=r)
        self.games_resolved = Counter("optinode_games_resolved", "Games of this node that ended, by result for us", ["result"], registry=r)
        self.clock_low = Counter("optinode_game_clock_low", "Times our clock in a game was below the warning threshold on our turn", registry=r)
        self.open_games = Gauge("optinode_games_open", "Games of this node not resolved yet", registry=r)
        self.l1_head.set_function(lambda: NAN)
        self.l1_head_time.set_function(lambda: NAN)

    def watch_l1(self, head: Callable[[], Any]) -> None:
        """Read the L1 head gauges from ``head()`` (a `Head` or None) at scrape time."""
        self.l1_head.set_function(lambda: NAN if (h := head()) is None else h.number)
        self.l1_head_time.set_function(lambda: NAN if (h := head()) is None else h.timestamp)

    def on_l1_state(self, up: bool) -> None:
        """`RpcClient`'s hook: the endpoint went down (once per outage) or came back."""
        self.l1_reachable = up
        self.l1_up.set(1 if up else 0)
        if not up:
            self.l1_outages.inc()

    def expose(self) -> bytes:
        return generate_latest(self.registry)


class BookCollector(Collector):
    """Book depth per market and side, read from the matcher at scrape time."""

    def __init__(self, books: Callable[[], list[Any]]) -> None:
        self.books = books

    def collect(self) -> Iterator[GaugeMetricFamily]:
        orders = GaugeMetricFamily("optinode_book_orders", "Resting orders", labels=["market", "side"])
        size = GaugeMetricFamily("optinode_book_size", "Total remaining size of the resting orders, in base units", labels=["market", "side"])
        best = GaugeMetricFamily("optinode_book_best_price", "Best resting price (PRICE_ONE units); absent on an empty side",
                                 labels=["market", "side"])
        for market, book in enumerate(self.books()):
            for side, is_buy in (("bid", True), ("ask", False)):
                resting = book.side(is_buy)
                labels = [str(market), side]
                orders.add_metric(labels, len(resting))
                size.add_metric(labels, sum(o.remaining for o in resting.values()))
                if resting:
                    best.add_metric(labels, resting.best().price)
        yield orders
        yield size
        yield best

    def describe(self) -> list[Any]:
        return []


class SequencerMetrics(NodeMetrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.orders_accepted = Counter("optinode_orders_accepted", "Orders the engine accepted (durably logged), by resulting status",
                                       ["status"], registry=r)
        self.orders_rejected = Counter("optinode_orders_rejected", "Orders turned away, by reason (the spec ErrorCode or exchange Reason name)",
                                       ["reason"], registry=r)
        self.fills = Counter("optinode_fills", "Fills (Trades) emitted by matching", registry=r)
        self.ack_latency = Histogram("optinode_ack_latency_seconds", "optinode_sendOrder: request parsed to durable answer (mempool, engine, fsync)",
                                     buckets=ACK_BUCKETS, registry=r)
        self.fsync = Histogram("optinode_log_fsync_seconds", "One group commit: the synced LevelDB write of the log entries", buckets=FSYNC_BUCKETS,
                               registry=r)
        self.group_entries = Counter("optinode_log_entries", "Log entries written (one group commit covers many)", registry=r)
        self.batches_cut = Counter("optinode_batches_cut", "Batches cut by the engine, by reason", ["reason"], registry=r)
        self.batches_posted = Counter("optinode_batches_posted", "Our batches seen appended on L1", registry=r)
        self.batches_finalized = Counter("optinode_batches_finalized", "Batches seen finalized on L1", registry=r)
        self.last_cut = Gauge("optinode_last_cut_batch", "Index of the last batch cut", registry=r)
        self.last_posted = Gauge("optinode_last_posted_batch", "Index of the newest batch appended on L1", registry=r)
        self.last_final = Gauge("optinode_last_final_batch", "Index of the newest finalized batch", registry=r)
        self.posting_latency = Histogram("optinode_batch_posting_latency_seconds", "From a batch's cut to its append seen on L1",
                                         buckets=POSTING_BUCKETS, registry=r)
        self.accepted_status: dict[str, Any] = {}
        self._rejected: dict[str, Any] = {}

    def watch_book(self, books: Callable[[], list[Any]]) -> None:
        self.registry.register(BookCollector(books))

    def accepted(self, status: str, count: int = 1) -> None:
        child = self.accepted_status.get(status)
        if child is None:
            child = self.accepted_status[status] = self.orders_accepted.labels(status)
        child.inc(count)

    def rejected(self, reason: str, count: int = 1) -> None:
        child = self._rejected.get(reason)
        if child is None:
            child = self._rejected[reason] = self.orders_rejected.labels(reason)
        child.inc(count)

    def acked(self, seconds: float, count: int) -> None:
        """`count` acknowledgements that each took `seconds` (one request's answers): the same
        histogram as `count` calls of ``ack_latency.observe(seconds)``, in one update. (prometheus_client
        has no weighted observe; this writes its sum and the one bucket the value falls in, as its
        ``observe`` does: pinned in pyproject.toml, and tests/api/test_metrics.py compares the two.)"""
        histogram = self.ack_latency
        histogram._sum.inc(seconds * count)
        histogram._buckets[bisect.bisect_left(histogram._upper_bounds, seconds)].inc(count)


class VerifierMetrics(NodeMetrics):
    def __init__(self) -> None:
        super().__init__()
        r = self.registry
        self.synced_batch = Gauge("optinode_verifier_synced_batch", "Highest batch index replayed", registry=r)
        self.last_final = Gauge("optinode_last_final_batch", "Index of the newest finalized batch", registry=r)
        self.batches_verified = Counter("optinode_verifier_batches", "Batches replayed, by verdict", ["verdict"], registry=r)
        self.invalid_batches = Counter("optinode_verifier_invalid_batches", "Batches whose posted root is wrong (alert invalid_batch)", registry=r)
        self.pending_windows = Gauge("optinode_verifier_pending_batches", "Live batches not final yet (their windows or games are open)", registry=r)
        self.bonds_at_stake = Gauge("optinode_verifier_bonds_at_stake_wei", "Challenger bonds in our open games", registry=r)
        self.queue_unserved = Gauge("optinode_queue_unserved", "Bridge queue entries no finalized batch has consumed", ["queue"], registry=r)
        self.queue_seconds_left = Gauge("optinode_queue_deadline_seconds_left",
                                        "Seconds until the oldest unserved entry passes its deadline (<= 0: anyone may freeze the rollup)",
                                        ["queue"], registry=r)
        self.queue_deadline_near = Counter("optinode_queue_deadline_near", "Queue entries that came within the warning threshold of their deadline",
                                           ["queue"], registry=r)
        self.games_watched = Gauge("optinode_games_watched", "Other parties' dispute games this watchtower follows, not resolved yet", registry=r)
        self.game_losing = Counter("optinode_game_losing", "game_losing alerts: the side we agree with is losing a game, by reason",
                                   ["reason"], registry=r)
        self.batch_unavailable = Counter("optinode_verifier_batch_unavailable", "batch_unavailable alerts: an append whose batch bytes "
                                         "the L1 endpoint does not serve as the Rollup accepted them", registry=r)
        self.unchallenged = Counter("optinode_verifier_unchallenged", "invalid_batch_unchallenged alerts: an invalid batch with no game "
                                    "after the configured share of its window", registry=r)
