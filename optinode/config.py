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
- ``oracles`` — oracle signer addresses (same format), distinct; ``quorum`` — samples needed;
- ``time`` — the genesis system time (unix seconds): the time of the genesis prices;
- ``[[genesis.markets]]`` — one table per market, in market-id order (market id = position). Every
  key is a field of ``GenesisMarket`` except ``base_decimals``: the base unit is 10**-base_decimals of
  the traded asset (9 for ETH in 1e-9 ETH). It is not part of the genesis state; tools use it to show
  sizes and prices in whole-asset units.

TOML integers are 64-bit signed, so no value here can exceed 2**63 - 1 (the spec's u64 fields are
therefore bounded a little tighter than the spec itself requires; no realistic value comes close).

New sections are added as new fields of :class:`Config`; an unknown top-level table is an error so
that a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

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

    def to_genesis_market(self) -> GenesisMarket:
        return GenesisMarket(**{field: getattr(self, field) for field in GenesisMarket.__struct_fields__})


class GenesisSection(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The ``[genesis]`` table."""

    chain_id: PositiveInt
    verifying_contract: Address
    oracles: Annotated[list[Address], msgspec.Meta(min_length=1, max_length=MAX_ORACLES)]
    quorum: PositiveInt
    time: NonNegativeInt
    markets: Annotated[list[MarketSection], msgspec.Meta(min_length=1, max_length=MAX_MARKETS)]

    def to_genesis(self) -> Genesis:
        return Genesis(
            chain_id=self.chain_id,
            verifying_contract=parse_address(self.verifying_contract),
            oracles=tuple(parse_address(o) for o in self.oracles),
            quorum=self.quorum,
            markets=tuple(m.to_genesis_market() for m in self.markets),
            time=self.time,
        )


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A whole config file."""

    genesis: GenesisSection


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
    for key, value in [("verifying_contract", section.verifying_contract)] + [
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
    if section.quorum > len(section.oracles):
        raise _fail(source, "genesis.quorum", f"{section.quorum} exceeds the number of oracles ({len(section.oracles)})")
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

