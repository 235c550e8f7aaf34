"""Node configuration: TOML files loaded into strict msgspec structs.

A config file is TOML (``configs/devnet.toml`` is the reference). Loading is strict: every key must
be known, every value must have the right type and range, and an error names the file and the key
path, e.g.::

    configs/devnet.toml: genesis.markets[1].step_size: Expected `int` >= 1, got 0

Sections
--------
``[genesis]`` maps onto :class:`optinode.spec.genesis.Genesis` (see :meth:`GenesisSection.to_genesis`):

- ``chain_id`` — the L1 chain id (EIP-712 domain ``chainId``);
- ``verifying_contract`` — the Rollup contract address (EIP-712 domain ``verifyingContract``),
  a 0x-prefixed 20-byte hex string; mixed case must be a valid EIP-55 checksum;
- ``oracles`` — every oracle signer address once (same format), distinct; each market names its own;
- ``max_sample_age``, ``price_validity``, ``funding_validity`` — seconds (docs/risk.md, time rules);
- ``fee_owner`` — the address whose accounts collect the trading fees (``CollectFees``);
- ``time`` — the genesis system time (unix seconds): the time of the genesis prices;
- ``[[genesis.markets]]`` — one table per market, in market-id order (market id = position). Every
  key is a field of ``GenesisMarket`` except ``base_decimals``: the base unit is 10**-base_decimals of
  the traded asset (9 for ETH in 1e-9 ETH). It is not part of the genesis state; tools use it to show
  sizes and prices in whole-asset units. Per market, the oracle rule (docs/risk.md): ``oracles`` —
  indices into ``genesis.oracles``, the market's signers; ``oracle_faults`` — f, how many of them may
  lie; ``quorum`` — samples an update needs (N >= quorum >= 2f + 1); ``max_price_move`` — the largest
  price move per second, parts per million of the last price (0 = no limit).

TOML integers are 64-bit signed, so no value here can exceed 2**63 - 1 (the spec's u64 fields are
therefore bounded a little tighter than the spec itself requires; no realistic value comes close).

``[node]`` (optional; every key has a default, see :class:`NodeSection`): what a running node needs
besides the genesis: ``data_dir``, the L1 endpoint (``l1_rpc`` or ``l1_rpc_env``; the CLI's
``--rpc`` overrides both, `resolve_l1_rpc`), a second endpoint to cross-check the first on
(``l1_check_rpc`` or ``l1_check_rpc_env``; ``--check-rpc``; `resolve_l1_check_rpc`), ``poll_interval``, ``confirmation_depth``,
``reorg_window``, ``log_block_range``, ``[node.batch]`` (batch limits: records, bytes, gas, age, and
the queue-deadline margin), ``[node.sender]`` (fee bumps and caps), ``[node.verifier]`` (the watchtower's port and alert
thresholds), ``log_format`` (``human`` or ``json``) and ``[node.keys]`` (one key source
per role: ``{ env = "VAR" }`` or ``{ keystore = "file.json", password_env = "VAR" }``, loaded by
`load_key` into a `Secret` whose repr shows only its address).

``[l1]`` (optional; `optinode l1 deploy` needs it): the contracts' parameters (:class:`L1Section`):
``token`` (absent: a DevToken is deployed, devnet chains only), ``proposers``, ``challenge_window``,
bonds, ``slash_reward_bps``, ``max_timestamp_drift``, the game's ``clock`` and ``arity``, the queue deadlines.

``[market_services]`` (optional, off unless ``enabled``; docs/market-services.md): the oracle feed
(``source = "walk"``, the devnet walk, or ``"http"``, the HTTP JSON price source with its
``[market_services.oracle.http]`` table, checked against the genesis and the collect timeout by
`check_http_source`), funding and the liquidator.

New sections are added as new fields of :class:`Config`; an unknown top-level table is an error so
that a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from optinode.spec.constants import FRACTION_ONE, MAX_MARKETS, MAX_ORACLES
from optinode.spec.crypto import keccak
from optinode.spec.errors import InvalidInput
from optinode.spec.genesis import Genesis, GenesisMarket, InvalidGenesis, check_genesis

_I64_MAX = 2**63 - 1

Address = Annotated[
    str,
    msgspec.Meta(pattern=r"^0x[0-9a-fA-F]{40}$", description="0x-prefixed 20-byte hex address"),
]
PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=_I64_MAX)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0, le=_I64_MAX)]
Fraction = Annotated[int, msgspec.Meta(ge=0, le=FRACTION_ONE, description="parts per million")]
MarketName = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]


class ConfigError(InvalidInput):
    """A config file that cannot be read, parsed or validated. The message is one line:
    ``<file>: <key path>: <problem>``."""


class MarketSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One ``[[genesis.markets]]`` table (units as in ``optinode.spec.constants``)."""

    name: MarketName
    base_decimals: Annotated[int, msgspec.Meta(ge=0, le=18)]  # base unit = 10**-base_decimals of the asset (display only)
    step_size: PositiveInt  # base units; order and fill sizes are multiples of it
    tick_size: PositiveInt  # PRICE_ONE units; limit prices are multiples of it
    initial_margin: Fraction
    maintenance_margin: Fraction
    liquidation_fee: Fraction
    max_funding_rate: NonNegativeInt  # per second, FUNDING_RATE_ONE (1e12) units
    max_position: PositiveInt  # base units
    price: PositiveInt  # genesis price, PRICE_ONE (1e8) collateral units per base unit
    oracles: Annotated[list[Annotated[int, msgspec.Meta(ge=0, lt=MAX_ORACLES)]], msgspec.Meta(min_length=1, max_length=MAX_ORACLES)]
    oracle_faults: NonNegativeInt  # f: how many of the market's oracles may lie or collude with the sequencer
    quorum: PositiveInt  # samples an update needs: <= len(oracles), >= 2 * oracle_faults + 1
    max_price_move: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]  # per second, FRACTION_ONE of the last price; 0 = off

    def to_genesis_market(self) -> GenesisMarket:
        fields = {field: getattr(self, field) for field in GenesisMarket.__struct_fields__}
        return GenesisMarket(**{**fields, "oracles": tuple(self.oracles)})


class GenesisSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The ``[genesis]`` table."""

    chain_id: PositiveInt
    verifying_contract: Address
    oracles: Annotated[list[Address], msgspec.Meta(min_length=1, max_length=MAX_ORACLES)]
    max_sample_age: PositiveInt  # seconds
    price_validity: PositiveInt  # seconds
    funding_validity: PositiveInt  # seconds
    fee_owner: Address
    time: NonNegativeInt
    markets: Annotated[list[MarketSection], msgspec.Meta(min_length=1, max_length=MAX_MARKETS)]

    def to_genesis(self) -> Genesis:
        return Genesis(
            chain_id=self.chain_id,
            verifying_contract=parse_address(self.verifying_contract),
            oracles=tuple(parse_address(o) for o in self.oracles),
            max_sample_age=self.max_sample_age,
            price_validity=self.price_validity,
            funding_validity=self.funding_validity,
            fee_owner=parse_address(self.fee_owner),
            markets=tuple(m.to_genesis_market() for m in self.markets),
            time=self.time,
        )



# --- [node]: the services around the spec ---------------------------------------------------------

# The L1 limits a batch transaction must stay under: EIP-7825 caps one transaction's gas at 2**24,
# and clients (geth's txpool) refuse transactions larger than 128 KiB. The batch's own bytes leave
# room for the call's ABI envelope and signature.
L1_TX_GAS_CAP = 2**24
L1_TX_SIZE_CAP = 128 * 1024
BATCH_BYTES_CAP = L1_TX_SIZE_CAP - 4096

Seconds = Annotated[float, msgspec.Meta(gt=0, le=86_400, description="seconds")]
EnvName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=128, description="environment variable name")]


class KeySource(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where one L1 key comes from: ``{ env = "VAR" }`` (0x-hex private key in the environment) or
    ``{ keystore = "path.json", password_env = "VAR" }`` (an eth-account / geth V3 keystore file).
    The key itself never appears in a config file, a log line or an error message."""

    env: EnvName | None = None
    keystore: str | None = None
    password_env: EnvName | None = None


class KeysSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[node.keys]``: one source per role that sends L1 transactions (each key gets its own
    sender: nonces are per key)."""

    proposer: KeySource | None = None  # the sequencer's: appends batches with their bond, finalizes, defends
    challenger: KeySource | None = None  # a verifier's: opens and plays games
    deployer: KeySource | None = None  # `optinode l1 deploy`


class BatchSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[node.batch]``: when the batcher cuts a batch (whichever limit is reached first)."""

    max_records: Annotated[int, msgspec.Meta(ge=1, le=1 << 16)] = 4096
    max_bytes: Annotated[int, msgspec.Meta(ge=1024, le=BATCH_BYTES_CAP)] = 120_000
    max_gas: Annotated[int, msgspec.Meta(ge=200_000, le=L1_TX_GAS_CAP)] = 15_000_000
    max_age: Seconds = 2.0  # from the batch's first command
    # consume each L1 queue entry (deposit, forced request) at least this long before its deadline
    queue_margin: Seconds = 60.0
    # cut the pending batch once the L1 head is this close to l1.max_timestamp_drift past the batch's
    # declared L1 time, so that it still lands within the drift (docs/sequencer.md)
    drift_margin: Seconds = 60.0
    # consume a queue entry only once its block is this deep: a reorg shallower than this can never
    # remove an entry the log already consumed (Arbitrum's sequencer waits for its delayed inbox too)
    queue_confirmations: Annotated[int, msgspec.Meta(ge=0, le=1024)] = 12


class SenderSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[node.sender]``: how L1 transactions are priced, replaced and awaited."""

    resubmit_after: Seconds = 24.0  # not mined this long after sending: replace it with bumped fees
    fee_bump_percent: Annotated[int, msgspec.Meta(ge=10, le=300)] = 15  # clients need >= 10% on both fees
    max_fee_per_gas_gwei: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500  # never bid above this
    priority_fee_gwei: Annotated[float, msgspec.Meta(ge=0, le=1_000)] = 1.0  # tip when eth_maxPriorityFeePerGas is unavailable


LogFormat = Literal["human", "json"]
Port = Annotated[int, msgspec.Meta(ge=0, le=65_535)]  # 0: any free port (it is logged)


class WatchSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[node.verifier]``: the watchtower surface (docs/verifier.md): its JSON-RPC port and alert thresholds."""

    api_port: Port | None = None  # serve optinode_status and GET /metrics on 127.0.0.1:PORT (`--api-port` overrides)
    clock_warning: Annotated[int, msgspec.Meta(ge=1, le=30 * 86_400)] | None = None  # seconds left on our game clock; default clock / 3
    deadline_warning: Annotated[int, msgspec.Meta(ge=1, le=365 * 86_400)] | None = None  # seconds before a queue deadline; default deadline / 3
    # share of an invalid batch's challenge window after which no game on it raises invalid_batch_unchallenged
    unchallenged_share: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.25
    read_ahead: bool = True  # pipelined catch-up: recover batch n + 1's signatures in worker processes while batch n replays


class NodeSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[node]``: what a running node (sequencer or verifier) needs besides the genesis."""

    data_dir: Annotated[str, msgspec.Meta(min_length=1)] = "data"  # relative paths: against the working directory
    l1_rpc: Annotated[str, msgspec.Meta(pattern=r"^https?://")] | None = None  # `--rpc` overrides it
    l1_rpc_env: EnvName | None = None  # or read the URL from this variable (it may embed an API key)
    # a second L1 endpoint (another provider) the follower cross-checks the head and the followed logs on:
    # what a watchtower should set (docs/verifier.md, "A hostile L1 endpoint"); `--check-rpc` overrides it
    l1_check_rpc: Annotated[str, msgspec.Meta(pattern=r"^https?://")] | None = None
    l1_check_rpc_env: EnvName | None = None  # or read that URL from this variable
    poll_interval: Seconds = 1.0  # how often the follower asks for new L1 blocks
    confirmation_depth: Annotated[int, msgspec.Meta(ge=0, le=1024)] = 0  # blocks behind the head to act at
    reorg_window: Annotated[int, msgspec.Meta(ge=2, le=100_000)] = 256  # recent block hashes kept for reorg checks
    log_block_range: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 2000  # blocks per eth_getLogs
    batch: BatchSection = msgspec.field(default_factory=BatchSection)
    sender: SenderSection = msgspec.field(default_factory=SenderSection)
    keys: KeysSection = msgspec.field(default_factory=KeysSection)
    verifier: WatchSection = msgspec.field(default_factory=WatchSection)
    log_format: LogFormat = "human"  # "json": one JSON object per line (docs/verifier.md, "Logs"); `--log-format` overrides


class L1Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[l1]``: the parameters `optinode l1 deploy` gives the contracts (docs/contracts.md)."""

    token: Address | None = None  # the collateral ERC-20 (6 decimals); absent: deploy DevToken (devnet chains only)
    proposers: Annotated[list[Address], msgspec.Meta(min_length=1, max_length=16)]
    challenge_window: Annotated[int, msgspec.Meta(ge=1, le=30 * 86_400)] = 3600  # seconds
    proposer_bond: Annotated[int, msgspec.Meta(ge=1, le=_I64_MAX)] = 10**18  # wei per batch
    challenger_bond: Annotated[int, msgspec.Meta(ge=1, le=_I64_MAX)] = 10**17  # wei per game
    slash_reward_bps: Annotated[int, msgspec.Meta(ge=0, le=9_999)] = 5000  # of a slashed bond, to the challenger
    # seconds a batch's declared L1 timestamp may lag its append block (Rollup.maxTimestampDrift; the
    # OP Stack's sequencer drift): at most the price and funding validity windows (docs/contracts.md)
    max_timestamp_drift: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300
    clock: Annotated[int, msgspec.Meta(ge=1, le=30 * 86_400)] = 1800  # each side's game time budget, seconds
    arity: Annotated[int, msgspec.Meta(ge=2, le=256)] = 16  # k-ary dissection
    forced_deadline: Annotated[int, msgspec.Meta(ge=1, le=365 * 86_400)] = 86_400  # seconds to serve a forced request
    deposit_deadline: Annotated[int, msgspec.Meta(ge=1, le=365 * 86_400)] = 86_400  # seconds to consume a deposit
    # the time a deadline keeps beyond window + 2 clocks for the batch, timeout and finalize to land
    inclusion_margin: Annotated[int, msgspec.Meta(ge=1, le=30 * 86_400)] = 3600
    claim_period: Annotated[int, msgspec.Meta(ge=1, le=365 * 86_400)] = 86_400  # escape claims after a freeze


