"""Crime batches end to end on the real broker: the CLI imports a generated batch → scenes on
the topic → the archiver's scene consumer matches them and finishes the batch's run → the
report; a resent batch; the drop folder."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import pytest

from em_service import kafka_io
from em_service.contracts import Alert
from em_service.devstack import ensure_topics
from em_service.scenes import store as scene_store
from em_service.scenes.batches import store as batch_store
from em_service.scenes.batches.commands import demo_batches
from em_service.settings import Settings
from tests.scenes.batch_data import BATCH, NOW, batch_csv
from tests.scenes.helpers import W0, enrol, scene_msg
from tests.scenes.test_batch_runs import AT, PASSED, H, _crimes, _people
from tests.service_env import ServiceEnv, free_port
from tests.store.factories import fresh_db

pytestmark = pytest.mark.kafka


def _cli(env: ServiceEnv, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "em_service.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env.env},
        timeout=120,
        check=False,
    )


def test_batch_import_matched_by_the_archiver(
    kafka_bootstrap: str, tmp_path: Path, sqlite_template_dir: Path
) -> None:
    store = fresh_db(sqlite_template_dir, tmp_path / "em.db")
    enrol(store, _people())
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env["EM_ARCHIVER_METRICS_PORT"] = str(free_port())
    env.env["EM_TRAIL_RETENTION_DAYS"] = str(100 * 365)
    # Every process runs as if it were the morning after the batch day (fixed clock).
    env.env["EM_WALL_CLOCK_OFFSET_S"] = str((NOW - datetime.now(UTC)).total_seconds())
    s = env.settings
    ensure_topics(s, kafka_bootstrap)
    mark = asyncio.run(kafka_io.end_offsets(kafka_bootstrap, s.topic_alerts))
    path = tmp_path / "knt.csv"
    bad = b"Kent Police,BIAD,x,KNT20261021,CR-BAD,20261021010000,20261021140000,1,1,,,OSGB36,\r\n"
    path.write_bytes(batch_csv(_crimes()) + bad)

    def runs() -> list[tuple[int, str, str]]:
        with store.read() as ses:
            return [(r.run_id, r.trigger, r.status) for r in batch_store.runs_of(ses, BATCH)]

    try:
        # --check touches nothing (no database, no Kafka needed).
        checked = _cli(
            env, "scenes", "import", "--format", "crime-batch", "--check", "--json", str(path)
        )
        report = json.loads(checked.stdout)
        assert checked.returncode == 1 and (report["accepted"], report["rejected"]) == (3, 1)
        assert report["errors"] == [
            {
                "line": 4,
                "crime_reference": "CR-BAD",
                "reason": "window of opportunity 13.0 h is longer than 12 h",
            }
        ]
        assert runs() == []

        env.start("archiver", log_name="archiver")
        done = _cli(env, "scenes", "import", "--format", "crime-batch", "--json", str(path))
        assert done.returncode == 1, done.stderr
        assert json.loads(done.stdout)["runs"] == {BATCH: {"trigger": "upload", "run_id": 1}}
        env.wait_until(lambda: runs() == [(1, "upload", "done")], 60, what="run 1 done")
        with store.read() as ses:
            by_crime = batch_store.results(ses, BATCH)
        assert by_crime == {AT: {"off-at": "at_scene"}, PASSED: {"off-pass": "passed_by"}}
        records = asyncio.run(
            kafka_io.read_since(kafka_bootstrap, s.topic_alerts, mark, want=2, timeout_s=30)
        )
        alerts = [msgspec.json.decode(r.value, type=Alert) for r in records]
        assert sorted(a.details["confidence"] for a in alerts) == ["at_scene", "passed_by"]

        # The force resends the batch: same crimes, updated; nothing duplicated, nothing new.
        again = _cli(env, "scenes", "import", "--format", "crime-batch", str(path))
        assert again.returncode == 1 and "3 accepted, 1 rejected" in again.stdout
        env.wait_until(lambda: runs()[0] == (2, "resend", "done"), 60, what="run 2 done")
        with store.read() as ses:
            (run2, _run1) = batch_store.runs_of(ses, BATCH)
            assert batch_store.run_dict(run2)["changes"] == []
            assert batch_store.get_batch(ses, BATCH).sends == 2
            assert len(scene_store.list_scenes(ses)[0]) == 3

        out = tmp_path / "report.csv"
        rep = _cli(env, "scenes", "batch-report", BATCH, "--format", "csv", "-o", str(out))
        assert rep.returncode == 0, rep.stderr
        verified = _cli(env, "evidence", "verify", str(out))
        assert verified.returncode == 0 and "OK:" in verified.stdout, verified.stdout
        summary = json.loads(_cli(env, "scenes", "batch-report", BATCH).stdout)
        assert (summary["crimes_matched"], summary["wearers_matched"]) == (2, 2)
        assert summary["run"]["trigger"] == "resend"

        # A force that delivers files: the drop folder imports and files them with a report.
        drop = tmp_path / "drop"
        drop.mkdir()
        (drop / "esx.csv").write_bytes(
            batch_csv(_crimes()[:1], force="ESX", day=date(2026, 10, 21), datum="WGS84")
        )
        (drop / "junk.csv").write_bytes(b"not,a,batch\r\n")
        watched = _cli(env, "scenes", "watch-batches", str(drop), "--once")
        assert watched.returncode == 0, watched.stderr
        assert json.loads((drop / "done" / "esx.csv.report.json").read_text())["accepted"] == 1
        junk = json.loads((drop / "rejected" / "junk.csv.report.json").read_text())
        assert "not a 13-column crime batch" in junk["file_rejected"]
        assert sorted(p.name for p in drop.glob("*.csv")) == []
        env.wait_until(
            lambda: _status(store, "ESX20261021") == "done", 60, what="drop-folder batch run done"
        )

        # The demo's step: simulated scenes written as a force's daily batch, imported, matched.
        demo = tmp_path / "demo"
        demo.mkdir()
        settings = Settings(**{k[3:].lower(): v for k, v in env.env.items()})
        scene = scene_msg("sc-demo", start=W0 + H, end=W0 + 4 * H, crime_reference="SIM/1")
        lines = demo_batches(settings, [scene], demo, force_code="DUR", wait_s=60)
        assert lines == ["crime batch DUR20261021: 1 crimes, 1 matched, 1 wearers; run 4 done"]
    finally:
        env.stop_all()
        store.dispose()
    assert "Traceback" not in env.log("archiver")


def _status(store, batch_id: str) -> str | None:
    with store.read() as ses:
        runs = batch_store.runs_of(ses, batch_id)
        return runs[0].status if runs else None
