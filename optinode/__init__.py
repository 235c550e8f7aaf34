"""optinode: an optimistic rollup node for a perpetual-futures exchange."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# eth-hash picks its keccak backend lazily, on the first hash. web3 depends on
# eth-hash[pycryptodome], which eth-hash prefers when both are installed, but the C
# backend from safe-pysha3 is ~6x faster for the short inputs a Merkle tree hashes.
# Importing any optinode module (including optinode.spec) selects it, unless the
# operator chose a backend explicitly through the environment.
_os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")

# py_ecc (imported by eth-account's stack) raises the interpreter's recursion limit to 100,000 when it
# is first imported. With that limit a JSON decoder (msgspec, json) given a body nested ~30,000 deep
# overflows the C stack and kills the process on Python 3.11 (a 200 KB JSON-RPC body took the node
# down); at Python's default limit it raises RecursionError, which every decoder of outside input
# catches. So py_ecc is imported here, and the limit is put back to at most the default (whether
# py_ecc came in just now or earlier, before optinode).
PYTHON_RECURSION_LIMIT = 1000  # CPython's default
try:
    import py_ecc as _py_ecc  # noqa: F401
except ImportError:  # (not installed: nothing raises the limit)
    pass
_sys.setrecursionlimit(min(_sys.getrecursionlimit(), PYTHON_RECURSION_LIMIT))
