"""The devnet's trader bots: an L1 wallet and an L2 JSON-RPC client per bot, as a user would hold them.

    bot = Trader("alice", key, devnet.url, devnet.deployment, api_url)
    receipt = bot.wallet.deposit(1_000 * USD)                 # sync web3, locally signed (run it in a thread)
    answer = await bot.api.send_order(account_id, market=0, is_buy=True, size=…, price=…)
    await bot.api.withdraw(account_id, 100 * USD)

The wallet signs its own L1 transactions with eth-account (web3's signing middleware: nothing is sent
from an unlocked node account), so the devnet uses anvil only as an Ethereum node. The API client is
what docs/api.md describes: JSON-RPC 2.0 over HTTP (httpx, trio-capable), orders and withdrawals signed
as EIP-712 typed data with eth-account's ``sign_typed_data`` — exactly what a wallet's
``eth_signTypedData_v4`` produces. The typed-data field lists are read from the spec's own EIP-712 type
strings (`optinode.spec.eip712`), so they cannot drift from what the spec hashes.
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from eth_account import Account
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder

from optinode.l1.artifacts import load_artifact
from optinode.l1.contracts import transact
from optinode.l1.deploy import Deployment
from optinode.spec.eip712 import EIP712_DOMAIN_TYPE, ORDER_TYPE, WITHDRAW_TYPE
from optinode.spec.constants import EIP712_NAME, EIP712_VERSION

ORDER_LIFETIME = 86_400  # seconds of L1 time an order or withdrawal the bots sign stays valid


def typed_fields(type_string: bytes) -> list[dict[str, str]]:
    """``b"Withdraw(uint32 accountId,uint64 amount,…)"`` -> ``[{"name": "accountId", "type": "uint32"}, …]``."""
    inner = type_string.decode().split("(", 1)[1].rstrip(")")
    return [{"name": name, "type": kind} for kind, name in (field.split(" ") for field in inner.split(","))]


TYPES = {"EIP712Domain": typed_fields(EIP712_DOMAIN_TYPE), "Order": typed_fields(ORDER_TYPE), "Withdraw": typed_fields(WITHDRAW_TYPE)}


class ApiError(Exception):
    """The sequencer answered with a JSON-RPC error (``data`` is the spec ErrorCode or exchange reason)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('message')} ({error.get('data')})")
        self.code = error.get("code")
        self.data = error.get("data")


class Wallet:
    """A bot's L1 side: its own key, its own web3 with a signing middleware. Synchronous (web3): the
    devnet calls it through its L1 thread."""

    def __init__(self, key: str, url: str, deployment: Deployment) -> None:
        self.account = Account.from_key(key)
        self.address = self.account.address
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        self.w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(self.account), name="wallet", layer=0)
        c = deployment.contracts
        self.token = self.w3.eth.contract(address=c.token, abi=load_artifact("DevToken")["abi"])
        self.bridge = self.w3.eth.contract(address=c.bridge, abi=load_artifact("Bridge")["abi"])
        self.rollup = self.w3.eth.contract(address=c.rollup, abi=load_artifact("Rollup")["abi"])

    def _send(self, fn: Any) -> Any:
        return transact(self.w3, fn, self.address)

    def deposit(self, amount: int) -> Any:
        """Mint devnet dollars (DevToken's open mint), approve the Bridge, deposit; the deposit's receipt."""
        self._send(self.token.functions.mint(self.address, amount))
        self._send(self.token.functions.approve(self.bridge.address, amount))
        return self._send(self.bridge.functions.deposit(self.address, amount))

    def request_forced_withdrawal(self, account_id: int, amount: int) -> Any:
        return self._send(self.bridge.functions.requestForcedWithdrawal(account_id, amount))

    def claim_withdrawal(self, batch_index: int, parts: tuple[Any, ...], proof: tuple[int, bytes, list[bytes]]) -> Any:
        return self._send(self.bridge.functions.claimWithdrawal(batch_index, parts, proof))

    def freeze(self) -> Any:
        return self._send(self.bridge.functions.freeze())

    def register_claim(self, globals_: bytes, parts: tuple[Any, ...], proof: tuple[int, bytes, list[bytes]]) -> Any:
        accounts_root, slots_root, _, deposits_done, forced_done = parts
        return self._send(self.bridge.functions.registerClaim(globals_, accounts_root, slots_root, deposits_done, forced_done, proof))

    def release_frozen_bonds(self) -> Any:
        return self._send(self.rollup.functions.releaseFrozenBonds(2**256 - 1))

    def escape(self, account_id: int) -> Any:
        return self._send(self.bridge.functions.escape(account_id))

    def token_balance(self) -> int:
        return self.token.functions.balanceOf(self.address).call()

    def eth_balance(self) -> int:
        return self.w3.eth.get_balance(self.address)


class ApiClient:
    """A bot's L2 side: the sequencer's public JSON-RPC API, with EIP-712 signatures by the bot's key."""

    def __init__(self, url: str, key: str, *, chain_id: int, verifying_contract: str) -> None:
        self.url = url
        self.key = key
        self.domain = {"name": EIP712_NAME, "version": EIP712_VERSION, "chainId": chain_id, "verifyingContract": verifying_contract}
        self.ids = itertools.count(1)
        self.nonces = itertools.count(1)  # orders and withdrawals share the account's nonce window
        self.http = httpx.AsyncClient(timeout=30.0)

    def sign(self, primary: str, message: dict[str, Any]) -> str:
        typed = {"types": {"EIP712Domain": TYPES["EIP712Domain"], primary: TYPES[primary]}, "primaryType": primary,
                 "domain": self.domain, "message": message}
        return "0x" + Account.sign_typed_data(self.key, full_message=typed).signature.hex()

    async def call(self, method: str, *params: Any, timeout: float | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self.ids), "method": method, "params": list(params)}
        reply = (await self.http.post(self.url, json=body, timeout=timeout or 30.0)).json()
        if "error" in reply:
            raise ApiError(reply["error"])
        return reply["result"]

    async def send_order(self, account_id: int, *, market: int, is_buy: bool, size: int, price: int, expiry: int,
                         fee_rate: int = 0, **options: Any) -> Any:
        order = {"accountId": account_id, "market": market, "isBuy": is_buy, "size": str(size), "limitPrice": str(price),
                 "feeRate": fee_rate, "expiry": str(expiry), "nonce": str(next(self.nonces))}
        return await self.call("optinode_sendOrder", order, self.sign("Order", order), *([options] if options else []))

    async def withdraw(self, account_id: int, amount: int, *, expiry: int, timeout: float | None = None) -> Any:
        message = {"accountId": account_id, "amount": str(amount), "expiry": str(expiry), "nonce": str(next(self.nonces))}
        return await self.call("optinode_sendWithdraw", message, self.sign("Withdraw", message), timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()


class Trader:
    """A named bot: its wallet (L1) and its API client (L2), on one key."""

    def __init__(self, name: str, key: str, l1_url: str, deployment: Deployment, api_url: str) -> None:
        self.name = name
        self.key = key
        self.wallet = Wallet(key, l1_url, deployment)
        self.address = self.wallet.address
        self.api = ApiClient(api_url, key, chain_id=deployment.chain_id, verifying_contract=deployment.verifying_contract)
        self.account_id: int | None = None  # its L2 account, once its first deposit is consumed
