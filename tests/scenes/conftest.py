"""A fresh, migrated SQLite database file per test, seeded with people built for the purpose."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from em_service.store import Store
from tests.store.factories import fresh_db


@pytest.fixture(scope="session")
def scenes_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenes-db-template")


@pytest.fixture
def store(scenes_db_template: Path, tmp_path: Path) -> Iterator[Store]:
    store = fresh_db(scenes_db_template, tmp_path / "em.db")
    yield store
    store.dispose()
