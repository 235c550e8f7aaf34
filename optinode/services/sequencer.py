"""The sequencer node: one root nursery, one service per file, bounded channels between them.

    trio.run(run_sequencer, settings)

```
 l1.follower ─► l1_router ─┬─► engine ◄── batcher (age / deadline cuts)      admin_rpc ─► engine (Submitter)
                            │      └─► proposer ─► l1.sender ─► L1 Rollup
                            └─────────► proposer ◄── l1.sender (status changes)
```

Start order is readiness order (`nursery.start`): the sender (reconciled with the chain, pending
transactions re-broadcast), the proposer (every cut batch after the last final one handed to the
sender again), the engine (checkpoint + log replayed in its constructor, the follower's stored
queue events absorbed), the batcher, the router, the follower, then the admin endpoint if asked.
SIGINT/SIGTERM cancel the root nursery; the store is closed (flushed) in a ``finally``. Every
acknowledged command and every cut batch were already synced when they happened, so nothing waits
on the shutdown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import trio

from optinode.config import Config, Secret, parse_address
from optinode.l1 import events
from optinode.l1 import follower as follower_mod
from optinode.l1 import sender as sender_mod
from optinode.l1.deploy import DEVNET_CHAIN_IDS, Deployment
from optinode.l1.follower import Follower
from optinode.l1.rpc import RpcClient
from optinode.l1.sender import Sender, SenderPolicy
from optinode.exchange.mempool import Limits, Mempool, run_intake_pool
from optinode.metrics import SequencerMetrics
from optinode.services import admin_rpc, batcher, dispute, engine, heap_freezer, l1_router, market_services, proposer
from optinode.services import rpc as public_rpc  # (`rpc` below is the L1 client)
from optinode.services.defence import DefenceView
from optinode.services.batcher import BatcherDeps, BatchPolicy
from optinode.services.engine import Deadlines, Engine, Submitter
from optinode.services.faults import Faults
from optinode.runtime import SWITCH_INTERVAL, freeze_heap, tune_interpreter
from optinode.services.signals import stop_on_signal
from optinode.services.journal import Journal
from optinode.spec.genesis import create_genesis_state
from optinode.store.db import open_store

__all__ = ["SWITCH_INTERVAL", "SequencerSettings", "freeze_heap", "run_sequencer"]  # SWITCH_INTERVAL, freeze_heap: optinode.runtime's

log = logging.getLogger("optinode.sequencer")

INBOX = 1024  # engine inbox: submissions, L1 outputs, cut requests
L1_OUTPUTS = 256
PROPOSER_INBOX = 256


@dataclass
class SequencerSettings:
    config: Config
    deployment: Deployment
    data_dir: Path
    rpc_url: str
    proposer_key: Secret
    admin_port: int | None = None  # devnet only
    rpc_port: int | None = None  # the public JSON-RPC/WebSocket API (docs/api.md), on 127.0.0.1
    faults: Faults = field(default_factory=Faults)
    market_keys: market_services.MarketKeys = field(default_factory=market_services.MarketKeys)  # [market_services] keys


def identity(deployment: Deployment) -> str:
    return f"sequencer chain={deployment.chain_id} rollup={deployment.contracts.rollup}"



async def run_sequencer(settings: SequencerSettings, *, task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED) -> None:
    config, deployment = settings.config, settings.deployment
    node = config.node
    if settings.admin_port is not None and deployment.chain_id not in DEVNET_CHAIN_IDS:
        raise ValueError("the admin endpoint is for devnets only")
    assert deployment.params is not None
    tune_interpreter()
    genesis = create_genesis_state(deployment.genesis(config))
    store = open_store(settings.data_dir / "db", identity=identity(deployment))
    try:
        rpc = RpcClient(settings.rpc_url)
        metrics = SequencerMetrics()  # this node's registry, served at GET /metrics on the public API
        rpc.on_state = metrics.on_l1_state
        c = deployment.contracts
        contracts = {parse_address(c.bridge): "Bridge", parse_address(c.rollup): "Rollup", parse_address(c.game): "DisputeGame"}
        follower = Follower(rpc, store, contracts, start_block=deployment.deployment_block, confirmation_depth=node.confirmation_depth,
                            window=node.reorg_window, max_range=node.log_block_range)
        params = deployment.params
        policy = BatchPolicy.from_config(node.batch, challenge_window=params.challenge_window, clock=params.clock,
                                         max_timestamp_drift=params.max_timestamp_drift)
        the_engine = Engine(store, genesis, policy=policy, confirmations=node.batch.queue_confirmations,
                            deadlines=Deadlines(deposit=params.deposit_deadline, forced=params.forced_deadline), faults=settings.faults,
                            metrics=metrics)
        for event in follower.stored_events():
            the_engine.absorb(event)
        sender = Sender(rpc, store, settings.proposer_key.account(), chain_id=deployment.chain_id, policy=SenderPolicy.from_config(node.sender))

        engine_send, engine_receive = trio.open_memory_channel(INBOX)
        outputs_send, outputs_receive = trio.open_memory_channel(L1_OUTPUTS)
        proposer_send, proposer_receive = trio.open_memory_channel(PROPOSER_INBOX)
        deps = proposer.ProposerDeps(sender=sender, rpc=rpc, journal=Journal(store), rollup=parse_address(c.rollup),
                                     bond=params.proposer_bond, challenge_window=params.challenge_window, faults=settings.faults,
                                     genesis_root=bytes.fromhex(deployment.genesis_root.removeprefix("0x")),
                                     max_timestamp_drift=params.max_timestamp_drift, engine=engine_send.clone(), metrics=metrics,
                                     known_events=[e for e in follower.stored_events()
                                                   if isinstance(e, (events.BatchAppended, events.BatchFinalized, events.BatchesDiscarded))])
        async with trio.open_nursery() as nursery:
            await nursery.start(stop_on_signal, nursery.cancel_scope)
            await nursery.start(partial(sender_mod.run, poll_interval=node.poll_interval), sender, proposer_send.clone())
            await nursery.start(proposer.run, deps, proposer_receive)
            submitter = Submitter(engine_send.clone())
            await nursery.start(engine.run, the_engine, engine_receive, proposer_send.clone())
            await nursery.start(batcher.run, BatcherDeps(the_engine, policy), engine_send.clone())
            # The dispute player defends our batches (same key and sender as the proposer: one nonce sequence).
            view = DefenceView(deps.journal, rpc, parse_address(c.rollup), follower.stored_events, settings.faults)
            player = dispute.Player(dispute.PlayerDeps(rpc=rpc, sender=sender, game_address=parse_address(c.game), arity=params.arity,
                                                       challenger_bond=params.challenger_bond, clock_warning=max(1, params.clock // 3),
                                                       metrics=metrics),
                                    roots=view.roots, stored=follower.stored_events)
            player.load(follower.stored_events())
            player_send, player_receive = trio.open_memory_channel(PROPOSER_INBOX)
            await nursery.start(dispute.run, player, player_receive)
            await nursery.start(l1_router.run, outputs_receive, engine_send.clone(), proposer_send, player_send)
            await nursery.start(partial(follower_mod.run, poll_interval=node.poll_interval), follower, outputs_send)
            port = None
            if settings.admin_port is not None:
                port = await nursery.start(admin_rpc.run, admin_rpc.AdminDeps(the_engine, submitter, port=settings.admin_port))
            await market_services.start(nursery, the_engine, submitter, config.market_services, settings.market_keys)
            if settings.rpc_port is not None:
                # Signatures are recovered in worker processes, not threads, so that a busy engine
                # never holds the GIL against them; in our own pool, which keeps several chunks
                # queued in each worker (optinode/exchange/worker_pool.py, docs/sequencer.md). It is
                # started (every worker imported and ready) before the API serves; closed, every
                # worker reaped, when the node's nursery is cancelled.
                limits = Limits()
                workers = await nursery.start(run_intake_pool, limits)
                mempool = Mempool(the_engine.state, limits, workers=workers)
                await nursery.start(public_rpc.run, public_rpc.RpcDeps(the_engine, submitter, mempool, port=settings.rpc_port))
            await engine_send.aclose()
            freeze_heap()
            await nursery.start(heap_freezer.run)  # (and what survives later, every second)
            log.info("sequencer running: batch %d next, %d entries pending", the_engine.batch_index, the_engine.pending.entries)
            task_status.started(port)
    finally:
        store.close()
        log.info("store closed")
