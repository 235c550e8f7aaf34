"""``censorship``: the sequencer ignores a user, who escapes with exactly her funds.

Carol deposits and her deposit finalizes. The sequencer is restarted with the devnet fault
``--fault censor:CAROL``: her signed withdrawal over JSON-RPC gets no answer, while Alice and Bob go
on trading. Carol requests a forced withdrawal on the Bridge, which the sequencer must consume within
``forced_deadline``; it never does, and the verifier's watchtower counts the seconds down. Once the
deadline has passed (anvil time travel) anyone may freeze the rollup; Carol does. Every account then
exits once under the last finalized root: each owner's wallet rebuilds that state from L1 calldata
alone, registers its claim, the bonds of the batches pending at the freeze are released to the
escapers, and after the claim period each is paid. Checked: the withdrawal unanswered, the forced
request unserved by every batch, the freeze accepted, every claim equal to the spec's escape rule,
Carol paid exactly her collateral (and her share of the bonds), nobody paid twice.

Run last in ``--scenario all``: a frozen rollup stays frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from web3.logs import DISCARD

from optinode.devnet.network import Devnet
from optinode.devnet.proofs import rebuild_final_state
from optinode.devnet.scenarios.common import begin, finalize_through, trade
from optinode.devnet.story import eth, usd
from optinode.devnet.trader import ORDER_LIFETIME
from optinode.l1.contracts import Reverted
from optinode.spec.escape import compute_bond_share, compute_escape_claim
from optinode.testing.world import USD

NAME = "censorship"
SUMMARY = "the sequencer ignores a user → forced withdrawal on L1 → deadline passes → bridge frozen → escape from L1 data alone"
CAROL_DEPOSIT = 2_500 * USD
IGNORED_AFTER = 5.0  # seconds carol waits for an answer to her withdrawal


@dataclass(frozen=True)
class CensorshipOutcome:
    forced_index: int
    final_batch: int
    paid: dict[str, int]  # collateral each owner escaped with
    bond_shares: dict[str, int]


async def run(net: Devnet) -> CensorshipOutcome:
    story = net.story
    alice, bob = await begin(net, NAME, SUMMARY)
    carol = net.carol
    if carol.account_id is None:
        await net.fund([carol], CAROL_DEPOSIT)
    funds = await net.collateral(carol)
    await finalize_through(net, await _batch_consuming_deposits(net))  # carol's account must be in a final root

    await net.restart_sequencer(f"censor:{carol.address}")
    story.step(f"the sequencer restarts as a censor: {net.sequencer.command_line}")
    expiry = await net.l1_time() + ORDER_LIFETIME
    try:
        await carol.api.withdraw(carol.account_id, funds, expiry=expiry, timeout=IGNORED_AFTER)
        ignored = False
    except httpx.TimeoutException:
        ignored = True
    story.step(f"carol signs a withdrawal of all her {usd(funds)} and sends it over JSON-RPC: "
               + (f"no answer within {IGNORED_AFTER:g} s" if ignored else "answered"))
    story.check("the sequencer ignores carol", ignored)
    await trade(net, alice, bob, lots=100)  # everyone else is served

    params = net.chain.deployment.params
    receipt = await net.l1(carol.wallet.request_forced_withdrawal, carol.account_id, funds)
    (request,) = net.chain.bridge.events.ForcedWithdrawalRequested().process_receipt(receipt, errors=DISCARD)
    index = request["args"]["index"]
    requested_at = (await net.l1(net.chain.w3.eth.get_block, receipt["blockNumber"]))["timestamp"]
    story.step(f"carol requests a forced withdrawal of {usd(funds)} on the Bridge (forced request {index}): the sequencer must "
               f"consume it within {params.forced_deadline} s", block=receipt["blockNumber"], tx=receipt["transactionHash"])
    block = await net.mine(net.chain.config.node.batch.queue_confirmations + 2)
    watched = await net.until(lambda: _unserved(net, index), f"the verifier to see forced request {index} unserved")
    story.step(f"the request is deep enough; the verifier's watchtower shows it unserved, {watched['seconds_left']} s left", block=block)
    await net.until(lambda: _posted_after(net, receipt["blockNumber"]), "a batch posted after the request")
    batches = await net.l1(net.chain.l1_batches)
    story.check(f"the sequencer keeps posting (batch {batches[-1].index}) but no batch consumes forced request {index}",
                all(b.forced_done <= index for b in batches))

    block = await net.travel(params.forced_deadline + 1)
    story.step(f"anvil time travel: +{params.forced_deadline + 1} s, the deadline passes", block=block)
    overdue = await net.until(lambda: _unserved(net, index, overdue=True), "the watchtower to see the deadline pass")
    story.step(f"the watchtower: forced request {index} is {-overdue['seconds_left']} s past its deadline (alert forced_deadline_passed)")
    receipt = await net.l1(carol.wallet.freeze)
    story.step("carol calls Bridge.freeze(): accepted; no batch, deposit or withdrawal claim is accepted any more",
               block=receipt["blockNumber"], tx=receipt["transactionHash"])
    story.check("the Bridge is frozen", await net.l1(net.chain.bridge.functions.frozen().call))
    story.note(f"(requested at L1 time {requested_at}, frozen at {(await net.l1(net.chain.w3.eth.get_block, receipt['blockNumber']))['timestamp']})")

    final = await net.l1(rebuild_final_state, net.chain)
    story.step(f"each owner's wallet rebuilds the last finalized state (batch {final.batch_index}) from L1 calldata alone: "
               "the root matches the Rollup's")
    owners = [bot for bot in (carol, alice, bob) if bot.account_id in final.state.accounts]
    claims: dict[str, int] = {}
    for bot in owners:
        receipt = await net.l1(bot.wallet.register_claim, final.globals, final.parts.as_tuple(), final.proof(bot.account_id))
        (event,) = net.chain.bridge.events.ClaimRegistered().process_receipt(receipt, errors=DISCARD)
        claims[bot.name] = event["args"]["value"] + event["args"]["unpaidWithdrawals"]
        paid = await net.l1(net.chain.bridge.functions.paid(bot.account_id).call)
        expected = compute_escape_claim(final.state, final.state.accounts[bot.account_id], paid)
        story.step(f"{bot.name} registers a claim of {usd(claims[bot.name])} (account {bot.account_id}, proven under the final root)",
                   block=receipt["blockNumber"], tx=receipt["transactionHash"])
        story.check(f"{bot.name}'s claim is the spec's escape rule (value + unpaid withdrawals)", claims[bot.name] == expected,
                    f"spec says {usd(expected)}")
    pending = await net.l1(lambda: net.chain.batch_count() - net.chain.finalized_count())
    receipt = await net.l1(carol.wallet.release_frozen_bonds)
    bonds = await net.l1(net.chain.w3.eth.get_balance, net.chain.bridge.address)
    story.step(f"the bonds of the {pending} batches pending at the freeze ({eth(bonds)}) go to the Bridge for the escaping users",
               block=receipt["blockNumber"], tx=receipt["transactionHash"])
    block = await net.travel(params.claim_period + 1)
    story.step(f"anvil time travel: +{params.claim_period + 1} s, the claim period is over", block=block)

    total = sum(claims.values())
    paid_out: dict[str, int] = {}
    shares: dict[str, int] = {}
    for bot in owners:
        before = await net.l1(bot.wallet.token_balance)
        receipt = await net.l1(bot.wallet.escape, bot.account_id)
        (event,) = net.chain.bridge.events.Escaped().process_receipt(receipt, errors=DISCARD)
        paid_out[bot.name] = await net.l1(bot.wallet.token_balance) - before
        shares[bot.name] = event["args"]["bondShare"]
        story.step(f"{bot.name} escapes: {usd(paid_out[bot.name])} dUSD and {eth(shares[bot.name])} of bonds", block=receipt["blockNumber"],
                   tx=receipt["transactionHash"])
        story.check(f"{bot.name} is paid the claim in full and a pro-rata share of the bonds",
                    paid_out[bot.name] == claims[bot.name] and shares[bot.name] == compute_bond_share(claims[bot.name], total, bonds),
                    f"paid {usd(paid_out[bot.name])}, bond share {shares[bot.name]} wei")
    story.check(f"carol escaped with exactly her funds: {usd(funds)}", paid_out["carol"] == funds, f"paid {usd(paid_out['carol'])}")
    try:
        await net.l1(carol.wallet.escape, carol.account_id)
        again = None
    except Reverted as error:
        again = error.name
    story.check("a second escape is refused (AlreadyEscaped)", again == "AlreadyEscaped", f"got {again}")
    return CensorshipOutcome(index, final.batch_index, paid_out, shares)


async def _batch_consuming_deposits(net: Devnet) -> int:
    """The first live batch whose counters include every deposit the Bridge has queued."""
    count = await net.l1(net.chain.bridge.functions.depositCount().call)

    async def found() -> int | None:
        batches = await net.l1(net.chain.l1_batches)
        return next((b.index for b in batches if b.deposits_done >= count), None)

    return await net.until(found, "the batch consuming the deposits on L1")


async def _unserved(net: Devnet, index: int, *, overdue: bool = False) -> dict | None:
    rows = (await net.verifier_status())["unserved"].get("forced", [])
    row = next((r for r in rows if r["index"] == index), None)
    if row is None or (overdue and row["seconds_left"] > 0):
        return None
    return row


async def _posted_after(net: Devnet, block: int) -> bool:
    appended = await net.logs(net.chain.rollup.events.BatchAppended(), from_block=block + 1)
    return bool(appended)
