"""A fresh, migrated SQLite database file per test (copied from a session template)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from em_service.store import Store
from tests.store.factories import fresh_db


@pytest.fixture(scope="session")
def db_template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("db-template")


@pytest.fixture
def store(db_template_dir: Path, tmp_path: Path) -> Iterator[Store]:
    store = fresh_db(db_template_dir, tmp_path / "em.db")
    yield store
    store.dispose()
