"""Crash safety of the exchange front: orders over JSON-RPC from several clients, SIGKILL at random
moments, restart, and every acknowledged order is there with the same fills.

    .venv/bin/python bench/crash_sequencer.py [--trials 100] [--seed 1] [--clients 4] [--max-run 1.5]

Real processes: anvil, `optinode l1 deploy`, `optinode sequencer --api-port` as a subprocess. The
clients are threads of this process, each a trader with its own key (anvil accounts 2..), its own
HTTP connection and its own nonces; they sign EIP-712 orders and cancels with eth-account and speak
plain JSON-RPC over HTTP (tests/api/client.py's types; nothing of optinode on the client side), some
requests batched (several `optinode_sendOrder` in one HTTP request).

**One anvil, one deployment, one data directory for the whole run**: a trial is exactly "the node
dies and restarts on its data directory while L1 carries on", so reusing the chain is sound (the
node's store refers to that chain's blocks and batches; a fresh chain per trial would test nothing
more and cost a deployment). The restarted node of trial i is the running node of trial i+1, so a
trial costs one restart.

Each trial: the clients trade (random sides and prices around the mark, GTC / IOC / post-only,
cancels of their own resting orders) until the bench SIGKILLs the node after a random delay in
``[0.05, max_run]`` s; requests in flight at that moment get a transport error and no answer. Then,
with the node dead, the bench opens its LevelDB and replays the log **itself** from genesis (its own
`Matcher` over the spec state; incrementally across trials, after checking that the log prefix it
replayed before is byte-for-byte unchanged), restarts the node, and checks:

- **"before the kill"**, precisely: the book and state after every log entry that was durable when
  the SIGKILL landed. That is every acknowledged command (an answer is sent only after its entry is
  synced) plus any command that was in flight (sent, unanswered) and whose group commit reached the
  disk before the kill; an in-flight command may be in or out (no promise was made: the client asks
  `getOrder` after the restart), but nothing else may be in (no **phantom**: every logged placement or
  cancel is one a client sent), and an acknowledged one is in at the `seq` its answer gave.
- **lost**: an acknowledged order or cancel whose log entry is missing or holds another command, or
  that `optinode_getOrder` does not know after the restart.
- **mismatched**: an acknowledged answer (status, reason, fills, remaining, cancelled makers) that
  differs from the clean replay's result at its `seq`; after the restart, `optinode_getBook` (every
  market), each account's open orders, `optinode_getOrder` of the orders acknowledged or logged in the
  trial (status, reason, fills, remaining) and the state root (`optinode_status`) that differ from the
  clean replay; an acknowledged fill missing from its orders' `getOrder` fills; a phantom entry.

Last line: one JSON object ``{"trials", "acked", "lost", "mismatched", ...}``; lost and mismatched
must be 0. Also reported: in-flight commands and how many of them turned out durable, fills, the
mean restart time and the total time.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from eth_account import Account  # noqa: E402

from optinode.exchange.history import History  # noqa: E402
from optinode.exchange.matching import Matcher  # noqa: E402
from optinode.exchange.orders import CancelAll, CancelOrder, ExpireOrders, Placement  # noqa: E402
from optinode.l1.anvil import DEFAULT_PRIVATE_KEYS, run_anvil  # noqa: E402
from optinode.services.journal import ENTRY, replay_entry  # noqa: E402
from optinode.services.rpc import order_view  # noqa: E402
from optinode.services.sequencer import identity  # noqa: E402
from optinode.spec.commitment import compute_state_root  # noqa: E402
from optinode.spec.genesis import create_genesis_state  # noqa: E402
from optinode.spec.record_codec import encode_transaction  # noqa: E402
from optinode.spec.types import L1Context  # noqa: E402
from optinode.store import keys  # noqa: E402
from optinode.store.db import open_store  # noqa: E402
from optinode.store.memory import open_memory  # noqa: E402
from optinode.testing.seqnode import DevChain, Sequencer  # noqa: E402
from optinode.testing.world import USD  # noqa: E402

from tests.api.client import DOMAIN_TYPE, TYPES  # noqa: E402 - the plain client's EIP-712 types

FIRST_USER = 2  # anvil account index of the first trader
DEPOSIT = 100_000 * USD
FAR = 365 * 86_400  # order expiry after genesis
BOOK_KINDS = (Placement, CancelOrder, CancelAll, ExpireOrders)


# --- the traders (plain eth-account + httpx) ---------------------------------------------------------


@dataclass
class Record:
    """What the clients saw, shared by their threads (under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent_orders: set[str] = field(default_factory=set)  # every order hash ever sent
    sent_cancels: set[str] = field(default_factory=set)  # every order hash a cancel was sent for
    inflight: set[str] = field(default_factory=set)  # orders / cancels ("c" + hash) sent and never answered
    acks: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (kind, hash, answer) this trial
    answered: threading.Event = field(default_factory=threading.Event)  # a first answer came this trial
    rejected: int = 0  # answers that promised nothing (refused, seq None)


class Trader:
    def __init__(self, key: str, account_id: int, *, chain_id: int, rollup: str, market: dict[str, int], expiry: int, seed: int) -> None:
        self.key = key
        self.account_id = account_id
        self.domain = {"name": "optinode", "version": "1", "chainId": chain_id, "verifyingContract": rollup}
        self.market = market
        self.expiry = expiry
        self.rng = random.Random(seed)
        self.nonces = itertools.count(1)
        self.live: list[str] = []  # its orders answered resting / partially filled (cancel candidates)
        self.ids = itertools.count(1)

    def _sign(self, primary: str, message: dict[str, Any]) -> tuple[str, str]:
        typed = {"types": {"EIP712Domain": DOMAIN_TYPE, primary: TYPES[primary]}, "primaryType": primary, "domain": self.domain, "message": message}
        signed = Account.sign_typed_data(self.key, full_message=typed)
        return "0x" + signed.signature.hex(), "0x" + bytes(signed.message_hash).hex()  # (the EIP-712 digest is the order hash)

    def _order(self) -> tuple[dict[str, Any], str]:
        m, rng = self.market, self.rng
        order = {"accountId": self.account_id, "market": 0, "isBuy": rng.random() < 0.5, "size": str(rng.randint(1, 5) * m["stepSize"]),
                 "limitPrice": str(m["price"] + rng.randint(-4, 4) * m["tickSize"]), "feeRate": 0, "expiry": str(self.expiry),
                 "nonce": str(next(self.nonces))}
        signature, order_hash = self._sign("Order", order)
        tif = rng.choices(["gtc", "ioc", "post_only"], [0.7, 0.2, 0.1])[0]
        params = [order, signature] + ([{"timeInForce": tif}] if tif != "gtc" else [])
        return {"jsonrpc": "2.0", "id": next(self.ids), "method": "optinode_sendOrder", "params": params}, order_hash

    def run(self, url: str, record: Record, stop: threading.Event) -> None:
        with httpx.Client(timeout=30.0) as http:
            while not stop.is_set():
                if self.live and self.rng.random() < 0.15:
                    target = self.live.pop(self.rng.randrange(len(self.live)))
                    cancel = {"accountId": self.account_id, "orderHash": target}
                    signature, _ = self._sign("CancelOrder", cancel)
                    requests = [({"jsonrpc": "2.0", "id": next(self.ids), "method": "optinode_cancelOrder", "params": [cancel, signature]}, "c" + target)]
                else:
                    requests = [self._order() for _ in range(self.rng.choice([1, 1, 1, 2, 4]))]
                with record.lock:
                    for _, tag in requests:
                        (record.sent_cancels.add(tag[1:]) if tag.startswith("c") else record.sent_orders.add(tag))
                        record.inflight.add(tag)
                body = [r for r, _ in requests]
                try:
                    reply = http.post(url, json=body if len(body) > 1 else body[0]).json()
                except (httpx.HTTPError, ValueError):
                    return  # the node died with these in flight: no answer, no promise
                record.answered.set()
                answers = reply if isinstance(reply, list) else [reply]
                by_id = {a.get("id"): a for a in answers}
                with record.lock:
                    for request, tag in requests:
                        record.inflight.discard(tag)
                        answer = by_id.get(request["id"])
                        if answer is None or "error" in answer:
                            record.rejected += 1
                            continue
                        result = answer["result"]
                        if result.get("seq") is None:
                            record.rejected += 1
                        elif tag.startswith("c"):
                            record.acks.append(("cancel", tag[1:], result))
                        else:
                            record.acks.append(("order", tag, result))
                            if result["status"] in ("resting", "partially_filled"):
                                self.live.append(tag)


# --- the clean replay ----------------------------------------------------------------------------------


class Replay:
    """The log replayed from genesis by the bench itself, incrementally across trials."""

    def __init__(self, genesis: Any) -> None:
        self.state = create_genesis_state(genesis)
        self.matcher = Matcher(self.state)
        self.history = History(open_memory(identity="bench"))  # never flushed: every record stays in `pending`
        self.digests: list[bytes] = []  # of each replayed entry's stored bytes (the prefix must not change)
        self.entries: dict[int, Any] = {}
        self.results: dict[int, Any] = {}

    def advance(self, store: Any) -> tuple[list[Any], int]:
        """Replay the log's new entries; returns them and how many earlier entries changed (must be 0)."""
        changed, new = 0, []
        stop = keys.prefix_end(keys.prefix_of(keys.Prefix.LOG_ENTRY))
        for n, (key, value) in enumerate(store.iterate(start=keys.log_entry(0), stop=stop)):
            digest = hashlib.blake2b(value, digest_size=16).digest()
            if n < len(self.digests):
                changed += digest != self.digests[n]
                continue
            self.digests.append(digest)
            entry = ENTRY.decode(value, key=key)
            self.entries[entry.seq] = entry
            if isinstance(entry.command, BOOK_KINDS):
                result = self.matcher.apply(entry.command, L1Context(entry.l1_timestamp))
                trades = tuple(encode_transaction(t) for t in getattr(result, "trades", ()))
                if trades != entry.records:
                    changed += 1  # the log's Trades are not what its commands match to
                self.results[entry.seq] = result
                self.history.record(entry.seq, entry.l1_timestamp, entry.command, result)
            else:
                replay_entry(self.state, entry)
            new.append(entry)
        return new, changed


def _fills(fills: Any) -> list[tuple[str, str, int, int]]:
    return [(f["maker"], f["taker"], f["price"], f["size"]) for f in fills]


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _result_fills(result: Any) -> list[tuple[str, str, int, int]]:
    return [(_hex(f.maker_hash), _hex(f.taker_hash), f.price, f.size) for f in result.fills]


def check_acks(replay: Replay, acks: list[tuple[str, str, dict[str, Any]]]) -> tuple[int, int, list[str]]:
    """Each acknowledged answer against the log entry at its seq and the replay's result there."""
    lost = mismatched = 0
    problems = []
    for kind, order_hash, answer in acks:
        entry = replay.entries.get(answer["seq"])
        command = entry.command if entry is not None else None
        if kind == "order":
            if type(command) is not Placement or _hex(replay.matcher.order_hash(command.order)) != order_hash:
                lost += 1
                problems.append(f"lost order {order_hash} (seq {answer['seq']})")
                continue
            result = replay.results[entry.seq]
            expected = (result.status.value, result.reason, result.remaining, _result_fills(result), sorted(_hex(c.order_hash) for c in result.cancelled))
            got = (answer["status"], answer["reason"], answer["remaining"], _fills(answer["fills"]), sorted(c["hash"] for c in answer["cancelled"]))
            if got != expected:
                mismatched += 1
                problems.append(f"order {order_hash}: acked {got}, replay {expected}")
        else:
            if type(command) is not CancelOrder or _hex(command.order_hash) != order_hash:
                lost += 1
                problems.append(f"lost cancel of {order_hash} (seq {answer['seq']})")
                continue
            if [c["hash"] for c in answer["cancelled"]] != [order_hash]:
                mismatched += 1
                problems.append(f"cancel {order_hash}: acked {answer['cancelled']}")
    return lost, mismatched, problems


def check_phantoms(replay: Replay, new: list[Any], record: Record) -> list[str]:
    problems = []
    for entry in new:
        command = entry.command
        if type(command) is Placement and _hex(replay.matcher.order_hash(command.order)) not in record.sent_orders:
            problems.append(f"phantom placement at seq {entry.seq}")
        elif type(command) is CancelOrder and _hex(command.order_hash) not in record.sent_cancels:
            problems.append(f"phantom cancel at seq {entry.seq}")
    return problems


def call(http: httpx.Client, url: str, method: str, *params: Any) -> Any:
    reply = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).json()
    if "error" in reply:
        raise RuntimeError(f"{method}{params}: {reply['error']}")
    return reply["result"]


