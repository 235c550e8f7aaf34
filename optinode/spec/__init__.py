"""optinode.spec — the executable specification of the optinode perpetuals rollup.

Pure functions over plain data: no I/O, no clock, no randomness (tests/test_spec_purity.py checks).
Read `transition.state_transition` first; docs/spec.md walks through the rules.
"""

from .commitment import Commitment, compute_state_root
from .errors import ErrorCode, InvalidInput, InvalidTransaction, WitnessError
from .genesis import Genesis, GenesisMarket, create_genesis_state
from .state import State
from .transition import apply_transactions, state_transition
from .types import L1Context, Receipt

__all__ = [
    "Commitment",
    "ErrorCode",
    "Genesis",
    "GenesisMarket",
    "InvalidInput",
    "InvalidTransaction",
    "L1Context",
    "Receipt",
    "State",
    "WitnessError",
    "apply_transactions",
    "compute_state_root",
    "create_genesis_state",
    "state_transition",
]
