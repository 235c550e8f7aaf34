"""``honest``: the life of a withdrawal when everyone behaves.

Alice and Bob deposit on L1, trade over JSON-RPC, Alice withdraws $100 on L2; the batch holding the
withdrawal is appended to the Rollup with its root and bond; the verifier replays it from L1 and
agrees (and so does the devnet's own replay of the calldata); anvil's clock jumps past the challenge
window; the sequencer finalizes the batch; Alice's wallet rebuilds the final state from L1 alone and
claims on the Bridge. Checked: the roots, the verifier's verdicts, finality on L1, Alice's L1 balance
rising by exactly $100, a second claim refused, and the money in the final state.
"""

from __future__ import annotations

from dataclasses import dataclass

from optinode.devnet.network import Devnet
from optinode.devnet.proofs import rebuild_final_state
from optinode.devnet.scenarios.common import appended, batch_of, begin, check_funds, finalize_through, l1_roots, trade, verifier_agrees
from optinode.devnet.story import short, usd
from optinode.devnet.trader import ORDER_LIFETIME
from optinode.l1.contracts import Reverted
from optinode.testing.world import USD

NAME = "honest"
SUMMARY = "deposit → trade → batch posted → verifier agrees → challenge window passes → finalized → withdrawal claimed on L1"
WITHDRAWAL = 100 * USD


@dataclass(frozen=True)
class HonestOutcome:
    batch: int  # the batch holding the withdrawal
    claimed: int  # what the Bridge paid alice
    claim_tx: bytes


async def run(net: Devnet) -> HonestOutcome:
    story = net.story
    alice, bob = await begin(net, NAME, SUMMARY)
    await trade(net, alice, bob, lots=1000)

    expiry = await net.l1_time() + ORDER_LIFETIME
    ack = await alice.api.withdraw(alice.account_id, WITHDRAWAL, expiry=expiry)
    story.step(f"alice signs a withdrawal of {usd(WITHDRAWAL)} and sends it over JSON-RPC: {ack['status']} (log entry {ack['seq']})")
    index = await batch_of(net, alice, ack["seq"])
    batches, receipt = await appended(net, index)
    batch = batches[-1]
    story.step(f"batch {index} appended: {len(batch.records)} transactions, root {short(batch.state_root)}, "
               f"bond {net.chain.deployment.params.proposer_bond / 10**18:g} ETH", block=receipt["blockNumber"], tx=batch.tx_hash)
    posted, replayed = await l1_roots(net, batches)
    story.check(f"replaying batches 1..{index} from their L1 calldata gives every posted root", posted == replayed)
    await verifier_agrees(net, index)
    await finalize_through(net, index)

    final = await net.l1(rebuild_final_state, net.chain)
    story.step(f"alice's wallet rebuilds final batch {final.batch_index}'s state from L1 alone: root {short(final.parts.root())} "
               "= the Rollup's; it proves her account under it")
    before = await net.l1(alice.wallet.token_balance)
    claim = await net.l1(alice.wallet.claim_withdrawal, final.batch_index, final.parts.as_tuple(), final.proof(alice.account_id))
    paid = await net.l1(alice.wallet.token_balance) - before
    story.step(f"alice claims her withdrawal on the Bridge: paid {usd(paid)} dUSD", block=claim["blockNumber"],
               tx=claim["transactionHash"])
    story.check(f"alice's L1 balance rose by exactly {usd(WITHDRAWAL)}", paid == WITHDRAWAL, f"it rose by {usd(paid)}")
    try:
        await net.l1(alice.wallet.claim_withdrawal, final.batch_index, final.parts.as_tuple(), final.proof(alice.account_id))
        refused = None
    except Reverted as error:
        refused = error.name
    story.check("a second claim of the same withdrawal is refused (NothingToPay)", refused == "NothingToPay", f"got {refused}")
    await check_funds(net, [alice, bob])
    return HonestOutcome(index, paid, bytes(claim["transactionHash"]))
