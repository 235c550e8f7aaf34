"""The genesis state from a plain-data description (the `[genesis]` part of a config file)."""

from __future__ import annotations

import msgspec

from .constants import ADDRESS_LEN, FRACTION_ONE, MAX_MARKETS, MAX_ORACLES, MAX_POSITION, MAX_U32, MAX_U64, MAX_U256
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
    # The market's own oracles (indices into Genesis.oracles), how many of them may lie or collude with
    # the sequencer (f), and the samples an update needs (docs/risk.md, the oracle rule).
    oracles: tuple[int, ...]
    oracle_faults: int
    quorum: int
    # Defence in depth: the largest move of the price per second since the last price, as a fraction
    # (FRACTION_ONE) of it; 0 = no limit. An update moving further is rejected (PRICE_MOVE_TOO_FAST).
    max_price_move: int


class Genesis(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    chain_id: int
    verifying_contract: Address  # the Rollup contract: the EIP-712 domain's verifyingContract
    oracles: tuple[Address, ...]  # every oracle key once; each market names its own among them
    max_sample_age: int  # seconds
    price_validity: int  # seconds
    funding_validity: int  # seconds
    fee_owner: Address  # the L1 address that collects the fees
    markets: tuple[GenesisMarket, ...]
    time: int


class InvalidGenesis(InvalidInput):
    """A genesis description breaks a rule of `check_genesis`."""


def check_oracle_rule(oracle_count: int, quorum: int, faults: int) -> None:
    """The oracle rule (docs/risk.md): with at most f lying oracles, the lower median of any k >= 2f + 1
    samples lies between two honest samples, whichever k samples the sequencer picks. Sorted, at most f
    of them are below the median's position ((k - 1) // 2 >= f) and at most f above it
    (k - 1 - (k - 1) // 2 >= f). A smaller quorum lets f liars plus the sequencer set the price."""
    if not 0 <= faults <= MAX_ORACLES:
        raise InvalidGenesis(f"oracle_faults must be between 0 and {MAX_ORACLES}")
    if quorum < 2 * faults + 1:
        raise InvalidGenesis(
            f"quorum {quorum} < 2 * oracle_faults + 1 = {2 * faults + 1}: {faults} lying oracle(s) and the sequencer could pick the median"
        )
    if not 1 <= quorum <= oracle_count <= MAX_ORACLES:
        raise InvalidGenesis(f"need 1 <= quorum <= number of oracles <= {MAX_ORACLES} (so N >= 2f + 1)")


def check_market_oracles(name: str, oracles: tuple[int, ...], oracle_count: int, quorum: int, faults: int) -> None:
    """A market's oracle set: distinct known oracles (one key must not count twice toward the quorum),
    and the oracle rule for the market's own f and quorum."""
    if not all(0 <= i < oracle_count for i in oracles) or len(set(oracles)) != len(oracles):
        raise InvalidGenesis(f"{name}: oracles must be distinct indices into the {oracle_count} genesis oracles")
    try:
        check_oracle_rule(len(oracles), quorum, faults)
    except InvalidGenesis as broken:
        raise InvalidGenesis(f"{name}: {broken}") from None


def check_price_move_liveness(name: str, max_price_move: int, price_validity: int) -> None:
    """The price-move limit (0 = off) must let a real crash through before the last price goes stale:
    with max_price_move * price_validity >= FRACTION_ONE, a fall of any size is allowed once
    price_validity has passed since the last price (the bound grows with the time elapsed), so a
    limit can delay a move but never freeze the market on an old price (docs/risk.md)."""
    if not 0 <= max_price_move <= MAX_U32:
        raise InvalidGenesis(f"{name}: max_price_move must be a u32 (FRACTION_ONE per second)")
    if max_price_move and max_price_move * price_validity < FRACTION_ONE:
        raise InvalidGenesis(
            f"{name}: max_price_move {max_price_move} * price_validity {price_validity} < {FRACTION_ONE}: "
            "a crash could not get through before the last price goes stale"
        )


def check_genesis(genesis: Genesis) -> None:
    if not 1 <= len(genesis.oracles) <= MAX_ORACLES:
        raise InvalidGenesis(f"need 1 to {MAX_ORACLES} oracles")
    for name in ("max_sample_age", "price_validity", "funding_validity"):
        if not 0 < getattr(genesis, name) <= MAX_U64:
            raise InvalidGenesis(f"{name} must be a positive u64 (seconds)")
    if not 1 <= len(genesis.markets) <= MAX_MARKETS:
        raise InvalidGenesis(f"need 1 to {MAX_MARKETS} markets")
    if (
        len(genesis.verifying_contract) != ADDRESS_LEN
        or len(genesis.fee_owner) != ADDRESS_LEN
        or any(len(o) != ADDRESS_LEN for o in genesis.oracles)
    ):
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
        check_market_oracles(m.name, m.oracles, len(genesis.oracles), m.quorum, m.oracle_faults)
        check_price_move_liveness(m.name, m.max_price_move, genesis.price_validity)


def compute_oracle_set(oracles: tuple[int, ...]) -> int:
    """The committed form of a market's oracles: a bitmask over the genesis oracle list."""
    return sum(1 << i for i in set(oracles))


def create_genesis_state(genesis: Genesis) -> State:
    check_genesis(genesis)
    config = Config(
        domain_separator=compute_domain_separator(genesis.chain_id, genesis.verifying_contract),
        oracles=tuple(genesis.oracles),
        fee_owner=genesis.fee_owner,
        max_sample_age=genesis.max_sample_age,
        price_validity=genesis.price_validity,
        funding_validity=genesis.funding_validity,
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
                oracle_set=compute_oracle_set(m.oracles),
                quorum=m.quorum,
                max_price_move=m.max_price_move,
            )
            for m in genesis.markets
        ),
    )
    return State(
        config=config,
        markets=[MarketState(price=m.price, price_time=genesis.time, sample_time=genesis.time, funding_index=0) for m in genesis.markets],
        time=genesis.time,
        funding_time=genesis.time,
        accounts={},
        slots={},
        dirty_accounts=set(),
        dirty_slots=set(),
    )
