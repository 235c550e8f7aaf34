"""Regenerate the example inputs of `optinode spec apply` (docs/spec-apply.md):

    .venv/bin/python examples/make_examples.py

writes examples/pre.json, txs.json, l1.json and batch.json. The output is deterministic (RFC 6979
signatures), and tests/cli/test_spec_cmd.py checks that the committed files are what this produces.

The genesis is configs/devnet.toml's; alice and bob use the public, devnet-only keys
keccak256("optinode-devnet-alice") and keccak256("optinode-devnet-bob") (see docs/eip712.md), the test driver's
`test_key`s (optinode/testing/world.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optinode.config import load_genesis
from optinode.spec import serde
from optinode.spec.batch_framing import encode_batch
from optinode.spec.types import Deposit, ForcedWithdraw, FundingTick, SlotRef, Trade
from optinode.testing.world import ETH, ETH_UNIT, USD, World

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "devnet.toml"


def build() -> dict[str, Any]:
    """The example files as plain JSON data, by file name (the test driver on the devnet genesis:
    its keys are the devnet keys; nonces are given explicitly, so the files stay as documented)."""
    genesis = load_genesis(CONFIG)
    t0 = genesis.time
    w = World(genesis, l1_timestamp=t0 + 3600)
    w.ids.update(alice=0, bob=1)  # the accounts the two deposits below open
    expiry = t0 + 86_400

    def order(name: str, is_buy: bool, eth: int, usd: int, nonce: int):
        return w.order(
            name, market=ETH, is_buy=is_buy, size=eth * ETH_UNIT, limit_price=usd * 10**5, fee_rate=500, expiry=expiry,
            nonce=nonce,
        )

    w.queue_deposit("alice", 10_000 * USD)
    w.queue_deposit("bob", 10_000 * USD)
    w.queue_forced("bob", 1_000_000 * USD)
    first_trade = Trade(maker=order("alice", True, 2, 3010, 1), taker=order("bob", False, 1, 3000, 1), size=1 * ETH_UNIT)
    txs = [
        Deposit(account_id=0),  # alice, queue entry 0: OK
        Deposit(account_id=1),  # bob, queue entry 1: OK
        w.prices(ETH, [(i, 301_000_000, t0 + 3500) for i in range(3)]),  # the devnet quorum is 3; 100 s old
        first_trade,  # alice bids 2 ETH @ 3010, bob sells 1: alice's other 1 ETH rests in slot 0
        Trade(maker=SlotRef(slot=0), taker=order("bob", False, 1, 3010, 2), size=1 * ETH_UNIT),  # continues slot 0
        first_trade,  # replayed: NONCE_USED, invalid
        w.withdraw("alice", 500 * USD, expiry=expiry, nonce=2),  # OK
        w.withdraw("alice", 500 * USD, signer="bob", expiry=expiry, nonce=3),  # bob signs for alice's account: WRONG_SIGNER
        ForcedWithdraw(),  # bob asks for more than he has: rejected (INSUFFICIENT_MARGIN), queue entry consumed
        FundingTick(timestamp=t0 + 3600, indices=(100_000, 0)),  # longs pay 1 USD per ETH
        Deposit(account_id=2),  # no third deposit in the queue: NO_PENDING_DEPOSIT, invalid
    ]
    return {
        "pre.json": {"genesis": serde.to_plain(genesis)},
        "txs.json": serde.to_plain(txs),
        "l1.json": serde.to_plain(w.ctx),
        "batch.json": {"batch": "0x" + encode_batch(txs).hex()},
    }


def render(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def main() -> None:
    for name, data in build().items():
        (HERE / name).write_text(render(data), encoding="utf-8")
        print(f"wrote examples/{name}")


if __name__ == "__main__":
    main()
