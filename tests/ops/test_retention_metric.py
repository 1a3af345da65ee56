"""The archiver records when retention last completed (RetentionNotRun watches it)."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import REGISTRY

from em_service.archiver import Archiver
from em_service.settings import Settings
from em_service.store import Store, migrate

NAME = "em_retention_last_run_timestamp_seconds"


def test_retention_run_sets_its_timestamp(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    migrate.upgrade(store)
    before = time.time()
    try:
        Archiver(Settings(state_dir=tmp_path), store).run_retention()
    finally:
        store.dispose()
    value = REGISTRY.get_sample_value(NAME)
    assert value is not None and before <= value <= time.time()


def test_a_failed_retention_run_does_not(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no tables: the run fails
    previous = REGISTRY.get_sample_value(NAME)
    try:
        Archiver(Settings(state_dir=tmp_path), store).run_retention()
    except Exception:
        pass
    else:
        raise AssertionError("retention on a database without tables must fail")
    finally:
        store.dispose()
    assert REGISTRY.get_sample_value(NAME) == previous
