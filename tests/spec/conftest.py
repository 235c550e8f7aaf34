"""Fixtures for spec tests, on the one test driver (`optinode.testing.world`: genesis, units, keys,
nonces and how to write a test are described there).

    world         (function)  World(): the genesis state, no accounts yet
    funded_world  (function)  World() with alice, bob and carol (ids 0, 1, 2) holding FUNDS each
"""

from __future__ import annotations

import pytest

from optinode.testing.world import FUNDS, World


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def funded_world() -> World:
    w = World()
    for name in ("alice", "bob", "carol"):
        w.deposit(name, FUNDS)
    assert w.ids == {"alice": 0, "bob": 1, "carol": 2}
    return w
