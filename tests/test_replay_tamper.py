"""optinode.replay's devnet corruption (`tamper_after`, the sequencer fault ``corrupt:B:K``) on a batch
that opens account 0 itself: the devnet's bad-batch scenario found that the defender's replay raised
KeyError(0) at every head (it minted on an account that did not exist yet), so the malicious
sequencer never defended its root and lost on time instead of in the bisection game."""

from __future__ import annotations

from optinode.replay import Replay
from optinode.spec.record_codec import encode_transaction as encode
from optinode.spec.types import Deposit
from optinode.testing.world import USD, World


def test_the_unit_is_minted_once_account_0_exists() -> None:
    w = World()
    w.queue_deposit("alice", 100 * USD)
    w.queue_deposit("bob", 50 * USD)
    txs = [w.withdraw("alice", USD, account_id=0), Deposit(0), Deposit(1)]  # tx 0 is invalid: account 0 does not exist yet
    records = [encode(t) for t in txs]
    honest = Replay(w.state, records, w.ctx)
    bad = Replay(w.state, records, w.ctx, tamper_after=0)
    assert bad.minted_at == 1  # after the deposit that opens account 0
    assert bad.roots[:2] == honest.roots[:2] and bad.roots[2] != honest.roots[2] and bad.roots[3] != honest.roots[3]
    assert bad.final_state.accounts[0].collateral == honest.final_state.accounts[0].collateral + 1
    witness, pre = bad.witness(2)  # the one-step input of tx 2 sees the minted unit
    assert pre.accounts[0].collateral == 100 * USD + 1 and witness is not None
    assert Replay(w.state, records, w.ctx, tamper_after=2).minted_at == 2
