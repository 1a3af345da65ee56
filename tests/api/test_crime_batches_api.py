"""The crime-batch API with the session broker: upload (force-feed), check, resend, read,
report downloads that verify, re-run; bad files and bad requests are 4xx with a message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from em_service import kafka_io
from em_service.contracts import Scene
from em_service.scenes import evidence, retro
from em_service.scenes.batches import runs
from em_service.scenes.config import SceneSettings
from tests.api.conftest import Api
from tests.store.factories import READING, T0

pytestmark = pytest.mark.kafka

#: The batch is dated by the wall clock (a batch date must be plausible); its crimes are at
#: the seeded fixes' fixed time and place.
DAY = f"{datetime.now(UTC):%Y%m%d}"
BATCH = f"KNT{DAY}"
START, END = T0 - timedelta(hours=1), T0 + timedelta(hours=1)


def _row(ref: str, *, code: str = "BIAD", start: datetime = START, text: str = "") -> str:
    return (
        f"Kent Police,{code},desc,{BATCH},{ref},{start:%Y%m%d%H%M%S},{END:%Y%m%d%H%M%S},"
        f",,{READING[1]},{READING[0]},WGS84,{text}\r\n"
    )


def _upload(api: Api, body: str, who: str = "force-feed", **params) -> dict:
    r = api.client.post(
        "/api/v1/crime-batches",
        headers=api.headers(who),
        files={"file": ("b.csv", body.encode())},
        params=params,
    )
    return {"status": r.status_code, **r.json()}


def test_upload_check_resend_read_report_rerun(kafka_api: Api) -> None:
    api = kafka_api
    bad = _row("CR-B2", start=START - timedelta(hours=12))
    body = _row("CR-B1", text="<b>not html</b>") + bad

    checked = _upload(api, body, check="true")
    assert (checked["status"], checked["accepted"], checked["rejected"]) == (200, 1, 1)
    assert checked["checked_only"] and checked["runs"] == {}
    assert (
        checked["errors"][0]["line"] == 2 and "longer than 12 h" in checked["errors"][0]["reason"]
    )
    listed = api.client.get("/api/v1/crime-batches", headers=api.headers("investigator")).json()
    assert listed["total"] == 0

    first = _upload(api, body)
    assert first["status"] == 201 and first["runs"] == {BATCH: {"trigger": "upload", "run_id": 1}}
    again = _upload(api, body, who="investigator")
    assert again["runs"] == {BATCH: {"trigger": "resend", "run_id": 2}}
    scenes = asyncio.run(
        kafka_io.read_since(
            api.client.app.state.settings.kafka_bootstrap
            if False
            else api.settings.kafka_bootstrap,
            api.settings.topic_scenes,
            None,
            want=2,
            timeout_s=20,
        )
    )
    published = {msgspec.json.decode(r.value, type=Scene).scene_id for r in scenes}
    assert len(scenes) == 2 and len(published) == 1  # the same crime, twice: one scene

    # The archiver's part, in-process: search the scene and count it towards the run.
    scene = msgspec.json.decode(scenes[-1].value, type=Scene)
    now = T0 + timedelta(hours=3)
    retro.run(api.store, scene, SceneSettings(), crs="EPSG:27700", now=now)
    runs.note_searched(api.store, scene.scene_id, SceneSettings(), now=now, late=False)

    got = api.client.get(f"/api/v1/crime-batches/{BATCH}", headers=api.headers("investigator"))
    batch = got.json()
    assert got.status_code == 200 and batch["sends"] == 2 and batch["run_status"] == "done"
    assert [r["trigger"] for r in batch["runs"]] == ["resend", "upload"]
    assert batch["rejections"] == checked["errors"]
    assert (
        api.client.get(
            f"/api/v1/crime-batches/{BATCH}", headers=api.headers("force-feed")
        ).status_code
        == 403
    )

    summary = api.client.get(
        f"/api/v1/crime-batches/{BATCH}/report", headers=api.headers("investigator")
    ).json()["summary"]
    assert (summary["crimes_matched"], summary["wearers_matched"]) == (1, 2)
    for fmt in ("csv", "geojson"):
        r = api.client.get(
            f"/api/v1/crime-batches/{BATCH}/report",
            headers=api.headers("investigator"),
            params={"format": fmt},
        )
        result = evidence.verify(r.content)
        assert result.ok and result.head == r.headers["X-Evidence-Head"], result.problems
    assert b"<b>not html</b>" in r.content  # the force's text, as data, never interpreted

    rerun = api.client.post(
        f"/api/v1/crime-batches/{BATCH}/rerun", headers=api.headers("investigator")
    )
    assert rerun.status_code == 202 and rerun.json()["trigger"] == "rerun"
    assert rerun.json()["status"] == "running" and rerun.json()["crimes"] == 1


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ("a,b\r\n", 422, "file rejected: not a 13-column crime batch: line 1 has 2 columns"),
        ("", 422, "file rejected: empty file: no rows"),
    ],
)
def test_a_bad_file_is_a_422_with_its_reason(api: Api, body: str, status: int, detail: str) -> None:
    r = api.client.post(
        "/api/v1/crime-batches",
        headers=api.headers("force-feed"),
        files={"file": ("b.csv", body.encode())},
    )
    assert (r.status_code, r.json()) == (status, {"detail": detail})
