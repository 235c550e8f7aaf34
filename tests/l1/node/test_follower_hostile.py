"""A hostile L1 endpoint serving the follower logs the chain does not hold (DESIGN safety property
6): a `HostileL1` proxy in front of anvil adds, to every ``eth_getLogs`` answer that holds the
Bridge's Deposited log, a forged copy — of a block outside the range asked, of a block whose hash is
not the header's at that height (inside the recorded window and below it, a catch-up range longer
than the window), from a contract the follower does not follow, or the same log twice. Each is a bad
endpoint: ``alert=l1_bad_logs`` (error, once per episode), nothing of that answer stored or emitted,
the next poll asks again; once the endpoint serves the truth the real deposit is read exactly once.

With a second endpoint (``check``), an endpoint that *leaves out* a log, or forges one the first
checks cannot see (a log moved to another block of the range with that block's hash), shows as a
disagreement (``alert=l1_endpoints_disagree``, after it lasts): nothing stored until they agree; a
check endpoint far behind is alerted (``l1_check_behind``) and the primary followed alone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from optinode.l1 import events
from optinode.l1 import follower as follower_mod
from optinode.l1.follower import Follower
from optinode.l1.rpc import RpcClient

from ..verifier.conftest import HostileL1
from .test_follower import drain


def addr(text: str) -> bytes:
    return bytes.fromhex(text[2:])


@pytest.fixture
def hostile(anvil):
    proxy = HostileL1(anvil.url)
    yield proxy
    proxy.stop()


def _deposit_logs(system: Any, answer: dict[str, Any]) -> list[dict[str, Any]]:
    bridge = system.bridge.address.lower()
    return [e for e in answer.get("result") or [] if isinstance(e, dict) and e["address"].lower() == bridge]


def forging(system: Any, forge: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]):
    """A tamper that adds ``forge(request, real log)`` to every eth_getLogs answer holding a Deposited."""

    def tamper(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") != "eth_getLogs" or not isinstance(answer.get("result"), list):
            return answer
        forged = [f for e in _deposit_logs(system, answer) if (f := forge(request, e)) is not None]
        return {**answer, "result": answer["result"] + forged} if forged else answer

    return tamper


def _richer(log: dict[str, Any]) -> dict[str, Any]:
    """The same Deposited with another amount (its last data word) and its own log index."""
    return {**log, "logIndex": hex(int(log["logIndex"], 16) + 50), "data": log["data"][:-64] + f"{10**12:064x}"}


def _outside_range(request: dict[str, Any], log: dict[str, Any]) -> dict[str, Any]:
    to_block = int(request["params"][0]["toBlock"], 16)
    return {**_richer(log), "blockNumber": hex(to_block + 3)}


def _other_hash(request: dict[str, Any], log: dict[str, Any]) -> dict[str, Any]:
    return {**_richer(log), "blockHash": "0x" + "5a" * 32}  # a block of another fork at that height


def _unfollowed(request: dict[str, Any], log: dict[str, Any]) -> dict[str, Any]:
    return {**_richer(log), "address": "0x" + "ab" * 20}


def _twice(request: dict[str, Any], log: dict[str, Any]) -> dict[str, Any]:
    return dict(log)


async def _polls(follower: Follower, n: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(n):
        outputs, _ = await follower.poll()
        out.extend(outputs)
    return out


def _alerts(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records if getattr(r, "event", None) == name and getattr(r, "fields", {}).get("alert")]


def _deposits(items: Any) -> list[tuple[int, int]]:
    return [(e.index, e.amount) for e in items if isinstance(e, events.Deposited)]


@pytest.mark.trio
@pytest.mark.parametrize(("forge", "reason", "mined_after"), [
    pytest.param(_outside_range, "outside_range", 0, id="outside-range"),
    pytest.param(_other_hash, "block_hash", 0, id="other-hash-in-window"),
    pytest.param(_other_hash, "block_hash", 12, id="other-hash-below-window"),
    pytest.param(_unfollowed, "unfollowed_address", 0, id="unfollowed-address"),
    pytest.param(_twice, "duplicate", 0, id="twice"),
])
async def test_a_forged_log_is_a_bad_endpoint_nothing_is_stored(system, accounts, anvil, store, contracts, deployment_block, hostile,
                                                              caplog, forge, reason, mined_after) -> None:
    caplog.set_level(logging.INFO)
    user = accounts[4].address
    system.deposit(user, user, 5)
    if mined_after:
        anvil.rpc("anvil_mine", [hex(mined_after)])
    # window 4, one range for everything: with blocks mined after it the deposit is below the window
    follower = Follower(RpcClient(hostile.url, retry_for=20.0), store, contracts, start_block=deployment_block - 3, window=4, max_range=64)
    hostile.tamper = forging(system, forge)
    out = await _polls(follower, 3)
    assert _deposits(out) == [] and out == []  # nothing emitted, not even a head
    assert follower.position is None and list(follower.stored_events()) == [] and follower.recorded_blocks() == []
    assert hostile.tampered >= 3  # asked again at every poll
    (bad,) = _alerts(caplog, "l1_bad_logs")  # once per episode, however often the answer comes
    assert bad["reason"] == reason and bad["detail"] and "nothing" in bad["action"]
    assert [r.levelname for r in caplog.records if getattr(r, "event", None) == "l1_bad_logs"] == ["ERROR"]

    hostile.tamper = None  # the endpoint serves the truth: the deposit is read, once, as L1 holds it
    out = await drain(follower)
    assert _deposits(out) == [(0, 5)] and _deposits(follower.stored_events()) == [(0, 5)]
    assert len(_alerts(caplog, "l1_logs_ok")) == 1


def _moved(w3: Any) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """The Deposited moved to the block after its own, with that block's real hash: nothing in one
    answer tells it from a real log; only another endpoint can."""

    def forge(request: dict[str, Any], log: dict[str, Any]) -> dict[str, Any] | None:
        number = int(log["blockNumber"], 16) + 1
        if number > int(request["params"][0]["toBlock"], 16):
            return None
        return {**_richer(log), "blockNumber": hex(number), "blockHash": "0x" + bytes(w3.eth.get_block(number)["hash"]).hex()}

    return forge


def _left_out(system: Any) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]:
    def tamper(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") != "eth_getLogs" or not _deposit_logs(system, answer):
            return answer
        kept = [e for e in answer["result"] if e not in _deposit_logs(system, answer)]
        return {**answer, "result": kept}

    return tamper


@pytest.mark.trio
@pytest.mark.parametrize("attack", ["moved", "left-out"])
async def test_a_second_endpoint_catches_what_one_answer_cannot_show(system, accounts, anvil, w3, store, contracts, deployment_block, hostile,
                                                                   caplog, attack) -> None:
    caplog.set_level(logging.INFO)
    user = accounts[4].address
    system.deposit(user, user, 5)
    anvil.rpc("anvil_mine", ["0x2"])
    hostile.tamper = forging(system, _moved(w3)) if attack == "moved" else _left_out(system)
    follower = Follower(RpcClient(hostile.url, retry_for=20.0), store, contracts, start_block=deployment_block - 3, window=16, max_range=64,
                        check=RpcClient(anvil.url, retry_for=20.0, name="L1 check"))
    out = await _polls(follower, follower_mod.DISAGREE_ALERT_AFTER + 2)
    assert hostile.tampered >= follower_mod.DISAGREE_ALERT_AFTER
    assert out == [] and follower.position is None and list(follower.stored_events()) == []
    (disagree,) = _alerts(caplog, "l1_endpoints_disagree")
    assert disagree["reason"] == "disagree" and "only on the" in disagree["detail"] and disagree["check"].startswith("http://127.0.0.1")
    assert not _alerts(caplog, "l1_bad_logs")  # each answer alone is well formed

    hostile.tamper = None
    out = await drain(follower)
    assert _deposits(out) == [(0, 5)] and _deposits(follower.stored_events()) == [(0, 5)]
    assert len(_alerts(caplog, "l1_endpoints_agree")) == 1


@pytest.mark.trio
async def test_a_check_endpoint_on_another_chain_disagrees_on_the_head(system, accounts, anvil, store, contracts, deployment_block, hostile,
                                                                      caplog) -> None:
    """The primary serves headers of another chain (every block hash rewritten, consistently): the
    check endpoint's header at the tip differs; nothing is stored."""
    caplog.set_level(logging.INFO)

    def other_chain(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        block = answer.get("result")
        if request.get("method") != "eth_getBlockByNumber" or not isinstance(block, dict):
            return answer
        other = {key: "0x" + "77" * 16 + block[key][34:] for key in ("hash", "parentHash")}  # consistently: a chain of its own
        return {**answer, "result": {**block, **other}}

    anvil.rpc("anvil_mine", ["0x2"])
    hostile.tamper = other_chain
    follower = Follower(RpcClient(hostile.url, retry_for=20.0), store, contracts, start_block=deployment_block - 3, window=16, max_range=64,
                        check=RpcClient(anvil.url, retry_for=20.0, name="L1 check"))
    out = await _polls(follower, follower_mod.DISAGREE_ALERT_AFTER)
    assert out == [] and follower.position is None
    (disagree,) = _alerts(caplog, "l1_endpoints_disagree")
    assert disagree["detail"].startswith("block ")
    hostile.tamper = None
    await drain(follower)
    assert follower.position is not None and follower.position.hash == bytes(anvil_block_hash(anvil, follower.position.number))


def anvil_block_hash(anvil: Any, number: int) -> bytes:
    return bytes.fromhex(anvil.rpc("eth_getBlockByNumber", [hex(number), False])["hash"][2:])


@pytest.mark.trio
async def test_a_check_endpoint_far_behind_is_alerted_and_the_primary_followed(system, accounts, anvil, store, contracts, deployment_block,
                                                                              hostile, caplog) -> None:
    """A check endpoint that does not follow the chain (syncing, stuck: here its head 50 blocks back)
    must not stop a watchtower silently: ``alert=l1_check_behind`` once, the follower goes on on the
    primary alone, and says so when the check endpoint has caught up."""
    caplog.set_level(logging.INFO)
    user = accounts[4].address
    system.deposit(user, user, 5)  # (no blocks mined for the lag: mined blocks move anvil's clock ahead for later tests)

    def behind(request: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") == "eth_blockNumber":
            return {**answer, "result": hex(int(answer["result"], 16) - 50)}
        return answer

    hostile.tamper = behind
    follower = Follower(RpcClient(anvil.url, retry_for=20.0), store, contracts, start_block=deployment_block - 3, window=16, max_range=200,
                        check=RpcClient(hostile.url, retry_for=20.0, name="L1 check"))
    out = await drain(follower)
    assert _deposits(out) == [(0, 5)] and follower.position.number == anvil_block_number(anvil)
    (behind_alert,) = _alerts(caplog, "l1_check_behind")
    assert behind_alert["head"] - behind_alert["check_head"] == 50
    hostile.tamper = None
    follower._check_skip_until = float("-inf")  # (the pause it takes from a lagging check endpoint, over)
    anvil.rpc("anvil_mine", ["0x1"])
    await drain(follower)
    assert len(_alerts(caplog, "l1_check_caught_up")) == 1


def anvil_block_number(anvil: Any) -> int:
    return int(anvil.rpc("eth_blockNumber"), 16)
