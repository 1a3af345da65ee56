"""Investigator pages in-process: the scenes list, a scene's page (purpose recorded and audited
before any place is shown), the new-scene form (the API's validation, local times with their
offset, a lettered OS grid reference, easting/northing) and the CSV upload (the importer's per-row
errors)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from em_service.console import scene_view as V
from em_service.scenes import store as scene_store
from em_service.store import audit
from geofences.national_grid import grid_to_wgs84
from geofences.projection import get_projector
from tests.api.conftest import Api, make_api
from tests.console.conftest import csrf_of, sign_in
from tests.database import Database

FORM = {
    "crime_reference": "CR/2026/10/0421",
    "crime_type": "burglary_dwelling",
    "start_date": "2026-10-24",
    "start_time": "22:00",
    "start_offset": "",
    "end_date": "2026-10-25",
    "end_time": "07:00",
    "end_offset": "",
    "radius_m": "",
    "lat": "51.45",
    "lon": "-0.97",
    "grid_ref": "",
    "easting": "",
    "northing": "",
}


@pytest.fixture
def investigator(api: Api) -> TestClient:
    assert sign_in(api.client, api.tokens["investigator"]).status_code == 303
    return api.client


def _entries(api: Api, action: str) -> list:
    with api.store.read() as s:
        return audit.list_entries(s, action=action)[0]


def _post(client: TestClient, **change: str):
    token = csrf_of(client.get("/console/scenes/new").text)
    return client.post(
        "/console/scenes/new", data=FORM | change | {"csrf_token": token}, follow_redirects=False
    )


def test_list_shows_status_and_window(investigator: TestClient) -> None:
    page = investigator.get("/console/scenes")
    assert page.status_code == 200
    assert 'data-scene-id="sc-1"' in page.text and "matched 2 tags" in page.text
    assert (
        "You have not reported any scene yet." in investigator.get("/console/scenes?mine=true").text
    )


@pytest.mark.parametrize("role", ["officer", "admin", "ops"])
def test_only_investigators_read_scenes(api: Api, role: str) -> None:
    assert sign_in(api.client, api.tokens[role]).status_code == 303
    for path in ("/console/scenes", "/console/scenes/sc-1"):
        page = api.client.get(path)
        assert page.status_code == 403 and "for investigators" in page.text
    form = api.client.get("/console/scenes/new")
    assert form.status_code == (200 if role == "admin" else 403)


def test_places_are_shown_only_after_the_purpose_is_recorded(
    api: Api, investigator: TestClient
) -> None:
    page = investigator.get("/console/scenes/sc-1")
    assert page.status_code == 200 and "record-purpose" in page.text
    assert "scene-map" not in page.text and "51.45" not in page.text
    assert _entries(api, "scene.matches.read") == []
    refused = investigator.post("/console/scenes/sc-1/purpose", data={"csrf_token": "x"})
    assert refused.status_code == 403
    done = investigator.post(
        "/console/scenes/sc-1/purpose",
        data={"csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/scenes/sc-1"
    (purpose,) = _entries(api, "scene.purpose")
    assert purpose.purpose == "CR-77" and purpose.actor == "investigator-1"
    page = investigator.get("/console/scenes/sc-1")
    assert 'id="scene-map"' in page.text
    (read,) = _entries(api, "scene.matches.read")
    assert read.purpose == "CR-77" and read.seq > purpose.seq
    assert json.loads(read.detail_json)["offenders"] == ["off-1", "off-2"]
    rows = page.text.count('class="govuk-table__row em-match"')
    assert rows == 2 and "Passed by" in page.text
    assert investigator.get("/console/scenes/nope").status_code == 404


def test_scene_map_data_has_the_circle_trails_and_closest_approach(api: Api) -> None:
    from em_service.scenes import store as scene_store

    with api.store.read() as s:
        scene = scene_store.get_scene(s, "sc-1")
        data = V.map_data(scene, V.ordered(scene_store.matches_of_scene(s, "sc-1")))
    assert data["scene"]["radius_m"] == 100.0
    assert [m["offender_id"] for m in data["matches"]] == ["off-1", "off-2"]
    m = data["matches"][0]
    assert m["closest"]["m"] == 0.0 and len(m["fixes"]) == 5 and all(f["in"] for f in m["fixes"])


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        ({"radius_m": "5000"}, "radius_m", "radius_m must be in"),
        ({"radius_m": "wide"}, "radius_m", "as a number"),
        ({"end_date": "2026-10-24", "end_time": "20:00"}, "end_date", "before window_start"),
        ({"end_date": "2026-12-30"}, "start_date", "longer than"),
        ({"lat": "10", "lon": "-40"}, "lat", "outside the area"),
        ({"lat": "", "lon": ""}, "lat", "Choose the place"),
        ({"crime_reference": "  "}, "crime_reference", "Enter the crime reference"),
        ({"crime_type": "arson"}, "crime_type", "Choose the crime type"),
        ({"start_date": "2026-03-29", "start_time": "01:30"}, "start_date", "does not exist"),
        ({"end_time": "01:30"}, "end_date", "happens twice"),
        ({"start_time": "25:00"}, "start_date", "Enter a date"),
        ({"lat": "", "lon": "", "grid_ref": "IQ 30 80"}, "grid_ref", "like TQ 30 80"),
        ({"lat": "", "lon": "", "grid_ref": "SU 716 7283"}, "grid_ref", "not the same length"),
        ({"lat": "", "lon": "", "grid_ref": "SU 7 7"}, "grid_ref", "10 km square, too wide"),
        ({"lat": "", "lon": "", "grid_ref": "SU 71 72"}, "grid_ref", "radius of at least 500 m"),
        ({"grid_ref": "SU 716 728"}, "grid_ref", "Give the place one way"),
    ],
)
def test_form_errors_name_their_field(
    investigator: TestClient, change: dict, field: str, why: str
) -> None:
    r = _post(investigator, **change)
    assert r.status_code == 422, r.text
    assert 'id="error-summary"' in r.text and f'href="#{field}"' in r.text
    assert why in r.text
    assert f'id="{field}-error"' in r.text or (field == "start_date" and "end_date" not in change)
    for k, v in change.items():  # what was typed is kept (escaped)
        assert f'value="{v}"' in r.text or k.endswith("offset") or k == "crime_type"


def test_form_text_is_escaped(investigator: TestClient) -> None:
    r = _post(investigator, crime_reference="<script>x</script>", radius_m="1")
    assert "<script>x</script>" not in r.text and "&lt;script&gt;x&lt;/script&gt;" in r.text


def test_valid_form_reaches_the_api_handler(api: Api, investigator: TestClient) -> None:
    """Without Kafka the API's handler answers 503: the form says nothing was saved."""
    r = _post(investigator, end_time="01:30", end_offset="+00:00")
    assert r.status_code == 503 and "not saved" in r.text
    assert _entries(api, "scene.create") == []


