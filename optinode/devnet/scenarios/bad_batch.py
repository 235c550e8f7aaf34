"""``bad-batch``: a malicious sequencer posts a wrong state root and is caught.

The sequencer is restarted with the devnet fault ``--fault corrupt:B:0`` (docs/verifier.md): the next
batch it cuts, B, claims a root in which account 0 holds one unit of collateral nobody deposited, and
the sequencer defends that root. Bots trade meanwhile. The verifier replays B from L1, finds the root
wrong and opens a game with its bond within a block or two; the bisection on L1 narrows the
disagreement to one transaction, the one-step prover executes it and the challenger wins. L1 discards
B and every batch after it; B's bond is forfeit (half to the challenger, half burned). The sequencer
rolls back to the last valid checkpoint and re-posts honest batches, which the verifier accepts and
which finalize. Checked: the L1 data proves B wrong, the game's outcome, the discard, the bond split
to the wei, the challenger's credit, the re-posted root, the trade made during the attack kept once,
and the money in the final state.
"""

from __future__ import annotations

from dataclasses import dataclass

from optinode.devnet.network import Devnet
from optinode.devnet.scenarios.common import (appended, batch_of, begin, check_funds, finalize_through, first_append, l1_roots, trade,
                                              verifier_agrees)
from optinode.devnet.story import eth, short
from optinode.l1.contracts import BURN_ADDRESS
from optinode.spec.game import Phase

NAME = "bad-batch"
SUMMARY = "a wrong state root → the verifier's bisection game on L1 → one-step proof → batch discarded, bond forfeit → re-posted"
GAME_TIMEOUT = 150.0  # seconds: the game is a handful of moves, each mined in the next block


@dataclass(frozen=True)
class BadBatchOutcome:
    batch: int  # the corrupted batch's index
    bad_root: bytes
    game: int
    reposted_root: bytes


