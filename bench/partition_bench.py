"""Retention on PostgreSQL: purge one month of N fixes by dropping its partition vs by DELETE.

Both run the service's own code: the partitioned ``fixes`` table (migration 0009) loses a month
through ``em_drop_partitions_before`` (:func:`em_service.store.partitions.drop_before`: DETACH +
DROP, with the row count); a plain copy of the table (same columns, keys and indexes) loses the
same rows through retention's batched DELETE (:func:`em_service.store.retention._delete_batched`,
20,000 rows a transaction), followed by the VACUUM that makes their space reusable. Timed: wall
clock, WAL written, table + index size left behind. The month is in 2099 (never real data) and
everything the bench makes is dropped at the end. Needs a migrated database and its owner's URL
(``--database-url`` = EM_DATABASE_MIGRATE_URL, e.g. of ``em-service devstack postgres up``).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, MetaData, Table, text

from em_service.store import Store, partitions, retention

MONTH = datetime(2099, 3, 1, tzinfo=UTC)
LO_MS = int(MONTH.timestamp() * 1000)
MONTH_MS = 31 * 86_400_000  # March
PLAIN = "bench_plain_fixes"
FILL = """
INSERT INTO {table} (device_id, ts_ms, seq, lat, lon, accuracy_m, x_m, y_m, cell)
SELECT 'tag-' || (i % :tags), :lo + i::bigint * :step, i, 51.4 + (i % 997) * 1e-5,
       -0.9 - (i % 991) * 1e-5, 8.0, 470000 + i % 5000, 170000 + i % 7000,
       ((470000 + i % 5000) / 250)::bigint * 67108864 + (170000 + i % 7000) / 250
FROM generate_series(:i0, :i1 - 1) AS i
"""
PLAIN_DDL = [
    f"CREATE TABLE {PLAIN} (id bigserial PRIMARY KEY, device_id varchar(64) NOT NULL, "
    "ts_ms bigint NOT NULL, seq bigint NOT NULL, lat double precision NOT NULL, "
    "lon double precision NOT NULL, accuracy_m double precision NOT NULL, "
    "speed_mps double precision, heading_deg double precision, battery_pct double precision, "
    "x_m double precision NOT NULL, y_m double precision NOT NULL, cell bigint NOT NULL, "
    "UNIQUE (device_id, ts_ms, seq))",
    f"CREATE INDEX ix_{PLAIN}_cell_ts ON {PLAIN} (cell, ts_ms)",
    f"CREATE INDEX ix_{PLAIN}_ts ON {PLAIN} (ts_ms)",
]


def _wal(store: Store) -> int:
    with store.engine.connect() as c:
        return int(c.execute(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")).scalar())


def _fill(store: Store, table: str, n: int, tags: int) -> None:
    step = MONTH_MS // n
    for i0 in range(0, n, 200_000):
        with store.write() as s:
            s.execute(
                text(FILL.format(table=table)),
                {"tags": tags, "lo": LO_MS, "step": step, "i0": i0, "i1": min(n, i0 + 200_000)},
            )
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f"VACUUM ANALYZE {table}"))


def _size(store: Store, table: str) -> int:
    with store.engine.connect() as c:
        return c.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar() or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="owner role URL (creates tables)")
    parser.add_argument("--fixes", type=int, default=None, help="default 2M (--quick 200k)")
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    n = args.fixes or (200_000 if args.quick else 2_000_000)
    store = Store(args.database_url)
    if store.dialect != "postgresql":
        raise SystemExit("needs PostgreSQL")
    name = partitions.partition_name("fixes", MONTH.date())
    out: dict[str, float | int | str] = {"fixes": n, "month": name}
    try:
        with store.read() as s:
            if s.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar():
                raise SystemExit(f"{name} exists: not a scratch month, refusing")
        partitions.maintain(store, now=MONTH, months_ahead=0)
        with store.write() as s:
            for ddl in PLAIN_DDL:
                s.execute(text(ddl))
        t = time.perf_counter()
        _fill(store, "fixes", n, args.tags)
        _fill(store, PLAIN, n, args.tags)
        out["fill_s"] = round(time.perf_counter() - t, 1)
        out["month_mb"] = round(_size(store, name) / 1e6, 1)
        print(f"{n:,} fixes in {name} and {PLAIN} ({out['month_mb']} MB each)", file=sys.stderr)

        wal, t = _wal(store), time.perf_counter()
        dropped, rows = partitions.drop_before(store, "fixes", LO_MS + MONTH_MS)
        out["drop_s"] = round(time.perf_counter() - t, 3)
        out["drop_wal_kb"] = round((_wal(store) - wal) / 1e3, 1)
        if dropped != [name] or rows != n:
            raise SystemExit(f"drop removed {dropped} with {rows} rows, expected {name}, {n}")

        plain = Table(PLAIN, MetaData(), Column("id", BigInteger), Column("ts_ms", BigInteger))
        wal, t = _wal(store), time.perf_counter()
        deleted = retention._delete_batched(store, plain, plain.c.ts_ms < LO_MS + MONTH_MS, "id")
        out["delete_s"] = round(time.perf_counter() - t, 2)
        out["delete_wal_mb"] = round((_wal(store) - wal) / 1e6, 1)
        out["delete_left_mb"] = round(_size(store, PLAIN) / 1e6, 1)
        if deleted != n:
            raise SystemExit(f"DELETE removed {deleted} rows, expected {n}")
        t = time.perf_counter()
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text(f"VACUUM {PLAIN}"))
        out["vacuum_s"] = round(time.perf_counter() - t, 2)
        out["vacuum_left_mb"] = round(_size(store, PLAIN) / 1e6, 1)
        out["speedup"] = round((out["delete_s"] + out["vacuum_s"]) / max(out["drop_s"], 1e-3))
        print(
            f"drop: {out['drop_s']} s, {out['drop_wal_kb']} kB WAL, nothing left | "
            f"DELETE: {out['delete_s']} s + VACUUM {out['vacuum_s']} s, "
            f"{out['delete_wal_mb']} MB WAL, {out['vacuum_left_mb']} MB still allocated",
            file=sys.stderr,
        )
    finally:
        with store.write() as s:
            s.execute(text(f"DROP TABLE IF EXISTS {PLAIN}"))
            s.execute(text(f"DROP TABLE IF EXISTS {name}"))
        store.dispose()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
