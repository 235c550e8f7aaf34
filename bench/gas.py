"""Gas of the rollup's L1 contracts on anvil: full dispute games over batches of 2^10 and 2^16
transactions, the one-step prover per transaction type, and batch append per transaction.

    .venv/bin/python bench/gas.py

Each game is the losing defence of a batch whose post-state root is wrong because of one bad
transaction: a Trade between two accounts with new signed orders (two signature recoveries, the
dearest common step) at index 2, after two Deposits; the rest of the batch is one-byte ForcedWithdraw
records (no forced request is queued, so each is invalid and leaves the state unchanged; a record
costs two calldata bytes with its length prefix). A sequencer that tampers with the state after the
trade posts roots that are right up to index 2 and wrong from index 3 on; an honest challenger that
replays the batch with optinode.spec bisects down to the trade and steps it through the one-step
prover. A game's gas is open + every bisect and choose + step (the step resolves the game, slashing
included). The roots and witnesses come from the spec; the prover is the real one from
contracts/src/osp when its artifacts exist, else MockOneStepProver (see `osp_source`).

osp_gas: per transaction type, the largest eth_estimateGas of a transaction calling
executeOneStep directly (21,000 and calldata included) over the shared vectors in tests/vectors.

Last line: one JSON object (keys in docs/contracts.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3 import Web3  # noqa: E402

from optinode.l1.anvil import run_anvil  # noqa: E402
from optinode.l1.artifacts import artifact_names, load_artifact  # noqa: E402
from optinode.l1.contracts import (  # noqa: E402
    QueueEntries,
    increase_time,
    SystemParams,
    deploy_system,
    encode_witness,
    transact,
    tx_proof,
)
from optinode.spec.game import compute_split_points  # noqa: E402
from optinode.spec.player import choose_first_disagreement  # noqa: E402
from optinode.spec.batch_framing import frame_records  # noqa: E402
from optinode.spec.record_codec import encode_transaction  # noqa: E402
from optinode.spec.serde import from_plain  # noqa: E402
from optinode.spec.types import Deposit, DepositEntry, ForcedWithdraw, L1Context, Trade  # noqa: E402
from optinode.spec.witness import Witness  # noqa: E402
from optinode.spec.commitment import encode_account, encode_globals  # noqa: E402
from optinode.replay import Replay, state_parts  # noqa: E402
from optinode.testing.world import ETH_PRICE, ETH_UNIT, USD, World  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
EIP7825_TX_GAS_CAP = 2**24


def real_prover_available() -> bool:
    return all(name in artifact_names() for name in ("OneStepProver", "OspTrade", "OspAccounts", "OspMarket"))


def measure_osp(w3: Web3, prover_address: str) -> dict[str, int]:
    from optinode.l1.osp import estimate_one_step_gas

    per_type: dict[str, int] = {}
    for path in sorted(VECTORS.rglob("*.json")):
        v = json.loads(path.read_text())
        gas = estimate_one_step_gas(
            w3,
            prover_address,
            bytes.fromhex(v["pre_root"][2:]),
            bytes.fromhex(v["record"][2:]),
            from_plain(v["l1"], L1Context),
            from_plain(v["witness"], Witness),
        )
        kind = path.parent.name
        per_type[kind] = max(per_type.get(kind, 0), gas)
    return per_type


def play_game(system, w3: Web3, accounts: list[str], n: int) -> dict[str, object]:
    """Append a batch of n transactions with a root that is wrong from index 3 on, and lose it to
    an honest challenger. Returns gas figures and the number of L1 transactions of the game."""
    proposer, challenger, depositor = accounts[1], accounts[2], accounts[3]
    w = World()
    entries = []
    for name in ("alice", "bob"):
        owner = Web3.to_checksum_address(w.key(name).address)
        system.deposit(depositor, owner, 10_000 * USD)
        entries.append((owner, 10_000 * USD))
        w.ids[name] = len(w.ids)
    trade = Trade(
        w.order("alice", is_buy=True, size=ETH_UNIT, limit_price=ETH_PRICE),
        w.order("bob", is_buy=False, size=ETH_UNIT, limit_price=ETH_PRICE),
        ETH_UNIT,
    )
    txs = [Deposit(0), Deposit(1), trade]
    records = [encode_transaction(tx) for tx in txs] + [encode_transaction(ForcedWithdraw())] * (n - len(txs))
    timestamp = w3.eth.get_block("latest")["timestamp"] + 60
    ctx = L1Context(
        l1_timestamp=timestamp,
        deposits={i: DepositEntry(bytes.fromhex(o[2:]), a) for i, (o, a) in enumerate(entries)},
    )
    honest = Replay(w.state, records, ctx)
    bad = Replay(w.state, records, ctx, tamper_after=2)
    assert honest.roots[:3] == bad.roots[:3] and honest.roots[3] != bad.roots[3]

    before = dict(system.gas)
    w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
    index = system.append_batch(proposer, records, bad.parts(), gas=60_000_000)
    append_gas = system.gas["appendBatch"] - before.get("appendBatch", 0)

    moves: list[tuple[str, int]] = []

    def record(label: str, receipt) -> None:
        moves.append((label, receipt["gasUsed"]))

    game_id = system.game.functions.gameCount().call()
    record("open", transact(w3, system.game.functions.open(index), challenger, value=system.params.challenger_bond))
    arity = system.params.arity
    while True:
        g = system.game_state(game_id)
        if g["end"] - g["start"] == 1:
            break
        points = compute_split_points(g["start"], g["end"], arity)
        posted = [bad.roots[p] for p in points[1:-1]]
        record("bisect", transact(w3, system.game.functions.bisect(game_id, posted), proposer))
        part = choose_first_disagreement(points, posted, lambda i: honest.roots[i])
        record("choose", transact(w3, system.game.functions.choose(game_id, posted, part), challenger))
    k = system.game_state(game_id)["start"]
    assert k == 2, k
    witness, pre_state = honest.witness(k)
    witness = encode_witness(witness)
    dd = pre_state.deposits_done
    queue = QueueEntries(*entries[dd]) if dd < len(entries) else QueueEntries()
    fn = system.game.functions.step(game_id, records[k], tx_proof(records, k), witness, queue.as_tuple())
    record("step", transact(w3, fn, challenger))
    assert system.game_state(game_id)["phase"] == 4, "the challenger should have won"
    return {
        "append_gas": append_gas,
        "calldata_bytes": len(frame_records(records)),
        "game_gas": sum(g for _, g in moves),
        "l1_txs": len(moves),
        "moves": moves,
    }


def measure_escape(w3: Web3, accounts: list[str]) -> dict[str, int]:
    """Gas of one account's way out of a frozen rollup: registering its claim (proof under the final
    root, globals decoded, one position valued) and its payout (the first one fixes the pool)."""
    proposer, user = accounts[1], accounts[3]
    w = World()
    genesis_root = w.root()
    w.deposit("alice", 10_000 * USD)
    w.deposit("bob", 10_000 * USD)
    w.must(w.trade("alice", "bob", ETH_UNIT, maker_buys=True))
    params = SystemParams(genesis_root=genesis_root, proposers=(proposer,))
    system = deploy_system(w3, accounts[0], params)
    for name in ("alice", "bob"):
        system.deposit(user, Web3.to_checksum_address(w.key(name).address), 10_000 * USD)
    system.deposit(user, user, 1)  # never consumed: it freezes the rollup when overdue
    w.root()
    parts = state_parts(w.state, w.commitment)
    system.append_batch(proposer, [b"\x01\x00"] * 3, parts)
    increase_time(w3, params.challenge_window)
    system.finalize(proposer, 1)
    increase_time(w3, params.deposit_deadline + 1)
    system.freeze(user)
    gas = {}
    for name in ("alice", "bob"):
        i = w.ids[name]
        proof = (i, encode_account(w.state.accounts[i]), list(w.commitment.accounts.proof(i)))
        gas[f"register_{name}"] = system.register_claim(user, encode_globals(w.state), parts, proof)["gasUsed"]
    increase_time(w3, params.claim_period + 1)
    first = system.escape(user, w.ids["alice"])["gasUsed"]
    later = system.escape(user, w.ids["bob"])["gasUsed"]
    return {"register_claim": gas["register_alice"], "first_payout": first, "payout": later, "total": gas["register_alice"] + first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arity", type=int, default=16)
    parser.add_argument("--gas-limit", type=int, default=60_000_000, help="anvil block gas limit (the 2^16 append)")
    args = parser.parse_args()
    started = time.perf_counter()
    real = real_prover_available()
    with run_anvil(args=["--gas-limit", str(args.gas_limit)]) as node:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        accounts = w3.eth.accounts
        if real:
            from optinode.l1.osp import deploy_osp

            prover_address = deploy_osp(w3, accounts[0])
            prover = w3.eth.contract(address=prover_address, abi=load_artifact("OneStepProver")["abi"])
            osp_gas = measure_osp(w3, prover_address)
            osp_source = "contracts/src/osp/OneStepProver.sol (real prover)"
        else:
            prover = None  # deploy_system deploys MockOneStepProver: its step result is a hash, so the
            osp_gas = {}  # tampered root still loses, but the step gas is not the real prover's
            osp_source = "MockOneStepProver: contracts/src/osp/OneStepProver is not built yet"
        results = {}
        for log_n in (10, 16):
            genesis = World()
            params = SystemParams(genesis_root=genesis.root(), proposers=(accounts[1],), arity=args.arity)
            system = deploy_system(w3, accounts[0], params, prover=prover)
            results[log_n] = play_game(system, w3, accounts, 2**log_n)
            print(f"2^{log_n}: {json.dumps({k: v for k, v in results[log_n].items()})}", file=sys.stderr)
        escape = measure_escape(w3, accounts)
        sizes = {
            name: (len(load_artifact(name)["deployedBytecode"]) - 2) // 2 for name in ("Bridge", "Rollup", "DisputeGame")
        }
    moves = [g for r in results.values() for label, g in r["moves"] if label in ("bisect", "choose")]
    steps = [g for r in results.values() for label, g in r["moves"] if label == "step"]
    opens = [g for r in results.values() for label, g in r["moves"] if label == "open"]
    big = results[16]
    out = {
        "arity": args.arity,
        "move_gas": max(moves),
        "bisect_gas_max": max(g for r in results.values() for label, g in r["moves"] if label == "bisect"),
        "choose_gas_max": max(g for r in results.values() for label, g in r["moves"] if label == "choose"),
        "open_gas": max(opens),
        "step_gas": max(steps),
        "osp_source": osp_source,
        "osp_gas": osp_gas,
        "osp_gas_max": max(osp_gas.values()) if osp_gas else None,
        "append_gas_per_tx": round(big["append_gas"] / 2**16, 1),
        "escape_gas": escape["total"],
        "escape_gas_parts": escape,
        "append_2p16_gas": big["append_gas"],
        "append_2p16_under_eip7825_cap": big["append_gas"] <= EIP7825_TX_GAS_CAP,
        "append_2p16_calldata_bytes": big["calldata_bytes"],
        "append_2p10_gas": results[10]["append_gas"],
        "game_2p10_gas": results[10]["game_gas"],
        "game_2p10_l1_txs": results[10]["l1_txs"],
        "game_2p16_gas": big["game_gas"],
        "game_2p16_l1_txs": big["l1_txs"],
        "deployed_bytes": sizes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
