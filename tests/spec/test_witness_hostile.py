"""Hostile witnesses: values the prover's ABI cannot carry are a WitnessError, never a crash."""

from __future__ import annotations

import msgspec
import pytest

from optinode.spec.errors import WitnessError
from optinode.spec.types import Deposit, ForcedWithdraw
from optinode.spec.witness import build_witness, execute_witness
from optinode.testing.world import World


def _deposit_witness():
    s = World()
    s.deposit("alice", 10**9)
    s.queue_deposit("alice", 5 * 10**8)
    pre_root = s.root()
    tx = Deposit(s.ids["alice"])
    ctx = s.ctx
    witness = build_witness(s.state, s.commitment, tx, ctx)
    # sanity: the honest witness executes
    post_root, receipt = execute_witness(pre_root, witness, tx, ctx)
    assert receipt.ok and post_root != pre_root
    return pre_root, witness, tx, ctx


@pytest.mark.parametrize("field", ["deposits_done", "forced_done"])
@pytest.mark.parametrize("value", [-1, 2**64])
def test_hostile_witness_counter_out_of_range_raises_witness_error(field, value):
    """A queue counter that does not fit uint64 (the ABI's type) is rejected, not an OverflowError."""
    pre_root, witness, tx, ctx = _deposit_witness()
    bad = msgspec.structs.replace(witness, **{field: value})
    with pytest.raises(WitnessError):
        execute_witness(pre_root, bad, tx, ctx)


def test_hostile_witness_counter_out_of_range_forced_withdraw():
    """The same for a ForcedWithdraw, which reads forced_done from the witness."""
    s = World()
    account = s.deposit("alice", 10**9)
    s.queue_forced("alice", 10**6, account_id=account)
    pre_root = s.root()
    tx = ForcedWithdraw()
    witness = build_witness(s.state, s.commitment, tx, s.ctx)
    bad = msgspec.structs.replace(witness, forced_done=-1)
    with pytest.raises(WitnessError):
        execute_witness(pre_root, bad, tx, s.ctx)


def test_hostile_witness_root_length():
    """Roots of the wrong length could shift bytes between preimage fields: rejected up front."""
    pre_root, witness, tx, ctx = _deposit_witness()
    bad = msgspec.structs.replace(witness, accounts_root=witness.accounts_root[:31], slots_root=b"\x00" + witness.slots_root)
    with pytest.raises(WitnessError):
        execute_witness(pre_root, bad, tx, ctx)
