"""Crime-batch pages in-process: the list (run status, crimes and wearers matched), a batch's
page (rejected rows; matches and report downloads only after the purpose is recorded, each view
audited), the force's hostile text escaped, roles and CSRF as the API's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from em_service import kafka_io
from em_service.contracts import Scene
from em_service.scenes import evidence, retro
from em_service.scenes.batches import runs, service
from em_service.scenes.batches.config import BatchSettings
from em_service.scenes.batches.writer import BatchCrime, rows, to_csv
from em_service.scenes.config import SceneSettings
from em_service.store import audit
from tests.api.conftest import Api, make_api
from tests.console.conftest import csrf_of, sign_in
from tests.database import Database
from tests.store.factories import READING, T0

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
BATCH = f"KNT{T0:%Y%m%d}"
NOW = T0 + timedelta(hours=10)


def batch_bytes(*, bad_reference: str = "CR-<b>2</b>") -> bytes:
    """One crime at the seeded fixes (off-1 and off-2 pass by) with hostile text, one rejected
    row (a window over 12 h) whose reference is hostile too."""
    lon, lat = READING
    start, end = T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    good = BatchCrime("CR-B1", "BIAD", start, end, lat, lon, HOSTILE)
    bad = BatchCrime(bad_reference, "BIAD", T0 - timedelta(hours=13), T0, lat, lon)
    return to_csv(rows([good, bad], force_code="KNT", day=T0.date(), datum="WGS84"))


def seed_batch(api: Api) -> None:
    """Receive the batch (as the API does, at a fixed clock), search its crime, finish its run."""
    got = service.receive(
        api.store,
        batch_bytes(),
        batch_settings=BatchSettings(),
        scene_settings=SceneSettings(),
        crs="EPSG:27700",
        source="api",
        file_name="b.csv",
        now=NOW,
    )
    for scene in got.scenes:
        retro.run(api.store, scene, SceneSettings(), crs="EPSG:27700", now=NOW)
        runs.note_searched(api.store, scene.scene_id, SceneSettings(), now=NOW, late=False)


@pytest.fixture
def investigator(api: Api) -> TestClient:
    seed_batch(api)
    assert sign_in(api.client, api.tokens["investigator"]).status_code == 303
    return api.client


def _entries(api: Api, action: str) -> list:
    with api.store.read() as s:
        return audit.list_entries(s, action=action)[0]


def test_list_shows_counts_run_and_matches(api: Api, investigator: TestClient) -> None:
    page = investigator.get("/console/batches")
    assert page.status_code == 200
    assert f'data-batch-id="{BATCH}"' in page.text
    row = page.text.split(f'data-batch-id="{BATCH}"')[1].split("</tr>")[0]
    cells = [c.split(">", 1)[1].split("</td")[0] for c in row.split("<td")[1:]]
    assert cells[0] == "KNT" and cells[3] == "1" and ">1<" in cells[4]
    assert ">done<" in cells[5] and "1 of 1 searched" in cells[5]
    assert (cells[6], cells[7]) == ("1", "2")  # one crime matched, two wearers
    assert _entries(api, "crime_batches.list")[0].actor == "investigator-1"
    assert "No batches from force XYZ" in investigator.get("/console/batches?force=XYZ").text


def test_page_escapes_the_force_text_and_shows_matches_after_the_purpose(
    api: Api, investigator: TestClient
) -> None:
    page = investigator.get(f"/console/batches/{BATCH}")
    assert page.status_code == 200 and "record-purpose" in page.text
    assert "CR-&lt;b&gt;2&lt;/b&gt;" in page.text and "<b>2</b>" not in page.text
    assert "longer than 12 h" in page.text and 'class="govuk-table__row em-rejection"' in page.text
    assert "crime-matches" not in page.text and "off-1" not in page.text
    assert _entries(api, "crime_batches.report") == []
    assert [e.purpose for e in _entries(api, "crime_batches.read")] == [BATCH]
    download = investigator.get(f"/console/batches/{BATCH}/report.csv", follow_redirects=False)
    assert download.status_code == 303  # no purpose yet: back to the page

    refused = investigator.post(f"/console/batches/{BATCH}/purpose", data={"csrf_token": "x"})
    assert refused.status_code == 403
    done = investigator.post(
        f"/console/batches/{BATCH}/purpose",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/console/batches/{BATCH}"
    (purpose,) = _entries(api, "crime_batches.purpose")
    assert purpose.purpose == BATCH and purpose.actor == "investigator-1"

    page = investigator.get(f"/console/batches/{BATCH}")
    assert HOSTILE not in page.text and "&lt;script&gt;alert(&#34;x&#34;)" in page.text
    crimes = page.text.split('id="crime-matches"')[1]
    assert crimes.count('class="em-crime-match"') == 2 and "/console/scenes/" in crimes
    assert "1 of 1 crime; 2 wearers" in page.text
    (read,) = _entries(api, "crime_batches.report")
    assert read.purpose == BATCH and json.loads(read.detail_json)["format"] == "page"

    for fmt in ("csv", "geojson"):
        r = investigator.get(f"/console/batches/{BATCH}/report.{fmt}")
        assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
        checked = evidence.verify(r.content)
        assert checked.ok and checked.head == r.headers["X-Evidence-Head"], checked.problems
    heads = [json.loads(e.detail_json)["head"] for e in _entries(api, "crime_batches.report")]
    assert r.headers["X-Evidence-Head"] in heads
    assert investigator.get("/console/batches/KNT20000101").status_code == 404


@pytest.mark.parametrize("role", ["officer", "admin", "ops"])
def test_only_investigators_read_batches(api: Api, role: str) -> None:
    seed_batch(api)
    assert sign_in(api.client, api.tokens[role]).status_code == 303
    for path in ("/console/batches", f"/console/batches/{BATCH}"):
        page = api.client.get(path)
        assert page.status_code == 403 and "for investigators" in page.text
    assert api.client.get("/console/batches/upload").status_code == (
        200 if role == "admin" else 403
    )


def test_upload_needs_the_csrf_token_and_a_file(investigator: TestClient) -> None:
    files = {"file": ("b.csv", batch_bytes())}
    refused = investigator.post("/console/batches/upload", files=files, data={"csrf_token": "x"})
    assert refused.status_code == 403 and "security check failed" in refused.text
    token = csrf_of(investigator.get("/console/batches/upload").text)
    empty = investigator.post("/console/batches/upload", data={"csrf_token": token})
    assert empty.status_code == 400 and "Choose a crime batch file" in empty.text
    bad = investigator.post(
        "/console/batches/upload",
        files={"file": ("b.csv", b"a,b\r\n")},
        data={"csrf_token": token},
    )
    assert bad.status_code == 422 and "line 1 has 2 columns" in bad.text
    assert 'id="file-error"' in bad.text


def test_check_only_lists_rejected_rows_escaped(api: Api, investigator: TestClient) -> None:
    """ "Check only" parses with the API's handler at the wall clock: a batch of today."""
    today = datetime.now(UTC)
    lon, lat = READING
    rows_ = rows(
        [
            BatchCrime(
                "CR-1", "BIAD", today - timedelta(hours=3), today - timedelta(hours=2), lat, lon
            ),
            BatchCrime("<i>CR-2</i>", "BIAD", today - timedelta(hours=30), today, lat, lon),
        ],
        force_code="KNT",
        day=today.date(),
        datum="WGS84",
    )
    token = csrf_of(investigator.get("/console/batches/upload").text)
    r = investigator.post(
        "/console/batches/upload",
        files={"file": ("b.csv", to_csv(rows_))},
        data={"csrf_token": token, "action": "check"},
    )
    assert r.status_code == 200, r.text
    assert "2 rows: 1 accepted, 1 rejected." in r.text and "nothing imported" in r.text
    assert "&lt;i&gt;CR-2&lt;/i&gt;" in r.text and "<i>CR-2</i>" not in r.text
    with api.store.read() as s:
        from em_service.scenes.batches import store as batch_store

        assert batch_store.list_batches(s)[1] == 1  # only the seeded batch: nothing imported


