"""Crime batch bench: import a 1,000-crime MoJ 13-column batch and run its matching over a
large trail archive (simulated data only; the archive of :mod:`bench.scene_bench`).

    python bench/crime_batch_bench.py            # 500 tags × 7 days = 5,040,000 fixes
    python bench/crime_batch_bench.py --quick    # 100 tags × 2 days, 200 crimes
    python bench/crime_batch_bench.py --database-url postgresql+psycopg://… --migrate-url …

Import = parse and validate the file, store the batch, its crimes and their scenes, start the
run (Kafka aside). Run = what the archiver does per published crime: search, store the
matches, count the crime towards the run; the run's finish computes results and changes. The
last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE.parent), str(_HERE)]  # this checkout's em_service, scene_bench

from scene_bench import CRS, START, build_archive, make_scenes  # noqa: E402

from em_service.scenes import retro  # noqa: E402
from em_service.scenes.batches import report, runs, service  # noqa: E402
from em_service.scenes.batches import store as batch_store  # noqa: E402
from em_service.scenes.batches.config import BatchSettings  # noqa: E402
from em_service.scenes.batches.writer import BatchCrime, rows, to_csv  # noqa: E402
from em_service.scenes.config import SceneSettings  # noqa: E402
from em_service.store import Store, migrate, trail  # noqa: E402

CODES = ("BIAD", "BIAD", "AB", "BOTD", "RB", "TFP", "TOMV", "TFMV")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 tags × 2 days, 200 crimes")
    parser.add_argument("--db", type=Path, default=None, help="reuse/keep this database file")
    parser.add_argument(
        "--database-url",
        default=None,
        help="another database instead (e.g. PostgreSQL; its archive is reused if not empty)",
    )
    parser.add_argument("--migrate-url", default=None, help="its owner role's URL")
    args = parser.parse_args(argv)
    tags, days, n = (100, 2, 200) if args.quick else (500, 7, 1000)
    scene_settings, batch_settings = SceneSettings(), BatchSettings()
    day = (START + timedelta(days=days)).date()
    now = START + timedelta(days=days, hours=6)

    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        if args.database_url:
            store = Store(args.database_url, migrate_url=args.migrate_url or args.database_url)
        else:
            path = args.db or Path(tmp) / "bench.db"
            store = Store(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
        migrate.upgrade(store)
        with store.read() as session:
            stored = trail.count_fixes(session)
        if stored == 0:
            print(f"storing {tags} tags × {days} days at one fix a minute …")
            t = time.perf_counter()
            stored = build_archive(store, tags, days)
            print(f"stored {stored:,} fixes in {time.perf_counter() - t:.0f} s")
        scenes = make_scenes(store, tags, days, n)
        crimes = [
            BatchCrime(
                f"BENCH/{i:05d}", CODES[i % len(CODES)], s.window_start, s.window_end, s.lat, s.lon
            )
            for i, s in enumerate(scenes)
        ]
        data = to_csv(rows(crimes, force_code="WMP", day=day, datum="OSGB36"))

        t = time.perf_counter()
        received = service.receive(
            store,
            data,
            batch_settings=batch_settings,
            scene_settings=scene_settings,
            crs=CRS,
            source="bench",
            file_name="bench.csv",
            now=now,
        )
        import_s = time.perf_counter() - t
        assert not received.parsed.rejections, received.parsed.rejections[:3]
        (batch_id,) = received.runs
        print(f"import: {n} crimes parsed, stored, run started in {import_s:.2f} s")

        per_crime = []
        t = time.perf_counter()
        for scene in received.scenes:
            c = time.perf_counter()
            retro.run(store, scene, scene_settings, crs=CRS, now=now)
            runs.note_searched(store, scene.scene_id, scene_settings, now=now, late=False)
            per_crime.append((time.perf_counter() - c) * 1000)
        run_s = time.perf_counter() - t
        with store.read() as session:
            run = batch_store.runs_of(session, batch_id)[0]
            assert run.status == "done", run.status
            found = Counter(
                c for m in batch_store.results(session, batch_id).values() for c in m.values()
            )
            t = time.perf_counter()
            records = report.build(session, batch_id, generated_at=now)
            data_csv, _head = report.export(records, "csv")
            report_s = time.perf_counter() - t
        summary = records[1]
        print(
            f"run: {n} crimes searched and stored in {run_s:.1f} s (p50 "
            f"{np.percentile(per_crime, 50):.1f} ms, p95 {np.percentile(per_crime, 95):.1f} ms "
            f"per crime); found: {dict(sorted(found.items()))}"
        )
        print(f"report: {len(records)} records, CSV {len(data_csv):,} bytes in {report_s:.2f} s")
        store.dispose()

    print(
        json.dumps(
            {
                "engine": store.dialect,
                "stored_fixes": stored,
                "crimes": n,
                "import_s": round(import_s, 3),
                "import_crimes_per_s": round(n / import_s, 1),
                "run_s": round(run_s, 2),
                "run_p50_ms_per_crime": round(float(np.percentile(per_crime, 50)), 2),
                "run_p95_ms_per_crime": round(float(np.percentile(per_crime, 95)), 2),
                "report_s": round(report_s, 3),
                "crimes_matched": summary["crimes_matched"],
                "wearers_matched": summary["wearers_matched"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
