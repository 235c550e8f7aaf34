"""A trading client as a user would write it from docs/api.md and docs/eip712.md: eth-account signs
the EIP-712 typed data, httpx speaks plain HTTP JSON-RPC, websockets listens. It imports nothing
from optinode on purpose (the acceptance test checks that the documented API is enough)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
from eth_account import Account
from websockets.sync.client import connect

DOMAIN_TYPE = [
    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
]
TYPES = {
    "Order": [
        {"name": "accountId", "type": "uint32"}, {"name": "market", "type": "uint8"}, {"name": "isBuy", "type": "bool"},
        {"name": "size", "type": "uint64"}, {"name": "limitPrice", "type": "uint64"}, {"name": "feeRate", "type": "uint32"},
        {"name": "expiry", "type": "uint64"}, {"name": "nonce", "type": "uint64"},
    ],
    "Withdraw": [
        {"name": "accountId", "type": "uint32"}, {"name": "amount", "type": "uint64"},
        {"name": "expiry", "type": "uint64"}, {"name": "nonce", "type": "uint64"},
    ],
    "CancelOrder": [{"name": "accountId", "type": "uint32"}, {"name": "orderHash", "type": "bytes32"}],
    "CancelAll": [{"name": "accountId", "type": "uint32"}, {"name": "nonceFloor", "type": "uint64"}],
}


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')} {error.get('message')} ({error.get('data')})")
        self.error = error


class Client:
    def __init__(self, url: str, private_key: str, *, chain_id: int, verifying_contract: str) -> None:
        self.url = url
        self.account = Account.from_key(private_key)
        self.domain = {"name": "optinode", "version": "1", "chainId": chain_id, "verifyingContract": verifying_contract}
        self.ids = itertools.count(1)
        self.http = httpx.Client(timeout=30.0)

    def sign(self, primary: str, message: dict[str, Any]) -> str:
        typed = {"types": {"EIP712Domain": DOMAIN_TYPE, primary: TYPES[primary]}, "primaryType": primary,
                 "domain": self.domain, "message": message}
        return "0x" + Account.sign_typed_data(self.account.key, full_message=typed).signature.hex()

    def call(self, method: str, *params: Any) -> Any:
        reply = self.http.post(self.url, json={"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": list(params)}).json()
        if "error" in reply:
            raise RpcFailure(reply["error"])
        return reply["result"]

    def send_order(self, account_id: int, *, market: int, is_buy: bool, size: int, price: int, nonce: int,
                   expiry: int, fee_rate: int = 0, **options: Any) -> Any:
        order = {"accountId": account_id, "market": market, "isBuy": is_buy, "size": str(size), "limitPrice": str(price),
                 "feeRate": fee_rate, "expiry": str(expiry), "nonce": str(nonce)}
        return self.call("optinode_sendOrder", order, self.sign("Order", order), *([options] if options else []))

    def cancel_order(self, account_id: int, order_hash: str) -> Any:
        cancel = {"accountId": account_id, "orderHash": order_hash}
        return self.call("optinode_cancelOrder", cancel, self.sign("CancelOrder", cancel))

    def withdraw(self, account_id: int, amount: int, *, nonce: int, expiry: int) -> Any:
        message = {"accountId": account_id, "amount": str(amount), "expiry": str(expiry), "nonce": str(nonce)}
        return self.call("optinode_sendWithdraw", message, self.sign("Withdraw", message))


class Subscription:
    """A WebSocket connection with one subscription; `next()` is its next notification's result."""

    def __init__(self, ws_url: str, kind: str, options: dict[str, Any] | None = None) -> None:
        self._connection = connect(ws_url)
        self.ws = self._connection.__enter__()  # (a context manager; close() exits it)
        self.ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "optinode_subscribe", "params": [kind] + ([options] if options else [])}))
        reply = json.loads(self.ws.recv(timeout=30))
        if "error" in reply:
            raise RpcFailure(reply["error"])
        self.id = reply["result"]

    def next(self, timeout: float = 30.0) -> Any:
        note = json.loads(self.ws.recv(timeout=timeout))
        assert note["method"] == "optinode_subscription" and note["params"]["subscription"] == self.id, note
        return note["params"]["result"]

    def close(self) -> None:
        self._connection.__exit__(None, None, None)
