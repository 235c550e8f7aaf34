"""A sequencer that loses a game, on anvil with real processes: `optinode sequencer --fault
corrupt:2:0` (batch 2's root is wrong after its first transaction, and the sequencer defends it)
and a challenging `optinode verifier`. Batch 1 (two deposits) is honest; batch 2 holds three
withdrawals (a game with one bisection), and a deposit and a forced request follow, so the batches
L1 discards hold queue entries. Shared by test_lost_game.py and test_wrong_parent_race.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from web3.exceptions import ContractCustomError

from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import ForcedWithdraw, Withdraw
from optinode.testing.seqnode import DevChain, Sequencer
from optinode.testing.world import USD, World
from optinode.wallet import Key

from tests.l1.verifier.conftest import CHALLENGER_KEYS, VerifierProc, wait_until
from tests.l1.verifier.test_games_e2e import _game_contract, _logs

WITHDRAWALS = (1, 2, 3)  # USD, alice's, in batch 2 (the corrupted one)


@dataclass
class LostGame:
    chain: DevChain
    world: World
    users: dict[str, str]
    seq: Sequencer
    verifier: VerifierProc
    processes: list[Any]
    withdrawals: list[Withdraw]
    game: Any

    def wait(self, predicate: Any, what: str, timeout: float = 120.0) -> Any:
        def settled() -> Any:
            try:
                return predicate()
            except ContractCustomError:  # (a discard mined between reading the count and a batch: read again)
                return None

        return wait_until(settled, what, chain=self.chain, procs=self.processes, timeout=timeout)

    def discards(self) -> list[Any]:
        return _logs(self.chain, self.chain.rollup.events.BatchesDiscarded())

    def game_events(self, name: str) -> list[Any]:
        return _logs(self.chain, getattr(self.game.events, name)())


def start(chain: DevChain, anvil: Any, users: dict[str, str], tmp_path: Path, processes: list[Any], *, crash_at: str | None = None,
          config_path: Path | None = None) -> LostGame:
    """The two processes running, batch 1 on L1 and batch 2 (bad) posted; the game not yet over."""
    world = World(chain.genesis, keys={n: Key(bytes.fromhex(anvil.private_keys[i][2:])) for n, i in (("alice", 2), ("bob", 3))})
    seq = chain.start_sequencer(tmp_path / "seq", fault="corrupt:2:0", crash_at=crash_at)
    processes.append(seq)
    verifier = VerifierProc(chain, tmp_path / "ver", anvil.private_keys[CHALLENGER_KEYS[0]], config_path=config_path)
    processes.append(verifier)
    lost = LostGame(chain, world, users, seq, verifier, processes, [], _game_contract(chain))
    lost.wait(lambda: verifier.status(), "the verifier to follow L1")
    chain.deposit(users["alice"], 1_000 * USD)
    chain.deposit(users["bob"], 5_000 * USD)
    chain.mine(chain.config.node.batch.queue_confirmations)
    lost.wait(lambda: chain.batch_count() >= 2, "batch 1 (the deposits) on L1")
    world.ids.update(alice=0, bob=1)
    lost.withdrawals = [world.withdraw("alice", n * USD) for n in WITHDRAWALS]
    for withdrawal in lost.withdrawals:  # submitted back to back: one batch
        assert seq.submit(withdrawal)["codes"] == ["OK"]
    return lost


def queue_entries_after(lost: LostGame, carol: str) -> None:
    """A deposit (carol's) and a forced withdrawal (bob's), consumed after the bad batch."""
    lost.chain.deposit(carol, 7 * USD)
    lost.chain.request_forced(lost.users["bob"], 1, 100 * USD)


def carol(anvil: Any) -> str:
    return Account.from_key(anvil.private_keys[4]).address


def check_l1(lost: LostGame, *, extra_withdrawn: int = 0) -> None:
    """From L1 alone: every live batch replays to its root; each deposit, the forced request and each
    withdrawal were consumed exactly once."""
    chain = lost.chain
    batches = chain.l1_batches()
    roots, receipts, state = chain.replay(batches)
    assert roots == [b.state_root for b in batches]
    txs = [decode_transaction(r) for b in batches for r in b.records]
    assert all(txs.count(w) == 1 for w in lost.withdrawals), txs
    assert state.deposits_done == 3 and state.forced_done == 1 and txs.count(ForcedWithdraw()) == 1
    assert state.accounts[0].withdrawn == sum(WITHDRAWALS) * USD + extra_withdrawn
    assert state.accounts[1].collateral == 5_000 * USD - 100 * USD and state.accounts[2].collateral == 7 * USD
