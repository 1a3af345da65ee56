"""One retention table covers every location the store holds; after a retention run none older
than its cutoff remains anywhere (both engines)."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import msgspec
from sqlalchemy import Column, Double, MetaData, String, Table, Text, func, select

from em_service.console.sessions import Identity, SessionStore
from em_service.scenes import retro
from em_service.scenes import store as scene_store
from em_service.scenes.batches import runs, service
from em_service.scenes.batches.config import BatchSettings
from em_service.scenes.config import SceneSettings
from em_service.store import Store, alerts, retention, trail
from em_service.store.models import Base
from em_service.store.retention import NO_LOCATION, RETAINED
from tests.scenes.batch_data import DAY, batch_csv, crime
from tests.scenes.helpers import W0, enrol, readings, stand
from tests.store.factories import alcohol, alert

#: Column names that say "a position" (or a cell, an evidence record or a free-form place).
LOCATION = re.compile(
    r"(^|_)(lat|lon|lng|latitude|longitude|easting|northing|x|y|geom|geometry|point|cell|"
    r"location|position|place|address|postcode|evidence|wkt|geojson)(_|$)"
)


def undeclared(metadata: MetaData) -> list[str]:
    """Columns that look like a location, or are free text/JSON, declared nowhere."""
    declared = {(r.table, c) for r in RETAINED for c in r.columns}
    declared |= {(t, c) for t, cols in NO_LOCATION.items() for c in cols}
    out = []
    for table in metadata.sorted_tables:
        for col in table.columns:
            looks = LOCATION.search(col.name) or col.name.endswith("_json")
            looks = looks or isinstance(col.type, Text)
            if looks and (table.name, col.name) not in declared:
                out.append(f"{table.name}.{col.name}")
    return out


def test_every_location_column_of_the_models_has_a_retention() -> None:
    assert undeclared(Base.metadata) == []


def test_a_new_table_with_a_position_is_caught() -> None:
    md = MetaData()
    Table("visits", md, Column("id", String), Column("home_lat", Double), Column("note", Text))
    Table("hops", md, Column("where_json", String), Column("x", Double))
    assert undeclared(md) == ["hops.where_json", "hops.x", "visits.home_lat", "visits.note"]


def test_the_retention_table_names_real_columns() -> None:
    tables = Base.metadata.tables
    for r in RETAINED:
        assert set(r.columns) <= set(tables[r.table].c.keys()), r.table
        aged = tables[r.via[1]] if r.via else tables[r.table]
        assert r.aged_by in aged.c, r.table
        assert r.setting is None or r.action != "kept"
    for table, cols in NO_LOCATION.items():
        assert set(cols) <= set(tables[table].c.keys()), table
    overlap = {(r.table, c) for r in RETAINED for c in r.columns} & {
        (t, c) for t, cols in NO_LOCATION.items() for c in cols
    }
    assert overlap == set()


# --- Nothing older than the cutoff anywhere ----------------------------------------------------

H = timedelta(hours=1)
D = timedelta(days=1)
MIN = timedelta(minutes=1)
SCENES = SceneSettings()
CRS = "EPSG:27700"
OLD, NEW = W0, W0 + 10 * D  # two periods of everything
NOW = W0 + 25 * D
KEEP = timedelta(days=20)  # cutoff W0 + 5 days: OLD goes, NEW stays
#: A crime whose window starts just after the cutoff, with its wearer there from before it:
#: its evidence reaches back past the cutoff, so it must go too.
EDGE = NOW - KEEP + timedelta(minutes=30)
WHERE = {"lat": 51.45, "lon": -0.98, "accuracy_m": 8.0}


def _seed(store: Store, folder: Path) -> None:
    people = {"off-at": readings("tag-at", stand(EDGE - 45 * MIN, 90, 30.0, 0.0))}
    for i, t in enumerate((OLD, NEW)):
        people["off-at"] += readings("tag-at", stand(t + 2 * H, 20, 30.0, 0.0))
        with store.write() as s:
            trail.insert_alcohol(s, readings=[alcohol(ts=t)])
            alerts.apply_alert(s, alert(f"alert-000{i}", occurred_at=t + 2 * H, location=WHERE))
    enrol(store, people)
    batches = ((OLD + H, DAY), (EDGE, EDGE.date()), (NEW + H, DAY + timedelta(days=10)))
    for start, day in batches:
        t = start - H
        received = service.receive(
            store,
            batch_csv([crime(f"CR-{day:%d}", start=start, hours=3)], day=day),
            batch_settings=BatchSettings(),
            scene_settings=SCENES,
            crs=CRS,
            source="folder",
            file_name="knt.csv",
            now=t + D,
        )
        for scene in received.scenes:  # what the archiver does with each published scene
            retro.run(store, scene, SCENES, crs=CRS, now=t + D)
            runs.note_searched(store, scene.scene_id, SCENES, now=t + D, late=False)
        path = folder / "done" / f"knt-{day:%Y%m%d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        os.utime(path, ((t + D).timestamp(),) * 2)
    for signed_in in (NOW - H, NOW - D):  # live, then expired (its own sign-in purges nothing)
        clock = signed_in.timestamp
        sessions = SessionStore(store, idle_s=1800, max_s=12 * 3600, clock=clock)
        _, session = sessions.open(Identity("investigator-1", token_sha256=None))
        sessions.add_purpose(session, "scene-1")


def _evidence_times(store: Store) -> list[float]:
    times = []
    with store.read() as s:
        for row in s.scalars(select(scene_store.SceneMatchRow)):
            record = msgspec.json.decode(row.evidence_json)["record"]
            times += record["fixes"]["ts_s"]
    return times


def test_after_retention_no_location_older_than_its_cutoff_remains(
    store: Store, tmp_path: Path
) -> None:
    _seed(store, tmp_path)
    before = retention.oldest(store)
    scene_cutoff = NOW - KEEP
    sessions_cutoff = {"console_sessions": NOW}  # sessions expire by the wall clock, not days
    assert all(
        t is not None and t < sessions_cutoff.get(table, scene_cutoff)
        for table, t in before.items()
    ), before
    assert min(_evidence_times(store)) < scene_cutoff.timestamp()

    report = retention.purge_trail(store, older_than=KEEP, now=NOW, drop_folder=tmp_path)

    assert report.cutoff == report.scene_cutoff == scene_cutoff
    after = retention.oldest(store)
    for r in RETAINED:
        if r.action != "kept":
            assert after[r.table] is not None, f"{r.table}: the newer data must stay"
            assert after[r.table] >= report.cutoff_for(r), r.table
    assert min(_evidence_times(store)) >= scene_cutoff.timestamp()
    with store.read() as s:
        pending = [msgspec.json.decode(a) for *_, a in scene_store.pending_alerts(s)]
        assert pending and all(a["occurred_at"] >= scene_cutoff.isoformat() for a in pending)
        located = s.execute(
            select(func.count()).select_from(Base.metadata.tables["alerts"])
        ).scalar()
        assert located == 2  # the alerts themselves are kept
    kept = sorted(p.name for p in (tmp_path / "done").iterdir())
    assert kept == ["knt-20261025.csv", "knt-20261031.csv"]  # received after the cutoff
    assert report.counts["batch_files"] == 1
    assert all(n >= 1 for k, n in report.counts.items()), report.counts
