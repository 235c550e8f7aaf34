"""Bridge: deposit and forced queues (hash chains), withdrawals against finalized roots, freeze,
escape hatch and deposit refunds; token balances asserted to the unit."""

from __future__ import annotations

import pytest

from optinode.l1.contracts import deposit_acc, forced_acc, increase_time, transact

from .support import events, expect_revert, parts_for
from .world import USD, L1World, build_world

MAX_U64 = 2**64 - 1


def balance(system, who: str) -> int:
    return system.token.functions.balanceOf(who).call()


@pytest.fixture
def world(anvil) -> L1World:
    return build_world(list(anvil.private_keys[4:8]))


@pytest.fixture
def finalized(make_system, world, proposer):
    """The world's deposits made on L1, its batch appended and finalized."""
    system = make_system(genesis_root=world.genesis_root)
    for owner, amount in world.deposits:
        system.deposit(owner, owner, amount)
    system.append_batch(proposer, world.records(), world.parts())
    increase_time(system.w3, system.params.challenge_window)
    system.finalize(proposer, 1)
    return system


def test_deposit_queue_is_a_hash_chain(system, users) -> None:
    acc = b"\0" * 32
    before = balance(system, system.bridge.address)
    for i, (sender, owner, amount) in enumerate([(users[0], users[1], 5), (users[0], users[0], MAX_U64), (users[2], users[1], 1)]):
        system.token.functions.mint(sender, amount).transact({"from": sender})
        system.token.functions.approve(system.bridge.address, amount).transact({"from": sender})
        receipt = transact(system.w3, system.bridge.functions.deposit(owner, amount), sender)
        acc = deposit_acc(acc, bytes.fromhex(owner[2:]), amount)
        (ev,) = events(system.bridge.events.Deposited, receipt)
        assert (ev.args.index, ev.args["from"], ev.args.owner, ev.args.amount, ev.args.acc) == (i, sender, owner, amount, acc)
        assert system.bridge.functions.depositAt(i).call()[0] == acc
        assert system.bridge.functions.isDeposit(i, owner, amount).call()
        assert not system.bridge.functions.isDeposit(i, owner, amount + 1).call()
        assert not system.bridge.functions.isDeposit(i, sender if sender != owner else users[3], amount).call()
    assert not system.bridge.functions.isDeposit(3, users[1], 1).call()
    assert system.bridge.functions.depositCount().call() == 3
    assert balance(system, system.bridge.address) == before + 5 + MAX_U64 + 1


def test_forced_queue_is_a_hash_chain(system, users) -> None:
    acc = b"\0" * 32
    for i, (sender, account_id, amount) in enumerate([(users[0], 0, 7), (users[1], 2**32 - 1, MAX_U64)]):
        receipt = transact(system.w3, system.bridge.functions.requestForcedWithdrawal(account_id, amount), sender)
        acc = forced_acc(acc, bytes.fromhex(sender[2:]), account_id, amount)
        (ev,) = events(system.bridge.events.ForcedWithdrawalRequested, receipt)
        assert (ev.args.index, ev.args.requester, ev.args.accountId, ev.args.amount, ev.args.acc) == (i, sender, account_id, amount, acc)
        assert system.bridge.functions.isForcedRequest(i, sender, account_id, amount).call()
        assert not system.bridge.functions.isForcedRequest(i, sender, account_id + 1, amount).call()


def test_queue_bad_input(system, users) -> None:
    b = system.bridge.functions
    system.token.functions.mint(users[0], 10).transact({"from": users[0]})
    system.token.functions.approve(system.bridge.address, 10).transact({"from": users[0]})
    expect_revert("InvalidAmount", lambda: transact(system.w3, b.deposit(users[0], 0), users[0]))
    expect_revert("InvalidAmount", lambda: transact(system.w3, b.deposit(users[0], MAX_U64 + 1), users[0]))
    expect_revert("ZeroAddress", lambda: transact(system.w3, b.deposit("0x" + "00" * 20, 5), users[0]))
    expect_revert("InsufficientAllowance", lambda: transact(system.w3, b.deposit(users[0], 11), users[0]))
    expect_revert("InvalidAmount", lambda: transact(system.w3, b.requestForcedWithdrawal(1, 0), users[0]))
    expect_revert("InvalidAmount", lambda: transact(system.w3, b.requestForcedWithdrawal(1, MAX_U64 + 1), users[0]))
    expect_revert("InvalidAccountId", lambda: transact(system.w3, b.requestForcedWithdrawal(2**32, 1), users[0]))