async def run(net: Devnet) -> BadBatchOutcome:
    story = net.story
    alice, bob = await begin(net, NAME, SUMMARY)
    params = net.chain.deployment.params
    rollup = net.chain.rollup.functions
    credit_before = await net.l1(rollup.credits(net.challenger).call)
    burned_before = await net.l1(net.chain.w3.eth.get_balance, BURN_ADDRESS)
    position_before = {bot.name: await position(bot) for bot in (alice, bob)}

    since = await net.block_number()
    bad = await net.restart_sequencer("corrupt:{next}:0")
    story.step(f"the sequencer restarts as an attacker: {net.sequencer.command_line}")
    story.note(f"batch {bad} will claim a root in which account 0 holds one unit of collateral that nobody deposited")
    fill = await trade(net, alice, bob, lots=500)
    batches, receipt = await first_append(net, bad, since)  # (the verifier may have won before we look)
    batch = batches[-1]
    posted, replayed = await l1_roots(net, batches)
    story.step(f"batch {bad} appended with root {short(batch.state_root)}; its calldata replays to {short(replayed[-1])}",
               block=receipt["blockNumber"], tx=batch.tx_hash)
    story.check(f"the L1 data proves batch {bad} wrong (posted root ≠ replayed root) and batches before it right",
                posted[-1] != replayed[-1] and posted[:-1] == replayed[:-1])

    async def opened():
        return [e for e in await net.logs(net.game.events.GameOpened()) if e["args"]["batchIndex"] == bad]

    (game_open, *_) = await net.until(opened, f"a game against batch {bad}")
    game, batch_id = game_open["args"]["gameId"], game_open["args"]["batchId"]
    story.step(f"the verifier challenges batch {bad} with a {eth(params.challenger_bond)} bond: game {game} over "
               f"{game_open['args']['txCount']} transactions, {game_open['blockNumber'] - receipt['blockNumber']} block(s) after the append",
               block=game_open["blockNumber"], tx=game_open["transactionHash"])

    async def resolved():
        return [e for e in await net.logs(net.game.events.GameResolved()) if e["args"]["gameId"] == game]

    (end,) = await net.until(resolved, f"game {game} to end", timeout=GAME_TIMEOUT)
    played = sorted(await moves(net, game), key=lambda e: (e["blockNumber"], e["logIndex"]))
    for move in played:
        story.step(describe(move), block=move["blockNumber"], tx=move["transactionHash"])
    story.step(f"game {game} resolved: {Phase(end['args']['outcome']).name}", block=end["blockNumber"], tx=end["transactionHash"])
    kinds = [m["event"] for m in played]
    story.check("the sequencer defended its root (bisection on L1) and the one-step proof decided the game",
                "Bisected" in kinds and kinds[-1:] == ["Stepped"], f"moves {kinds}")
    story.check("the challenger won", end["args"]["outcome"] == Phase.CHALLENGER_WON)

    discards = [e for e in await net.logs(net.chain.rollup.events.BatchesDiscarded()) if e["args"]["fromIndex"] == bad]
    story.check(f"L1 discarded batch {bad} and every batch after it", len(discards) == 1, f"discard events: {discards}")
    (discard,) = discards
    story.step(f"batches {bad}..{discard['args']['toIndex'] - 1} discarded: the chain resumes after batch {bad - 1}",
               block=discard["blockNumber"], tx=discard["transactionHash"])
    forfeits = [e for e in await net.logs(net.chain.rollup.events.BondForfeited()) if e["args"]["id"] == batch_id]
    (forfeit,) = forfeits or [None]
    story.check(f"batch {bad}'s bond was forfeited", forfeit is not None)
    reward, burned = forfeit["args"]["rewardPerGame"] * forfeit["args"]["games"], forfeit["args"]["burned"]
    story.step(f"batch {bad}'s {eth(params.proposer_bond)} bond: {eth(reward)} to the challenger, {eth(burned)} burned",
               block=forfeit["blockNumber"], tx=forfeit["transactionHash"])
    story.check("the forfeited bond is split to the wei (reward + burned = the proposer bond, reward = slash share)",
                reward + burned == params.proposer_bond and reward == params.proposer_bond * params.slash_reward_bps // 10_000)
    credit = await net.l1(rollup.credits(net.challenger).call) - credit_before
    story.check(f"the challenger's Rollup credit rose by its bond back plus the reward ({eth(credit)})",
                credit == params.challenger_bond + forfeit["args"]["rewardPerGame"], f"rose by {credit} wei")
    burned_now = await net.l1(net.chain.w3.eth.get_balance, BURN_ADDRESS) - burned_before
    story.check(f"at least {eth(burned)} reached the burn address ({eth(burned_now)}; discarded successors' bonds are burned too)",
                burned_now >= burned)

    batches, receipt = await appended(net, bad, not_root=batch.state_root)
    again = batches[-1]
    story.step(f"the sequencer rolled back to batch {bad - 1}'s checkpoint and re-posted batch {bad}: root {short(again.state_root)}",
               block=receipt["blockNumber"], tx=again.tx_hash)
    last = max(bad, await batch_of(net, alice, fill["seq"]))  # the rebuild re-cut the trade into batch `bad` or a later one
    await appended(net, last)
    await verifier_agrees(net, last)
    await finalize_through(net, last)
    final = await check_funds(net, [alice, bob])
    kept = {bot.name: final.state.accounts[bot.account_id].positions.get(0) for bot in (alice, bob)}
    grown = {name: (p.size if p else 0) - position_before[name] for name, p in kept.items()}
    story.check("the trade made during the attack is in the final state once (alice +size, bob -size)",
                grown == {"alice": fill["filled"], "bob": -fill["filled"]}, f"changes {grown}")
    return BadBatchOutcome(bad, batch.state_root, game, again.state_root)


async def position(bot) -> int:
    shown = await bot.api.call("optinode_getAccount", bot.account_id)
    return next((p["size"] for p in shown["positions"] if p["market"] == 0), 0)


async def moves(net: Devnet, game: int) -> list:
    events = net.game.events
    found = []
    for event in (events.Bisected(), events.Chosen(), events.Stepped()):
        found += [e for e in await net.logs(event) if e["args"]["gameId"] == game]
    return found


def describe(move) -> str:
    args = move["args"]
    if move["event"] == "Bisected":
        return f"the sequencer defends: {len(args['roots'])} root(s) between transactions {args['start']} and {args['end']}"
    if move["event"] == "Chosen":
        return f"the verifier picks the first part it disagrees with: transactions {args['start']}..{args['end']}"
    return (f"one-step proof of transaction {args['txIndex']} executed on L1: its true post-root is {short(args['postRoot'])}, "
            "not the sequencer's")
