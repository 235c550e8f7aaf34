"""Regenerate the example inputs of `optinode spec apply` (docs/spec-apply.md):

    .venv/bin/python examples/make_examples.py

writes examples/pre.json, txs.json, l1.json and batch.json. The output is deterministic (RFC 6979
signatures), and tests/cli/test_spec_cmd.py checks that the committed files are what this produces.

The genesis is configs/devnet.toml's; alice and bob use the public, devnet-only keys
keccak256("optinode-devnet-alice") and keccak256("optinode-devnet-bob") (see docs/eip712.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optinode.config import load_genesis
from optinode.spec import create_genesis_state, serde
from optinode.spec.types import (
    Deposit,
    DepositEntry,
    ForcedEntry,
    ForcedWithdraw,
    FundingTick,
    L1Context,
    OraclePrice,
    SlotRef,
    Trade,
)
from optinode.wallet import Key, sign_order, sign_price, sign_withdraw

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "devnet.toml"

ETH = 0
ETH_UNIT = 10**9  # base units per ETH
USD = 10**6  # collateral units per USD


def build() -> dict[str, Any]:
    """The example files as plain JSON data, by file name."""
    genesis = load_genesis(CONFIG)
    state = create_genesis_state(genesis)
    domain = state.config.domain_separator
    t0 = genesis.time
    alice, bob = Key.from_seed("optinode-devnet-alice"), Key.from_seed("optinode-devnet-bob")
    oracles = [Key.from_seed(f"optinode-devnet-oracle-{i}") for i in range(2)]
    expiry = t0 + 86_400

    def order(key: Key, account_id: int, is_buy: bool, eth: int, usd: int, nonce: int):
        return sign_order(
            key, domain, account_id=account_id, market=ETH, is_buy=is_buy, size=eth * ETH_UNIT,
            limit_price=usd * 10**5, fee_rate=500, expiry=expiry, nonce=nonce,
        )

    l1 = L1Context(
        l1_timestamp=t0 + 3600,
        deposits={0: DepositEntry(owner=alice.address, amount=10_000 * USD), 1: DepositEntry(owner=bob.address, amount=10_000 * USD)},
        forced={0: ForcedEntry(requester=bob.address, account_id=1, amount=1_000_000 * USD)},
    )
    first_trade = Trade(maker=order(alice, 0, True, 2, 3010, 1), taker=order(bob, 1, False, 1, 3000, 1), size=1 * ETH_UNIT)
    txs = [
        Deposit(account_id=0),  # alice, queue entry 0: OK
        Deposit(account_id=1),  # bob, queue entry 1: OK
        OraclePrice(market=ETH, samples=tuple(sign_price(k, domain, i, ETH, 301_000_000, t0 + 60) for i, k in enumerate(oracles))),
        first_trade,  # alice bids 2 ETH @ 3010, bob sells 1: alice's other 1 ETH rests in slot 0
        Trade(maker=SlotRef(slot=0), taker=order(bob, 1, False, 1, 3010, 2), size=1 * ETH_UNIT),  # continues slot 0
        first_trade,  # replayed: NONCE_USED, invalid
        sign_withdraw(alice, domain, 0, 500 * USD, expiry, 2),  # OK
        sign_withdraw(bob, domain, 0, 500 * USD, expiry, 3),  # bob signs for alice's account: WRONG_SIGNER
        ForcedWithdraw(),  # bob asks for more than he has: rejected (INSUFFICIENT_MARGIN), queue entry consumed
        FundingTick(timestamp=t0 + 3600, indices=(100_000, 0)),  # longs pay 1 USD per ETH
        Deposit(account_id=2),  # no third deposit in the queue: NO_PENDING_DEPOSIT, invalid
    ]
    files: dict[str, Any] = {
        "pre.json": {"genesis": serde.to_plain(genesis)},
        "txs.json": serde.to_plain(txs),
        "l1.json": serde.to_plain(l1),
    }
    try:
        from optinode.spec.batch_framing import encode_batch
    except ImportError:
        pass
    else:
        files["batch.json"] = {"batch": "0x" + encode_batch(txs).hex()}
    return files


def render(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def main() -> None:
    for name, data in build().items():
        (HERE / name).write_text(render(data), encoding="utf-8")
        print(f"wrote examples/{name}")


if __name__ == "__main__":
    main()