# --- [market_services]: the sequencer's own oracle feed, funding and liquidator (docs/market-services.md)

Ppm = Annotated[int, msgspec.Meta(ge=0, le=FRACTION_ONE, description="parts per million")]
SignedPpm = Annotated[int, msgspec.Meta(ge=-FRACTION_ONE, le=FRACTION_ONE, description="parts per million")]
KeySeed = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class SignerSource(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A key that signs L2 messages (oracle samples, liquidation orders): ``{ env = "VAR" }``,
    ``{ keystore = "file.json", password_env = "VAR" }``, or on a devnet only ``{ seed = "text" }``
    (the public test keys of configs/devnet.toml: keccak256 of the text)."""

    env: EnvName | None = None
    keystore: str | None = None
    password_env: EnvName | None = None
    seed: KeySeed | None = None


class CrashSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[[market_services.oracle.crash]]``: a scripted fall of one market's devnet walk."""

    market: Annotated[int, msgspec.Meta(ge=0, lt=MAX_MARKETS)]
    after_updates: NonNegativeInt  # the walk's step (per market) at which the fall starts
    drop_ppm: Annotated[int, msgspec.Meta(ge=1, lt=FRACTION_ONE)]  # the fundamental price falls by this fraction


JsonPath = Annotated[str, msgspec.Meta(max_length=256, pattern=r"^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?$",
                                       description="dotted keys and list indices, e.g. data.price or result.0.last")]


class HttpMarketSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[[market_services.oracle.http.markets]]``: where one market's price is fetched (services/http_price.py)."""

    market: Annotated[int, msgspec.Meta(ge=0, lt=MAX_MARKETS)]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$", max_length=2048)]
    price_path: JsonPath = "price"  # the decimal quote-currency price per whole asset
    time_path: JsonPath | None = None  # optional: when the price was observed
    time_unit: Literal["s", "ms"] = "s"
    base_decimals: Annotated[int, msgspec.Meta(ge=0, le=18)]  # must equal genesis.markets[market].base_decimals
    oracles: list[Annotated[int, msgspec.Meta(ge=0, lt=MAX_ORACLES)]] | None = None  # signers that sign it (default: all of the market's)


class HttpSourceSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[market_services.oracle.http]``: the HTTP JSON price source (``source = "http"``)."""

    timeout: Seconds = 1.0  # one whole attempt: connect, headers and body
    retries: Annotated[int, msgspec.Meta(ge=0, le=5)] = 2  # after the first attempt (transport errors, timeouts, 5xx, 429)
    backoff: Seconds = 0.1  # before the first retry, doubling
    max_staleness: Seconds = 30.0  # a document's own time may be this far from the wall clock; alert after this long without a price
    max_body_bytes: Annotated[int, msgspec.Meta(ge=64, le=1 << 20)] = 65_536
    markets: Annotated[list[HttpMarketSection], msgspec.Meta(min_length=1, max_length=MAX_MARKETS)]

    def worst_case(self) -> float:
        """The longest one fetch can take: every attempt timing out, every backoff waited."""
        return (self.retries + 1) * self.timeout + sum(self.backoff * 2**i for i in range(self.retries))


class OracleFeedSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[market_services.oracle]``: the oracles this node signs for and where their prices come from:
    the devnet price walk (``source = "walk"``) or an HTTP JSON source (``source = "http"``)."""

    signers: Annotated[list[SignerSource], msgspec.Meta(min_length=1, max_length=MAX_ORACLES)]
    source: Literal["walk", "http"] = "walk"
    http: HttpSourceSection | None = None
    interval: Seconds = 1.0  # between updates of each market
    collect_timeout: Seconds = 2.0  # waiting for the oracles' samples
    submit_timeout: Seconds = 10.0  # waiting for the engine's durable acknowledgement
    seed: NonNegativeInt = 0  # the walk is a function of the seed and the update times
    volatility_ppm: Ppm = 500  # stdev of the relative move per sqrt(second)
    spread_ppm: Ppm = 200  # how far apart the oracles' samples are (each signs its own)
    max_move_ppm_per_s: Ppm = 0  # 0: no bound of its own (a bound the spec sets applies as well)
    crash: list[CrashSection] = []


class FundingSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[market_services.funding]``: ticks from the premium of the book's mid over the oracle."""

    interval: Seconds = 60.0  # between funding ticks
    sample_interval: Seconds = 5.0  # between premium samples
    submit_timeout: Seconds = 10.0
    period: Annotated[int, msgspec.Meta(ge=1, le=30 * 86_400)] = 28_800  # seconds the premium's rate applies to (8 h)
    interest_ppm: SignedPpm = 0  # interest per period (Hyperliquid/BitMEX-style), added within the band
    interest_band_ppm: Ppm = 500  # |interest - premium| is clamped to this per period


class LiquidatorSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[market_services.liquidator]``: the account that takes liquidated positions over."""

    key: SignerSource  # the liquidator account's owner (its lowest account id is used)
    interval: Seconds = 1.0  # re-check at least this often, even without a price or funding change
    submit_timeout: Seconds = 10.0
    order_expiry: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 300  # seconds after the batch time
    max_actions: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 256  # transactions per round (bounded work)
    rebase_ppm: Annotated[int, msgspec.Meta(ge=1, le=FRACTION_ONE)] = 50_000  # re-anchor the index after a 5% move


class MarketServicesSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[market_services]``: off unless ``enabled``; each service runs when its table is present."""

    enabled: bool = False
    oracle: OracleFeedSection | None = None
    funding: FundingSection | None = None
    liquidator: LiquidatorSection | None = None


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A whole config file."""

    genesis: GenesisSection
    node: NodeSection = msgspec.field(default_factory=NodeSection)
    l1: L1Section | None = None  # needed by `optinode l1 deploy` only
    market_services: MarketServicesSection = msgspec.field(default_factory=MarketServicesSection)


# --- addresses -------------------------------------------------------------------------------------


def to_checksum_address(address: bytes) -> str:
    """EIP-55 mixed-case hex of a 20-byte address."""
    hex_lower = address.hex()
    digest = keccak(hex_lower.encode()).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(hex_lower, digest))


def is_checksum_valid(text: str) -> bool:
    """All-lowercase and all-uppercase hex carry no checksum; mixed case must be EIP-55."""
    body = text[2:]
    if body == body.lower() or body == body.upper():
        return True
    return to_checksum_address(bytes.fromhex(body)) == text


def parse_address(text: str) -> bytes:
    return bytes.fromhex(text[2:])


# --- loading ---------------------------------------------------------------------------------------

_AT_PATH = re.compile(r"^(?P<msg>.*?) - at `\$(?P<path>.*)`$")


def _format_validation_error(error: msgspec.ValidationError) -> tuple[str, str]:
    """(key path, problem) from msgspec's ``"<problem> - at `$.a.b[0].c`"``."""
    text = str(error)
    match = _AT_PATH.match(text)
    path, problem = (match["path"].lstrip("."), match["msg"]) if match else ("", text)
    problem = problem.replace("Object missing required field", "missing required key")
    problem = problem.replace("Object contains unknown field", "unknown key")
    return path, problem


def _fail(source: str, path: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {path}: {problem}" if path else f"{source}: {problem}")


def check_genesis_section(section: GenesisSection, source: str) -> None:
    """Rules that span several keys (the spec's `check_genesis` runs afterwards as well)."""
    for key, value in [("verifying_contract", section.verifying_contract), ("fee_owner", section.fee_owner)] + [
        (f"oracles[{i}]", o) for i, o in enumerate(section.oracles)
    ]:
        if not is_checksum_valid(value):
            raise _fail(source, f"genesis.{key}", f"bad EIP-55 checksum in {value} (expected {to_checksum_address(parse_address(value))})")
    seen: dict[bytes, int] = {}
    for i, oracle in enumerate(section.oracles):
        address = parse_address(oracle)
        if address in seen:
            raise _fail(source, f"genesis.oracles[{i}]", f"duplicate of oracles[{seen[address]}]: one key would count twice towards the quorum")
        seen[address] = i
    names: dict[str, int] = {}
    for i, market in enumerate(section.markets):
        where = f"genesis.markets[{i}]"
        if market.name in names:
            raise _fail(source, f"{where}.name", f"duplicate market name {market.name!r} (also markets[{names[market.name]}])")
        names[market.name] = i
        if not 0 < market.maintenance_margin <= market.initial_margin:
            raise _fail(source, where, "need 0 < maintenance_margin <= initial_margin")
        if market.liquidation_fee > market.maintenance_margin:
            raise _fail(source, f"{where}.liquidation_fee", "must not exceed maintenance_margin")
        for k, index in enumerate(market.oracles):
            if index >= len(section.oracles):
                raise _fail(source, f"{where}.oracles[{k}]", f"{index} is not an index of genesis.oracles ({len(section.oracles)} oracles)")
            if index in market.oracles[:k]:
                raise _fail(source, f"{where}.oracles[{k}]", f"oracle {index} listed twice: one key would count twice towards the quorum")
        if market.quorum > len(market.oracles):
            raise _fail(source, f"{where}.quorum", f"{market.quorum} exceeds the market's number of oracles ({len(market.oracles)})")
        if market.quorum < 2 * market.oracle_faults + 1:
            raise _fail(
                source,
                f"{where}.quorum",
                f"{market.quorum} < 2 * oracle_faults + 1 = {2 * market.oracle_faults + 1}: the sequencer and "
                f"{market.oracle_faults} lying oracle(s) could choose the median",
            )
        if market.max_price_move and market.max_price_move * section.price_validity < FRACTION_ONE:
            raise _fail(
                source,
                f"{where}.max_price_move",
                f"{market.max_price_move} * price_validity {section.price_validity} < {FRACTION_ONE}: a crash could "
                "not get through before the last price goes stale (0 turns the limit off)",
            )


def check_l1_section(l1: L1Section | None, node: NodeSection, source: str, genesis: GenesisSection | None = None) -> None:
    if l1 is None:
        return
    # A proposer may hold a batch's L1 time back by up to the drift: a price or funding index then
    # reads at most validity + drift old in real time, at most twice the window the genesis chose.
    if genesis is not None and l1.max_timestamp_drift > min(genesis.price_validity, genesis.funding_validity):
        raise _fail(source, "l1.max_timestamp_drift", "must not exceed genesis.price_validity and genesis.funding_validity")
    if node.batch.max_age + node.batch.drift_margin >= l1.max_timestamp_drift:
        raise _fail(source, "node.batch.drift_margin", "node.batch.max_age + drift_margin must be below l1.max_timestamp_drift")
    for key, value in ([("token", l1.token)] if l1.token else []) + [(f"proposers[{i}]", p) for i, p in enumerate(l1.proposers)]:
        if not is_checksum_valid(value):
            raise _fail(source, f"l1.{key}", f"bad EIP-55 checksum in {value} (expected {to_checksum_address(parse_address(value))})")
    if len({parse_address(p) for p in l1.proposers}) != len(l1.proposers):
        raise _fail(source, "l1.proposers", "duplicate proposer")
    # DisputeGame's constructor rule: an entry consumed in time must reach finality before its deadline
    # even when its batch is challenged at the end of the window and the game runs both clocks out,
    # with the inclusion margin left for the batch, the timeout and the finalize to be included.
    worst_finality = l1.challenge_window + 2 * l1.clock + l1.inclusion_margin
    for key in ("forced_deadline", "deposit_deadline"):
        if getattr(l1, key) < worst_finality:
            raise _fail(
                source,
                f"l1.{key}",
                f"must be at least challenge_window + 2 * clock + inclusion_margin = {worst_finality} s"
                " (a challenged batch must finalize first)",
            )
    if node.batch.queue_margin >= min(l1.forced_deadline, l1.deposit_deadline):
        raise _fail(source, "node.batch.queue_margin", "must be shorter than l1.forced_deadline and l1.deposit_deadline")


def check_key_source(key: KeySource | SignerSource, where: str, source: str) -> None:
    seed = getattr(key, "seed", None)
    if [key.env is not None, key.keystore is not None, seed is not None].count(True) != 1:
        raise _fail(source, where, "give exactly one of env or keystore" + (" or seed" if isinstance(key, SignerSource) else ""))
    if key.keystore is not None and key.password_env is None:
        raise _fail(source, where, "a keystore needs password_env (the variable holding its password)")
    if key.keystore is None and key.password_env is not None:
        raise _fail(source, where, "password_env belongs to a keystore source")


def check_node_section(node: NodeSection, source: str) -> None:
    if node.l1_rpc is not None and node.l1_rpc_env is not None:
        raise _fail(source, "node", "give l1_rpc or l1_rpc_env, not both")
    for role in KeysSection.__struct_fields__:
        key = getattr(node.keys, role)
        if key is not None:
            check_key_source(key, f"node.keys.{role}", source)


def check_market_services_section(section: MarketServicesSection, genesis: GenesisSection, source: str) -> None:
    """Key sources well formed; the crash scenarios name markets of the genesis. (Whether each oracle
    signer is a genesis oracle is checked when the keys are loaded: an env key is not known before.)"""
    if section.oracle is not None:
        for i, signer in enumerate(section.oracle.signers):
            check_key_source(signer, f"market_services.oracle.signers[{i}]", source)
        for i, crash in enumerate(section.oracle.crash):
            if crash.market >= len(genesis.markets):
                raise _fail(source, f"market_services.oracle.crash[{i}].market", f"no market {crash.market} in the genesis")
        check_http_source(section.oracle, genesis, source)
    if section.liquidator is not None:
        check_key_source(section.liquidator.key, "market_services.liquidator.key", source)


def check_http_source(oracle: OracleFeedSection, genesis: GenesisSection, source: str) -> None:
    """``source = "http"`` needs its table; each market once, of the genesis, in its own units and with
    its own oracles; the worst case of one fetch (every attempt timing out) within collect_timeout."""
    where = "market_services.oracle"
    if oracle.source == "http" and oracle.http is None:
        raise _fail(source, f"{where}.http", 'source = "http" needs a [market_services.oracle.http] table')
    if oracle.source != "http" and oracle.http is not None:
        raise _fail(source, f"{where}.source", 'an [market_services.oracle.http] table needs source = "http"')
    if oracle.http is None:
        return
    http = oracle.http
    worst = http.worst_case()
    if worst >= oracle.collect_timeout:
        raise _fail(source, f"{where}.http", f"(retries + 1) * timeout + backoffs = {worst:g} s must be below "
                    f"collect_timeout {oracle.collect_timeout:g} s (the feed gives up on a collect after it)")
    seen: set[int] = set()
    for i, entry in enumerate(http.markets):
        key = f"{where}.http.markets[{i}]"
        if entry.market >= len(genesis.markets):
            raise _fail(source, f"{key}.market", f"no market {entry.market} in the genesis")
        if entry.market in seen:
            raise _fail(source, f"{key}.market", f"market {entry.market} listed twice")
        seen.add(entry.market)
        try:
            parts = urlsplit(entry.url)
            parts.port  # noqa: B018 (parsing it is the check)
        except ValueError as error:
            raise _fail(source, f"{key}.url", f"not a valid URL: {error}") from None
        if not parts.hostname:
            raise _fail(source, f"{key}.url", "names no host")
        market = genesis.markets[entry.market]
        if entry.base_decimals != market.base_decimals:
            raise _fail(source, f"{key}.base_decimals", f"{entry.base_decimals} differs from genesis.markets[{entry.market}]"
                        f".base_decimals {market.base_decimals} (the JSON price is per whole asset)")
        for k, index in enumerate(entry.oracles or ()):
            if index not in market.oracles:
                raise _fail(source, f"{key}.oracles[{k}]", f"{index} is not an oracle of market {entry.market}")


def parse_config(text: str | bytes, source: str = "<config>") -> Config:
    """Parse and validate TOML text; `source` names it in error messages."""
    try:
        config = msgspec.toml.decode(text, type=Config, strict=True)
    except msgspec.ValidationError as error:
        path, problem = _format_validation_error(error)
        raise _fail(source, path, problem) from None
    except msgspec.DecodeError as error:
        raise _fail(source, "", f"invalid TOML: {error}") from None
    check_genesis_section(config.genesis, source)
    check_node_section(config.node, source)
    check_market_services_section(config.market_services, config.genesis, source)
    check_l1_section(config.l1, config.node, source, config.genesis)
    try:
        check_genesis(config.genesis.to_genesis())
    except InvalidGenesis as error:
        raise _fail(source, "genesis", str(error)) from None
    return config


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a config file. Raises ConfigError with a one-line message."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    return parse_config(text, str(path))


def load_genesis(path: str | Path) -> Genesis:
    """The spec Genesis of a config file's ``[genesis]`` table."""
    return load_config(path).genesis.to_genesis()



# --- resolving [node] values from the environment ----------------------------------------------------


def resolve_l1_rpc(node: NodeSection, override: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The L1 JSON-RPC URL: ``override`` (the CLI's ``--rpc``), else ``l1_rpc``, else ``$l1_rpc_env``."""
    url = _resolve_url("l1_rpc", override, node.l1_rpc, node.l1_rpc_env, environ, "the L1 RPC URL")
    if url is None:
        raise ConfigError("node: no L1 RPC URL: pass --rpc, or set node.l1_rpc or node.l1_rpc_env")
    return url


def resolve_l1_check_rpc(node: NodeSection, override: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The second L1 endpoint (None: none): ``override`` (the CLI's ``--check-rpc``), else
    ``l1_check_rpc``, else ``$l1_check_rpc_env``."""
    return _resolve_url("l1_check_rpc", override, node.l1_check_rpc, node.l1_check_rpc_env, environ, "the check endpoint's URL")


def _resolve_url(key: str, override: str | None, literal: str | None, env: str | None, environ: Mapping[str, str] | None,
                 what: str) -> str | None:
    """A URL given on the command line, as ``node.KEY``, or in the variable ``node.KEY_env`` names."""
    environ = os.environ if environ is None else environ
    if override:
        return override
    if literal:
        return literal
    if env:
        url = environ.get(env, "")
        if not url:
            raise ConfigError(f"node.{key}_env: environment variable {env} is not set (it should hold {what})")
        return url
    return None


class Secret:
    """A private key that does not print: ``repr``/``str`` show only its address."""

    __slots__ = ("_key", "address")

    def __init__(self, key: bytes) -> None:
        from eth_account import Account

        self._key = key
        self.address: str = Account.from_key(key).address

    def account(self):  # type: ignore[no-untyped-def]
        """The eth-account LocalAccount (signs transactions and typed data)."""
        from eth_account import Account

        return Account.from_key(self._key)

    def signing_key(self):  # type: ignore[no-untyped-def]
        """The key as `optinode.wallet.Key` (signs EIP-712 digests: orders, oracle samples)."""
        from optinode.wallet import Key

        return Key(self._key)

    def __repr__(self) -> str:
        return f"Secret(address={self.address}, key=<hidden>)"

    __str__ = __repr__

    def __reduce__(self):  # type: ignore[no-untyped-def]
        raise TypeError("a Secret is not serialized")


_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def load_key(node: NodeSection, role: str, *, environ: Mapping[str, str] | None = None, base_dir: Path | None = None) -> Secret:
    """The key of ``role`` (a field of ``[node.keys]``). Errors name the role and the source, never
    the key or the password."""
    where = f"node.keys.{role}"
    source = getattr(node.keys, role, None)
    if source is None:
        raise ConfigError(f"{where}: no key source configured (add {{ env = \"VAR\" }} or {{ keystore = \"file\", password_env = \"VAR\" }})")
    return load_key_source(source, where, environ=environ, base_dir=base_dir)


def load_signer(source: SignerSource, where: str, *, devnet: bool, environ: Mapping[str, str] | None = None,
                base_dir: Path | None = None) -> Secret:
    """A market service's signing key. A ``seed`` key is public (anyone can recompute it), so it is
    refused unless the chain is a devnet."""
    if source.seed is not None:
        if not devnet:
            raise ConfigError(f"{where}: a seed key is public and is refused unless the chain is a devnet")
        return Secret(keccak(source.seed.encode()))
    return load_key_source(source, where, environ=environ, base_dir=base_dir)


def load_key_source(source: KeySource | SignerSource, where: str, *, environ: Mapping[str, str] | None = None,
                    base_dir: Path | None = None) -> Secret:
    environ = os.environ if environ is None else environ
    if source.env is not None:
        text = environ.get(source.env, "").strip()
        if not text:
            raise ConfigError(f"{where}: environment variable {source.env} is not set")
        if not _HEX_KEY.match(text):
            raise ConfigError(f"{where}: {source.env} does not hold a 32-byte hex private key")
        key = bytes.fromhex(text.removeprefix("0x"))
    else:
        path = Path(source.keystore)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        password = environ.get(source.password_env or "")
        if password is None:
            raise ConfigError(f"{where}: environment variable {source.password_env} (the keystore password) is not set")
        try:
            keyfile = msgspec.json.decode(path.read_bytes())
        except OSError as error:
            raise ConfigError(f"{where}: cannot read keystore {path}: {error.strerror or error}") from None
        except msgspec.DecodeError:
            raise ConfigError(f"{where}: {path} is not a JSON keystore file") from None
        from eth_account import Account

        try:
            key = bytes(Account.decrypt(keyfile, password))
        except ValueError:
            raise ConfigError(f"{where}: cannot decrypt {path}: wrong password or damaged keystore") from None
        except (KeyError, TypeError):
            raise ConfigError(f"{where}: {path} is not an eth-account (V3) keystore") from None
    if not 0 < int.from_bytes(key, "big") < _SECP256K1_N:
        raise ConfigError(f"{where}: the key is not a valid secp256k1 private key")
    return Secret(key)


_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
