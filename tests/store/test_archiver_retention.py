"""The archiver's periodic retention job deletes what is past ``trail_retention_days``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import TopicPartition
from prometheus_client import REGISTRY
from sqlalchemy import select

from em_service.archiver import Archiver
from em_service.clock import wall_now
from em_service.console.sessions import Identity, SessionStore
from em_service.contracts.codec import encode
from em_service.settings import Settings
from em_service.store import Store, trail
from em_service.store.models import ConsoleSessionRow
from tests.helpers import wait_for_async
from tests.store.factories import T0, gps


async def test_retention_runs_periodically(store: Store) -> None:
    settings = Settings(trail_retention_days=30, archiver_retention_interval_s=0.05)
    archiver = Archiver(settings, store)
    now = wall_now()
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


def test_a_replay_archives_and_retains_by_its_event_time_not_the_date_it_runs(
    store: Store,
) -> None:
    """Years after the data (the wall clock shifted 5 years), a replay archives it; what is too
    old or past retention is judged against the stream's newest event time."""
    settings = Settings(
        topic_readings="readings",
        rule_clock="event",
        trail_retention_days=30,
        wall_clock_offset_s=5 * 365 * 86400.0,
    )
    archiver = Archiver(settings, store)
    assert archiver.run_retention() is None  # no event time yet: nothing to judge by
    ages_days = (0, 40, 401)  # the newest first; 401 days older than it is absurd
    tp = TopicPartition("readings", 0)
    records = {
        tp: [
            _Record(encode(gps(ts=T0 - timedelta(days=d), seq=i)), offset=i)
            for i, d in enumerate(ages_days)
        ]
    }
    batch = archiver.decode(records)
    assert [f.ts for f in batch.gps] == [T0, T0 - timedelta(days=40)]
    assert batch.outcomes == {("readings", "invalid"): 1} and archiver.watermarks == {0: T0}
    archiver.write(batch)
    report = archiver.run_retention()
    assert report is not None and report.cutoff == T0 - timedelta(days=30)
    assert report.fixes_deleted == 1


def test_a_replay_still_deletes_console_sessions_expired_by_the_wall_clock(
    store: Store,
) -> None:
    """Sessions expire by the wall clock (the one the console stamps them with), not by a
    replay's event time; the deleted ones are counted per table."""
    settings = Settings(rule_clock="event", wall_clock_offset_s=5 * 365 * 86400.0)
    wall = wall_now(settings)
    for signed_in in (wall - timedelta(minutes=1), wall - timedelta(hours=13)):  # live, expired
        sessions = SessionStore(
            store,
            settings.console_session_idle_s,
            settings.console_session_max_s,
            signed_in.timestamp,
        )
        sessions.open(Identity("investigator-1", token_sha256=None))
    archiver = Archiver(settings, store)
    archiver.watermarks[0] = T0  # the replay's event time: five years before the wall clock
    sample = ("em_retention_deleted_rows_total", {"table": "console_sessions"})
    before = REGISTRY.get_sample_value(*sample) or 0

    report = archiver.run_retention()

    assert report is not None and report.counts["console_sessions"] == 1
    assert REGISTRY.get_sample_value(*sample) == before + 1
    with store.read() as s:
        left = s.scalars(select(ConsoleSessionRow.expires_at)).all()
    assert len(left) == 1 and left[0] > wall


@dataclass
class _Record:
    """The fields of a consumed record the archiver reads."""

    value: bytes
    offset: int
    key: bytes = b"tag-1"
    timestamp: int = 0
    topic: str = "readings"
    partition: int = 0
