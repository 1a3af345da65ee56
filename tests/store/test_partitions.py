"""PostgreSQL month partitions of the trail (migration 0009): conversion, the DEFAULT partition,
maintenance by the service role through the owner's functions, retention by dropping months."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import func, select, text

from em_service.devstack import postgres
from em_service.store import Store, migrate, partitions, retention, trail
from em_service.store.models import AlcoholSample, Fix
from em_service.store.types import from_ms, to_ms
from tests.database import Database, create_pg_database, drop_pg_database
from tests.store.factories import alcohol, gps

CRS = "EPSG:27700"
#: Fixed months far from any wall clock, so the migration's own partitions never meet them.
Y = 2031


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> Iterator[Database]:
    """The module's PostgreSQL database, reset (partitions made by other tests may remain)."""
    module_db = request.getfixturevalue("pg_module_db")
    module_db.reset()
    yield module_db.db


@pytest.fixture
def pg_store(pg: Database) -> Iterator[Store]:
    store = pg.store()
    yield store
    store.dispose()


def _where(store: Store, table: str) -> dict[str, int]:
    """Rows per partition of ``table``."""
    with store.read() as s:
        rows = s.execute(text(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1"))
        return dict(rows.tuples().all())


def _conn(db: Database, url: str) -> psycopg.Connection:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def test_the_migration_partitions_existing_rows_and_keeps_keys(pg_cluster) -> None:
    name = create_pg_database(pg_cluster)
    url, owner = pg_cluster.url(postgres.SERVICE, name), pg_cluster.url(postgres.OWNER, name)
    store = Store(url, migrate_url=owner)
    try:
        migrate.upgrade(store, "0004")
        times = [_utc(Y, 3, 5), _utc(Y, 3, 30), _utc(Y, 5, 1), _utc(2199, 1, 1)]
        with store.write() as s:
            trail.insert_fixes(s, readings=[gps(ts=t) for t in times], crs=CRS)
            trail.insert_alcohol(s, readings=[alcohol(ts=t) for t in times])
        with store.read() as s:
            before = s.execute(select(Fix.id, Fix.ts_ms).order_by(Fix.id)).all()
        migrate.upgrade(store)
        with store.read() as s:
            assert s.execute(select(Fix.id, Fix.ts_ms).order_by(Fix.id)).all() == before
            kinds = dict(
                s.execute(
                    text(
                        "SELECT relname, relkind FROM pg_class WHERE relname IN "
                        "('fixes', 'alcohol_readings')"
                    )
                ).all()
            )
            assert kinds == {"fixes": "p", "alcohol_readings": "p"}
            pk = s.scalar(
                text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_fixes'"
                )
            )
            assert pk == "PRIMARY KEY (id, ts_ms)"
        assert _where(store, "fixes") == {
            f"fixes_p{Y}03": 2,
            f"fixes_p{Y}05": 1,
            "fixes_p219901": 1,
        }
        assert _where(store, "alcohol_readings")[f"alcohol_readings_p{Y}03"] == 2
        for table in partitions.TABLES:
            assert f"{table}_default" in partitions.partitions(store, table)
        with store.write() as s:  # the sequence carries on, duplicates are still ignored
            trail.insert_fixes(s, readings=[gps(ts=times[0]), gps(ts=_utc(Y, 3, 6))], crs=CRS)
        with store.read() as s:
            assert s.scalar(select(func.count()).select_from(Fix)) == 5
            assert s.scalar(select(func.max(Fix.id))) > before[-1][0]  # no id reused
    finally:
        store.dispose()
        drop_pg_database(pg_cluster, name)


@pytest.mark.parametrize(
    "ts", [_utc(1990, 1, 1), _utc(2199, 12, 31, 23, 59), _utc(9999, 1, 1)], ids=str
)
def test_late_or_far_future_data_never_fails_an_insert(pg_store: Store, ts: datetime) -> None:
    with pg_store.write() as s:
        trail.insert_fixes(s, readings=[gps(ts=ts), gps(ts=ts)], crs=CRS)  # a duplicate too
        trail.insert_alcohol(s, readings=[alcohol(ts=ts)])
    with pg_store.read() as s:
        assert [from_ms(ms) for ms in s.scalars(select(Fix.ts_ms))] == [ts]
        assert s.scalar(select(func.count()).select_from(AlcoholSample)) == 1
    assert _where(pg_store, "fixes") == {"fixes_default": 1}


def test_maintenance_creates_months_ahead_and_moves_waiting_rows(pg_store: Store) -> None:
    now = _utc(Y, 8, 31, 23)
    early = _utc(Y, 9, 1)  # next month: arrives before its partition exists
    with pg_store.write() as s:
        trail.insert_fixes(s, readings=[gps(ts=early), gps(ts=_utc(Y, 12, 1))], crs=CRS)
    assert _where(pg_store, "fixes") == {"fixes_default": 2}
    created = partitions.maintain(pg_store, now=now)
    assert created == [
        f"{t}_p{Y}{m:02d}" for t in ("fixes", "alcohol_readings") for m in (8, 9, 10)
    ]
    assert _where(pg_store, "fixes") == {f"fixes_p{Y}09": 1, "fixes_default": 1}
    assert partitions.maintain(pg_store, now=now) == []  # nothing left to do
    with pg_store.read() as s:
        assert s.scalar(select(func.count()).select_from(Fix)) == 2


def test_the_service_role_maintains_partitions_but_cannot_alter_or_drop(pg: Database) -> None:
    with _conn(pg, pg.url) as conn:
        made = conn.execute("SELECT em_month_partition('fixes', DATE '2031-02-01')").fetchone()
        assert made == (f"fixes_p{Y}02",)
        dropped = conn.execute(
            "SELECT dropped FROM em_drop_partitions_before('fixes', %s)",
            (to_ms(_utc(Y, 3, 1)),),
        ).fetchall()
        assert (f"fixes_p{Y}02",) in dropped
        for statement in (
            "DROP TABLE fixes_default",
            "ALTER TABLE fixes DETACH PARTITION fixes_default",
            "ALTER TABLE fixes ADD COLUMN x int",
            "CREATE TABLE fixes_p203101 PARTITION OF fixes "
            "FOR VALUES FROM (1924992000000) TO (1927670400000)",
            "DROP FUNCTION em_month_partition(text, date)",
            "TRUNCATE fixes",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        for parent in ("audit_log", "alerts", "fixes; DROP TABLE alerts"):
            with pytest.raises(psycopg.errors.RaiseException, match="not a partitioned"):
                conn.execute("SELECT em_month_partition(%s, DATE '2031-02-01')", (parent,))
            with pytest.raises(psycopg.errors.RaiseException, match="not a partitioned"):
                conn.execute("SELECT * FROM em_drop_partitions_before(%s, 0)", (parent,))
        with pytest.raises(psycopg.errors.RaiseException, match="first day"):
            conn.execute("SELECT em_month_partition('fixes', DATE '2031-02-02')")


def test_retention_drops_old_months_and_deletes_only_in_the_straddling_one(
    pg_store: Store,
) -> None:
    cutoff = _utc(Y, 6, 15)
    days = [_utc(Y, 4, 10), _utc(Y, 5, 31, 23), _utc(Y, 6, 1), _utc(Y, 6, 15), _utc(Y, 7, 2)]
    for month in (4, 5, 6, 7):
        partitions.maintain(pg_store, now=_utc(Y, month, 1), months_ahead=0)
    with pg_store.write() as s:
        trail.insert_fixes(s, readings=[gps(ts=t) for t in days], crs=CRS)
        trail.insert_alcohol(s, readings=[alcohol(ts=t) for t in days])
    report = retention.purge_trail(
        pg_store, older_than=timedelta(days=30), now=cutoff + timedelta(days=30)
    )
    assert report.cutoff == cutoff
    assert {f"fixes_p{Y}04", f"fixes_p{Y}05", f"alcohol_readings_p{Y}05"} <= set(
        report.partitions_dropped
    )
    assert not any(p.endswith(f"{Y}06") for p in report.partitions_dropped)
    assert (report.fixes_deleted, report.alcohol_deleted) == (3, 3)
    assert _where(pg_store, "fixes") == {f"fixes_p{Y}06": 1, f"fixes_p{Y}07": 1}
    names = partitions.partitions(pg_store, "fixes")
    assert f"fixes_p{Y}05" not in names and f"fixes_p{Y}06" in names


def test_sqlite_has_no_partitions(sqlite_db: Database) -> None:
    store = sqlite_db.store()
    try:
        assert partitions.maintain(store, now=_utc(Y, 1, 1)) == []
        assert partitions.drop_before(store, "fixes", 0) == ([], 0)
    finally:
        store.dispose()


def test_two_maintainers_at_once_make_one_partition(pg: Database) -> None:
    """Two archivers' retention jobs creating the same month: one makes it, the other waits
    for it and finds it made (no error)."""
    import threading

    results: list[object] = []
    with _conn(pg, pg.url) as first, _conn(pg, pg.url) as second:
        first.autocommit = False
        made = first.execute("SELECT em_month_partition('fixes', DATE '2031-11-01')").fetchone()

        def other() -> None:
            row = second.execute("SELECT em_month_partition('fixes', DATE '2031-11-01')")
            results.append(row.fetchone())

        waiter = threading.Thread(target=other)
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and results == []  # waits on the first one's lock
        first.commit()
        waiter.join(10.0)
    assert made == (f"fixes_p{Y}11",) and results == [(None,)]
