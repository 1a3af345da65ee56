"""Scale bench (issue 14): what several processes buy, on both database engines.

1. Workers: readings/s end to end with 1, 2 and 3 worker processes in one consumer group on a
   12-partition readings topic (the real broker; pipeline_bench's offenders and readings, sent
   once the group has settled; fresh topics per run). Also each run's readings per worker
   CPU-second (the per-core figure: what one dedicated core gives, whoever shares the machine).
2. Archiver: fixes/s into SQLite and PostgreSQL side by side (store_bench's batched archive path).
3. Queries on one archive per engine (scene_bench's simulated towns; 5M fixes at full size):
   retrospective scene search p50/p95 (target p95 < 100 ms; also the bench process's own CPU
   time, which a loaded machine does not inflate) and one person-day trail p50/p95.

PostgreSQL: ``--pg-url``/``--pg-migrate-url`` (an empty database), else a fresh database on the
test cluster (``EM_TEST_POSTGRES_DIR``/``EM_TEST_POSTGRES_PORT``), dropped at the end.

    python bench/scale_bench.py --quick    # < 2 min
    python bench/scale_bench.py            # 200k readings per worker count, 5M fixes per engine

Prints a human summary; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline_bench
import scene_bench
import store_bench

from em_service import devstack, kafka_io
from em_service.contracts import Conditions
from em_service.devstack import postgres
from em_service.scenes import retro
from em_service.scenes.config import SceneSettings
from em_service.scrape import scrape, total
from em_service.settings import Settings, get_settings
from em_service.store import Store, migrate, offenders, trail
from tests.service_env import ServiceEnv, free_port

PARTITIONS = 12
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _restores(env: ServiceEnv, n_workers: int) -> int:
    return sum(env.log(f"worker-{i}").count("device states restored") for i in range(n_workers))


def workers_run(bootstrap: str, n_workers: int, msgs: list, work: Path) -> dict:
    """``n_workers`` worker processes of one group on fresh 12-partition topics: once the group
    has settled (every worker owns partitions, no restore for 3 s), ``msgs`` are produced and
    timed from the first reading consumed to the last; also readings per worker CPU-second."""
    env = ServiceEnv(bootstrap, work / f"w{n_workers}")
    env.state_dir.mkdir(parents=True)
    env.env.update(
        EM_STARTUP_GRACE_S="100000", EM_LATE_AFTER_S="1e9", EM_TOPIC_PARTITIONS=str(PARTITIONS)
    )
    env.settings = env.settings.model_copy(update={"topic_partitions": PARTITIONS})
    s = env.settings
    devstack.ensure_topics(s, bootstrap)
    asyncio.run(kafka_io.send_all(bootstrap, s.topic_conditions, pipeline_bench.conditions()))
    urls, procs = [], []
    try:
        for i in range(n_workers):
            env.env["EM_WORKER_METRICS_PORT"] = str(port := free_port())
            procs.append(env.start("worker", log_name=f"worker-{i}"))
            urls.append(f"http://127.0.0.1:{port}/metrics")
        env.wait_until(
            lambda: all(
                "device states restored" in env.log(f"worker-{i}") for i in range(n_workers)
            ),
            300,
            "every worker to own partitions",
        )
        seen = [_restores(env, n_workers), time.monotonic()]

        def settled() -> bool:
            now_restores = _restores(env, n_workers)
            if now_restores != seen[0]:
                seen[:] = [now_restores, time.monotonic()]
            return time.monotonic() - seen[1] > 3.0

        env.wait_until(settled, 120, "the group to settle", interval_s=0.5)

        def consumed() -> float:
            return sum(total(scrape(u), "em_readings_consumed_total") for u in urls)

        cpu0 = sum(_cpu_s(p.pid) for p in procs)
        producing = threading.Thread(
            target=lambda: asyncio.run(kafka_io.send_all(bootstrap, s.topic_readings, msgs))
        )
        producing.start()
        env.wait_until(lambda: consumed() > 0, 120, "the first reading", interval_s=0.05)
        began = time.perf_counter()
        env.wait_until(lambda: consumed() >= len(msgs), 1800, "the stream", interval_s=0.2)
        spent = time.perf_counter() - began
        cpu = sum(_cpu_s(p.pid) for p in procs) - cpu0
        producing.join()
    finally:
        env.stop_all()
    return {
        "workers": n_workers,
        "readings_per_s": round(len(msgs) / spent),
        "readings_per_worker_cpu_s": round(len(msgs) / cpu) if cpu > 0 else None,
    }


@contextmanager
def engines(pg_url: str | None, pg_migrate_url: str | None, work: Path) -> Iterator[dict]:
    """Yield {engine: (service URL, migration URL)} for a fresh SQLite file and PostgreSQL."""
    urls = {"sqlite": (f"sqlite:///{work / 'bench.db'}",) * 2}
    if pg_url:
        urls["postgresql"] = (pg_url, pg_migrate_url or pg_url)
        yield urls
        return
    from tests.database import create_pg_database, drop_pg_database

    root = Path(os.environ.get("EM_TEST_POSTGRES_DIR", Path(tempfile.gettempdir()) / "em-bench-pg"))
    info = postgres.up(root, int(os.environ.get("EM_TEST_POSTGRES_PORT", "55433")))
    name = create_pg_database(info)
    urls["postgresql"] = (info.url(postgres.SERVICE, name), info.url(postgres.OWNER, name))
    try:
        yield urls
    finally:
        drop_pg_database(info, name)
        if info.started:
            postgres.down(root)


def archive_rate(url: str, migrate_url: str, fixes: int, tmp: Path) -> float:
    """Fixes/s through store_bench's archive path (decode, project, batched insert)."""
    store = Store(url, migrate_url=migrate_url)
    migrate.upgrade(store)
    settings = Settings(database_url=url, state_dir=tmp)
    devices = 100
    start = datetime(2026, 9, 1, tzinfo=UTC)
    with store.write() as session:
        for d in range(devices):
            offenders.put_conditions(
                session,
                conditions=Conditions(offender_id=f"off-{d:04d}", device_ids=[f"tag-{d:04d}"]),
                changed_at=start,
            )
    spent, _ = store_bench.archive(store, settings, devices, fixes, start, 5000)
    with store.read() as session:
        stored = trail.count_fixes(session)
    store.dispose()
    return stored / spent


