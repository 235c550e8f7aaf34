"""End to end with the real one-step prover (contracts/src/osp): a batch whose post-state root is
wrong because of one bad transaction loses to an honest challenger that computes every root and
witness with optinode.spec; and an honest batch survives a false challenge."""

from __future__ import annotations

import pytest

from optinode.l1.artifacts import load_artifact
from optinode.l1.contracts import (
    BURN_ADDRESS,
    Phase,
    QueueEntries,
    encode_witness,
    tx_proof,
)
from optinode.spec.game import compute_split_points
from optinode.spec.player import choose_first_disagreement
from optinode.l1.osp import deploy_osp
from optinode.spec.crypto import keccak
from optinode.spec.types import DepositEntry, L1Context
from optinode.replay import Replay
from optinode.testing.world import L1_DELAY, World

from .support import events
from .world import build_world


@pytest.fixture
def real_system(w3, deployer, make_system, anvil):
    # Expiries and price ages count against the batch's L1 time (anvil's clock): the world's genesis is
    # set so that its L1 time (genesis + L1_DELAY) is shortly after anvil's latest block.
    latest = w3.eth.get_block("latest")["timestamp"]
    world = build_world(list(anvil.private_keys[4:8]), genesis_time=latest + 100 - L1_DELAY)
    prover_address = deploy_osp(w3, deployer.address)
    prover = w3.eth.contract(address=prover_address, abi=load_artifact("OneStepProver")["abi"])
    system = make_system(prover=prover, genesis_root=world.genesis_root, arity=3)
    for owner, amount in world.deposits:
        system.deposit(owner, owner, amount)
    return system, world


def _append(system, world, proposer, corrupt_at):
    """Append the world's transactions with the roots of a replay (corrupted or not) at a known
    L1 timestamp; return (honest replay, posted replay)."""
    w3 = system.w3
    timestamp = world.l1_timestamp  # after anvil's latest block (real_system)
    assert timestamp > w3.eth.get_block("latest")["timestamp"]
    ctx = L1Context(
        l1_timestamp=timestamp,
        deposits={i: DepositEntry(bytes.fromhex(o[2:]), a) for i, (o, a) in enumerate(world.deposits)},
    )
    genesis = World(world.genesis)  # the genesis state the world started from
    records = world.records()
    honest = Replay(genesis.state, records, ctx)
    assert honest.roots[-1] == world.parts().root()
    posted = Replay(genesis.state, records, ctx, tamper_after=corrupt_at - 1) if corrupt_at else honest
    w3.provider.make_request("evm_mine", [timestamp])  # the batch declares the L1 time of a block already mined
    index = system.append_batch(proposer, records, posted.parts(), l1_timestamp=timestamp)
    assert system.batch(index)["timestamp"] == timestamp
    assert system.batch(index)["stateRoot"] == posted.roots[-1]
    return index, honest, posted


def _play(system, world, game_id, proposer, challenger, proposer_roots, challenger_roots, replay):
    arity = system.params.arity
    while system.game_state(game_id)["phase"] != Phase.STEP:
        g = system.game_state(game_id)
        points = compute_split_points(g["start"], g["end"], arity)
        posted = [proposer_roots[p] for p in points[1:-1]]
        system.bisect(proposer, game_id, posted)
        system.choose(challenger, game_id, posted, choose_first_disagreement(points, posted, lambda i: challenger_roots[i]))
    k = system.game_state(game_id)["start"]
    witness, state = replay.witness(k)
    witness = encode_witness(witness)
    dd = state.deposits_done
    entries = QueueEntries(*world.deposits[dd]) if dd < len(world.deposits) else QueueEntries()
    receipt = system.step(challenger, game_id, replay.records[k], tx_proof(replay.records, k), witness, entries)
    (stepped,) = events(system.game.events.Stepped, receipt)
    return k, stepped


def test_real_prover_catches_one_bad_transaction(real_system, proposer, challenger) -> None:
    system, world = real_system
    p = system.params
    corrupt_at = 5  # the state after transaction 4 (alice and bob's trade) is tampered with
    index, honest, bad = _append(system, world, proposer, corrupt_at)
    assert bad.roots[:corrupt_at] == honest.roots[:corrupt_at] and bad.roots[corrupt_at] != honest.roots[corrupt_at]
    burned = system.w3.eth.get_balance(BURN_ADDRESS)
    game_id = system.open_game(challenger, index)
    k, stepped = _play(system, world, game_id, proposer, challenger, bad.roots, honest.roots, honest)
    assert k == corrupt_at - 1
    assert stepped.args.postRoot == honest.roots[corrupt_at]
    assert (stepped.args.code, stepped.args.applied) == (0, True)
    assert system.game_state(game_id)["phase"] == Phase.CHALLENGER_WON
    assert system.rollup.functions.batchCount().call() == 1
    reward = p.proposer_bond * p.slash_reward_bps // 10_000
    assert system.rollup.functions.credits(challenger).call() == reward + p.challenger_bond
    assert system.w3.eth.get_balance(BURN_ADDRESS) - burned == p.proposer_bond - reward


def test_real_prover_upholds_an_honest_batch(real_system, proposer, challenger) -> None:
    system, world = real_system
    p = system.params
    index, honest, _ = _append(system, world, proposer, None)
    wrong = list(honest.roots)
    for i in range(7, len(wrong) - 1):
        wrong[i] = keccak(b"wrong" + bytes([i]))  # the challenger believes something broke at tx 6
    wrong[-1] = keccak(b"wrong final")
    game_id = system.open_game(challenger, index)
    k, stepped = _play(system, world, game_id, proposer, challenger, honest.roots, wrong, honest)
    assert k == 6
    assert stepped.args.postRoot == honest.roots[7]
    assert system.game_state(game_id)["phase"] == Phase.PROPOSER_WON
    assert system.rollup.functions.credits(proposer).call() == p.challenger_bond
