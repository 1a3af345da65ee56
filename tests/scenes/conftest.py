"""A fresh, migrated database per test, on SQLite and on PostgreSQL (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from em_service.store import Store
from tests.database import Database


@pytest.fixture
def store(database: Database) -> Iterator[Store]:
    store = database.store()
    yield store
    store.dispose()
