"""Store bench: archiver insert rate (batched, through the archiver's decode → project → insert
path, Kafka aside) and trail-query latency for one offender-day among N stored fixes.

Simulated data only: ``devices`` tags, one GPS fix a minute each, wandering around towns in
England, time-ordered across tags as a live feed would be. Then ``queries`` random
offender-days are read with the API's trail query (and a few scene-style proximity queries).

    python bench/store_bench.py            # 5,000,000 fixes (several minutes)
    python bench/store_bench.py --quick    # 200,000 fixes

The last line of output is one JSON object:
``{"archive_fixes_per_s": …, "stored_fixes": …, "trail_query_p50_ms": …, "trail_query_p95_ms": …}``
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text

from em_service.contracts import Conditions
from em_service.settings import Settings
from em_service.store import Store, ingest, migrate, offenders, trail
from em_service.store.projection import project
from em_service.store.spatial_index import fixes_near

FIX_INTERVAL_S = 60
TOWNS = [(-0.97, 51.45), (-1.26, 51.75), (-0.13, 51.51), (-1.90, 52.48), (-2.24, 53.48)]


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _feed(devices: int, total: int, start: datetime, seed: int = 1):
    """Yield lists of raw JSON readings (one list per minute, all devices), ``total`` in all."""
    rng = np.random.default_rng(seed)
    home = np.array([TOWNS[i % len(TOWNS)] for i in range(devices)], float)
    pos = home + rng.normal(0, 0.01, (devices, 2))
    sent, minute = 0, 0
    while sent < total:
        ts = (start + timedelta(seconds=minute * FIX_INTERVAL_S)).isoformat()
        # a random walk of ~50 m a minute, pulled gently back towards home
        pos += rng.normal(0, 0.0005, (devices, 2)) + (home - pos) * 0.01
        n = min(devices, total - sent)
        yield [
            (
                f'{{"type":"gps","device_id":"tag-{d:04d}","ts":"{ts}",'
                f'"lat":{pos[d, 1]:.6f},"lon":{pos[d, 0]:.6f},"accuracy_m":8.0,"seq":{minute}}}'
            ).encode()
            for d in range(n)
        ]
        sent += n
        minute += 1


def archive(
    store: Store, settings: Settings, devices: int, total: int, start: datetime, batch: int
) -> tuple[float, int]:
    """Archive ``total`` fixes in batches of ``batch``; return (seconds spent writing, batches)."""
    spent, batches, pending = 0.0, 0, []
    now = datetime.now(UTC)
    last_report = time.monotonic()

    def flush() -> float:
        t = time.perf_counter()
        b = ingest.Batch()
        for raw in pending:
            b.add_reading(raw, settings, now)
        with store.write() as session:
            ingest.write(session, b, crs=settings.projected_crs)
        return time.perf_counter() - t

    done = 0
    for minute in _feed(devices, total, start):
        pending.extend(minute)
        if len(pending) >= batch:
            spent += flush()
            done += len(pending)
            batches += 1
            pending = []
            if time.monotonic() - last_report > 15:
                print(f"  … {done:,} fixes, {done / spent:,.0f}/s", file=sys.stderr)
                last_report = time.monotonic()
    if pending:
        spent += flush()
        batches += 1
    return spent, batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 fixes instead of 5M")
    parser.add_argument("--fixes", type=int, default=None, help="how many fixes to store")
    parser.add_argument("--devices", type=int, default=100, help="tags (one offender each)")
    parser.add_argument("--batch", type=int, default=5000, help="fixes per write transaction")
    parser.add_argument("--queries", type=int, default=200, help="trail queries to time")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the database")
    parser.add_argument(
        "--database-url", default=None, help="an empty database instead (e.g. PostgreSQL)"
    )
    parser.add_argument("--migrate-url", default=None, help="owner role URL for migrations")
    args = parser.parse_args(argv)
    total = args.fixes or (200_000 if args.quick else 5_000_000)

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="store-bench-") as tmp:
        settings = Settings(
            database_url=args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}",
            state_dir=Path(tmp),
        )
        store = Store(
            settings.resolved_database_url(),
            sqlite_synchronous=settings.sqlite_synchronous,
            migrate_url=args.migrate_url,
        )
        migrate.upgrade(store)
        minutes = -(-total // args.devices)
        start = (datetime.now(UTC) - timedelta(minutes=minutes + 60)).replace(
            second=0, microsecond=0
        )
        with store.write() as session:
            for d in range(args.devices):
                offenders.put_conditions(
                    session,
                    conditions=Conditions(offender_id=f"off-{d:04d}", device_ids=[f"tag-{d:04d}"]),
                    changed_at=start,
                )
        print(f"archiving {total:,} fixes of {args.devices} tags, batches of {args.batch:,} …")
        spent, batches = archive(store, settings, args.devices, total, start, args.batch)
        with store.read() as session:
            stored = trail.count_fixes(session)
        rate = stored / spent
        print(
            f"archive: {stored:,} fixes in {spent:.1f} s over {batches} batches = {rate:,.0f} fixes/s"
        )

        days = max(1, minutes * FIX_INTERVAL_S // 86400)
        rng = random.Random(2)
        trail_ms, sizes = [], []
        for _ in range(args.queries):
            d = rng.randrange(args.devices)
            t0 = start + timedelta(days=rng.randrange(days))
            t = time.perf_counter()
            with store.read() as session:
                fixes = trail.offender_trail(
                    session, offender_id=f"off-{d:04d}", t0=t0, t1=t0 + timedelta(days=1)
                )
            trail_ms.append((time.perf_counter() - t) * 1000)
            sizes.append(len(fixes))
        print(
            f"trail, one offender-day ({statistics.median(sizes):.0f} fixes): "
            f"p50 {_percentile(trail_ms, 50):.2f} ms, p95 {_percentile(trail_ms, 95):.2f} ms"
        )

        near_ms, hits = [], []
        for _ in range(min(args.queries, 100)):
            lon, lat = rng.choice(TOWNS)
            x, y = project(lon + rng.uniform(-0.01, 0.01), lat + rng.uniform(-0.01, 0.01))
            t0 = start + timedelta(minutes=rng.randrange(max(1, minutes - 120)))
            t = time.perf_counter()
            with store.read() as session:
                found = fixes_near(session, float(x), float(y), 200.0, t0, t0 + timedelta(hours=2))
            near_ms.append((time.perf_counter() - t) * 1000)
            hits.append(sum(len(v.ts_ms) for v in found.values()))
        print(
            f"scene query (200 m, 2 h; {statistics.mean(hits):.1f} fixes found on average): "
            f"p50 {_percentile(near_ms, 50):.2f} ms, p95 {_percentile(near_ms, 95):.2f} ms"
        )
        if store.dialect == "sqlite":
            size_mb = (Path(tmp) / "bench.db").stat().st_size / 1e6
        else:
            with store.read() as session:
                size = session.scalar(text("SELECT pg_total_relation_size('fixes')"))
            size_mb = size / 1e6
        print(f"database (fixes): {size_mb:,.0f} MB ({size_mb * 1e6 / stored:.0f} bytes/fix)")
        store.dispose()

    print(
        json.dumps(
            {
                "archive_fixes_per_s": round(rate),
                "stored_fixes": stored,
                "trail_query_p50_ms": round(_percentile(trail_ms, 50), 3),
                "trail_query_p95_ms": round(_percentile(trail_ms, 95), 3),
                "scene_query_p50_ms": round(_percentile(near_ms, 50), 3),
                "scene_query_p95_ms": round(_percentile(near_ms, 95), 3),
                "bytes_per_fix": round(size_mb * 1e6 / stored),
                "engine": store.dialect,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