@pytest.fixture
def kafka_api(tmp_path: Path, sqlite_db: Database, kafka_bootstrap: str) -> Iterator[Api]:
    yield from make_api(tmp_path, sqlite_db, kafka_bootstrap, console_tile_url="")


@pytest.mark.kafka
def test_upload_stores_publishes_and_audits(kafka_api: Api) -> None:
    """An upload through the API's handler: stored, its crime published, audited; the page
    lists the rejected row and links the batch. (The handler dates batches by the wall clock.)"""
    client, s = kafka_api.client, kafka_api.settings
    today = datetime.now(UTC)
    lon, lat = READING
    body = to_csv(
        rows(
            [
                BatchCrime(
                    "CR-U1",
                    "BIAD",
                    today - timedelta(hours=3),
                    today - timedelta(hours=2),
                    lat,
                    lon,
                ),
                BatchCrime("CR-U2", "BIAD", today - timedelta(hours=30), today, lat, lon),
            ],
            force_code="KNT",
            day=today.date(),
            datum="WGS84",
        )
    )
    assert sign_in(client, kafka_api.tokens["investigator"]).status_code == 303
    mark = asyncio.run(kafka_io.end_offsets(s.kafka_bootstrap, s.topic_scenes))
    token = csrf_of(client.get("/console/batches/upload").text)
    r = client.post(
        "/console/batches/upload",
        files={"file": ("today.csv", body)},
        data={"csrf_token": token, "action": "upload"},
    )
    batch = f"KNT{today:%Y%m%d}"
    assert r.status_code == 200, r.text
    assert (
        "2 rows: 1 accepted, 1 rejected." in r.text and f'href="/console/batches/{batch}"' in r.text
    )
    assert r.text.count('class="govuk-table__row em-rejection"') == 1
    (record,) = asyncio.run(
        kafka_io.read_since(s.kafka_bootstrap, s.topic_scenes, mark or None, want=1, timeout_s=10)
    )
    assert msgspec.json.decode(record.value, type=Scene).crime_reference == "CR-U1"
    (entry,) = _entries(kafka_api, "crime_batches.upload")
    assert entry.actor == "investigator-1" and json.loads(entry.detail_json)["rejected"] == 1
    listed = client.get("/console/batches")
    assert f'data-batch-id="{batch}"' in listed.text
