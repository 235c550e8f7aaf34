"""A frozen rollup to escape from: a finalized state built directly (any state the Bridge can be shown
a proof under), the L1 history that leads to its freeze, and the spec's escape rule for it.

The Bridge does not re-execute transactions: it pays what the last finalized root says. So the states
here are written field by field — accounts with any collateral (negative too), withdrawals, positions
in both markets with stale funding, an insurance fund and fees — and the bridge is funded with any
balance, above or below what the claims add up to. The L1 history: the deposits that fund the bridge
(consumed by the state), a few queued deposits the state never consumes (refunded in full, and the
one that freezes the rollup when overdue), withdrawals some accounts claim before the freeze, a
donation sent straight to the bridge, and batches still pending at the freeze (their bonds go to
the escaping users).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from web3 import Web3

from optinode.l1.contracts import StateParts, System, increase_time, transact
from optinode.spec.commitment import Commitment, encode_globals
from optinode.spec.crypto import keccak
from optinode.spec.escape import compute_bond_share, compute_escape_payout, get_escape_claims
from optinode.spec.state import Account, MarketState, Position, State, get_total_collateral
from optinode.replay import account_proof, state_parts
from optinode.testing.world import World

from .support import events, parts_for


def owner_address(seed: int, i: int) -> str:
    """A fresh address that never sends a transaction (its balances move only by payouts)."""
    return Web3.to_checksum_address(keccak(b"escape owner" + seed.to_bytes(8, "big") + i.to_bytes(4, "big"))[12:])


@dataclass
class EscapeWorld:
    state: State
    owners: dict[int, str]  # account id -> owner
    held: int  # the collateral the bridge holds for the accounts at the freeze (consumed deposits - paid withdrawals + donation)
    prepaid: dict[int, int] = field(default_factory=dict)  # withdrawals claimed before the freeze
    queued: list[int] = field(default_factory=lambda: [1])  # deposits the state never consumes
    donation: int = 0
    pending: int = 0  # batches pending at the freeze
    reclaim_at: dict[int, int] = field(default_factory=dict)  # queued deposit -> escape step before which it is reclaimed

    def __post_init__(self) -> None:
        self.commitment = Commitment.from_state(self.state)
        self.claims = get_escape_claims(self.state, self.prepaid)

    @property
    def names(self) -> list[int]:
        return sorted(self.state.accounts)

    @property
    def total_claims(self) -> int:
        return sum(self.claims.values())

    def parts(self) -> StateParts:
        return state_parts(self.state, self.commitment)

    def globals_bytes(self) -> bytes:
        return encode_globals(self.state)

    def proof(self, account_id: int) -> tuple[int, bytes, list[bytes]]:
        return account_proof(self.state, self.commitment, account_id)

    def payout(self, account_id: int) -> int:
        """The rule amount (spec.escape) for the pool this world leaves the accounts."""
        return compute_escape_payout(self.claims[account_id], self.total_claims, self.held)

    def deploy(self, make_system, proposer: str, sender: str) -> System:
        """Deploy, replay the L1 history and freeze; returns the frozen system."""
        system = make_system(genesis_root=keccak(b"escape genesis"))
        self.depositor = sender
        funding = self.held - self.donation + sum(self.prepaid.values())
        consumed = self.state.deposits_done
        assert consumed >= 1 and funding >= consumed
        # the entries the state consumed: together they fund the bridge with `funding`
        for amount in [funding - (consumed - 1)] + [1] * (consumed - 1):
            system.deposit(sender, sender, amount)
        for _ in range(self.state.forced_done):  # the forced requests the state consumed
            transact(system.w3, system.bridge.functions.requestForcedWithdrawal(0, 1), sender)
        for amount in self.queued:
            system.deposit(sender, sender, amount)
        system.append_batch(proposer, [b"\x01\x00"], self.parts())
        increase_time(system.w3, system.params.challenge_window)
        system.finalize(proposer, 1)
        for account_id in self.prepaid:
            transact(system.w3, system.bridge.functions.claimWithdrawal(1, self.parts().as_tuple(), self.proof(account_id)), sender)
        if self.donation:
            transact(system.w3, system.token.functions.mint(system.bridge.address, self.donation), sender)
        for i in range(self.pending):
            tag = parts_for(f"pending{i}")
            counters = (self.state.deposits_done, self.state.forced_done)
            system.append_batch(proposer, [b"\x04"], StateParts(*tag.as_tuple()[:3], *counters))
        increase_time(system.w3, system.params.deposit_deadline + 1)
        system.freeze(sender)
        return system

    def escape(self, system: System, order: list[int], sender: str, *, page: int | None = None) -> dict[int, int]:
        """Register every claim (in `order`), release the pending bonds (in pages of `page`), pay every
        account (in `order`), refunding queued deposits as scheduled; checks each payout against the
        rule as it goes. Returns the collateral paid per account."""
        w3, token = system.w3, system.token.functions
        for account_id in order:
            system.register_claim(sender, encode_globals(self.state), self.parts(), self.proof(account_id))
        assert system.bridge.functions.totalClaims().call() == self.total_claims
        increase_time(w3, system.params.claim_period + 1)
        while system.rollup.functions.batchCount().call() > system.rollup.functions.finalizedCount().call():
            system.release_frozen_bonds(sender, page or 2**256 - 1)
        bonds = self.pending * system.params.proposer_bond
        assert w3.eth.get_balance(system.bridge.address) == bonds
        paid: dict[int, int] = {}
        for step, account_id in enumerate(order):
            self._reclaim(system, step, sender)
            owner = self.owners[account_id]
            before, eth_before = token.balanceOf(owner).call(), w3.eth.get_balance(owner)
            receipt = system.escape(sender, account_id)
            if step == 0:
                (started,) = events(system.bridge.events.PayoutsStarted, receipt)
                assert (started.args.totalClaims, started.args.escapePool, started.args.bondPool) == (self.total_claims, self.held, bonds)
            paid[account_id] = token.balanceOf(owner).call() - before
            assert paid[account_id] == self.payout(account_id), (account_id, order)
            eth = w3.eth.get_balance(owner) - eth_before
            assert eth == compute_bond_share(self.claims[account_id], self.total_claims, bonds), (account_id, order)
        self._reclaim(system, len(order), sender)
        return paid

    def _reclaim(self, system: System, step: int, sender: str) -> None:
        for index, at in self.reclaim_at.items():
            if at == step:
                queue_index = self.state.deposits_done + index
                fn = system.bridge.functions.reclaimDeposit(queue_index, self.depositor, self.queued[index])
                transact(system.w3, fn, sender)


def _state_with(accounts: dict[int, Account], *, insurance: int = 0, fees: int = 0, markets: list[MarketState] | None = None) -> State:
    state = World().state
    if markets is not None:
        state.markets = markets
    state.accounts = accounts
    state.next_account_id = len(accounts)
    state.insurance, state.fees = insurance, fees
    state.deposits_done = 1
    return state


def build_insolvent_world(*, owed: list[int], held: int, seed: int = 1) -> EscapeWorld:
    """Accounts owed `owed` (collateral only) and one bankrupt account whose deficit makes the state
    hold exactly `held`: the claims total sum(owed) > held."""
    accounts = {i: Account(owner=bytes.fromhex(owner_address(seed, i)[2:]), collateral=amount) for i, amount in enumerate(owed)}
    bankrupt = len(owed)
    accounts[bankrupt] = Account(owner=bytes.fromhex(owner_address(seed, bankrupt)[2:]), collateral=held - sum(owed))
    world = EscapeWorld(_state_with(accounts), {i: owner_address(seed, i) for i in accounts}, held)
    assert world.claims[bankrupt] == 0 and world.total_claims == sum(owed) > held
    return world


def random_world(rng: random.Random, seed: int) -> EscapeWorld:
    """A random finalized state and L1 history (see the module docstring)."""
    template = World().state
    markets = [
        MarketState(
            price=rng.randint(1, 10**14), price_time=m.price_time, funding_index=rng.randint(-(10**12), 10**12), sample_time=m.sample_time
        )
        for m in template.markets
    ]
    accounts: dict[int, Account] = {}
    for i in range(rng.randint(1, 6)):
        positions = {}
        for market, m in enumerate(markets):
            if rng.random() < 0.5:
                size = rng.choice([-1, 1]) * rng.randint(1, 10**10)
                positions[market] = Position(size, m.funding_index + rng.choice([0, rng.randint(-(10**10), 10**10)]))
        accounts[i] = Account(
            owner=bytes.fromhex(owner_address(seed, i)[2:]),
            collateral=rng.choice([rng.randint(-(10**11), 10**12), rng.randint(0, 10**6), 0]),
            withdrawn=rng.choice([0, rng.randint(1, 10**11)]),
            positions=dict(sorted(positions.items())),
        )
    state = _state_with(accounts, insurance=rng.randint(0, 10**10), fees=rng.randint(0, 10**10), markets=markets)
    prepaid = {i: a.withdrawn for i, a in accounts.items() if a.withdrawn and rng.random() < 0.4}
    owed = sum(get_escape_claims(state, prepaid).values())
    # the bridge holds anything from a fraction of the claims to more than all of them
    held = max(1, rng.choice([owed, owed + rng.randint(0, 10**9), rng.randint(0, owed + 1), owed * rng.randint(1, 99) // 100]))
    donation = rng.choice([0, 0, rng.randint(1, held)]) if held > 1 else 0
    queued = [rng.randint(1, 10**9) for _ in range(rng.randint(1, 3))]
    steps = len(accounts) + 1
    reclaim_at = {k: rng.randrange(steps) for k in range(len(queued)) if rng.random() < 0.7}
    return EscapeWorld(
        state,
        {i: owner_address(seed, i) for i in accounts},
        held,
        prepaid=prepaid,
        queued=queued,
        donation=min(donation, held - 1) if held > 1 else 0,
        pending=rng.randint(0, 3),
        reclaim_at=reclaim_at,
    )


def world_from_state(state: State, rng: random.Random) -> EscapeWorld:
    """A state reached by transactions (tests/spec/strategies.py): the bridge holds exactly what
    conservation says — the collateral in the state plus the withdrawals it has not paid."""
    prepaid = {i: a.withdrawn for i, a in state.accounts.items() if a.withdrawn and rng.random() < 0.5}
    held = get_total_collateral(state) + sum(a.withdrawn for a in state.accounts.values()) - sum(prepaid.values())
    queued = [rng.randint(1, 10**9) for _ in range(rng.randint(1, 2))]
    owners = {i: Web3.to_checksum_address(a.owner) for i, a in state.accounts.items()}
    return EscapeWorld(
        state,
        owners,
        held,
        prepaid=prepaid,
        queued=queued,
        pending=rng.randint(0, 2),
        reclaim_at={k: rng.randrange(len(state.accounts) + 1) for k in range(len(queued)) if rng.random() < 0.5},
    )