def test_withdrawal_pays_once(finalized, world, users) -> None:
    system = finalized
    alice = world.addresses["alice"]
    parts = world.parts().as_tuple()
    bridge_before, alice_before = balance(system, system.bridge.address), balance(system, alice)
    # anyone may claim; the owner is paid
    receipt = transact(system.w3, system.bridge.functions.claimWithdrawal(1, parts, world.proof("alice")), users[5])
    assert balance(system, alice) == alice_before + 1_000 * USD == alice_before + world.withdrawn("alice")
    assert balance(system, system.bridge.address) == bridge_before - 1_000 * USD
    (ev,) = events(system.bridge.events.WithdrawalClaimed, receipt)
    assert (ev.args.accountId, ev.args.owner, ev.args.amount, ev.args.totalPaid) == (0, alice, 1_000 * USD, 1_000 * USD)
    expect_revert("NothingToPay", lambda: transact(system.w3, system.bridge.functions.claimWithdrawal(1, parts, world.proof("alice")), alice))
    # an account that withdrew nothing
    expect_revert("NothingToPay", lambda: transact(system.w3, system.bridge.functions.claimWithdrawal(1, parts, world.proof("bob")), alice))
    # carol claims against the genesis root? no: she did not exist there -> wrong proof
    expect_revert("BadAccountProof", lambda: transact(system.w3, system.bridge.functions.claimWithdrawal(0, parts, world.proof("carol")), alice))
    transact(system.w3, system.bridge.functions.claimWithdrawal(1, parts, world.proof("carol")), alice)
    assert balance(system, system.bridge.address) == bridge_before - 1_300 * USD


def test_wrong_proofs_revert(finalized, world, proposer) -> None:
    system = finalized
    c = system.bridge.functions
    parts = world.parts()
    account_id, leaf, siblings = world.proof("alice")
    bad_sibling = list(siblings)
    bad_sibling[5] = b"\x01" * 32
    forged = bytearray(leaf)
    forged[20 + 16 + 15] ^= 1  # withdrawn + 1
    cases = [
        (parts.as_tuple(), (account_id, leaf, bad_sibling)),
        (parts.as_tuple(), (account_id + 1, leaf, siblings)),
        (parts.as_tuple(), (account_id, bytes(forged), siblings)),
        (parts.as_tuple(), (account_id, leaf, siblings[:-1])),
        (parts_for("other").as_tuple(), (account_id, leaf, siblings)),
        (parts.as_tuple()[:3] + (parts.deposits_done + 1, parts.forced_done), (account_id, leaf, siblings)),
    ]
    for p, proof in cases:
        expect_revert("BadAccountProof", lambda: transact(system.w3, c.claimWithdrawal(1, p, proof), proposer))
    expect_revert("EmptyAccount", lambda: transact(system.w3, c.claimWithdrawal(1, parts.as_tuple(), (9, b"", siblings)), proposer))
    expect_revert("NotFinalized", lambda: transact(system.w3, c.claimWithdrawal(2, parts.as_tuple(), world.proof("alice")), proposer))


def test_unfinalized_batch_pays_nothing(make_system, world, proposer) -> None:
    system = make_system(genesis_root=world.genesis_root)
    for owner, amount in world.deposits:
        system.deposit(owner, owner, amount)
    system.append_batch(proposer, world.records(), world.parts())
    expect_revert("NotFinalized", lambda: transact(system.w3, system.bridge.functions.claimWithdrawal(1, world.parts().as_tuple(), world.proof("alice")), proposer))


