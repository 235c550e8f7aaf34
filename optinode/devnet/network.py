"""The running devnet: anvil, the deployed rollup, a sequencer, a verifier and the trader bots.

    async with open_devnet(anvil, workdir, story) as net:      # deploys, starts both nodes
        await net.fund([net.alice, net.bob], 10_000 * USD)       # L1 deposits, consumed on L2
        next_batch = await net.restart_sequencer("corrupt:{next}:0")
        await net.until(probe, "what we wait for")               # fails with the nodes' log tails

Everything is a real piece: anvil (optinode.l1.anvil, mixed mining: transactions are mined at once and a
block comes every second anyway, like a live L1), the contracts deployed by `optinode.l1.deploy`, the
nodes as ``optinode sequencer`` / ``optinode verifier run`` processes (`nodes.Node`), the bots with their
own keys (`trader.Trader`). The devnet's config is the given one (configs/devnet.toml by default) with
``[market_services] enabled = true``, so the sequencer runs the devnet oracle feed, funding and the
liquidator. Keys are anvil's public development keys: deployer 0, proposer 1 (configs/devnet.toml's
``[l1] proposers``), alice 2, bob 3, carol 4, the verifier's challenger 5.

L1 reads and writes are synchronous web3 calls; they run one at a time in a worker thread (`l1`), so
the trio loop never blocks and no web3 session is shared between threads.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import trio
from eth_account import Account
from web3 import Web3

from optinode.config import ConfigError, load_config
from optinode.devnet.nodes import Node, NodeFailed
from optinode.devnet.story import ScenarioFailed, Story, short, usd
from optinode.devnet.trader import Trader
from optinode.l1.anvil import DEFAULT_PRIVATE_KEYS, Anvil, free_port
from optinode.l1.artifacts import load_artifact
from optinode.l1.deploy import deploy, write_deployment
from optinode.testing.seqnode import DevChain

T = TypeVar("T")

DEPLOYER, PROPOSER, CHALLENGER = 0, 1, 5  # anvil key indices
BOTS = {"alice": 2, "bob": 3, "carol": 4}
_MARKET_SERVICES_OFF = re.compile(r"^(\[market_services\][ \t]*\n(?:[ \t]*(?:#.*)?\n)*)[ \t]*enabled[ \t]*=[ \t]*false[ \t]*(#.*)?$", re.M)


def devnet_config(text: str, where: str) -> str:
    """The config the devnet runs: ``text`` with its market services switched on (a devnet shows them)."""
    if "[market_services]" not in text:
        raise ConfigError(f"{where}: the devnet runs the market services; the config needs a [market_services] table "
                          "(configs/devnet.toml has one)")
    return _MARKET_SERVICES_OFF.sub(r"\1enabled = true", text, count=1)


@dataclass(frozen=True)
class Endpoints:
    anvil: str
    api: str
    admin: str
    watch: str


class Devnet:
    """One running devnet (see the module docstring). Scenarios act through it and read L1 through `chain`."""

    def __init__(self, anvil: Anvil, workdir: Path, story: Story, nursery: trio.Nursery, source_config: Path) -> None:
        self.anvil = anvil
        self.workdir = workdir
        self.story = story
        self.nursery = nursery
        self.source_config = source_config
        self.config_path = workdir / "config.toml"
        self.deployment_path = workdir / "deployment.json"
        self._l1_lock = trio.CapacityLimiter(1)
        self.endpoints = Endpoints(anvil.url, f"http://127.0.0.1:{free_port()}/", f"http://127.0.0.1:{free_port()}/",
                                   f"http://127.0.0.1:{free_port()}/")
        self.http = httpx.AsyncClient(timeout=10.0)
        self.chain: DevChain
        self.traders: dict[str, Trader] = {}
        self.sequencer: Node
        self.verifier: Node
        self.sequencer_fault: str | None = None

    # --- setup ---------------------------------------------------------------------------------------

    async def setup(self) -> None:
        text = devnet_config(self.source_config.read_text(), str(self.source_config))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text)
        config = load_config(self.config_path)  # ConfigError: bad input
        keys = config.node.keys
        env_names = {role: getattr(getattr(keys, role), "env", None) for role in ("proposer", "challenger")}
        if None in env_names.values():
            raise ConfigError(f"{self.source_config}: [node.keys] proposer and challenger must be {{ env = \"VAR\" }} sources: "
                              "the devnet hands its nodes anvil's public keys through them")
        proposer = Account.from_key(DEFAULT_PRIVATE_KEYS[PROPOSER]).address
        if config.l1 is None or proposer not in config.l1.proposers:
            raise ConfigError(f"{self.source_config}: [l1] proposers must include {proposer} (anvil's key 1, the devnet's proposer)")
        w3 = Web3(Web3.HTTPProvider(self.anvil.url, request_kwargs={"timeout": 60}))
        deployer = Account.from_key(DEFAULT_PRIVATE_KEYS[DEPLOYER])
        deployment = await self.l1(deploy, w3, deployer, config, config_bytes=text.encode())
        write_deployment(self.deployment_path, deployment)
        self.chain = await self.l1(DevChain, self.anvil.url, self.config_path, self.deployment_path)
        self.game = self.chain.w3.eth.contract(address=deployment.contracts.game, abi=load_artifact("DisputeGame")["abi"])
        c = deployment.contracts
        self.story.step(f"deployed the rollup: bridge {short(c.bridge)}, rollup {short(c.rollup)}, dispute game {short(c.game)}, "
                        f"one-step prover {short(c.prover)}, dUSD {short(c.token)}", block=deployment.deployment_block)
        for name, index in BOTS.items():
            self.traders[name] = Trader(name, DEFAULT_PRIVATE_KEYS[index], self.anvil.url, deployment, self.endpoints.api)
        common = ["--config", str(self.config_path), "--deployment", str(self.deployment_path), "--rpc", self.anvil.url]
        self._sequencer_args = ["sequencer", *common, "--data-dir", str(self.workdir / "sequencer"),
                                "--api-port", _port(self.endpoints.api), "--admin-port", _port(self.endpoints.admin)]
        self.sequencer = Node("sequencer", self._sequencer_args, self.workdir / "sequencer.log",
                              {env_names["proposer"]: DEFAULT_PRIVATE_KEYS[PROPOSER]})
        self.verifier = Node("verifier", ["verifier", "run", *common, "--data-dir", str(self.workdir / "verifier"),
                                          "--api-port", _port(self.endpoints.watch)], self.workdir / "verifier.log",
                             {env_names["challenger"]: DEFAULT_PRIVATE_KEYS[CHALLENGER]})
        await self.sequencer.start(self.nursery, partial(self._answers, self.endpoints.api))
        self.story.step(f"sequencer up: {self.sequencer.command_line}")
        await self.verifier.start(self.nursery, partial(self._answers, self.endpoints.watch))
        self.story.step(f"verifier up (challenger {short(Account.from_key(DEFAULT_PRIVATE_KEYS[CHALLENGER]).address)}): "
                        f"{self.verifier.command_line}")

    async def _answers(self, url: str) -> bool:
        try:
            await self.rpc(url, "optinode_status")
        except (httpx.HTTPError, OSError, ValueError):
            return False
        return True

    @property
    def alice(self) -> Trader:
        return self.traders["alice"]

    @property
    def bob(self) -> Trader:
        return self.traders["bob"]

    @property
    def carol(self) -> Trader:
        return self.traders["carol"]

    @property
    def challenger(self) -> str:
        return Account.from_key(DEFAULT_PRIVATE_KEYS[CHALLENGER]).address

    # --- the sequencer's lifecycle ---------------------------------------------------------------------

    async def restart_sequencer(self, fault: str | None = None) -> int:
        """Stop the sequencer, start it again with ``fault`` (``{next}`` in it becomes the index of the
        next batch it will cut); returns that index."""
        code = await self.sequencer.stop()
        if code not in (0, None):
            raise NodeFailed(f"the sequencer did not stop cleanly ({code}):\n{self.sequencer.log_tail()}")
        next_batch = await trio.to_thread.run_sync(self._next_batch)
        self.sequencer_fault = fault.replace("{next}", str(next_batch)) if fault else None
        self.sequencer.args = self._sequencer_args + (["--fault", self.sequencer_fault] if self.sequencer_fault else [])
        await self.sequencer.start(self.nursery, partial(self._answers, self.endpoints.api))
        return next_batch

    def _next_batch(self) -> int:
        """The next batch the stopped sequencer cuts: one after its last cut batch (read from its own
        store; the node is stopped, so the store is free, and no cut can race the restart)."""
        from optinode.services.journal import Journal
        from optinode.services.sequencer import identity
        from optinode.store.db import open_store

        store = open_store(self.workdir / "sequencer" / "db", identity=identity(self.chain.deployment), create=False)
        try:
            last = Journal(store).last_batch()  # (its checkpoint may not be written yet: the engine's restart re-derives it)
            return 1 if last is None else last.index + 1
        finally:
            store.close()

    async def stop(self) -> None:
        with trio.CancelScope(shield=True):
            for node in (getattr(self, "verifier", None), getattr(self, "sequencer", None)):
                if node is not None:
                    await node.stop()
            for trader in self.traders.values():
                await trader.api.aclose()
            await self.http.aclose()

    # --- talking to L1 and the nodes -------------------------------------------------------------------

    async def l1(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous web3 call in the L1 worker thread (one at a time)."""
        return await trio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self._l1_lock, abandon_on_cancel=True)

    async def rpc(self, url: str, method: str, *params: Any) -> Any:
        reply = (await self.http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})).json()
        if "error" in reply:
            raise ScenarioFailed(f"{method} answered {reply['error']}")
        return reply["result"]

    async def sequencer_status(self) -> dict[str, Any]:
        return await self.rpc(self.endpoints.api, "optinode_status")

    async def verifier_status(self) -> dict[str, Any]:
        return await self.rpc(self.endpoints.watch, "optinode_status")

    async def until(self, probe: Callable[[], Awaitable[T]], what: str, *, timeout: float = 90.0, every: float = 0.25) -> T:
        """Poll ``probe`` until it returns something truthy; ScenarioFailed after ``timeout`` seconds,
        NodeFailed as soon as a node that should run has exited. A node restarting (its port not
        answering yet) counts as "not yet"."""
        with trio.move_on_after(timeout):
            while True:
                for node in (self.sequencer, self.verifier):
                    node.check()
                try:
                    value = await probe()
                except (httpx.HTTPError, OSError):
                    value = None  # type: ignore[assignment]
                if value:
                    return value
                await trio.sleep(every)
        tails = "\n".join(f"--- {n.name} ({n.log_path})\n{n.log_tail(3000)}" for n in (self.sequencer, self.verifier))
        raise ScenarioFailed(f"waited {timeout:.0f} s for {what}\n{tails}")

    async def mine(self, blocks: int) -> int:
        await self.l1(self.chain.mine, blocks)
        return await self.block_number()

    async def travel(self, seconds: int) -> int:
        """Move L1 time forward (anvil's evm_increaseTime) and mine a block; returns the block."""
        await self.l1(self.chain.travel, seconds)
        return await self.block_number()

    async def logs(self, event: Any, from_block: int | None = None) -> list[Any]:
        """The ``event`` logs (web3 ``contract.events.X()``) from ``from_block`` (default: the deployment) to the head."""
        start = self.chain.deployment.deployment_block if from_block is None else from_block
        return await self.l1(lambda: list(event.get_logs(from_block=start, to_block="latest")))

    async def receipt(self, tx_hash: Any) -> Any:
        return await self.l1(self.chain.w3.eth.get_transaction_receipt, tx_hash)

    async def block_number(self) -> int:
        return await self.l1(lambda: self.chain.w3.eth.block_number)

    async def l1_time(self) -> int:
        return await self.l1(lambda: self.chain.w3.eth.get_block("latest")["timestamp"])

    # --- the bots' money -------------------------------------------------------------------------------

    async def fund(self, bots: list[Trader], amount: int) -> None:
        """Each bot deposits ``amount`` on L1; returns once the sequencer consumed the deposits (their
        L2 accounts exist), mining the blocks the confirmation depth asks for."""
        for bot in bots:
            receipt = await self.l1(bot.wallet.deposit, amount)
            self.story.step(f"{bot.name} deposits {usd(amount)} dUSD into the Bridge", block=receipt["blockNumber"],
                            tx=receipt["transactionHash"])
        depth = self.chain.config.node.batch.queue_confirmations
        block = await self.mine(depth)
        self.story.step(f"{depth} more blocks: the deposits are deep enough for the sequencer", block=block)
        count = await self.l1(lambda: self.chain.bridge.functions.depositCount().call())

        async def consumed() -> bool:
            return (await self.sequencer_status())["queues"]["depositsDone"] >= count

        await self.until(consumed, "the sequencer to consume the deposits")
        for bot in bots:
            bot.account_id = (await bot.api.call("optinode_getAccount", bot.address))["id"]
            self.story.step(f"{bot.name}'s L2 account {bot.account_id} holds {usd(await self.collateral(bot))}")

    async def collateral(self, bot: Trader) -> int:
        return (await bot.api.call("optinode_getAccount", bot.account_id))["collateral"]

    async def market(self, index: int = 0) -> dict[str, Any]:
        """The market as optinode_status shows it (price, step and tick sizes)."""
        return (await self.sequencer_status())["markets"][index]


def _port(url: str) -> str:
    return url.rstrip("/").rsplit(":", 1)[1]


@contextlib.asynccontextmanager
async def open_devnet(anvil: Anvil, workdir: Path, story: Story, source_config: Path) -> AsyncIterator[Devnet]:
    """Deploy and start the devnet on ``anvil``; stop both nodes (cleanly, shielded) on the way out."""
    async with trio.open_nursery() as nursery:
        net = Devnet(anvil, workdir, story, nursery, source_config)
        try:
            await net.setup()
            yield net
        finally:
            await net.stop()
