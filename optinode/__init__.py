"""optinode: an optimistic rollup node for a perpetual-futures exchange."""

import os as _os

__version__ = "0.1.0"

# eth-hash picks its keccak backend lazily, on the first hash. web3 depends on
# eth-hash[pycryptodome], which eth-hash prefers when both are installed, but the C
# backend from safe-pysha3 is ~6x faster for the short inputs a Merkle tree hashes.
# Importing any optinode module (including optinode.spec) selects it, unless the
# operator chose a backend explicitly through the environment.
_os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
