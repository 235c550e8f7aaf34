"""What a user's wallet needs to take money out of the Bridge, rebuilt from L1 data alone.

    final = rebuild_final_state(chain)             # replay every final batch's calldata with the spec
    wallet.claim_withdrawal(final.batch_index, final.parts.as_tuple(), final.proof(account_id))
    wallet.register_claim(final.globals, final.parts.as_tuple(), final.proof(account_id))   # after a freeze

No sequencer, no verifier and no archive node is asked anything: the batches come from the input of
each live ``appendBatch`` transaction (`DevChain.l1_batches`), the queue entries from the Bridge's
events, and the state is the deployed genesis replayed through ``spec.state_transition`` at each
batch's declared L1 time. The rebuilt root must equal the Rollup's last finalized root, or nothing
is claimed (a wallet must never sign a proof it cannot check). This is the escape hatch's promise —
DESIGN safety property 5 — made concrete: even a dead or censoring sequencer cannot keep the data
from the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from optinode.l1.contracts import StateParts
from optinode.replay import account_proof, state_parts
from optinode.spec.commitment import Commitment, encode_globals
from optinode.spec.state import State
from optinode.testing.seqnode import DevChain


class ProofMismatch(RuntimeError):
    """The state replayed from L1 does not give the root the Rollup finalized: a bug, or a bad genesis."""


@dataclass(frozen=True)
class FinalState:
    """The spec state under the Rollup's last finalized root, with its commitment, the root's preimage
    (``parts``) and the encoded globals the Bridge values positions with."""

    batch_index: int
    state: State
    commitment: Commitment
    parts: StateParts
    globals: bytes

    def proof(self, account_id: int) -> tuple[int, bytes, list[bytes]]:
        """(account id, leaf, siblings): the account's inclusion proof under the final root."""
        return account_proof(self.state, self.commitment, account_id)


def rebuild_final_state(chain: DevChain) -> FinalState:
    """Replay the live batches up to the last finalized one from their L1 calldata; check the root."""
    index, root, _, _ = chain.rollup.functions.lastFinalized().call()
    batches = chain.l1_batches()[:index]  # batches 1..index (l1_batches starts at batch 1)
    _, _, state = chain.replay(batches)
    commitment = Commitment.from_state(state)
    final = FinalState(index, state, commitment, state_parts(state, commitment), encode_globals(state))
    if final.parts.root() != bytes(root):
        raise ProofMismatch(f"the state replayed from L1 gives root 0x{final.parts.root().hex()}, the Rollup finalized "
                            f"0x{bytes(root).hex()} at batch {index}")
    return final
