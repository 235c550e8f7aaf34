"""The verifier recovers a batch's signatures once, on worker threads, and keeps them: the replay on
the node's thread meets only memo hits, the store holds the decoded batch and its signers, and a
restarted verifier's game replay recovers nothing."""

from __future__ import annotations

import threading

from functools import partial

import pytest
import trio
import trio_parallel

from optinode.replay import Replay
from optinode.services import replayer as replayer_mod
from optinode.services.replayer import DECODED, VALID, Replayer, signed_pairs, verify_batch
from optinode.spec import crypto
from optinode.spec.eip712 import compute_order_digest
from optinode.spec.batch_framing import frame_records
from optinode.spec.record_codec import decode_transaction, encode_transaction
from optinode.spec.state import copy_state
from optinode.spec.types import Trade
from optinode.store import keys
from optinode.store.memory import open_memory
from optinode.testing.world import ETH_UNIT, USD, World

from .test_replayer import TS, _appended


class CountingKeys:
    """coincurve's PublicKey, counting recoveries and the threads they ran on."""

    def __init__(self, real) -> None:
        self.real, self.threads = real, []

    def from_signature_and_message(self, *args, **kwargs):
        self.threads.append(threading.current_thread())
        return self.real.from_signature_and_message(*args, **kwargs)


@pytest.fixture
def counting(monkeypatch):
    crypto.recover_signer.memo.clear()  # a fresh process: nothing recovered yet
    keys_ = CountingKeys(crypto.PublicKey)
    monkeypatch.setattr(crypto, "PublicKey", keys_)
    yield keys_
    crypto.recover_signer.memo.clear()


def _batch() -> tuple[World, object, list[bytes]]:
    """Deposits, trades from new orders and a slot, a withdrawal and a wrongly signed order: one batch."""
    w = World(l1_timestamp=TS)
    genesis = copy_state(w.state)
    for name in ("alice", "bob", "carol"):
        w.deposit(name, 100_000 * USD)
    w.must(w.trade("alice", "bob", ETH_UNIT, maker_fields=dict(size=3 * ETH_UNIT)))
    for i in range(6):
        taker = w.order("carol" if i % 2 else "bob", is_buy=True, size=ETH_UNIT // 4)
        w.apply(Trade(w.trade("alice", "carol", ETH_UNIT // 4).maker, taker, ETH_UNIT // 4))
    w.apply(w.withdraw("carol", 10 * USD))
    w.apply(w.trade("bob", "carol", ETH_UNIT, taker_fields=dict(signer="mallory")))  # WRONG_SIGNER
    return w, genesis, [encode_transaction(tx) for tx in w.txs]


def _replayer(store, genesis, w: World) -> Replayer:
    replayer = Replayer(store, genesis)
    replayer.deposits.update(w.deposit_queue)  # the Bridge's Deposited events, as the follower hands them over
    return replayer


def test_signatures_are_recovered_once_on_worker_threads_and_kept(counting) -> None:
    w, genesis, records = _batch()
    store = open_memory()
    replayer = _replayer(store, genesis, w)
    honest = Replay(genesis, records, replayer.context(TS))
    appended = _appended(1, honest.roots[-1], 1, records)
    crypto.recover_signer.memo.clear()  # what building the batch recovered is forgotten
    counting.threads.clear()
    pairs = signed_pairs(genesis.config.domain_separator, [decode_transaction(r) for r in records])
    assert len(set(pairs)) >= 10

    verdict = trio.run(verify_batch, replayer, appended, frame_records(records), TS)
    assert verdict.verdict == VALID
    assert len(counting.threads) == len(set(pairs))  # each signature once ...
    assert threading.main_thread() not in counting.threads  # ... and none on the node's thread
    stored = store.get_value(keys.verifier_decoded(1), DECODED)
    assert stored.tx_hash == appended.tx_hash and stored.txs == [decode_transaction(r) for r in records]
    assert stored.signers == [crypto.recover_signer(d, s) for d, s in pairs]

    crypto.recover_signer.memo.clear()  # a restart
    recovered = len(counting.threads)
    restarted = _replayer(store, genesis, w)
    replay = restarted.replay_of(1)
    assert replay.roots == honest.roots
    replay.witness(len(records) - 1)
    assert len(counting.threads) == recovered  # the game's replay recovered nothing


def test_worker_processes_give_the_same_verdict_and_signers(counting) -> None:
    w, genesis, records = _batch()
    replayer = _replayer(open_memory(), genesis, w)
    honest = Replay(genesis, records, replayer.context(TS))
    crypto.recover_signer.memo.clear()
    counting.threads.clear()
    appended = _appended(1, honest.roots[-1], 1, records)
    verdict = trio.run(partial(verify_batch, replayer, appended, frame_records(records), TS, run_sync=trio_parallel.run_sync))
    assert verdict.verdict == VALID
    assert counting.threads == []  # recovered in the worker processes, remembered here
    stored = replayer.store.get_value(keys.verifier_decoded(1), DECODED)
    assert stored.signers[-1] not in (None, w.address("bob"), w.address("carol"))  # the wrongly signed order: mallory


def test_recovered_chunks_keep_their_order() -> None:
    w = World()
    w.deposit("alice", USD)
    orders = [w.order("alice") for _ in range(replayer_mod.RECOVERY_CHUNK * 3 + 5)]
    pairs = [(compute_order_digest(w.domain, o), o.signature) for o in orders]
    assert trio.run(replayer_mod.recover_signers, pairs) == [w.address("alice")] * len(orders)
