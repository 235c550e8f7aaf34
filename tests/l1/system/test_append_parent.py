"""An append names the parent it builds on (docs/contracts.md, "Appending").

After a lost game discards batches n.., an append the honest proposer signed before the discard
(pipelined, still in the mempool) is mined after it: without the parent check it lands at index n on
top of a different pre-state, is wrong there, and its bond is lost to whoever challenges it.
"""

from __future__ import annotations

from typing import Any

from optinode.l1.contracts import Phase, increase_time, transact
from optinode.spec.batch_framing import frame_records

from .support import expect_revert, latest_time, parts_for, post_mock_batch
from .test_bond_attacks import RECORDS


def _sign_append(system, account, records, parts, parent_root: bytes, nonce: int) -> tuple[Any, bytes]:
    """The append call and its signed transaction, as the L1 sender keeps it before broadcasting."""
    fn = system.rollup.functions.appendBatch(frame_records(records), *parts.as_tuple(), latest_time(system), parent_root)
    tx = fn.build_transaction({
        "from": account.address, "value": system.params.proposer_bond, "nonce": nonce, "gas": 1_000_000,
        "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "chainId": system.w3.eth.chain_id,
    })
    return fn, account.sign_transaction(tx).raw_transaction


def test_append_signed_before_a_discard_cannot_land_on_the_new_tip(system, accounts, challenger) -> None:
    w3, account = system.w3, accounts[1]
    proposer = account.address
    good = post_mock_batch(system, proposer, RECORDS[:5], valid=True, tag="good")
    bad = post_mock_batch(system, proposer, RECORDS[:20], valid=False, tag="bad")
    on_top = system.append_batch(proposer, [b"\x04"], parts_for("top"))
    tip_root = system.batch(on_top)["stateRoot"]
    game = system.open_game(challenger, bad.index)
    increase_time(w3, system.params.clock + 1)  # the proposer (this key) sends nothing meanwhile
    # the pipelined append of batch 4, built on batch 3, signed (and broadcast) just before the discard
    call, stale = _sign_append(system, account, [b"\x04", b"\x05"], parts_for("next"), tip_root, w3.eth.get_transaction_count(proposer))
    system.timeout(challenger, game)
    assert system.game_state(game)["phase"] == Phase.CHALLENGER_WON
    assert system.rollup.functions.batchCount().call() == bad.index == 2
    # ... mined only now: it names batch 3 as its parent, the tip is batch 1
    balance = w3.eth.get_balance(proposer)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(stale))
    assert receipt["status"] == 0, "the stale append landed at the discarded index on a different parent"
    # why, as the same call on the same state (the estimate reverts: nothing is sent)
    replayed = expect_revert("WrongParent", lambda: transact(w3, call, proposer, value=system.params.proposer_bond))
    assert replayed.values == (tip_root, good.posted_root)
    assert system.rollup.functions.batchCount().call() == 2
    assert w3.eth.get_balance(proposer) == balance - receipt["gasUsed"] * receipt["effectiveGasPrice"]  # no bond posted
    # the honest re-post on the tip appends
    index = system.append_batch(proposer, [b"\x04"], parts_for("rebuilt"), parent_root=good.posted_root)
    assert index == 2 and system.rollup.functions.batchCount().call() == 3


def test_an_append_naming_another_parent_reverts(system, proposer) -> None:
    """Rule 3: the named parent is the tip's state root, not an older batch's, not a rebuilt one's."""
    genesis = system.batch(0)["stateRoot"]
    first = system.append_batch(proposer, [b"\x04"], parts_for("one"), parent_root=genesis)
    one = system.batch(first)["stateRoot"]
    # genesis is no longer the tip; nor is a root never appended (e.g. a rebuilt batch 1's)
    for wrong in (genesis, parts_for("one-rebuilt").root(), bytes(32)):
        error = expect_revert("WrongParent", lambda: system.append_batch(proposer, [b"\x04"], parts_for("two"), parent_root=wrong))
        assert error.values == (wrong, one)
    assert system.rollup.functions.batchCount().call() == 2
    assert system.append_batch(proposer, [b"\x04"], parts_for("two"), parent_root=one) == 2


def test_an_append_signed_behind_a_reverted_one_cannot_take_its_index(make_system, accounts) -> None:
    """Batch 1's append waits out the drift (L1 stalled) and reverts TimestampTooOld; batch 2's,
    signed behind it at a fresh time, names batch 1 as its parent and reverts too instead of landing
    at index 1 on genesis."""
    system = make_system(max_timestamp_drift=100)
    w3, account = system.w3, accounts[1]
    nonce = w3.eth.get_transaction_count(account.address)
    genesis = system.batch(0)["stateRoot"]
    first_parts = parts_for("first")
    _, first = _sign_append(system, account, [b"\x04"], first_parts, genesis, nonce)
    increase_time(w3, 200)  # past the drift: batch 1's declared time is now too old
    call, second = _sign_append(system, account, [b"\x04", b"\x05"], parts_for("second"), first_parts.root(), nonce + 1)
    receipts = [w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw)) for raw in (first, second)]
    assert [r["status"] for r in receipts] == [0, 0]
    assert system.rollup.functions.batchCount().call() == 1
    error = expect_revert("WrongParent", lambda: transact(w3, call, account.address, value=system.params.proposer_bond))
    assert error.values == (first_parts.root(), genesis)
