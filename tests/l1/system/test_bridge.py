"""Bridge: deposit and forced queues (hash chains), withdrawals against finalized roots, freeze,
escape hatch and deposit refunds; token balances asserted to the unit."""

from __future__ import annotations

import pytest

from optinode.l1.contracts import deposit_acc, forced_acc, increase_time, transact
from optinode.spec.constants import FORCED_CANCEL_ALL
from optinode.spec.types import Deposit, DepositEntry, ForcedEntry, ForcedWithdraw
from optinode.testing.world import World

from optinode.spec.escape import compute_escape_payout

from .escape_world import build_insolvent_world
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
        transact(system.w3, system.token.functions.mint(sender, amount), sender)
        transact(system.w3, system.token.functions.approve(system.bridge.address, amount), sender)
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


def test_forced_cancel_all_enters_the_forced_queue(system, users) -> None:
    """A censored user's cancel-all: the Bridge queues FORCED_CANCEL_ALL | floor in the forced queue's
    amount word, and the spec's ForcedWithdraw consuming that entry raises the account's nonce floor."""
    b = system.bridge.functions
    index = b.forcedCount().call()
    receipt = transact(system.w3, b.requestForcedCancelAll(0, 1_000), users[0])
    (ev,) = events(system.bridge.events.ForcedWithdrawalRequested, receipt)
    assert (ev.args.index, ev.args.requester, ev.args.accountId, ev.args.amount) == (index, users[0], 0, FORCED_CANCEL_ALL | 1_000)
    assert b.isForcedRequest(index, users[0], 0, FORCED_CANCEL_ALL | 1_000).call()
    expect_revert("InvalidAmount", lambda: transact(system.w3, b.requestForcedCancelAll(0, MAX_U64 + 1), users[0]))
    expect_revert("InvalidAccountId", lambda: transact(system.w3, b.requestForcedCancelAll(2**32, 5), users[0]))
    # The spec reads the entry exactly as queued.
    w = World()
    w.deposit_queue[0] = DepositEntry(owner=bytes.fromhex(users[0][2:]), amount=10)
    w.must(Deposit(0))
    w.forced_queue[0] = ForcedEntry(requester=bytes.fromhex(ev.args.requester[2:]), account_id=ev.args.accountId, amount=ev.args.amount)
    w.must(ForcedWithdraw())
    assert w.state.accounts[0].nonce_base == 1_000