def test_form_takes_a_lettered_os_grid_reference(investigator: TestClient) -> None:
    """The place is checked and converted before the API's handler (503 without Kafka)."""
    r = _post(investigator, lat="", lon="", grid_ref="su 7166 7283")
    assert r.status_code == 503 and "not saved" in r.text, r.text
    assert 'id="grid_ref-error"' not in r.text and 'value="su 7166 7283"' in r.text


def test_a_bad_grid_reference_is_shown_in_the_error_summary(investigator: TestClient) -> None:
    r = _post(investigator, lat="", lon="", grid_ref="TQ 3O 8O")
    assert r.status_code == 422
    summary = r.text.split('id="error-summary"', 1)[1].split("</ul>", 1)[0]
    assert '<a href="#grid_ref">Enter an OS grid reference like TQ 30 80' in summary
    assert (
        'id="grid_ref-error"' in r.text
        and 'aria-describedby="grid_ref-hint grid_ref-error"' in r.text
    )


def test_grid_reference_places() -> None:
    lat, lon = V.place("", "", "", "", "EPSG:32630", grid_ref="TQ 30247 79630")  # Big Ben
    assert (lat, lon) == grid_to_wgs84(530_247.5, 179_630.5)
    assert V.place("", "", "", "", "EPSG:27700", "TQ 30 80", 500.0) == grid_to_wgs84(
        530_500, 180_500
    )
    with pytest.raises(V.BadField, match="give at least 6 figures, or a radius of at least 500"):
        V.place("", "", "", "", "EPSG:27700", "TQ 30 80", 100.0, 500.0)
    with pytest.raises(V.BadField, match=r"give at least 4 figures$"):
        V.place("", "", "", "", "EPSG:27700", "TQ 3 8", 500.0, 500.0)
    with pytest.raises(V.BadField, match="give at least 8 figures"):
        V.place("", "", "", "", "EPSG:27700", "TQ 300 800", 20.0, 500.0)


