"""Hostile L1 data reaching a real `optinode verifier` (DESIGN safety property 6): its L1 endpoint
(a `HostileL1` proxy in front of anvil, which holds the real chain) serves an append transaction
without its input, or with other batch bytes than the ones the Rollup committed to, or adds a log
from a contract it does not follow. Each gives a clear alert or warning, never a verdict on data
that is not the batch, never a challenge of an honest batch, and nothing is lost: once the endpoint
answers truthfully the batch is verified."""

from __future__ import annotations

import signal
import time

import eth_abi
import pytest

from optinode.services.batch_fetcher import APPEND_ARGS
from optinode.services.proposer import _APPEND

from .conftest import CHALLENGER_KEYS, VerifierProc, wait_until
from .test_games_e2e import _deposit_two, _game_contract, _logs


def _is_append(request: dict, answer: dict) -> bool:
    tx = answer.get("result")
    return request.get("method") == "eth_getTransactionByHash" and isinstance(tx, dict) and (tx.get("input") or "").startswith(
        "0x" + _APPEND.hex())


def _without_input(request: dict, answer: dict) -> dict:
    """The node does not serve the append transaction (a pruned or lagging provider)."""
    return {**answer, "result": None} if _is_append(request, answer) else answer


def _other_bytes(request: dict, answer: dict) -> dict:
    """The append's input with one byte of the batch changed: a well-formed appendBatch call, not the
    one the Rollup accepted (its txRoot commits to other records)."""
    if not _is_append(request, answer):
        return answer
    tx = answer["result"]
    args = list(eth_abi.decode(APPEND_ARGS, bytes.fromhex(tx["input"][10:])))
    args[0] = args[0][:-1] + bytes([args[0][-1] ^ 0x01])
    return {**answer, "result": {**tx, "input": "0x" + (_APPEND + eth_abi.encode(APPEND_ARGS, args)).hex()}}


@pytest.mark.parametrize("tamper", [pytest.param(_without_input, id="missing-input"), pytest.param(_other_bytes, id="other-bytes")])
def test_an_append_served_wrong_is_alerted_never_judged_and_verified_once_served(chain, users, anvil, tmp_path, processes, hostile_l1,
                                                                                 tamper) -> None:
    seq = chain.start_sequencer(tmp_path / "seq")  # honest
    hostile_l1.tamper = tamper
    v = VerifierProc(chain, tmp_path / "ver", anvil.private_keys[CHALLENGER_KEYS[0]], rpc_url=hostile_l1.url)  # it would challenge
    processes.extend([seq, v])
    wait_until(lambda: v.status(), "the verifier to follow L1", chain=chain, procs=processes)
    _deposit_two(chain, users)
    wait_until(lambda: chain.batch_count() >= 2, "batch 1 on L1", chain=chain, procs=processes)
    (unavailable,) = wait_until(lambda: v.alerts("batch_unavailable"), "batch_unavailable", chain=chain, procs=processes)
    fields = unavailable["fields"]
    (appended,) = _logs(chain, chain.rollup.events.BatchAppended())
    assert fields["batch"] == 1 and fields["tx"] == "0x" + bytes(appended["transactionHash"]).hex() and unavailable["level"] == "error"
    assert fields["seconds_left"] <= chain.deployment.params.challenge_window and fields["reason"]
    assert hostile_l1.tampered >= 1
    status = v.rpc("optinode_status")
    assert status["synced_batch"] == 0 and status["invalid_batches"] == [] and not v.alerts("invalid_batch")
    assert not _logs(chain, _game_contract(chain).events.GameOpened())  # an honest batch is never challenged on bytes it did not post
    assert v.metrics()[("optinode_verifier_batch_unavailable_total", ())] == 1

    hostile_l1.tamper = None  # the endpoint serves the truth again: nothing was lost
    wait_until(lambda: (s := v.status()) and s["synced_batch"] == 1, "batch 1 verified", chain=chain, procs=processes)
    assert v.status()["invalid_batches"] == [] and not v.alerts("invalid_batch") and len(v.alerts("batch_unavailable")) == 1
    assert not _logs(chain, _game_contract(chain).events.GameOpened())