def wait_api(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as http:
        while True:
            try:
                call(http, url, "optinode_status")
                return
            except (httpx.HTTPError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def check_node(url: str, replay: Replay, account_ids: list[int], orders: set[str], ack_fills: dict[str, list[tuple]]) -> tuple[int, int, list[str]]:
    """The restarted node against the clean replay: books, open orders, orders, state root."""
    lost = mismatched = 0
    problems = []
    matcher = replay.matcher
    with httpx.Client(timeout=30.0) as http:
        for market in range(len(matcher.books)):
            book = call(http, url, "optinode_getBook", market, 100)
            depth = matcher.depth(market, 100)
            if (book["bids"], book["asks"]) != ([list(x) for x in depth["bids"]], [list(x) for x in depth["asks"]]):
                mismatched += 1
                problems.append(f"book {market}: node {book['bids']} / {book['asks']}, replay {depth}")
        for account_id in account_ids:
            got = sorted((o["hash"], o["remaining"], o["price"]) for o in call(http, url, "optinode_getAccount", account_id)["openOrders"])
            expected = sorted((_hex(v.order_hash), v.remaining, v.price) for v in matcher.open_orders(account_id))
            if got != expected:
                mismatched += 1
                problems.append(f"open orders of {account_id}: node {got}, replay {expected}")
        ordered = sorted(orders)
        replies: dict[str, Any] = {}
        for i in range(0, len(ordered), 100):  # JSON-RPC batches of getOrder
            chunk = ordered[i:i + 100]
            body = [{"jsonrpc": "2.0", "id": n, "method": "optinode_getOrder", "params": [h]} for n, h in enumerate(chunk)]
            replies.update((chunk[r["id"]], r) for r in http.post(url, json=body).json())
        for order_hash in ordered:
            reply = replies[order_hash]
            record = replay.history.get(bytes.fromhex(order_hash[2:]))
            if "error" in reply:
                if record is not None or order_hash in ack_fills:
                    lost += 1
                    problems.append(f"getOrder {order_hash}: {reply['error']}")
                continue
            got = reply["result"]
            if record is None:
                mismatched += 1
                problems.append(f"getOrder {order_hash}: the node knows an order the log does not")
                continue
            view = order_view(record)
            live = matcher.get(record.order_hash)
            if live is not None:
                view["remaining"] = live.remaining
            keys_ = ("status", "reason", "filled", "remaining")
            if tuple(got[k] for k in keys_) != tuple(view[k] for k in keys_) or _fills(got["fills"]) != _fills(view["fills"]):
                mismatched += 1
                problems.append(f"getOrder {order_hash}: node {[got[k] for k in keys_]}, replay {[view[k] for k in keys_]}")
            seen = _fills(got["fills"])
            if any(f not in seen for f in ack_fills.get(order_hash, ())):
                mismatched += 1
                problems.append(f"getOrder {order_hash}: an acknowledged fill is missing")
        root = call(http, url, "optinode_status")["l2"]["stateRoot"]
        if root != _hex(compute_state_root(replay.state)):
            mismatched += 1
            problems.append(f"state root: node {root}, replay {_hex(compute_state_root(replay.state))}")
    return lost, mismatched, problems


# --- the run ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-run", type=float, default=1.5, help="seconds of trading before the kill, at most")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()
    totals: Counter[str] = Counter()
    restarts: list[float] = []
    first_answers: list[float] = []  # seconds from the start of trading to the first answer
    with tempfile.TemporaryDirectory(prefix="optinode-crash-seq-") as tmp, run_anvil(log_dir=tmp) as anvil:
        work = Path(tmp)
        chain = DevChain.deploy(anvil.url, work / "chain")
        d = chain.deployment
        data_dir, log_path = work / "seq", work / "seq.log"
        node = chain.start_sequencer(data_dir, api=True, log_path=log_path)
        wait_api(node.api_url)
        users = range(FIRST_USER, FIRST_USER + args.clients)
        addresses = [Account.from_key(DEFAULT_PRIVATE_KEYS[i]).address for i in users]
        for address in addresses:
            chain.deposit(address, DEPOSIT)
        chain.mine(chain.config.node.batch.queue_confirmations)
        with httpx.Client(timeout=30.0) as http:
            node.wait_for(lambda: call(http, node.api_url, "optinode_status")["queues"]["depositsDone"] == args.clients, "the deposits", mine_every=0.5)
            account_ids = [call(http, node.api_url, "optinode_getAccount", a)["id"] for a in addresses]
            market = call(http, node.api_url, "optinode_status")["markets"][0]
        traders = [Trader(DEFAULT_PRIVATE_KEYS[i], account_ids[n], chain_id=d.chain_id, rollup=d.contracts.rollup, market=market,
                          expiry=chain.genesis.time + FAR, seed=rng.randrange(2**32)) for n, i in enumerate(users)]
        record = Record()
        replay = Replay(chain.genesis)
        ack_fills: dict[str, list[tuple]] = {}  # every fill acknowledged, by the orders it belongs to
        inflight_before = 0
        for trial in range(args.trials):
            record.acks = []
            stop = threading.Event()
            threads = [threading.Thread(target=t.run, args=(node.api_url, record, stop), daemon=True) for t in traders]
            record.answered.clear()
            t0 = time.monotonic()
            for t in threads:
                t.start()
            # The kill lands at a random moment of trading: counted from the first answer (a node
            # that has just restarted first starts its signature-recovery worker processes).
            record.answered.wait(60)
            first_answers.append(time.monotonic() - t0)
            time.sleep(rng.uniform(0.0, args.max_run))
            node.stop(signal.SIGKILL)  # mid-flight: the clients' open requests get no answer
            stop.set()
            for t in threads:
                t.join(60)
            store = open_store(data_dir / "db", identity=identity(d), create=False)
            try:
                new, changed = replay.advance(store)
            finally:
                store.close()
            lost, mismatched, problems = check_acks(replay, record.acks)
            problems += check_phantoms(replay, new, record)
            mismatched += changed + sum(1 for p in problems if p.startswith("phantom"))
            if changed:
                problems.append(f"{changed} entries of the log changed or do not replay to their Trades")
            for kind, order_hash, answer in record.acks:
                if kind == "order":
                    for fill in _fills(answer["fills"]):
                        for owner in (fill[0], fill[1]):
                            ack_fills.setdefault(owner, []).append(fill)
            logged = {_hex(replay.matcher.order_hash(e.command.order)) for e in new if type(e.command) is Placement}
            durable_inflight = sum(1 for tag in record.inflight if tag in logged)
            t0 = time.monotonic()
            node = chain.start_sequencer(data_dir, api=True, log_path=log_path)
            wait_api(node.api_url)
            restarts.append(time.monotonic() - t0)
            touched = set()  # the orders the trial's entries changed: placed, filled as makers, cancelled
            for e in new:
                result = replay.results.get(e.seq)
                for fill in getattr(result, "fills", ()):
                    touched.add(_hex(fill.maker_hash))
                cancelled = result if isinstance(result, list) else [result] if type(e.command) is CancelOrder else getattr(result, "cancelled", ())
                touched.update(_hex(c.order_hash) for c in cancelled)
            earlier = sorted(ack_fills)
            to_check = {h for k, h, _ in record.acks} | logged | touched | set(rng.sample(earlier, min(20, len(earlier))))
            node_lost, node_mismatched, node_problems = check_node(node.api_url, replay, account_ids, to_check, ack_fills)
            lost, mismatched, problems = lost + node_lost, mismatched + node_mismatched, problems + node_problems
            totals.update(acked=len(record.acks), lost=lost, mismatched=mismatched, entries=len(new), inflight=len(record.inflight) - inflight_before,
                          inflight_logged=durable_inflight,
                          fills=sum(len(getattr(replay.results.get(e.seq), "fills", ())) for e in new if type(e.command) is Placement))
            inflight_before = len(record.inflight)
            print(f"trial {trial}: {len(record.acks)} acked, {len(new)} entries, {durable_inflight} in-flight durable, lost {lost}, "
                  f"mismatched {mismatched}, restart {restarts[-1]:.2f} s, first answer {first_answers[-1]:.2f} s" + "".join(f"\n  {p}" for p in problems[:10]), flush=True)
        if node.stop() != 0:
            raise RuntimeError(f"the sequencer did not stop cleanly:\n{node.log_tail()}")
    summary = {"trials": args.trials, "acked": totals["acked"], "lost": totals["lost"], "mismatched": totals["mismatched"],
               "log_entries": len(replay.digests), "fills": totals["fills"], "inflight": totals["inflight"],
               "inflight_durable": totals["inflight_logged"], "rejected_answers": record.rejected, "clients": args.clients,
               "restart_mean_s": round(sum(restarts) / max(1, len(restarts)), 2),
               "first_answer_mean_s": round(sum(first_answers) / max(1, len(first_answers)), 2), "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
