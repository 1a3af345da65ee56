"""Scene bench: retrospective scene search latency over a large trail archive, and import rate.

Simulated data only. ``tags`` tags in ten English towns, one fix a minute for ``days`` days:
each tag lives somewhere within 4 km of its town centre and moves between home and places in
town (stays of hours, journeys at walking-to-urban-driving speed, GPS jitter, 5–25 m accuracy).
Then ``scenes`` scenes (100 m radius, 12 h windows): half where and when some tag was (so there
is a match to find), half anywhere in the towns. For each scene the retrospective search runs
as the archiver runs it (:func:`em_service.scenes.retro.search`: spatial-index query, the
candidates' trails, matching) and its latency is recorded; then the scenes are imported from a
CSV with explicit windows (parse, validate, project, store; Kafka aside unless ``--kafka``).

    python bench/scene_bench.py            # 500 tags × 7 days = 5,040,000 fixes
    python bench/scene_bench.py --quick    # 100 tags × 2 days = 288,000 fixes (< 2 min)

The last line of output is one JSON object:
``{"stored_fixes": …, "scene_query_p50_ms": …, "scene_query_p95_ms": …, "import_scenes_per_s": …}``
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from em_service.contracts import Conditions, Scene
from em_service.scenes import retro
from em_service.scenes import store as scene_store
from em_service.scenes.config import SceneSettings
from em_service.scenes.importer import import_file
from em_service.store import Store, migrate, offenders, trail
from em_service.store.models import Fix
from em_service.store.spatial_index import cell_of
from em_service.store.trail import FIX_COLUMNS
from em_service.store.types import bulk_insert_ignore
from geofences.projection import get_projector

CRS = "EPSG:27700"
TOWNS = [
    (-0.97, 51.45),
    (-1.26, 51.75),
    (-0.13, 51.51),
    (-1.90, 52.48),
    (-2.24, 53.48),
    (-1.55, 53.80),
    (-1.47, 53.38),
    (-1.15, 52.95),
    (-2.59, 51.45),
    (-1.40, 50.90),
]
START = datetime(2026, 9, 1, tzinfo=UTC)
CSV_HEADER = (
    "scene_id",
    "crime_reference",
    "crime_type",
    "lat",
    "lon",
    "window_start",
    "window_end",
    "reported_at",
    "radius_m",
)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


class Movement:
    """Positions of every tag, minute by minute (projected metres), generated step by step."""

    def __init__(self, tags: int, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        proj = get_projector(CRS)
        cx, cy = proj.to_xy([t[0] for t in TOWNS], [t[1] for t in TOWNS])
        town = np.arange(tags) % len(TOWNS)
        self.centre = np.column_stack([cx[town], cy[town]])
        self.home = self.centre + self._disc(tags, 4000.0)
        self.pos = self.home.copy()
        self.anchor = self.home.copy()

    def _disc(self, n: int, r: float) -> np.ndarray:
        theta = self.rng.uniform(0, 2 * np.pi, n)
        rad = r * np.sqrt(self.rng.uniform(0, 1, n))
        return np.column_stack([rad * np.cos(theta), rad * np.sin(theta)])

    def step(self) -> np.ndarray:
        """Advance one minute; return positions (n, 2)."""
        n = len(self.pos)
        move = self.rng.random(n) < 1 / 240  # a new destination about every 4 h
        if move.any():
            k = int(move.sum())
            home = self.rng.random(k) < 0.5
            dest = np.where(home[:, None], self.home[move], self.centre[move] + self._disc(k, 3000))
            self.anchor[move] = dest
        self.pos += 0.1 * (self.anchor - self.pos) + self.rng.normal(0, 8.0, (n, 2))
        return self.pos.copy()


def build_archive(store: Store, tags: int, days: int) -> int:
    """Store ``tags`` × ``days`` × 1440 fixes; return how many."""
    proj = get_projector(CRS)
    with store.write() as session:
        for d in range(tags):
            offenders.put_conditions(
                session,
                conditions=Conditions(offender_id=f"off-{d:04d}", device_ids=[f"tag-{d:04d}"]),
                changed_at=START - timedelta(days=1),
            )
    move = Movement(tags)
    minutes = days * 1440
    devices = [f"tag-{d:04d}" for d in range(tags)]
    chunk = max(1, 100_000 // tags)
    began, last = time.perf_counter(), time.monotonic()
    for m0 in range(0, minutes, chunk):
        span = range(m0, min(m0 + chunk, minutes))
        xy = np.stack([move.step() for _ in span])  # (minutes, tags, 2)
        x, y = xy[..., 0].ravel(), xy[..., 1].ravel()
        lon, lat = proj.to_lonlat(x, y)
        acc = move.rng.uniform(5.0, 25.0, len(x))
        cells = cell_of(x, y).tolist()
        rows = []
        k = 0
        for m in span:
            ts = int((START + timedelta(minutes=m)).timestamp() * 1000)
            for dev in devices:
                rows.append(
                    (
                        dev,
                        ts,
                        m,
                        float(lat[k]),
                        float(lon[k]),
                        float(acc[k]),
                        None,
                        None,
                        None,
                        float(x[k]),
                        float(y[k]),
                        cells[k],
                    )
                )
                k += 1
        with store.write() as session:
            bulk_insert_ignore(session, Fix.__table__, FIX_COLUMNS, rows)
        if time.monotonic() - last > 15:
            done = (m0 + len(span)) * tags
            rate = done / (time.perf_counter() - began)
            print(f"  … {done:,} fixes stored, {rate:,.0f}/s", file=sys.stderr)
            last = time.monotonic()
    with store.read() as session:
        return trail.count_fixes(session)


def make_scenes(store: Store, tags: int, days: int, n: int, seed: int = 3) -> list[Scene]:
    """Return ``n`` scenes: half where and when a tag was, half anywhere in the towns."""
    rng = np.random.default_rng(seed)
    proj = get_projector(CRS)
    span_min = days * 1440
    scenes = []
    for i in range(n):
        start_min = int(rng.integers(0, max(1, span_min - 720)))
        start = START + timedelta(minutes=start_min)
        if i % 2 == 0:
            d = int(rng.integers(tags))
            at = start + timedelta(minutes=int(rng.integers(0, 720)))
            with store.read() as session:
                fixes = trail.offender_trail(
                    session, offender_id=f"off-{d:04d}", t0=at, t1=at + timedelta(minutes=1)
                )
            lon, lat = (fixes[0].lon, fixes[0].lat) if fixes else TOWNS[d % len(TOWNS)]
            x, y = proj.to_xy(lon, lat)
            x, y = float(x) + rng.uniform(-40, 40), float(y) + rng.uniform(-40, 40)
        else:
            cx, cy = proj.to_xy(*TOWNS[i % len(TOWNS)])
            r, th = 4000 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            x, y = float(cx) + r * np.cos(th), float(cy) + r * np.sin(th)
        lon, lat = proj.to_lonlat(x, y)
        scenes.append(
            Scene(
                scene_id=f"sc-bench-{i:05d}",
                crime_reference=f"BENCH/{i:05d}",
                crime_type="burglary_dwelling",
                lat=round(float(lat), 6),
                lon=round(float(lon), 6),
                window_start=start,
                window_end=start + timedelta(hours=12),
                reported_at=start + timedelta(hours=13),
                radius_m=100.0,
            )
        )
    return scenes


def write_csv(path: Path, scenes: list[Scene]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for s in scenes:
            w.writerow(
                [
                    s.scene_id.replace("bench", "imp"),
                    s.crime_reference,
                    s.crime_type,
                    s.lat,
                    s.lon,
                    s.window_start.isoformat(),
                    s.window_end.isoformat(),
                    s.reported_at.isoformat(),
                    s.radius_m,
                ]
            )


def time_import(store: Store, path: Path, settings: SceneSettings, bootstrap: str | None) -> float:
    """Import ``path`` (store; publish too with ``bootstrap``); return seconds."""

    def store_batch(batch: list[Scene]) -> None:
        with store.write() as session:
            scene_store.upsert_scenes(session, batch, crs=CRS, now=datetime.now(UTC))

    async def go() -> float:
        publish = None
        producer = None
        if bootstrap:
            from aiokafka import AIOKafkaProducer

            from em_service.contracts.codec import encode

            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
            await producer.start()

            async def publish(batch: list[Scene]) -> None:
                futures = [
                    await producer.send("bench.scenes", encode(s), key=s.scene_id.encode())
                    for s in batch
                ]
                await asyncio.gather(*futures)

        t = time.perf_counter()
        report = await import_file(
            path, settings, store_batch=store_batch, publish_batch=publish, progress=False
        )
        spent = time.perf_counter() - t
        if producer is not None:
            await producer.stop()
        assert not report.bad, report.bad[:3]
        return spent

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 tags × 2 days, 200 scenes")
    parser.add_argument("--tags", type=int, default=None)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--scenes", type=int, default=None)
    parser.add_argument("--db", type=Path, default=None, help="reuse/keep this database file")
    parser.add_argument("--kafka", default=None, help="bootstrap: also publish the import")
    args = parser.parse_args(argv)
    tags = args.tags or (100 if args.quick else 500)
    days = args.days or (2 if args.quick else 7)
    n_scenes = args.scenes or (200 if args.quick else 1000)
    settings = SceneSettings()

    with tempfile.TemporaryDirectory(prefix="scene-bench-") as tmp:
        path = args.db or Path(tmp) / "bench.db"
        fresh = not path.exists()
        store = Store(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
        migrate.upgrade(store)
        with store.read() as session:
            stored = trail.count_fixes(session)
        if fresh or stored == 0:
            print(f"storing {tags} tags × {days} days at one fix a minute …")
            t = time.perf_counter()
            stored = build_archive(store, tags, days)
            print(f"stored {stored:,} fixes in {time.perf_counter() - t:.0f} s")
        else:
            print(f"reusing {path}: {stored:,} fixes")
        scenes = make_scenes(store, tags, days, n_scenes)

        latencies, cpu, found, devices, fixes_read = [], [], Counter(), [], []
        for scene in scenes:
            t, c = time.perf_counter(), time.process_time()
            with store.read() as session:
                result = retro.search(session, scene, settings, CRS)
            latencies.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            found.update(m.confidence for m in result.result.matches)
            found["excluded"] += len(result.result.exclusions)
            found["undecided"] += len(result.result.undecided)
            devices.append(result.devices)
            fixes_read.append(result.fixes_read)
        print(
            f"retrospective search ({n_scenes} scenes, 100 m, 12 h; on average "
            f"{np.mean(devices):.1f} candidate devices, {np.mean(fixes_read):,.0f} fixes read): "
            f"p50 {_pct(latencies, 50):.1f} ms, p95 {_pct(latencies, 95):.1f} ms, "
            f"max {max(latencies):.1f} ms"
        )
        print(
            f"  CPU time of the same (this process only; the machine may be shared): "
            f"p50 {_pct(cpu, 50):.1f} ms, p95 {_pct(cpu, 95):.1f} ms"
        )
        print("  found: " + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))

        full = []
        for scene in scenes[:100]:
            t = time.perf_counter()
            retro.run(store, scene, settings, crs=CRS, now=datetime.now(UTC))
            full.append((time.perf_counter() - t) * 1000)
        print(
            f"search + store (first 100, with the scene upsert, matches, outbox): "
            f"p50 {_pct(full, 50):.1f} ms, p95 {_pct(full, 95):.1f} ms"
        )

        csv_path = Path(tmp) / "scenes.csv"
        write_csv(csv_path, scenes)
        spent = time_import(store, csv_path, settings, args.kafka)
        rate = len(scenes) / spent
        where = "published and stored" if args.kafka else "stored (Kafka aside)"
        print(f"import: {len(scenes)} scenes {where} in {spent:.2f} s = {rate:,.0f} scenes/s")
        store.dispose()

    print(
        json.dumps(
            {
                "stored_fixes": stored,
                "scene_query_p50_ms": round(_pct(latencies, 50), 2),
                "scene_query_p95_ms": round(_pct(latencies, 95), 2),
                "import_scenes_per_s": round(rate, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