def test_an_append_reorged_into_another_block_moves_its_window(chain, users, tmp_path, processes) -> None:
    """The append's block leaves the chain after the verifier replayed the batch; the proposer's sender
    re-broadcasts the same signed transaction (same hash), mined later. The stored verdict must follow
    it: the challenge window runs from the new append block (what the Rollup enforces), and the
    verdict equals that of a verifier that only ever saw the new chain."""
    seq = chain.start_sequencer(tmp_path / "seq")
    v = VerifierProc(chain, tmp_path / "ver", None)
    processes.extend([seq, v])
    window = chain.deployment.params.challenge_window
    wait_until(lambda: v.status(), "the verifier to follow L1", chain=chain, procs=processes)
    _deposit_two(chain, users)
    (first,) = wait_until(lambda: _logs(chain, chain.rollup.events.BatchAppended()), "batch 1 on L1", chain=chain, procs=processes,
                          mine_every=1e9)
    wait_until(lambda: (s := v.status()) and s["synced_batch"] == 1 and s, "batch 1 verified", chain=chain, procs=processes, mine_every=1e9)
    assert v.status()["pending"][0]["window_ends"] == chain.rollup.functions.getBatch(1).call()[-1] + window

    # The verifier and the sequencer are paused (SIGSTOP) while the append's block leaves the chain and
    # the same signed transaction is mined again (re-broadcast here, as the proposer's sender does; the
    # sequencer itself might re-sign with higher fees, another hash); when the verifier resumes, one
    # poll finds the reorg and the new chain with the append in it.
    raw = chain.rpc("eth_getRawTransactionByHash", ["0x" + bytes(first["transactionHash"]).hex()])
    for proc in (v, seq):
        proc.process.send_signal(signal.SIGSTOP)
    try:
        head_time = chain.w3.eth.get_block("latest")["timestamp"]
        chain.rpc("anvil_reorg", [chain.w3.eth.block_number - first["blockNumber"] + 1, []])  # the append's block is gone
        # anvil's new blocks restart at the ancestor's time; a real chain's keep their slot times: the
        # append, mined again, must not land before the time it declares (TimestampInFuture, seen under load)
        chain.rpc("evm_setNextBlockTimestamp", [head_time + 5])
        chain.mine(1)
        sent = chain.rpc("eth_sendRawTransaction", [raw])
        # Under load anvil's eth_getLogs can lag the block it just mined (seen with 3 busy loops on the
        # 2 cores: the receipt, status 1, holds the BatchAppended log while eth_getLogs returns
        # nothing), so the new chain's logs are polled for a while before the assertion.
        deadline = time.monotonic() + 10.0
        while True:
            appends = _logs(chain, chain.rollup.events.BatchAppended())
            moved = [e for e in appends if e["blockNumber"] != first["blockNumber"]]
            if moved or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(moved) == 1, (first["blockNumber"], chain.w3.eth.block_number, [e["blockNumber"] for e in appends], sent,
                                 dict(chain.w3.eth.get_transaction_receipt(sent)) if sent else None, chain.w3.eth.get_block("latest")["timestamp"], head_time)
        (again,) = moved
    finally:
        for proc in (v, seq):
            proc.process.send_signal(signal.SIGCONT)
    assert again["transactionHash"] == first["transactionHash"]  # the same signed transaction
    appended_at = chain.rollup.functions.getBatch(1).call()[-1]
    assert appended_at > first["args"]["appendedAt"]
    wait_until(lambda: (s := v.status()) and s["pending"] and s["pending"][0]["window_ends"] == appended_at + window,
               "the verifier to move batch 1's window to the new append", chain=chain, procs=processes)
    assert v.status()["synced_batch"] == 1 and not v.alerts("invalid_batch")