def test_overdue_forced_request_freezes_and_users_escape_once(finalized, world, proposer, users) -> None:
    system = finalized
    p = system.params
    bob, alice, carol, dave = (world.addresses[n] for n in ("bob", "alice", "carol", "dave"))
    b = system.bridge.functions
    # alice claims her withdrawal before the freeze; carol does not
    transact(system.w3, b.claimWithdrawal(1, world.parts().as_tuple(), world.proof("alice")), alice)
    # bob asks for his money; the sequencer ignores him
    transact(system.w3, b.requestForcedWithdrawal(world.ids["bob"], 500 * USD), bob)
    expect_revert("NothingOverdue", lambda: transact(system.w3, b.freeze(), users[5]))
    expect_revert("NotFrozen", lambda: transact(system.w3, b.escape(world.globals(), *world.parts().as_tuple()[:2], 4, 0, world.proof("bob")), bob))
    increase_time(system.w3, p.forced_deadline - 10)
    # a batch that does not consume the request does not help: only finalized consumption counts
    system.append_batch(proposer, [b"\x00"], world.parts())
    expect_revert("NothingOverdue", lambda: transact(system.w3, b.freeze(), users[5]))
    increase_time(system.w3, 20)
    receipt = transact(system.w3, b.freeze(), users[5])
    (ev,) = events(system.bridge.events.Frozen, receipt)
    assert (ev.args.queue, ev.args.index) == (0, 0)
    assert b.frozen().call()
    # nothing is accepted after a freeze
    expect_revert("RollupFrozen", lambda: system.append_batch(proposer, [b"\x04"], world.parts()))
    increase_time(system.w3, p.challenge_window)
    expect_revert("RollupFrozen", lambda: system.finalize(proposer, 2))
    expect_revert("RollupFrozen", lambda: system.deposit(users[0], users[0], 5))
    expect_revert("RollupFrozen", lambda: transact(system.w3, b.requestForcedWithdrawal(0, 1), users[0]))
    expect_revert("RollupFrozen", lambda: transact(system.w3, b.freeze(), users[5]))
    # escapes: value under the last finalized root plus unpaid withdrawals, once
    parts = world.parts()
    escape_args = (world.globals(), parts.accounts_root, parts.slots_root, parts.deposits_done, parts.forced_done)
    expected = {
        "alice": world.value("alice"),  # withdrawal already paid
        "bob": world.value("bob"),
        "carol": world.value("carol") + 300 * USD,  # unpaid withdrawal included
        "dave": 0,  # negative value pays nothing
    }
    assert world.value("dave") < 0 < world.value("alice")
    bridge_before = balance(system, system.bridge.address)
    for name, amount in expected.items():
        who = world.addresses[name]
        before = balance(system, who)
        receipt = transact(system.w3, b.escape(*escape_args, world.proof(name)), users[5])
        assert balance(system, who) == before + amount, name
        (ev,) = events(system.bridge.events.Escaped, receipt)
        assert ev.args.value + ev.args.unpaidWithdrawals == amount
        expect_revert("AlreadyEscaped", lambda: transact(system.w3, b.escape(*escape_args, world.proof(name)), who))
    paid = sum(expected.values())
    assert balance(system, system.bridge.address) == bridge_before - paid
    # nothing more for carol's withdrawal either
    expect_revert("NothingToPay", lambda: transact(system.w3, b.claimWithdrawal(1, parts.as_tuple(), world.proof("carol")), carol))
    # every account is out; what remains is the system's fees, less dave's shortfall and rounding dust
    remaining = sum(a for _, a in world.deposits) - 1_000 * USD - paid
    assert balance(system, system.bridge.address) == remaining
    state = world.state
    assert 0 < remaining <= state.fees + state.insurance


def test_escape_rejects_a_wrong_proof(finalized, world, users) -> None:
    system = finalized
    b = system.bridge.functions
    transact(system.w3, b.requestForcedWithdrawal(0, 1), users[0])
    increase_time(system.w3, system.params.forced_deadline + 1)
    transact(system.w3, b.freeze(), users[0])
    parts = world.parts()
    globals_ = bytearray(world.globals())
    globals_[-1] ^= 1
    args = (parts.accounts_root, parts.slots_root, parts.deposits_done, parts.forced_done)
    expect_revert("BadAccountProof", lambda: transact(system.w3, b.escape(bytes(globals_), *args, world.proof("alice")), users[0]))
    account_id, leaf, siblings = world.proof("alice")
    expect_revert("BadAccountProof", lambda: transact(system.w3, b.escape(world.globals(), *args, (account_id, leaf, siblings[::-1])), users[0]))
    expect_revert("BadAccountProof", lambda: transact(system.w3, b.escape(world.globals(), *args, (1, leaf, siblings)), users[0]))


def test_overdue_deposit_freezes_and_unconsumed_deposits_are_refunded(finalized, world, users, proposer) -> None:
    system = finalized
    p = system.params
    b = system.bridge.functions
    # two more deposits nobody consumes
    system.deposit(users[0], users[1], 1234)
    system.deposit(users[2], users[2], 55)
    n = len(world.deposits)
    expect_revert("NotFrozen", lambda: transact(system.w3, b.reclaimDeposit(n, users[1], 1234), users[1]))
    increase_time(system.w3, p.deposit_deadline + 1)
    receipt = transact(system.w3, b.freeze(), users[3])
    (ev,) = events(system.bridge.events.Frozen, receipt)
    assert (ev.args.queue, ev.args.index) == (1, n)
    before = balance(system, users[1])
    transact(system.w3, b.reclaimDeposit(n, users[1], 1234), users[3])
    assert balance(system, users[1]) == before + 1234
    expect_revert("AlreadyReclaimed", lambda: transact(system.w3, b.reclaimDeposit(n, users[1], 1234), users[1]))
    expect_revert("BadQueueEntry", lambda: transact(system.w3, b.reclaimDeposit(n + 1, users[2], 56), users[2]))
    expect_revert("EntryConsumed", lambda: transact(system.w3, b.reclaimDeposit(0, world.deposits[0][0], world.deposits[0][1]), users[2]))
    expect_revert("IndexOutOfRange", lambda: transact(system.w3, b.reclaimDeposit(n + 2, users[2], 55), users[2]))
    before = balance(system, users[2])
    transact(system.w3, b.reclaimDeposit(n + 1, users[2], 55), users[2])
    assert balance(system, users[2]) == before + 55
