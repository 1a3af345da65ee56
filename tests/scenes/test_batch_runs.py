"""Crime batches on a real SQLite file: receive, resend, runs counted by searches, late data,
the per-batch report and its verification (the archiver's search called directly)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from em_service.scenes import evidence, retro
from em_service.scenes.batches import report, runs, service
from em_service.scenes.batches import store as batch_store
from em_service.scenes.batches.config import BatchSettings
from em_service.scenes.config import SceneSettings
from em_service.store import Store
from tests.scenes.batch_data import BATCH, NOW, batch_csv, crime
from tests.scenes.helpers import W0, enrol, readings, stand, walk

H = timedelta(hours=1)
SCENES = SceneSettings()
CRS = "EPSG:27700"
AT, PASSED, NOBODY = "CR-AT-1", "CR-PASS-2", "CR-NONE-3"


def _crimes(text: str = ""):
    return [
        crime(AT, "BIAD", start=W0 + H, hours=3, text=text),
        crime(PASSED, "RB", start=W0 + H, hours=3, dy_m=1000.0),
        crime(NOBODY, "TFMV", start=W0 + H, hours=3, dx_m=5000.0),
    ]


def _people() -> dict[str, list]:
    return {
        "off-at": readings("tag-at", stand(W0 + 2 * H, 20, 30.0, 0.0)),
        # 240 m between fixes: passes the scene between two of them, never observed inside.
        "off-pass": readings(
            "tag-pass", walk(W0 + 2 * H, (-1320.0, 1030.0), (1080.0, 1030.0), 90, 11)
        ),
    }


def _receive(store: Store, data: bytes, now=NOW) -> service.Received:
    return service.receive(
        store,
        data,
        batch_settings=BatchSettings(),
        scene_settings=SCENES,
        crs=CRS,
        source="cli",
        file_name="knt.csv",
        now=now,
    )


def _archiver(store: Store, received: service.Received, now, late: bool = False) -> None:
    """What the archiver's scene consumer does for each published scene."""
    for scene in received.scenes:
        retro.run(store, scene, SCENES, crs=CRS, now=now)
        runs.note_searched(store, scene.scene_id, SCENES, now=now, late=late)


def test_a_batch_is_matched_run_recorded_and_reported(store: Store) -> None:
    enrol(store, _people())
    bad = b"Kent Police,BIAD,x,KNT20261021,CR-BAD,2026,20261021010000,1,1,,,OSGB36,\r\n"
    received = _receive(store, batch_csv(_crimes('=cmd|" /C calc"!A0')) + bad)
    assert received.runs == {BATCH: ("upload", 1)} and len(received.scenes) == 3
    with store.read() as s:
        run = batch_store.runs_of(s, BATCH)[0]
        assert (run.status, run.crimes, run.crimes_searched) == ("running", 3, 0)
    later = NOW + timedelta(minutes=5)
    _archiver(store, received, later)
    with store.read() as s:
        (run,) = batch_store.runs_of(s, BATCH)
        done = batch_store.run_dict(run)
        records = report.build(s, BATCH, generated_at=later)
    assert done["status"] == "done" and done["crimes_searched"] == 3
    assert done["finished_at"] == later.isoformat() and done["seconds"] == 300.0
    assert done["parameters"]["radius_m_by_crime_type"]["BIAD"] == 50.0
    assert done["parameters"]["time_pad_s"] == SCENES.time_pad_s
    assert done["changes"] == [
        {"crime_reference": AT, "offender_id": "off-at", "before": None, "after": "at_scene"},
        {
            "crime_reference": PASSED,
            "offender_id": "off-pass",
            "before": None,
            "after": "passed_by",
        },
    ]
    header, summary, *body = records
    assert header["records"] == len(records) and header["run"]["run_id"] == 1
    assert {k: summary[k] for k in ("rows_received", "rows_accepted", "rows_rejected")} == {
        "rows_received": 4,
        "rows_accepted": 3,
        "rows_rejected": 1,
    }
    assert summary["rejections"] == [
        {
            "line": 4,
            "crime_reference": "CR-BAD",
            "reason": "crimeDateTimeFrom '2026' is not YYYYMMDDHHmmss",
        }
    ]
    assert (summary["crimes_matched"], summary["wearers_matched"]) == (2, 2)
    matches = {r["crime_reference"]: r for r in body if r["record"] == "match"}
    assert matches[AT]["confidence"] == "at_scene" and matches[AT]["dwell_s"] >= 19 * 60
    assert matches[PASSED]["confidence"] == "passed_by" and matches[PASSED]["fixes_inside"] == 0
    pos = [r for r in body if r["record"] == "position" and r["crime_reference"] == AT]
    assert [p["label"] for p in pos[:3]] == ["P1", "P2", "P3"]
    assert pos[0]["accuracy_m"] == 8.0 and pos[0]["time_local"].endswith("+01:00")
    assert [p["time_utc"] for p in pos] == sorted(p["time_utc"] for p in pos)

    # Both downloads verify; the CSV defuses the force's formula-like text.
    for fmt in ("csv", "geojson"):
        data, head = report.export(records, fmt)
        check = evidence.verify(data)
        assert check.ok and check.head == head, check.problems
    data, _ = report.export(records, "csv")
    cells = list(csv.reader(io.StringIO(data.decode())))
    details = [json.loads(r[11]) for r in cells if r[1] == "crime"]
    assert details[0]["crime_text"] == '=cmd|" /C calc"!A0'  # verbatim, inside a JSON cell
    starts = [c for row in cells for c in row[:11] if c.startswith(("=", "+", "-", "@"))]
    assert starts and all(float(c) < 0 for c in starts)  # negative longitudes only
    tampered = data.replace(b"passed_by", b"at_scene!", 1)
    assert not evidence.verify(tampered).ok


