"""PostgreSQL spatial + time index: PostGIS geometry(Point, 27700) GiST vs the grid-cell B-tree.

One table of simulated fixes (tags wandering round their homes, one fix a minute) carries both
encodings: the service's ``cell`` (em_service.store.spatial_index) with a B-tree on
``(cell, ts_ms)``, and a PostGIS point with a GiST index on ``(geom, ts_ms)`` (btree_gist). The
same scene queries (radius 200 m, 2 h window, around a place a tag really was) run on each and
must find the same fixes; a one-tag-day trail query (``(device_id, ts_ms)``, the service's
unique key) is timed as well. Needs a PostgreSQL with PostGIS and btree_gist, e.g.
``em-service devstack postgres up`` and ``--database-url`` = its EM_DATABASE_MIGRATE_URL.
The table is UNLOGGED and dropped at the end. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time

from sqlalchemy import create_engine, text

from em_service.store.spatial_index import CELL_M, cells_near

TABLE = "bench_index_fixes"
T0_MS = 1_790_000_000_000  # a fixed epoch (2026-09-21): the data never depends on today
MINUTE_MS = 60_000
RADIUS_M = 200.0
WINDOW_MS = 2 * 3600_000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _home(d: int) -> tuple[float, float]:
    return 400_000.0 + (d * 7919) % 60_000, 100_000.0 + (d * 104_729) % 100_000


def _where(d: int, m: int) -> tuple[float, float]:
    """Where tag ``d`` is in minute ``m`` (the SQL below, without its ≤ 50 m noise)."""
    hx, hy = _home(d)
    return hx + 2000 * math.sin(m / 97.0 + d), hy + 2000 * math.cos(m / 131.0 + d)


FILL = f"""
INSERT INTO {TABLE} (device_id, ts_ms, x_m, y_m)
SELECT 'tag-' || d, {T0_MS} + m * {MINUTE_MS}::bigint,
       400000 + (d * 7919) % 60000 + 2000 * sin(m / 97.0 + d) + random() * 50,
       100000 + (d * 104729) % 100000 + 2000 * cos(m / 131.0 + d) + random() * 50
