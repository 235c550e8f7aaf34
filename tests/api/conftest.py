"""Fixtures for the API tests: the engine-level `world` (tests/services/conftest.py)."""

from tests.services.conftest import world  # noqa: F401 - a fixture