def test_local_times_and_grid_references() -> None:
    bst = V.local_time("d", "2026-10-25", "01:30", "+01:00")
    gmt = V.local_time("d", "2026-10-25", "01:30", "+00:00")
    assert (bst, gmt) == (
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    )
    assert V.local_time("d", "2026-07-01", "12:00") == datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
    # OS's standard point LOND: the National Grid by OSTN15, not PROJ's metres-off Helmert.
    lat, lon = V.place("", "", "530624.963", "178388.461", "EPSG:27700")
    assert abs(lat - 51.48936564611111) < 1e-6 and abs(lon + 0.1199255641666667) < 1e-6
    # another projected CRS (metres) still goes through PROJ
    x, y = get_projector("EPSG:32630").to_xy(-0.97, 51.45)
    lat, lon = V.place("", "", f"{float(x):.2f}", f"{float(y):.2f}", "EPSG:32630")
    assert abs(lat - 51.45) < 1e-6 and abs(lon + 0.97) < 1e-6
    assert V.status(None, {}) == "searching"
    assert V.status(datetime(2026, 1, 1, tzinfo=UTC), {"excluded": 1}) == "no match"
    assert V.status(datetime(2026, 1, 1, tzinfo=UTC), {"near_scene": 1}) == "matched 1 tag"


def _upload(client: TestClient, text: str):
    token = csrf_of(client.get("/console/scenes/new").text)
    return client.post(
        "/console/scenes/import",
        data={"csrf_token": token},
        files={"file": ("scenes.csv", text.encode(), "text/csv")},
    )


BAD_CSV = (
    "crime_reference,crime_type,lat,lon,window_start,window_end\n"
    "CR-1,arson,51.45,-0.97,2026-10-24T22:00:00+01:00,2026-10-25T07:00:00Z\n"
    "CR-2,robbery,north,-0.97,2026-10-24T22:00:00+01:00,2026-10-25T07:00:00Z\n"
    "CR-3,robbery,51.45,-0.97,2026-10-24T22:00:00,2026-10-25T07:00:00Z\n"
)


def test_csv_rows_errors_are_listed_by_line(api: Api, investigator: TestClient) -> None:
    r = _upload(investigator, BAD_CSV)
    assert r.status_code == 200
    assert "3 rows of the file could not be imported" in r.text
    for line, why in ((2, "crime_type"), (3, "latitude"), (4, "no UTC offset")):
        assert f"Line {line}: " in r.text and why in r.text
    (entry,) = _entries(api, "scenes.import")
    assert json.loads(entry.detail_json)["bad"] == 3
    bad_header = _upload(investigator, "a,b\n1,2\n")
    assert bad_header.status_code == 400 and "unknown header" in bad_header.text


@pytest.fixture
def kafka_api(tmp_path: Path, sqlite_db: Database, kafka_bootstrap: str) -> Iterator[Api]:
    yield from make_api(tmp_path, sqlite_db, kafka_bootstrap, console_tile_url="")


@pytest.mark.kafka
def test_form_and_csv_publish_store_and_audit(kafka_api: Api) -> None:
    client = kafka_api.client
    assert sign_in(client, kafka_api.tokens["investigator"]).status_code == 303
    r = _post(client)
    assert r.status_code == 303, r.text
    scene_id = r.headers["location"].rsplit("/", 1)[1]
    (entry,) = _entries(kafka_api, "scene.create")
    assert entry.purpose == FORM["crime_reference"] and entry.actor == "investigator-1"
    assert json.loads(entry.detail_json)["scene_id"] == scene_id
    mine = client.get("/console/scenes?mine=true").text
    assert f'data-scene-id="{scene_id}"' in mine and "searching" in mine
    good = "CR-9,robbery,51.46,-0.98,2026-10-20T22:00:00+01:00,2026-10-21T06:00:00+01:00\n"
    r = _upload(client, BAD_CSV + good)
    assert r.status_code == 200 and "1 scene imported, 3 bad rows" in r.text
    assert client.get("/console/scenes").text.count("em-scene-row") == 3


@pytest.mark.kafka
def test_a_scene_placed_by_os_grid_reference_is_stored_at_the_squares_centre(
    kafka_api: Api,
) -> None:
    client = kafka_api.client
    assert sign_in(client, kafka_api.tokens["investigator"]).status_code == 303
    for ref, radius, centre in (
        ("SU 71 72", "500", (471_500, 172_500)),  # a 1 km square: needs a 500 m radius
        ("SU7166072830", "", (471_660.5, 172_830.5)),  # a 1 m square, the default radius
    ):
        r = _post(
            client, crime_reference=f"CR-{ref}", lat="", lon="", grid_ref=ref, radius_m=radius
        )
        assert r.status_code == 303, r.text
        with kafka_api.store.read() as s:
            scene = scene_store.get_scene(s, r.headers["location"].rsplit("/", 1)[1])
        assert (scene.lat, scene.lon) == pytest.approx(grid_to_wgs84(*centre), abs=1e-9)
        assert scene.radius_m == float(radius or 100)


