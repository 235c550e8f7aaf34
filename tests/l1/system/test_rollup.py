"""Rollup: batch append (framing and tx root mirror spec.batch_framing and spec.tx_tree), finality, and bad input."""

from __future__ import annotations

import random

from optinode.l1.contracts import increase_time, transact
from optinode.spec.batch_framing import frame_records, split_records
from optinode.spec.tx_tree import compute_tx_root
from optinode.spec.commitment import compute_state_root_from_parts

from .support import expect_revert, parts_for


def _events(contract_event, receipt):
    return contract_event().process_receipt(receipt)


def test_append_computes_tx_root_count_and_state_root(w3, system, proposer) -> None:
    rng = random.Random(7)
    records = [bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 127, 128, 300]))) for _ in range(40)]
    parts = parts_for("a")
    index = system.append_batch(proposer, records, parts)
    assert index == 1
    b = system.batch(1)
    assert b["txRoot"] == compute_tx_root(records)
    assert b["txCount"] == len(records)
    assert b["stateRoot"] == compute_state_root_from_parts(*parts.as_tuple()) == parts.root()
    assert b["timestamp"] == w3.eth.get_block("latest")["timestamp"]
    assert system.rollup.functions.batchCount().call() == 2


def test_garbage_framing_matches_spec(system, proposer) -> None:
    # Random bytes are a valid batch: framing never fails, records may be truncated.
    rng = random.Random(11)
    cases = [bytes(rng.randrange(256) for _ in range(n)) for n in (1, 2, 3, 50, 700)]
    cases += [b"\x85", b"\x85\x00", b"\x05abc", b"\x81\x00" + b"x" * 10, b"\x00\x00\x00"]
    for i, data in enumerate(cases):
        index = system.append_batch(proposer, data, parts_for(f"g{i}"))
        records = split_records(data)
        b = system.batch(index)
        assert (b["txRoot"], b["txCount"]) == (compute_tx_root(records), len(records)), data.hex()


def test_chunk_boundaries_match_spec(system, proposer) -> None:
    # The contract hashes leaves in chunks of 256: counts around chunk and tree boundaries.
    rng = random.Random(5)
    for n in (1, 2, 3, 255, 256, 257, 511, 512, 513, 1000, 4097):
        records = [bytes(rng.randrange(256) for _ in range(rng.randrange(3))) for _ in range(n)]
        index = system.append_batch(proposer, records, parts_for(f"n{n}"), gas=25_000_000)
        b = system.batch(index)
        assert (b["txRoot"], b["txCount"]) == (compute_tx_root(records), n), n


def test_full_and_oversized_batches(system, proposer) -> None:
    # 2^16 empty records (one zero byte each) is the largest batch; one more reverts.
    full = bytes(2**16)
    index = system.append_batch(proposer, full, parts_for("full"), gas=29_000_000)
    b = system.batch(index)
    assert b["txCount"] == 2**16
    assert b["txRoot"] == compute_tx_root([b""] * 2**16)
    expect_revert("TooManyTransactions", lambda: system.append_batch(proposer, bytes(2**16 + 1), parts_for("x"), gas=29_000_000))


def test_append_bad_input(system, proposer, challenger) -> None:
    expect_revert("NotProposer", lambda: system.append_batch(challenger, [b"\x04"], parts_for("a")))
    expect_revert("WrongBond", lambda: system.append_batch(proposer, [b"\x04"], parts_for("a"), value=1))
    expect_revert("EmptyBatch", lambda: system.append_batch(proposer, b"", parts_for("a")))
    p = parts_for("a")
    too_far = type(p)(p.accounts_root, p.slots_root, p.globals_hash, 1, 0)
    expect_revert("CounterBeyondQueue", lambda: system.append_batch(proposer, [b"\x01\x00"], too_far))


def test_counters_monotone(system, proposer, users) -> None:
    system.deposit(users[0], users[0], 5)
    system.deposit(users[0], users[0], 6)
    p = parts_for("a")
    two = type(p)(p.accounts_root, p.slots_root, p.globals_hash, 2, 0)
    one = type(p)(p.accounts_root, p.slots_root, p.globals_hash, 1, 0)
    system.append_batch(proposer, [b"\x01\x00", b"\x01\x00"], two)
    assert system.batch(1)["depositQueueLength"] == 2
    expect_revert("CounterDecreased", lambda: system.append_batch(proposer, [b"\x01\x00"], one))


def test_finalize_in_order_after_window_and_bond_returns(w3, system, proposer, challenger) -> None:
    bond = system.params.proposer_bond
    system.append_batch(proposer, [b"\x04"], parts_for("a"))
    system.append_batch(proposer, [b"\x04"], parts_for("b"))
    assert w3.eth.get_balance(system.rollup.address) == 2 * bond
    expect_revert("ChallengeWindowOpen", lambda: system.finalize(challenger, 1))
    increase_time(w3, system.params.challenge_window)
    expect_revert("NotNextToFinalize", lambda: system.finalize(challenger, 2))
    expect_revert("BatchNotFound", lambda: system.finalize(challenger, 3))
    system.finalize(challenger, 1)
    expect_revert("NotNextToFinalize", lambda: system.finalize(challenger, 1))
    system.finalize(challenger, 2)
    assert system.rollup.functions.lastFinalized().call() == [2, parts_for("b").root(), 0, 0]
    assert system.rollup.functions.credits(proposer).call() == 2 * bond
    before = w3.eth.get_balance(proposer)
    receipt = transact(w3, system.rollup.functions.withdrawCredit(), proposer)
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(proposer) == before + 2 * bond - fee
    assert w3.eth.get_balance(system.rollup.address) == 0
    expect_revert("NothingToWithdraw", lambda: transact(w3, system.rollup.functions.withdrawCredit(), proposer))