def test_a_resent_batch_updates_and_never_duplicates(store: Store) -> None:
    first = _receive(store, batch_csv(_crimes()))
    moved = _crimes()
    moved[2] = crime(NOBODY, "TFMV", start=W0 + H, hours=2, dx_m=4000.0)
    again = _receive(store, batch_csv(moved[1:]), now=NOW + H)
    assert again.runs == {BATCH: ("resend", 2)}
    assert sorted(s.scene_id for s in again.scenes) == sorted(s.scene_id for s in first.scenes)
    with store.read() as s:
        batch = batch_store.get_batch(s, BATCH)
        crimes = {c.crime_reference: c for c in batch_store.crimes_of(s, BATCH)}
        runs_ = batch_store.runs_of(s, BATCH)
    assert batch.sends == 2 and batch.rows_accepted == 2 and len(crimes) == 3
    assert crimes[NOBODY].time_to - crimes[NOBODY].time_from == 2 * H
    assert [(r.run_id, r.trigger, r.status, r.crimes) for r in runs_] == [
        (2, "resend", "running", 3),
        (1, "upload", "superseded", 3),
    ]


def test_late_fixes_rerun_says_what_changed(store: Store) -> None:
    enrol(store, {"off-at": readings("tag-at", stand(W0 + 2 * H, 20, 30.0, 0.0))})
    received = _receive(store, batch_csv(_crimes()))
    _archiver(store, received, NOW)
    # A store-and-forward burst arrives: off-pass's walk past the robbery.
    enrol(store, {"off-pass": _people()["off-pass"]})
    robbery = [s for s in received.scenes if s.crime_reference == PASSED]
    _archiver(store, service.Received(received.parsed, scenes=robbery), NOW + H, late=True)
    with store.read() as s:
        late, first = batch_store.runs_of(s, BATCH)
    assert (late.trigger, late.status, late.crimes) == ("late-data", "done", 1)
    assert batch_store.run_dict(late)["changes"] == [
        {"crime_reference": PASSED, "offender_id": "off-pass", "before": None, "after": "passed_by"}
    ]
    assert first.trigger == "upload" and first.status == "done"
    # An ordinary re-search outside any run is not a run.
    runs.note_searched(store, robbery[0].scene_id, SCENES, now=NOW + 2 * H, late=False)
    with store.read() as s:
        assert len(batch_store.runs_of(s, BATCH)) == 2