def test_evidence_pack_needs_the_purpose_verifies_and_is_audited(
    api: Api, investigator: TestClient, tmp_path: Path
) -> None:
    import io
    import subprocess
    import sys
    import zipfile

    from em_service.scenes import evidence

    url = "/console/scenes/sc-1/matches/off-1/evidence.zip"
    early = investigator.get(url, follow_redirects=False)
    assert early.status_code == 303 and early.headers["location"] == "/console/scenes/sc-1"
    assert _entries(api, "scene.evidence.export") == []
    page = investigator.get("/console/scenes/sc-1")
    investigator.post("/console/scenes/sc-1/purpose", data={"csrf_token": csrf_of(page.text)})
    assert url in investigator.get("/console/scenes/sc-1").text
    r = investigator.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    result = evidence.verify(r.content)
    assert result.ok, result.problems
    (entry,) = _entries(api, "scene.evidence.export")
    detail = json.loads(entry.detail_json)
    assert detail["head"] == result.head == r.headers["x-evidence-head"]
    assert entry.purpose == "CR-77" and detail["format"] == "pack"
    names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
    assert names == [
        "evidence-sc-1-off-1.geojson",
        "evidence-sc-1-off-1.csv",
        "map-sc-1-off-1.png",
        "MANIFEST.json",
    ]
    assert investigator.get("/console/scenes/sc-1/matches/off-9/evidence.zip").status_code == 404

    good = tmp_path / "pack.zip"
    good.write_bytes(r.content)
    cli = [sys.executable, "-m", "em_service.cli", "evidence", "verify"]
    ok = subprocess.run([*cli, str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and result.head in ok.stdout, ok.stdout + ok.stderr
    # One byte of the PNG changed (the ZIP rebuilt around it, manifest untouched): refused.
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        files = [(i, z.read(i)) for i in z.infolist()]
    edited = io.BytesIO()
    with zipfile.ZipFile(edited, "w") as z:
        for info, data in files:
            if info.filename.endswith(".png"):
                data = bytearray(data)
                data[len(data) // 2] ^= 0x01
                data = bytes(data)
            z.writestr(info, data)
    bad = tmp_path / "edited.zip"
    bad.write_bytes(edited.getvalue())
    refused = subprocess.run([*cli, str(bad)], capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert "map-sc-1-off-1.png: contents do not match its sha256" in refused.stderr


@pytest.mark.parametrize("mode", ["ok", "500"])
def test_evidence_pack_with_the_forces_tile_server(
    tmp_path: Path, database: Database, mode: str
) -> None:
    """EM_EVIDENCE_TILE_URL set: the pack's image has the base map, the manifest its tiles and
    `em-service evidence verify` passes; a failing tile server still gives the pack."""
    import contextlib
    import io
    import subprocess
    import sys
    import zipfile

    from tests.scenes.tileserver import serve

    with (
        serve(mode) as server,
        contextlib.closing(
            make_api(
                tmp_path,
                database,
                None,
                evidence_tile_url=server.url,
                evidence_tile_attribution="(C) Force tiles",
            )
        ) as running,
    ):
        made = next(running)
        client, tokens = made.client, made.tokens
        assert sign_in(client, tokens["investigator"]).status_code == 303
        page = client.get("/console/scenes/sc-1")
        client.post("/console/scenes/sc-1/purpose", data={"csrf_token": csrf_of(page.text)})
        r = client.get("/console/scenes/sc-1/matches/off-1/evidence.zip")
        served = dict(server.served)
    assert r.status_code == 200
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("MANIFEST.json"))
    if mode == "ok":
        base = manifest["base_map"]
        assert base["status"] == "drawn" and base["attribution"] == "(C) Force tiles"
        assert len(base["tiles"]) == len(served) > 0
    else:
        assert manifest["base_map"]["status"] == "unavailable"
    pack_file = tmp_path / "pack.zip"
    pack_file.write_bytes(r.content)
    cli = [sys.executable, "-m", "em_service.cli", "evidence", "verify", str(pack_file)]
    ok = subprocess.run(cli, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_csv_without_kafka_says_what_was_saved(api: Api, investigator: TestClient) -> None:
    good = "CR-9,robbery,51.46,-0.98,2026-10-20T22:00:00+01:00,2026-10-21T06:00:00+01:00\n"
    r = _upload(investigator, BAD_CSV + good)
    assert r.status_code == 503
    assert "0 scenes were published and saved, 1 were not" in r.text
    (entry,) = _entries(api, "scenes.import")
    assert json.loads(entry.detail_json)["not_published"] == 1
    assert investigator.get("/console/scenes").text.count("em-scene-row") == 1  # the seeded one
