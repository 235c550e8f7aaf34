"""Is a state from outside whole and encodable?

`state_transition` trusts its state: the sequencer and the verifier only ever hold states they
built from genesis with the spec itself. A state that comes from outside — a file given to
`optinode spec apply`, a checkpoint read back from disk, a snapshot from a peer — must first pass
`check_state`, which raises `InvalidState` (an `InvalidInput`) naming the first broken rule. A state
that passes can be committed to and run through `state_transition` without any exception other than
an `InvalidInput` (tests/spec/test_state_check.py checks both directions).

A witness-backed state (one-step proof) holds only some leaves on purpose and is not checked here:
`witness.execute_witness` authenticates it against a root instead.
"""

from __future__ import annotations

from .commitment import compute_state_root_from_parts, encode_account, encode_globals, encode_slot
from .constants import ADDRESS_LEN, HASH_LEN
from .errors import InvalidState
from .genesis import Genesis, GenesisMarket, InvalidGenesis, check_genesis
from .state import MarketConfig, State, get_total_collateral


def _genesis_of(state: State) -> Genesis:
    """The genesis that would have produced this state's config (and its current prices and time).

    The rules for a config are the genesis rules, stated once in `genesis.check_genesis`; the chain id
    and verifying contract are already folded into the domain separator, so neutral values stand in.
    A GenesisMarket is a MarketConfig plus its genesis price (the current price stands in).
    """
    config = state.config
    return Genesis(
        chain_id=0,
        verifying_contract=bytes(ADDRESS_LEN),
        oracles=config.oracles,
        quorum=config.quorum,
        # f is not committed (only the quorum it implies is): the largest f this quorum tolerates
        oracle_faults=(config.quorum - 1) // 2,
        max_sample_age=config.max_sample_age,
        price_validity=config.price_validity,
        funding_validity=config.funding_validity,
        fee_owner=config.fee_owner,
        markets=tuple(
            GenesisMarket(**{field: getattr(market, field) for field in MarketConfig.__struct_fields__}, price=dynamic.price)
            for market, dynamic in zip(config.markets, state.markets)
        ),
        time=state.time,
    )


def _are_ids_below(leaves: dict[int, object], count: int) -> bool:
    """The keys are exactly 0..count-1: as many keys as the count, each in range (keys are distinct)."""
    return len(leaves) == count and all(0 <= key < count for key in leaves)


def check_state(state: State) -> None:
    """Raise `InvalidState` unless `state` is a whole state the spec could have produced the shape of."""
    config = state.config
    n_markets = len(config.markets)

    # 1. The EIP-712 domain separator is a 32-byte hash.
    if len(config.domain_separator) != HASH_LEN:
        raise InvalidState(f"config.domain_separator: expected {HASH_LEN} bytes, got {len(config.domain_separator)}")

    # 2. One dynamic market state per configured market.
    if len(state.markets) != n_markets:
        raise InvalidState(f"markets: {len(state.markets)} market states for {n_markets} configured markets")

    # 3. The config (oracles, quorum, markets) obeys the genesis rules, and so do the current prices and time.
    try:
        check_genesis(_genesis_of(state))
    except InvalidGenesis as error:
        raise InvalidState(f"config: {error}") from None

    # 4. Every account id below next_account_id is present, and no other (a whole state, not a witness).
    #    (Counted, not compared with set(range(next_account_id)): a hostile count of 2**63 must not
    #    allocate a set of that size.)
    if not _are_ids_below(state.accounts, state.next_account_id):
        raise InvalidState(f"accounts: ids must be exactly 0..next_account_id-1 ({state.next_account_id} accounts)")

    # 5. Every slot id below next_slot is present, and no other.
    if not _are_ids_below(state.slots, state.next_slot):
        raise InvalidState(f"slots: ids must be exactly 0..next_slot-1 ({state.next_slot} slots)")

    for account_id, account in state.accounts.items():
        # 6. An account's owner is an address.
        if len(account.owner) != ADDRESS_LEN:
            raise InvalidState(f"accounts.{account_id}.owner: expected {ADDRESS_LEN} bytes, got {len(account.owner)}")
        # 7. Positions are in configured markets and never of size zero (a closed position is deleted).
        for market, position in account.positions.items():
            if not 0 <= market < n_markets:
                raise InvalidState(f"accounts.{account_id}.positions.{market}: no such market")
            if position.size == 0:
                raise InvalidState(f"accounts.{account_id}.positions.{market}: a stored position has a non-zero size")

    for slot_id, slot in state.slots.items():
        # 8. A resting order belongs to an existing account and a configured market.
        if not 0 <= slot.market < n_markets:
            raise InvalidState(f"slots.{slot_id}.market: no such market")
        if not 0 <= slot.account_id < state.next_account_id:
            raise InvalidState(f"slots.{slot_id}.account_id: no such account")

    # 9. Every value fits its fixed-width field of the commitment (the leaf encodings are the bounds:
    #    int.to_bytes raises OverflowError, and only that, for a value outside its width or sign).
    for account_id, account in state.accounts.items():
        try:
            encode_account(account)
        except OverflowError as error:
            raise InvalidState(f"accounts.{account_id}: a value is out of its encoded range ({error})") from None
    for slot_id, slot in state.slots.items():
        try:
            encode_slot(slot)
        except OverflowError as error:
            raise InvalidState(f"slots.{slot_id}: a value is out of its encoded range ({error})") from None
    try:
        encode_globals(state)
    except OverflowError as error:
        raise InvalidState(f"globals: a value is out of its encoded range ({error})") from None
    try:
        compute_state_root_from_parts(bytes(HASH_LEN), bytes(HASH_LEN), bytes(HASH_LEN), state.deposits_done, state.forced_done)
    except OverflowError as error:
        raise InvalidState(f"deposits_done/forced_done: out of the u64 range ({error})") from None

    # 10. The kept total collateral is the sum of the balances, and the socialized loss (the units
    #     the state owes beyond the bridge's tokens) is not negative.
    if state.total_collateral != get_total_collateral(state):
        raise InvalidState(f"total_collateral: {state.total_collateral} is not the sum of the balances ({get_total_collateral(state)})")
    if state.socialized_loss < 0:
        raise InvalidState(f"socialized_loss: {state.socialized_loss} is negative")