def query_figures(url: str, migrate_url: str, tags: int, days: int, n: int) -> dict:
    """Scene search and person-day trail p50/p95 on a ``tags`` × ``days`` archive."""
    store = Store(url, migrate_url=migrate_url)
    migrate.upgrade(store)
    t = time.perf_counter()
    stored = scene_bench.build_archive(store, tags, days)
    built = time.perf_counter() - t
    if store.dialect == "postgresql":
        # What autovacuum does to an insert-only table (PostgreSQL 13+) soon after a load: it
        # sets the visibility map, without which no index-only scan skips the heap.
        owner = Store(migrate_url)
        with owner.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) fixes"))
        owner.dispose()
    scenes = scene_bench.make_scenes(store, tags, days, n)
    settings = SceneSettings()
    scene_ms, scene_cpu_ms = [], []
    for scene in scenes:
        t, c = time.perf_counter(), time.process_time()
        with store.read() as session:
            retro.search(session, scene, settings, scene_bench.CRS)
        scene_ms.append((time.perf_counter() - t) * 1000)
        scene_cpu_ms.append((time.process_time() - c) * 1000)
    rng = random.Random(2)
    trail_ms = []
    for _ in range(n):
        t0 = scene_bench.START + timedelta(days=rng.randrange(days))
        t = time.perf_counter()
        with store.read() as session:
            trail.offender_trail(
                session,
                offender_id=f"off-{rng.randrange(tags):04d}",
                t0=t0,
                t1=t0 + timedelta(days=1),
            )
        trail_ms.append((time.perf_counter() - t) * 1000)
    store.dispose()
    pct = lambda v, q: round(float(np.percentile(v, q)), 1)  # noqa: E731
    return {
        "stored_fixes": stored,
        "build_fixes_per_s": round(stored / built),
        "scene_p50_ms": pct(scene_ms, 50),
        "scene_p95_ms": pct(scene_ms, 95),
        "scene_cpu_p95_ms": pct(scene_cpu_ms, 95),
        "trail_p50_ms": pct(trail_ms, 50),
        "trail_p95_ms": pct(trail_ms, 95),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    parser.add_argument("--readings", type=int, default=None, help="per worker count")
    parser.add_argument("--fixes", type=int, default=None, help="archive-rate fixes per engine")
    parser.add_argument("--tags", type=int, default=None, help="query archive: tags")
    parser.add_argument("--days", type=int, default=None, help="query archive: days")
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--pg-url", default=None, help="an empty PostgreSQL database (service)")
    parser.add_argument("--pg-migrate-url", default=None, help="its owner role URL")
    parser.add_argument("--skip-workers", action="store_true", help="databases only")
    parser.add_argument("--skip-stores", action="store_true", help="workers only")
    args = parser.parse_args(argv)
    q = args.quick
    n_readings = args.readings or (20_000 if q else 200_000)
    n_fixes = args.fixes or (30_000 if q else 500_000)
    tags, days = args.tags or (40 if q else 500), args.days or (1 if q else 7)
    n_queries = args.queries or (50 if q else 200)
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"{cores} cores, load average {load:.1f} at the start")
    figures: dict = {"cores": cores, "load_avg_start": round(load, 1)}
    work = Path(tempfile.mkdtemp(prefix="em-scale-bench-"))
    try:
        if not args.skip_workers:
            broker_settings = get_settings()
            info = devstack.up(broker_settings)
            runs = []
            msgs = pipeline_bench.readings(n_readings)
            try:
                for k in (1, 2, 3):
                    r = workers_run(info.bootstrap, k, msgs, work)
                    runs.append(r)
                    print(
                        f"{k} worker(s), {PARTITIONS} partitions: {r['readings_per_s']:,} readings/s "
                        f"end to end ({r['readings_per_s'] / cores:,.0f}/s per machine core); "
                        f"{r['readings_per_worker_cpu_s']:,} readings per worker CPU-second"
                    )
            finally:
                if info.started:
                    devstack.down(broker_settings)
            figures["workers"] = runs
        with (
            engines(args.pg_url, args.pg_migrate_url, work)
            if not args.skip_stores
            else (contextlib.nullcontext({})) as urls
        ):
            figures["engines"] = {}
            for engine, (url, murl) in urls.items():
                rate = archive_rate(url, murl, n_fixes, work)
                print(f"{engine}: archive {rate:,.0f} fixes/s ({n_fixes:,} fixes)")
                _empty_fixes(murl)  # the query archive starts from no fixes
                got = query_figures(url, murl, tags, days, n_queries)
                print(
                    f"{engine}: {got['stored_fixes']:,} fixes; scene search p50 "
                    f"{got['scene_p50_ms']} ms, p95 {got['scene_p95_ms']} ms (target < 100; "
                    f"this process's CPU p95 {got['scene_cpu_p95_ms']} ms); "
                    f"person-day trail p50 {got['trail_p50_ms']} ms, p95 {got['trail_p95_ms']} ms"
                )
                figures["engines"][engine] = {"archive_fixes_per_s": round(rate), **got}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["load_avg_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(figures))
    return 0


def _empty_fixes(migrate_url: str) -> None:
    """Delete the archive-rate run's fixes (as the owner)."""
    store = Store(migrate_url)
    with store.write() as session:
        session.execute(
            text("DELETE FROM fixes" if store.dialect == "sqlite" else "TRUNCATE fixes")
        )
    store.dispose()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
