"""The genesis state from a plain-data description (the `[genesis]` part of a config file)."""

from __future__ import annotations

import msgspec

from .constants import ADDRESS_LEN, FRACTION_ONE, MAX_MARKETS, MAX_ORACLES, MAX_POSITION, MAX_U64, MAX_U256
from .eip712 import compute_domain_separator
from .errors import InvalidInput
from .fields import Address
from .state import Config, MarketConfig, MarketState, State


class GenesisMarket(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    step_size: int
    tick_size: int
    initial_margin: int
    maintenance_margin: int
    liquidation_fee: int
    max_funding_rate: int
    max_position: int
    price: int


class Genesis(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    chain_id: int
    verifying_contract: Address  # the Rollup contract: the EIP-712 domain's verifyingContract
    oracles: tuple[Address, ...]
    quorum: int
    markets: tuple[GenesisMarket, ...]
    time: int


class InvalidGenesis(InvalidInput):
    """A genesis description breaks a rule of `check_genesis`."""


def check_genesis(genesis: Genesis) -> None:
    if not 1 <= genesis.quorum <= len(genesis.oracles) <= MAX_ORACLES:
        raise InvalidGenesis(f"need 1 <= quorum <= number of oracles <= {MAX_ORACLES}")
    if not 1 <= len(genesis.markets) <= MAX_MARKETS:
        raise InvalidGenesis(f"need 1 to {MAX_MARKETS} markets")
    if len(genesis.verifying_contract) != ADDRESS_LEN or any(len(o) != ADDRESS_LEN for o in genesis.oracles):
        raise InvalidGenesis(f"addresses are {ADDRESS_LEN} bytes")
    if len(set(genesis.oracles)) != len(genesis.oracles):
        raise InvalidGenesis("oracle addresses must be distinct (one key must not count twice toward the quorum)")
    if not (0 <= genesis.chain_id <= MAX_U256 and 0 <= genesis.time <= MAX_U64):
        raise InvalidGenesis("chain_id must be a uint256 and time a uint64")
    for m in genesis.markets:
        if not (0 < m.step_size <= MAX_U64 and 0 < m.tick_size <= MAX_U64 and 0 < m.price <= MAX_U64):
            raise InvalidGenesis(f"{m.name}: step, tick and price must be positive u64")
        if not 0 < m.maintenance_margin <= m.initial_margin <= FRACTION_ONE:
            raise InvalidGenesis(f"{m.name}: need 0 < maintenance <= initial <= 1e6")
        if not (0 <= m.liquidation_fee <= m.maintenance_margin and 0 <= m.max_funding_rate <= MAX_U64 and 0 < m.max_position <= MAX_POSITION):
            raise InvalidGenesis(f"{m.name}: liquidation fee, funding rate or position limit out of range")


def create_genesis_state(genesis: Genesis) -> State:
    check_genesis(genesis)
    config = Config(
        domain_separator=compute_domain_separator(genesis.chain_id, genesis.verifying_contract),
        oracles=tuple(genesis.oracles),
        quorum=genesis.quorum,
        markets=tuple(
            MarketConfig(
                name=m.name,
                step_size=m.step_size,
                tick_size=m.tick_size,
                initial_margin=m.initial_margin,
                maintenance_margin=m.maintenance_margin,
                liquidation_fee=m.liquidation_fee,
                max_funding_rate=m.max_funding_rate,
                max_position=m.max_position,
            )
            for m in genesis.markets
        ),
    )
    return State(
        config=config,
        markets=[MarketState(price=m.price, price_time=genesis.time, funding_index=0) for m in genesis.markets],
        time=genesis.time,
        funding_time=genesis.time,
        accounts={},
        slots={},
        dirty_accounts=set(),
        dirty_slots=set(),
    )