def test_forced_deleverage_enters_the_forced_queue(system, users) -> None:
    """A censored user makes the bad-debt waterfall run: the Bridge queues FORCED_DELEVERAGE |
    deleverager << 72 | market << 64 | size for the bankrupt account, anyone may ask, and the spec's
    ForcedWithdraw consuming that entry deleverages it with the insurance fund paying first."""
    from optinode.spec.constants import FORCED_DELEVERAGE
    from optinode.testing.vectors import _insured
    from optinode.testing.world import ETH, ETH_UNIT

    b = system.bridge.functions
    index = b.forcedCount().call()
    receipt = transact(system.w3, b.requestForcedDeleverage(4, 2, ETH, ETH_UNIT), users[3])
    (ev,) = events(system.bridge.events.ForcedWithdrawalRequested, receipt)
    word = FORCED_DELEVERAGE | 2 << 72 | ETH << 64 | ETH_UNIT
    assert (ev.args.index, ev.args.requester, ev.args.accountId, ev.args.amount) == (index, users[3], 4, word)
    assert b.isForcedRequest(index, users[3], 4, word).call()
    expect_revert("InvalidAccountId", lambda: transact(system.w3, b.requestForcedDeleverage(4, 2**32, ETH, 1), users[3]))
    expect_revert("InvalidAccountId", lambda: transact(system.w3, b.requestForcedDeleverage(2**32, 2, ETH, 1), users[3]))
    expect_revert("InvalidAmount", lambda: transact(system.w3, b.requestForcedDeleverage(4, 2, ETH, 0), users[3]))
    # The spec reads the entry exactly as queued: erin (account 4, at -20 USD) is closed against carol
    # (account 2) and the fund pays her debt.
    w = _insured(2_400 * 10**8 // 1000)
    insurance = w.state.insurance
    w.forced_queue[w.state.forced_done] = ForcedEntry(
        requester=bytes.fromhex(ev.args.requester[2:]), account_id=ev.args.accountId, amount=ev.args.amount
    )
    w.must(ForcedWithdraw())
    assert w.state.accounts[4].positions == {} and w.state.insurance == insurance - 20 * 10**6


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


def escape_all(system, world, names, sender) -> dict[str, tuple[int, int]]:
    """Register every named account's claim, wait out the claim phase, release the pending bonds and
    pay each account: {name: (collateral paid, ETH paid)}."""
    parts = world.parts()
    for name in names:
        system.register_claim(sender, world.globals(), parts, world.proof(name))
    increase_time(system.w3, system.params.claim_period + 1)
    if system.rollup.functions.batchCount().call() > system.rollup.functions.finalizedCount().call():
        system.release_frozen_bonds(sender)
    out = {}
    for name in names:
        who = world.addresses[name]
        before, eth_before = balance(system, who), system.w3.eth.get_balance(who)
        receipt = system.escape(sender, world.ids[name])
        (ev,) = events(system.bridge.events.Escaped, receipt)
        out[name] = (balance(system, who) - before, system.w3.eth.get_balance(who) - eth_before)
        assert out[name] == (ev.args.amount, ev.args.bondShare), name
    return out


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
    expect_revert("NotFrozen", lambda: system.register_claim(bob, world.globals(), world.parts(), world.proof("bob")))
    expect_revert("NotFrozen", lambda: system.escape(bob, 1))
    increase_time(system.w3, p.forced_deadline - 10)
    # a batch that does not consume the request does not help: only finalized consumption counts
    system.append_batch(proposer, [b"\x00"], world.parts())
    expect_revert("NothingOverdue", lambda: transact(system.w3, b.freeze(), users[5]))
    increase_time(system.w3, 20)
    receipt = system.freeze(users[5])
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
    expect_revert("RollupFrozen", lambda: system.open_game(users[0], 2))
    # withdrawals are no longer claimed one by one: carol's unpaid one is part of her escape claim
    expect_revert("RollupFrozen", lambda: transact(system.w3, b.claimWithdrawal(1, world.parts().as_tuple(), world.proof("carol")), carol))
    expected = {
        "alice": world.value("alice"),  # withdrawal already paid
        "bob": world.value("bob"),
        "carol": world.value("carol") + 300 * USD,  # unpaid withdrawal included
        "dave": 0,  # negative value pays nothing
    }
    assert world.value("dave") < 0 < world.value("alice")
    bridge_before = balance(system, system.bridge.address)
    paid = escape_all(system, world, list(expected), users[5])
    # the state is solvent (dave's deficit < the fees): every claim in full; the pending batch's bond
    # goes to the escapers pro rata to their claims
    total = sum(expected.values())
    bond = p.proposer_bond
    for name, amount in expected.items():
        assert paid[name] == (amount, amount * bond // total), name
    for name in expected:
        expect_revert("AlreadyEscaped", lambda: system.escape(users[0], world.ids[name]))
    assert balance(system, system.bridge.address) == bridge_before - total
    # every account is out; what remains is the system's fees, less dave's shortfall and rounding dust
    remaining = sum(a for _, a in world.deposits) - 1_000 * USD - total
    assert balance(system, system.bridge.address) == remaining
    state = world.state
    assert 0 < remaining <= state.fees + state.insurance
    assert system.w3.eth.get_balance(system.bridge.address) == bond - sum(e for _, e in paid.values()) < 4


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
    claim = b.registerClaim
    expect_revert("BadAccountProof", lambda: transact(system.w3, claim(bytes(globals_), *args, world.proof("alice")), users[0]))
    account_id, leaf, siblings = world.proof("alice")
    expect_revert("BadAccountProof", lambda: transact(system.w3, claim(world.globals(), *args, (account_id, leaf, siblings[::-1])), users[0]))
    expect_revert("BadAccountProof", lambda: transact(system.w3, claim(world.globals(), *args, (1, leaf, siblings)), users[0]))


def test_claim_and_payout_phases(finalized, world, users) -> None:
    system = finalized
    b = system.bridge.functions
    transact(system.w3, b.requestForcedWithdrawal(0, 1), users[0])
    increase_time(system.w3, system.params.forced_deadline + 1)
    system.freeze(users[0])
    frozen_at = b.frozenAt().call()
    end = frozen_at + system.params.claim_period
    parts = world.parts()
    alice = world.ids["alice"]
    system.register_claim(users[1], world.globals(), parts, world.proof("alice"))  # anyone, for anyone
    err = expect_revert("AlreadyClaimed", lambda: system.register_claim(users[2], world.globals(), parts, world.proof("alice")))
    assert err.values == (alice,)
    err = expect_revert("ClaimPhaseOpen", lambda: system.escape(users[0], alice))
    assert err.values[1] == end
    increase_time(system.w3, system.params.claim_period + 1)
    err = expect_revert("ClaimPhaseOver", lambda: system.register_claim(users[2], world.globals(), parts, world.proof("bob")))
    assert err.values[1] == end
    err = expect_revert("NoClaim", lambda: system.escape(users[0], world.ids["bob"]))
    assert err.values == (world.ids["bob"],)
    system.escape(users[0], alice)
    expect_revert("AlreadyEscaped", lambda: system.escape(users[0], alice))


def test_an_insolvent_bridge_pays_every_account_the_same_share_in_any_order(make_system, proposer, users) -> None:
    # The reproduction of issue 8 finding 3: the claims total 8,000 USD and the bridge holds 6,009.
    # Before: the first escapers were paid in full and the last escape reverted. Now every account
    # gets claim * 6009 / 8000 (rounded down), whatever the order, and the dust stays in the bridge.
    world = build_insolvent_world(owed=[3_000 * USD, 2_500 * USD, 1_500 * USD, 1_000 * USD], held=6_009 * USD)
    for order in (list(world.names), list(reversed(world.names))):
        system = world.deploy(make_system, proposer, users[4])
        paid = world.escape(system, order, users[5])
        total, pool = 8_000 * USD, 6_009 * USD
        for name, claim in world.claims.items():
            assert paid[name] == compute_escape_payout(claim, total, pool) == claim * pool // total, (order, name)
        assert sum(paid.values()) <= pool
        # the dust stays, and the queued deposit the state never consumed is still refundable in full
        assert balance(system, system.bridge.address) == pool - sum(paid.values()) + sum(world.queued)


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


def test_bonds_of_batches_pending_at_the_freeze_go_to_the_escapers(finalized, world, proposer, challenger, users) -> None:
    # Issue 8 finding 4: the bonds of batches pending at a freeze had no way out (2 ETH stuck).
    system = finalized
    p = system.params
    w3 = system.w3
    system.append_batch(proposer, [b"\x04"], world.parts())  # batch 2: challenged before the freeze
    system.append_batch(proposer, [b"\x04", b"\x04"], world.parts())  # batch 3
    game_id = system.open_game(challenger, 2)
    transact(w3, system.bridge.functions.requestForcedWithdrawal(0, 1), users[0])
    increase_time(w3, p.forced_deadline + 1)
    system.freeze(users[0])
    expect_revert("RollupFrozen", lambda: system.open_game(challenger, 3))  # no game opens once frozen
    expect_revert("BondNotForfeitable", lambda: transact(w3, system.rollup.functions.forfeitBond(3), users[0]))
    rollup_before = w3.eth.get_balance(system.rollup.address)
    # batch 3 (the top) is released; batch 2 waits for its game
    receipt = system.release_frozen_bonds(users[1])
    (ev,) = events(system.rollup.events.BondEscaped, receipt)
    assert (ev.args.index, ev.args.proposer) == (3, proposer)
    err = expect_revert("GamesOpen", lambda: system.release_frozen_bonds(users[1]))
    assert err.values == (2, 1)
    assert w3.eth.get_balance(system.bridge.address) == p.proposer_bond
    # the game ends (the challenger never chooses: the proposer wins on time), then batch 2 goes too
    assert system.game_state(game_id)["phase"] == 3  # a one-record batch: the challenger's step
    increase_time(w3, p.clock + 1)
    system.timeout(users[2], game_id)
    system.release_frozen_bonds(users[1], 1)
    assert w3.eth.get_balance(system.bridge.address) == 2 * p.proposer_bond
    # the Rollup keeps the finalized batch's returned bond and the challenger bond the proposer won
    assert w3.eth.get_balance(system.rollup.address) == rollup_before - 2 * p.proposer_bond + p.challenger_bond
    assert system.rollup.functions.bonds(2).call()[2] == system.rollup.functions.bonds(3).call()[2] == 4  # Escaped
    # the escapers share both bonds pro rata to their claims; the Rollup keeps only what it credited
    names = ["alice", "bob", "carol", "dave"]
    paid = escape_all(system, world, names, users[5])
    assert sum(eth for _, eth in paid.values()) > 2 * p.proposer_bond - len(names)
    credited = sum(system.rollup.functions.credits(a).call() for a in (proposer, challenger))
    assert w3.eth.get_balance(system.rollup.address) == credited


def test_an_owner_that_refuses_eth_blocks_nobody(make_system, proposer, users) -> None:
    # An owner whose code reverts on ETH (or returns a huge blob) still gets its collateral; its bond
    # share stays in the bridge, and every other account is paid as if nothing happened.
    world = build_insolvent_world(owed=[3_000 * USD, 1_000 * USD], held=3_500 * USD, seed=7)
    world.pending = 1
    system = world.deploy(make_system, proposer, users[4])
    refuser = world.owners[0]
    system.w3.provider.make_request("anvil_setCode", [refuser, "0x60006000fd"])  # revert(0, 0)
    bonds = system.params.proposer_bond
    parts = world.parts()
    for account_id in world.names:
        system.register_claim(users[5], world.globals_bytes(), parts, world.proof(account_id))
    increase_time(system.w3, system.params.claim_period + 1)
    system.release_frozen_bonds(users[5])
    shares = {i: world.claims[i] * bonds // world.total_claims for i in world.names}
    for account_id in world.names:
        owner = world.owners[account_id]
        before = balance(system, owner)
        system.escape(users[5], account_id)
        assert balance(system, owner) - before == world.payout(account_id)
    assert system.w3.eth.get_balance(world.owners[1]) == shares[1]
    assert system.w3.eth.get_balance(refuser) == 0
    assert system.w3.eth.get_balance(system.bridge.address) == bonds - shares[1]
