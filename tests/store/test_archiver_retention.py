"""The archiver's periodic retention job deletes what is past ``trail_retention_days``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from em_service.archiver import Archiver
from em_service.settings import Settings
from em_service.store import Store, trail
from tests.helpers import wait_for_async
from tests.store.factories import gps


async def test_retention_runs_periodically(store: Store) -> None:
    settings = Settings(trail_retention_days=30, archiver_retention_interval_s=0.05)
    archiver = Archiver(settings, store)
    now = datetime.now(UTC)
    before = REGISTRY.get_sample_value("em_retention_deleted_rows_total", {"table": "fixes"}) or 0
    stop = asyncio.Event()
    job = asyncio.create_task(archiver.retain(stop))

    def count() -> int:
        with store.read() as s:
            return trail.count_fixes(s)

    try:
        for age_days in (40, 31, 1):  # arriving while the job runs
            with store.write() as s:
                trail.insert_fixes(
                    s, readings=[gps(ts=now - timedelta(days=age_days))], crs="EPSG:27700"
                )
        await wait_for_async(lambda: count() == 1, timeout_s=10, what="the old fixes to go")
    finally:
        stop.set()
        await asyncio.wait_for(job, 5)
    after = REGISTRY.get_sample_value("em_retention_deleted_rows_total", {"table": "fixes"})
    assert after == before + 2