FROM generate_series(0, :tags - 1) AS d, generate_series(:m0, :m1 - 1) AS m
"""
# cell exactly as spatial_index.cell_of: (floor(x/CELL)+2^25) * 2^26 + floor(y/CELL)+2^25
CELL_SQL = (
    f"((floor(x_m / {CELL_M})::bigint + 33554432) * 67108864 "
    f"+ floor(y_m / {CELL_M})::bigint + 33554432)"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="owner role URL (creates a table)")
    parser.add_argument("--fixes", type=int, default=None, help="default 5M (--quick 500k)")
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    total = args.fixes or (500_000 if args.quick else 5_000_000)
    minutes = -(-total // args.tags)
    engine = create_engine(args.database_url)
    out: dict[str, float | int | str] = {"fixes": args.tags * minutes, "tags": args.tags}
    try:
        with engine.begin() as c:
            c.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
            c.execute(
                text(
                    f"CREATE UNLOGGED TABLE {TABLE} (device_id text, ts_ms bigint, "
                    "x_m double precision, y_m double precision, cell bigint, "
                    "geom geometry(Point, 27700))"
                )
            )
        began = time.perf_counter()
        step = max(1, 200_000 // args.tags)
        for m0 in range(0, minutes, step):
            with engine.begin() as c:
                c.execute(text(FILL), {"tags": args.tags, "m0": m0, "m1": min(minutes, m0 + step)})
        with engine.begin() as c:
            c.execute(
                text(
                    f"UPDATE {TABLE} SET cell = {CELL_SQL}, "
                    "geom = ST_SetSRID(ST_MakePoint(x_m, y_m), 27700)"
                )
            )
        out["fill_s"] = round(time.perf_counter() - began, 1)
        print(f"{out['fixes']:,} fixes of {args.tags} tags in {out['fill_s']} s", file=sys.stderr)
        for name, ddl in (
            ("trail_btree", f"CREATE INDEX ix_bench_trail ON {TABLE} (device_id, ts_ms)"),
            ("cell_btree", f"CREATE INDEX ix_bench_cell ON {TABLE} (cell, ts_ms)"),
            ("geom_gist", f"CREATE INDEX ix_bench_geom ON {TABLE} USING gist (geom, ts_ms)"),
        ):
            t = time.perf_counter()
            with engine.begin() as c:
                c.execute(text(ddl))
                size = c.execute(text(f"SELECT pg_relation_size('ix_bench_{name.split('_')[0]}')"))
                out[f"{name}_build_s"] = round(time.perf_counter() - t, 1)
                out[f"{name}_mb"] = round(size.scalar() / 1e6, 1)
        with engine.begin() as c:
            c.execute(text(f"ANALYZE {TABLE}"))
            out["table_mb"] = round(
                c.execute(text(f"SELECT pg_relation_size('{TABLE}')")).scalar() / 1e6, 1
            )

        rng = random.Random(7)
        cell_ms, gist_ms, hits = [], [], []
        cell_q = text(
            f"SELECT count(*) FROM {TABLE} WHERE cell = ANY(:cells) "
            "AND ts_ms BETWEEN :lo AND :hi "
            "AND (x_m - :x) * (x_m - :x) + (y_m - :y) * (y_m - :y) <= :r2"
        )
        gist_q = text(
            f"SELECT count(*) FROM {TABLE} WHERE "
            "ST_DWithin(geom, ST_SetSRID(ST_MakePoint(:x, :y), 27700), :r) "
            "AND ts_ms BETWEEN :lo AND :hi"
        )
        with engine.connect() as c:
            for i in range(args.queries):
                d, m = rng.randrange(args.tags), rng.randrange(minutes)
                x, y = _where(d, m)
                lo = T0_MS + m * MINUTE_MS - WINDOW_MS // 2
                p = {"x": x, "y": y, "r": RADIUS_M, "r2": RADIUS_M**2, "lo": lo}
                p["hi"] = lo + WINDOW_MS
                # alternate which goes first, so neither always meets a warm cache
                order = [("cell", cell_q, cell_ms), ("gist", gist_q, gist_ms)]
                found = {}
                for name, q, times in order if i % 2 else order[::-1]:
                    params = p | {"cells": cells_near(x, y, RADIUS_M)} if name == "cell" else p
                    t = time.perf_counter()
                    found[name] = c.execute(q, params).scalar()
                    times.append((time.perf_counter() - t) * 1000)
                if found["cell"] != found["gist"]:
                    raise SystemExit(f"indexes disagree at {x:.0f},{y:.0f}: {found}")
                hits.append(found["cell"])
            trail_ms, trail_n = [], []
            trail_q = text(
                f"SELECT ts_ms, x_m, y_m FROM {TABLE} WHERE device_id = :d "
                "AND ts_ms BETWEEN :lo AND :hi ORDER BY ts_ms"
            )
            for _ in range(args.queries):
                d, m = rng.randrange(args.tags), rng.randrange(max(1, minutes - 1440))
                lo = T0_MS + m * MINUTE_MS
                t = time.perf_counter()
                rows = c.execute(trail_q, {"d": f"tag-{d}", "lo": lo, "hi": lo + 86_400_000})
                trail_n.append(len(rows.all()))
                trail_ms.append((time.perf_counter() - t) * 1000)
            plans = {
                name: " ".join(
                    r[0]
                    for r in c.execute(
                        text("EXPLAIN " + q.text),
                        {"x": 450_000.0, "y": 150_000.0, "r": 200.0, "r2": 40_000.0}
                        | {"lo": T0_MS, "hi": T0_MS + WINDOW_MS}
                        | (
                            {"cells": cells_near(450_000.0, 150_000.0, 200.0)}
                            if name == "cell"
                            else {}
                        ),
                    )
                )
                for name, q in (("cell", cell_q), ("gist", gist_q))
            }
        for name, times in (("cell_btree", cell_ms), ("geom_gist", gist_ms), ("trail", trail_ms)):
            out[f"{name}_p50_ms"] = round(_pct(times, 50), 2)
            out[f"{name}_p95_ms"] = round(_pct(times, 95), 2)
        out["scene_hits_mean"] = round(statistics.mean(hits), 1)
        out["trail_fixes_median"] = statistics.median(trail_n)
        out["cell_plan_uses"] = "ix_bench_cell" if "ix_bench_cell" in plans["cell"] else "other"
        out["gist_plan_uses"] = "ix_bench_geom" if "ix_bench_geom" in plans["gist"] else "other"
        for k in ("cell_btree", "geom_gist", "trail"):
            print(f"{k}: p50 {out[k + '_p50_ms']} ms, p95 {out[k + '_p95_ms']} ms", file=sys.stderr)
    finally:
        with engine.begin() as c:
            c.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        engine.dispose()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
