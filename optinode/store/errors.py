"""Errors of the store that an operator can act on (a bug is any other exception).

`StoreError` is the root: the CLI turns it into a one-line message and a non-zero exit.
"""

from __future__ import annotations


class StoreError(Exception):
    """A data directory the node cannot use as it is; the message says why and what to do."""


class StoreCorrupt(StoreError):
    """LevelDB reports corruption, or a stored value does not decode."""


class StoreForeign(StoreError):
    """The directory holds something else: not LevelDB, another program's LevelDB, another
    store format version, or the store of another deployment/role."""


class StoreLocked(StoreError):
    """Another process has the database open."""


class StoreClosed(StoreError):
    """The store was used after `close()`."""