def test_rerun_searches_the_whole_batch_again(store: Store) -> None:
    received = _receive(store, batch_csv(_crimes()))
    _archiver(store, received, NOW)
    run_id, scenes = service.rerun(
        store,
        BATCH,
        trigger="rerun",
        batch_settings=BatchSettings(),
        scene_settings=SCENES,
        now=NOW + H,
    )
    assert run_id == 2 and len(scenes) == 3
    with store.read() as s:
        assert [(r.trigger, r.status) for r in batch_store.runs_of(s, BATCH)] == [
            ("rerun", "running"),
            ("upload", "done"),
        ]
    assert (
        service.rerun(
            store,
            "KNT20990101",
            trigger="rerun",
            batch_settings=BatchSettings(),
            scene_settings=SCENES,
            now=NOW,
        )
        is None
    )


def test_a_batch_whose_rows_are_all_rejected_is_recorded(store: Store) -> None:
    bad = b"Kent Police,ARSON,x,KNT20261021,CR-X,20261021010000,20261021020000,1,1,,,OSGB36,\r\n"
    bad += b"Kent Police,BIAD,x,KNT20261021,CR-Y,20261021010000,,1,1,,,OSGB36,\r\n"
    received = _receive(store, bad)
    assert received.runs == {BATCH: ("upload", 1)} and received.scenes == []
    with store.read() as s:
        batch = batch_store.get_batch(s, BATCH)
        (run,) = batch_store.runs_of(s, BATCH)
    assert (batch.rows_received, batch.rows_rejected, batch.force_code) == (2, 2, "KNT")
    assert (run.status, run.crimes) == ("done", 0)


def test_the_archivers_rematch_after_a_live_match_is_a_late_data_run(store: Store) -> None:
    """The scene consumer's own path: a live alert (late fixes) → re-match → ``late-data`` run."""
    from em_service.scenes.consumer import SceneConsumer
    from em_service.settings import Settings

    enrol(store, {"off-at": readings("tag-at", stand(W0 + 2 * H, 20, 30.0, 0.0))})
    received = _receive(store, batch_csv(_crimes()))
    consumer = SceneConsumer(Settings(), store, SceneSettings(rematch_delay_s=0))
    for scene in received.scenes:
        consumer.search(scene)
    enrol(store, {"off-pass": _people()["off-pass"]})  # a store-and-forward burst
    robbery = next(s for s in received.scenes if s.crime_reference == PASSED)
    live = {
        "scene_id": robbery.scene_id,
        "offender_id": "off-pass",
        "occurred_at": (W0 + 2 * H).isoformat(),
        "details": {"confidence": "passed_by", "origin": "live"},
    }
    consumer.note_live([live])
    assert consumer.rematch_due() == 1
    with store.read() as s:
        late, first = batch_store.runs_of(s, BATCH)
        assert (first.trigger, first.status) == ("upload", "done")
        assert (late.trigger, late.status) == ("late-data", "done")
        assert batch_store.run_dict(late)["changes"] == [
            {
                "crime_reference": PASSED,
                "offender_id": "off-pass",
                "before": None,
                "after": "passed_by",
            }
        ]


def test_a_reported_scene_is_searched_again_for_fixes_archived_after_it(store: Store) -> None:
    """The fixes at a scene were delivered before the scene but archived after its search (CI:
    a replay's archiver read the scene before those readings): nobody matched them. The scene
    is searched again ``rematch_delay_s`` later and the match is alerted."""
    from em_service.scenes import store as scene_store
    from em_service.scenes.consumer import SceneConsumer
    from em_service.settings import Settings
    from tests.scenes.helpers import scene_msg

    consumer = SceneConsumer(Settings(), store, SceneSettings(rematch_delay_s=0))
    scene = scene_msg("sc-late")
    enrol(store, {"off-quiet": readings("tag-quiet", stand(W0 + 2 * H, 20, 5_000.0, 0.0))})
    consumer.search(scene)
    assert consumer.pending() == []
    enrol(store, {"off-at": readings("tag-at", stand(W0 + 2 * H, 20, 10.0, 0.0))})
    assert consumer.rematch_due() == 1
    assert [p[1] for p in consumer.pending()] == ["off-at"]
    assert consumer.rematch_due() == 0  # once
    with store.read() as s:
        assert scene_store.get_scene(s, "sc-late") is not None