def _on_logs(change):
    """A tamper that serves ``change(logs)`` for every eth_getLogs answer (the answer itself when unchanged)."""

    def tamper(request: dict, answer: dict) -> dict:
        logs = answer.get("result")
        if request.get("method") != "eth_getLogs" or not isinstance(logs, list):
            return answer
        changed = change(logs)
        return answer if changed == logs else {**answer, "result": changed}

    return tamper


FOREIGN = "0x" + "ab" * 20


def _foreign_copies(chain):
    """A copy of every Rollup log from another address (with a wrong root): the follower asked for the
    followed contracts' logs only, so the answer is not the chain's."""

    @_on_logs
    def tamper(logs: list) -> list:
        rollup = chain.rollup.address.lower()
        return logs + [{**e, "address": FOREIGN, "logIndex": hex(int(e["logIndex"], 16) + 100), "data": "0x" + "ee" * 32 + e["data"][66:]}
                       for e in logs if e["address"].lower() == rollup]

    return tamper


def _hidden_appends(chain):
    """The Rollup's logs left out: nothing in one answer shows a missing log."""

    @_on_logs
    def tamper(logs: list) -> list:
        return [e for e in logs if e["address"].lower() != chain.rollup.address.lower()]

    return tamper


@pytest.mark.parametrize(("tamper", "check", "name", "back", "reason", "detail"), [
    pytest.param(_foreign_copies, False, "l1_bad_logs", "l1_logs_ok", "unfollowed_address", FOREIGN[2:], id="foreign-log"),
    pytest.param(_hidden_appends, True, "l1_endpoints_disagree", "l1_endpoints_agree", "disagree", "only on the check", id="hidden-log-check"),
])
def test_forged_or_hidden_logs_are_alerted_and_nothing_acted_on_until_served_truthfully(chain, users, tmp_path, processes, hostile_l1, tamper,
                                                                                       check, name, back, reason, detail) -> None:
    """``foreign-log``: the endpoint adds to every eth_getLogs answer a copy of each Rollup log from
    another address: ``l1_bad_logs`` once, nothing of those answers stored, no verdict (the old
    follower dropped the copy with a warning and went on). ``hidden-log-check``: it leaves the
    Rollup's logs out (alone, the verifier would never see batch 1); with ``--check-rpc`` (anvil
    itself) the log sets differ: ``l1_endpoints_disagree``, nothing stored. Either way, once the
    endpoint answers truthfully, batch 1 is verified and nothing else is alerted."""
    seq = chain.start_sequencer(tmp_path / "seq")
    v = VerifierProc(chain, tmp_path / "ver", None, rpc_url=hostile_l1.url, check_rpc_url=chain.url if check else None)
    processes.extend([seq, v])
    wait_until(lambda: v.status(), "the verifier to follow L1", chain=chain, procs=processes)
    hostile_l1.tamper = tamper(chain)
    _deposit_two(chain, users)
    wait_until(lambda: chain.batch_count() >= 2, "batch 1 on L1", chain=chain, procs=processes)
    (alerted,) = wait_until(lambda: v.alerts(name), name, chain=chain, procs=processes)
    assert alerted["level"] == "error" and alerted["fields"]["reason"] == reason and detail in alerted["fields"]["detail"]
    wait_until(lambda: hostile_l1.tampered >= 3, "the follower to ask again", chain=chain, procs=processes)
    assert v.rpc("optinode_status")["synced_batch"] == 0  # nothing of those answers acted on

    hostile_l1.tamper = None
    wait_until(lambda: (s := v.status()) and s["synced_batch"] == 1, "batch 1 verified", chain=chain, procs=processes)
    assert v.status()["invalid_batches"] == [] and not v.alerts("invalid_batch") and not v.alerts("batch_unavailable")
    assert len(v.alerts(name)) == 1 and len(v.alerts(back)) == 1
