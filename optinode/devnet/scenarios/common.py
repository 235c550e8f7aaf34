"""Steps the scenarios share: funding the bots, a trade over JSON-RPC, finding a command's batch on L1,
waiting out a challenge window, and the funds checks read back from L1 alone."""

from __future__ import annotations

from typing import Any

import eth_abi

from optinode.devnet.network import Devnet
from optinode.devnet.proofs import FinalState, rebuild_final_state
from optinode.devnet.story import price, short, usd
from optinode.devnet.trader import ORDER_LIFETIME, Trader
from optinode.spec.state import get_total_collateral
from optinode.spec.batch_framing import split_records
from optinode.testing.seqnode import L1Batch
from optinode.testing.world import USD

APPEND_ARGS = ["bytes", "bytes32", "bytes32", "bytes32", "uint64", "uint64", "uint64"]  # Rollup.appendBatch's (as DevChain reads them)
DEPOSIT = 10_000 * USD  # what each bot deposits the first time a scenario needs it


async def begin(net: Devnet, name: str, summary: str) -> tuple[Trader, Trader]:
    """A scenario's first step: its chapter heading, and alice and bob funded (returned)."""
    net.story.chapter(name, summary)
    await ensure_funded(net, [net.alice, net.bob])
    return net.alice, net.bob


async def ensure_funded(net: Devnet, bots: list[Trader], amount: int = DEPOSIT) -> None:
    """Fund the bots that have no L2 account yet (a scenario run on its own starts from nothing)."""
    missing = [bot for bot in bots if bot.account_id is None]
    if missing:
        await net.fund(missing, amount)


async def trade(net: Devnet, buyer: Trader, seller: Trader, lots: int) -> dict[str, Any]:
    """``buyer`` rests a bid at the oracle price (on the tick), ``seller`` sells into it (IOC): one fill."""
    market = await net.market(0)
    decimals = net.chain.config.genesis.markets[0].base_decimals
    step, tick = market["stepSize"], market["tickSize"]
    limit = market["price"] // tick * tick
    size = lots * step
    expiry = await net.l1_time() + ORDER_LIFETIME
    rest = await buyer.api.send_order(buyer.account_id, market=0, is_buy=True, size=size, price=limit, expiry=expiry)
    taken = await seller.api.send_order(seller.account_id, market=0, is_buy=False, size=size, price=limit, expiry=expiry,
                                        timeInForce="ioc")
    amount = f"{size / 10**decimals:,.3f} {market['name'].split('-')[0]}"
    net.story.step(f"{buyer.name} bids {amount} at {price(limit, decimals)} over JSON-RPC (EIP-712 signed): {rest['status']}; "
                   f"{seller.name} sells into it: {taken['status']} (log entry {taken['seq']})")
    net.story.check(f"{seller.name}'s order filled {buyer.name}'s bid in full", taken["status"] == "filled" and taken["filled"] == size,
                    f"answer {taken}")
    return taken


async def batch_of(net: Devnet, bot: Trader, seq: int) -> int:
    """The batch the sequencer put log entry ``seq`` in (waits until it is cut)."""
    async def cut() -> int | None:
        command = await bot.api.call("optinode_getCommand", seq)
        return command["batch"] if command["status"] in ("batched", "final") else None

    return await net.until(cut, f"log entry {seq} to be cut into a batch")


async def appended(net: Devnet, index: int, *, not_root: bytes | None = None) -> tuple[list[L1Batch], Any]:
    """Live batches 1..``index`` as L1 holds them (records from their calldata) and the append receipt
    of batch ``index``; waits for it (and, with ``not_root``, for one whose root is another: a re-post)."""
    async def live() -> list[L1Batch] | None:
        if await net.l1(net.chain.batch_count) <= index:
            return None
        batches = (await net.l1(net.chain.l1_batches))[:index]
        return batches if batches[-1].state_root != not_root else None

    batches = await net.until(live, f"batch {index} on L1")
    return batches, await net.receipt(batches[-1].tx_hash)


async def first_append(net: Devnet, index: int, since_block: int) -> tuple[list[L1Batch], Any]:
    """Like `appended`, but batch ``index`` as it was first appended at or after ``since_block``, even if
    L1 has discarded it since (a bad batch can be caught before the scenario looks at it): its records
    from that append's calldata, with the live batches before it."""
    async def first() -> Any:
        found = [e for e in await net.logs(net.chain.rollup.events.BatchAppended(), from_block=since_block) if e["args"]["index"] == index]
        return found[0] if found else None

    event = await net.until(first, f"batch {index} on L1")

    def batch() -> L1Batch:
        data = bytes(net.chain.w3.eth.get_transaction(event["transactionHash"])["input"])
        records = split_records(eth_abi.decode(APPEND_ARGS, data[4:])[0])
        args = event["args"]
        return L1Batch(index, records, bytes(args["stateRoot"]), args["l1Timestamp"], 0, 0, bytes(event["transactionHash"]))

    earlier = (await net.l1(net.chain.l1_batches))[:index - 1]
    return earlier + [await net.l1(batch)], await net.receipt(event["transactionHash"])


