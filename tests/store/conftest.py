"""One test suite, two backends: every test that takes ``backend`` runs on LevelDB and in memory.

    backend.open(identity="")  -> KV   a fresh store (the same one again after ``close``: a restart)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sortedcontainers import SortedDict

from optinode.store.db import open_store
from optinode.store.kv import KV
from optinode.store.memory import open_memory


@dataclass
class Backend:
    name: str
    path: Path
    _memory: SortedDict = field(default_factory=SortedDict)
    _open: list[KV] = field(default_factory=list)

    def open(self, identity: str = "") -> KV:
        """Open the backend's one store; reopening after close sees what was written (durably)."""
        store = open_store(self.path, identity=identity) if self.name == "leveldb" else open_memory(identity, self._memory)
        self._open.append(store)
        return store

    def close_all(self) -> None:
        for store in self._open:
            store.close()


@pytest.fixture(params=["leveldb", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path / "db")
    yield b
    b.close_all()


@pytest.fixture
def store(backend: Backend) -> KV:
    return backend.open()
