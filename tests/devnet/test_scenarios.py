"""Each devnet scenario end to end on its own anvil, with real `optinode sequencer` / `optinode verifier`
processes and the bots' real keys. The scenario checks itself as it narrates; here the outcome is read
back from L1 (events, contract state, calldata) and from the nodes, independently of the narrative."""

from __future__ import annotations

from web3.logs import DISCARD

from optinode.devnet.scenarios import bad_batch, censorship, honest
from optinode.spec.game import Phase
from optinode.spec.record_codec import decode_transaction
from optinode.spec.types import ForcedWithdraw
from optinode.testing.world import USD

from .conftest import in_devnet


def _logs(net, event):
    return list(event.get_logs(from_block=net.chain.deployment.deployment_block, to_block="latest"))


def _live_roots_replay(net) -> bool:
    batches = net.chain.l1_batches()
    roots, _, _ = net.chain.replay(batches)
    return roots == [b.state_root for b in batches]


def test_honest_a_withdrawal_is_posted_verified_finalized_and_claimed(tmp_path) -> None:
    async def inspect(net, outcome):
        def facts():
            alice = net.alice
            (claimed,) = net.chain.bridge.events.WithdrawalClaimed().process_receipt(
                net.chain.w3.eth.get_transaction_receipt(outcome.claim_tx), errors=DISCARD)
            return {"finalized": net.chain.finalized_count(), "claimed": claimed["args"], "alice": alice,
                    "games": _logs(net, net.game.events.GameOpened()), "replays": _live_roots_replay(net)}
        return {**await net.l1(facts), "verifier": await net.verifier_status()}

    outcome, facts, story = in_devnet(tmp_path, honest.run, inspect)
    assert facts["finalized"] > outcome.batch  # the withdrawal's batch is final on L1
    claimed = facts["claimed"]
    assert (claimed["accountId"], claimed["owner"], claimed["amount"]) == (facts["alice"].account_id, facts["alice"].address, 100 * USD)
    assert outcome.claimed == 100 * USD
    assert facts["verifier"]["synced_batch"] >= outcome.batch and facts["verifier"]["invalid_batches"] == []
    assert facts["games"] == [] and facts["replays"]  # nobody challenged; every live root is what L1's calldata replays to
    assert "✗" not in story and "withdrawal claimed on L1" in story


def test_bad_batch_the_verifier_wins_the_game_and_the_sequencer_recovers(tmp_path) -> None:
    async def inspect(net, outcome):
        def facts():
            params = net.chain.deployment.params
            return {
                "opened": _logs(net, net.game.events.GameOpened()), "resolved": _logs(net, net.game.events.GameResolved()),
                "stepped": _logs(net, net.game.events.Stepped()), "bisected": _logs(net, net.game.events.Bisected()),
                "discarded": _logs(net, net.chain.rollup.events.BatchesDiscarded()),
                "live_root": net.chain.rollup.functions.getBatch(outcome.batch).call()[0], "finalized": net.chain.finalized_count(),
                "credit": net.chain.rollup.functions.credits(net.challenger).call(), "params": params, "replays": _live_roots_replay(net),
                "bridge": net.chain.token.functions.balanceOf(net.chain.bridge.address).call(),
            }
        return {**await net.l1(facts), "verifier": await net.verifier_status()}

    outcome, facts, _ = in_devnet(tmp_path, bad_batch.run, inspect)
    params = facts["params"]
    (opened,) = facts["opened"]  # one game, by the verifier, against the corrupted batch
    assert opened["args"]["batchIndex"] == outcome.batch and opened["args"]["gameId"] == outcome.game
    (resolved,) = facts["resolved"]
    assert resolved["args"]["outcome"] == Phase.CHALLENGER_WON
    assert facts["bisected"] and [s["args"]["gameId"] for s in facts["stepped"]] == [outcome.game]  # defended, then the one-step proof
    (discarded,) = facts["discarded"]
    assert discarded["args"]["fromIndex"] == outcome.batch
    assert bytes(facts["live_root"]) == outcome.reposted_root != outcome.bad_root and facts["finalized"] > outcome.batch
    assert facts["replays"]  # the chain L1 holds now replays, from calldata, to every posted root
    assert facts["credit"] == params.challenger_bond + params.proposer_bond * params.slash_reward_bps // 10_000
    assert facts["bridge"] == 20_000 * USD  # both deposits, nothing paid out: the minted unit never left the state
    assert facts["verifier"]["invalid_batches"] == [] and facts["verifier"]["synced_batch"] >= outcome.batch


def test_censorship_the_user_forces_freezes_and_escapes_with_exactly_her_funds(tmp_path) -> None:
    async def inspect(net, outcome):
        def facts():
            bridge = net.chain.bridge.functions
            carol = net.carol
            appended = _logs(net, net.chain.rollup.events.BatchAppended())
            records = [r for e in appended for r in _records(net, e["transactionHash"])]
            return {
                "frozen": bridge.frozen().call(), "frozen_events": _logs(net, net.chain.bridge.events.Frozen()),
                "last_final": net.chain.rollup.functions.lastFinalized().call(),
                "carol_balance": net.chain.token.functions.balanceOf(carol.address).call(),
                "escaped": _logs(net, net.chain.bridge.events.Escaped()), "pool": bridge.escapePool().call(),
                "forced_records": [r for r in records if isinstance(decode_transaction(r), ForcedWithdraw)],
            }
        return await net.l1(facts)

    outcome, facts, _ = in_devnet(tmp_path, censorship.run, inspect)
    assert facts["frozen"]
    (frozen,) = facts["frozen_events"]
    assert (frozen["args"]["queue"], frozen["args"]["index"]) == (0, outcome.forced_index)  # frozen on the forced queue, at carol's request
    assert facts["last_final"][3] == 0 and facts["forced_records"] == []  # no batch ever consumed it, final or not
    assert facts["carol_balance"] == censorship.CAROL_DEPOSIT  # she minted and deposited it, and got exactly it back
    paid = {e["args"]["owner"]: e["args"]["amount"] for e in facts["escaped"]}
    assert outcome.paid["carol"] == censorship.CAROL_DEPOSIT and len(paid) == len(outcome.paid) == 3
    assert sum(paid.values()) <= facts["pool"]


def _records(net, tx_hash):
    from optinode.devnet.scenarios.common import APPEND_ARGS
    from optinode.spec.batch_framing import split_records

    import eth_abi

    data = bytes(net.chain.w3.eth.get_transaction(tx_hash)["input"])
    return split_records(eth_abi.decode(APPEND_ARGS, data[4:])[0])