def test_only_game_hooks(system, proposer) -> None:
    r = system.rollup.functions
    expect_revert("NotGame", lambda: transact(system.w3, r.registerGame(1), proposer))
    expect_revert("NotGame", lambda: transact(system.w3, r.rejectBatch(1, 1, proposer), proposer))
    expect_revert("NotGame", lambda: transact(system.w3, r.payout(proposer), proposer, value=1))
    expect_revert("NotGame", lambda: transact(system.w3, r.releaseGame(1, 1), proposer))


def test_deployment_checks_parameters(make_system) -> None:
    expect_revert("InvalidParameter", lambda: make_system(slash_reward_bps=10_000))  # self-challenge would pay
    expect_revert("InvalidParameter", lambda: make_system(arity=1))
    expect_revert("InvalidParameter", lambda: make_system(clock=0))
    # deadlines must leave room for a window, a game that runs both clocks out and an explicit
    # inclusion margin (issue 8 finding 5: window + 2 x clock + 1 s used to be accepted)
    worst = 3600 + 2 * 1800
    expect_revert("InvalidParameter", lambda: make_system(inclusion_margin=0))
    expect_revert("InvalidParameter", lambda: make_system(forced_deadline=worst + 1, inclusion_margin=3600))
    expect_revert("InvalidParameter", lambda: make_system(deposit_deadline=worst + 1, inclusion_margin=3600))
    expect_revert("InvalidParameter", lambda: make_system(forced_deadline=worst + 3599, inclusion_margin=3600))
    system = make_system(forced_deadline=worst + 3600, deposit_deadline=worst + 3600, inclusion_margin=3600)
    assert system.game.functions.inclusionMargin().call() == 3600
    expect_revert("InvalidParameter", lambda: make_system(claim_period=0))


def test_wiring_is_checked(system, w3, deployer) -> None:
    from optinode.l1.contracts import deploy_contract

    me = deployer.address
    rollup_args = (system.bridge.address, me, (b"\0" * 32, 1, 1, 0, 60, 0, [me]))
    expect_revert("WrongWiring", lambda: deploy_contract(w3, "Rollup", *rollup_args, sender=me))
    game_args = (system.rollup.address, system.prover.address, 16, 1, 100, 100)
    expect_revert("WrongWiring", lambda: deploy_contract(w3, "DisputeGame", *game_args, sender=me))


def test_declared_timestamp_is_bounded(w3, make_system, proposer) -> None:
    """appendBatch's rule 4: parent's timestamp <= l1Timestamp <= block.timestamp and
    block.timestamp - l1Timestamp <= maxTimestampDrift, each bound with its named error."""
    system = make_system(max_timestamp_drift=100)
    now = w3.eth.get_block("latest")["timestamp"]
    error = expect_revert("TimestampInFuture", lambda: system.append_batch(proposer, [b"\x01"], parts_for("f"), l1_timestamp=now + 1000))
    assert error.values[0] == now + 1000 and now <= error.values[1] < now + 1000
    # a declared time exactly at the block's and exactly at the drift are accepted
    w3.provider.make_request("evm_mine", [now + 20])
    first = system.append_batch(proposer, [b"\x01"], parts_for("a"), l1_timestamp=now + 20)
    assert system.batch(first)["timestamp"] == now + 20 <= system.batch(first)["appendedAt"]
    w3.provider.make_request("evm_mine", [now + 110])
    second = system.append_batch(proposer, [b"\x01"], parts_for("b"), l1_timestamp=now + 20)
    assert system.batch(second)["timestamp"] == now + 20 and system.batch(second)["appendedAt"] > now + 110 - 1
    # before the parent's
    error = expect_revert("TimestampBeforeParent", lambda: system.append_batch(proposer, [b"\x01"], parts_for("c"), l1_timestamp=now + 19))
    assert list(error.values) == [now + 19, now + 20]
    # older than the drift (the parent's time too: a chain that stalls past the drift needs a fresh batch)
    w3.provider.make_request("evm_mine", [now + 131])
    error = expect_revert("TimestampTooOld", lambda: system.append_batch(proposer, [b"\x01"], parts_for("d"), l1_timestamp=now + 30))
    assert error.values[0] == now + 30 and error.values[1] >= now + 131 and error.values[2] == 100
    assert system.rollup.functions.batchCount().call() == 3


def test_challenge_window_runs_from_the_append(w3, make_system, proposer) -> None:
    """A batch declared with an old L1 time keeps its whole challenge window: it counts from appendedAt."""
    system = make_system(max_timestamp_drift=1000, challenge_window=500)
    now = w3.eth.get_block("latest")["timestamp"]
    w3.provider.make_request("evm_mine", [now + 900])
    index = system.append_batch(proposer, [b"\x01"], parts_for("w"), l1_timestamp=now + 1)
    appended_at = system.batch(index)["appendedAt"]
    assert appended_at >= now + 900
    w3.provider.make_request("evm_mine", [appended_at + 498])
    expect_revert("ChallengeWindowOpen", lambda: system.finalize(proposer, index))
    w3.provider.make_request("evm_mine", [appended_at + 500])
    system.finalize(proposer, index)
    assert system.rollup.functions.finalizedCount().call() == 2