async def l1_roots(net: Devnet, batches: list[L1Batch]) -> tuple[list[bytes], list[bytes]]:
    """(posted roots, roots a spec replay of the L1 calldata gives) of consecutive live batches from 1."""
    replayed, _, _ = await net.l1(net.chain.replay, batches)
    return [b.state_root for b in batches], replayed


async def verifier_agrees(net: Devnet, upto: int) -> dict[str, Any]:
    """Wait until the verifier has replayed batch ``upto`` with no game of its own still open; check it
    found nothing to challenge. (A status written while a game was open predates the discard: its
    ``synced_batch`` can be the discarded batch's, and its verdict the bad one.)"""
    async def synced() -> dict[str, Any] | None:
        status = await net.verifier_status()
        settled = not any(g["resolved"] is None for g in status["games"])
        return status if settled and status["synced_batch"] is not None and status["synced_batch"] >= upto else None

    status = await net.until(synced, f"the verifier to replay batch {upto}")
    net.story.step(f"the verifier replayed every batch up to {status['synced_batch']} from L1 alone: invalid batches "
                   f"{status['invalid_batches'] or 'none'}, open games {sum(1 for g in status['games'] if g['resolved'] is None)}")
    net.story.check(f"the verifier agrees with batches 1..{upto}", not [b for b in status["invalid_batches"] if b <= upto],
                    f"invalid: {status['invalid_batches']}")
    return status


async def finalize_through(net: Devnet, index: int) -> None:
    """Move L1 time past the challenge window and wait for the sequencer to finalize batch ``index``."""
    window = net.chain.deployment.params.challenge_window
    block = await net.travel(window + 1)
    net.story.step(f"anvil time travel: +{window + 1} s, the {window} s challenge window of batch {index} is over", block=block)

    async def final() -> bool:
        return await net.l1(net.chain.finalized_count) > index

    await net.until(final, f"batch {index} to finalize")
    (event,) = [e for e in await net.logs(net.chain.rollup.events.BatchFinalized()) if e["args"]["index"] == index]
    net.story.step(f"the sequencer finalizes batch {index} (root {short(event['args']['stateRoot'])})", block=event["blockNumber"],
                   tx=event["transactionHash"])


async def check_funds(net: Devnet, bots: list[Trader]) -> FinalState:
    """Rebuild the last finalized state from L1 alone and check the money in it: every bot's account
    is what the sequencer shows, collateral is conserved, and the Bridge holds exactly what it owes."""
    final = await net.l1(rebuild_final_state, net.chain)
    state = final.state
    for bot in bots:
        shown = await bot.api.call("optinode_getAccount", bot.account_id)
        account = state.accounts[bot.account_id]
        positions = {m: p.size for m, p in account.positions.items()}
        net.story.check(f"{bot.name}: collateral {usd(account.collateral)} and positions {positions or 'none'} in the final state rebuilt "
                        "from L1 = what the sequencer shows",
                        shown["collateral"] == account.collateral and {p["market"]: p["size"] for p in shown["positions"]} == positions,
                        f"sequencer: {shown['collateral']} {shown['positions']}")

    def books() -> tuple[int, int, int, int]:
        deposits, _ = net.chain.queues()
        consumed = sum(deposits[i].amount for i in range(state.deposits_done))
        queued = sum(entry.amount for i, entry in deposits.items() if i >= state.deposits_done)
        bridge = net.chain.bridge.functions
        paid = sum(bridge.paid(i).call() for i in state.accounts)
        return consumed, queued, paid, net.chain.token.functions.balanceOf(net.chain.bridge.address).call()

    consumed, queued, paid, balance = await net.l1(books)
    held = get_total_collateral(state) - state.socialized_loss
    withdrawn = sum(a.withdrawn for a in state.accounts.values())
    net.story.check(f"conservation in final batch {final.batch_index}: collateral {usd(held)} = deposits {usd(consumed)} - withdrawals "
                    f"{usd(withdrawn)}", held == consumed - withdrawn, f"off by {held - (consumed - withdrawn)} units")
    owed = held + (withdrawn - paid) + queued
    net.story.check(f"the Bridge holds {usd(balance)} dUSD = exactly what it owes (balances, unpaid withdrawals, queued deposits)",
                    balance == owed, f"it owes {usd(owed)}")
    return final
