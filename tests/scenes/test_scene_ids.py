"""One scene id derivation for every entry point: the same crime reported through the API and
in a CSV import is one scene, whatever the spacing and case of its crime reference, the UTC
offset of its times or the spelling of its coordinates."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from em_service.scenes import ids
from em_service.scenes import store as scene_store
from em_service.scenes.config import SceneSettings
from em_service.scenes.importer import import_file
from tests.api.conftest import Api, make_api
from tests.database import Database

T0 = datetime(2026, 10, 24, 21, tzinfo=UTC)
T1 = datetime(2026, 10, 25, 7, tzinfo=UTC)
CSV_HEADER = "crime_reference,crime_type,lat,lon,window_start,window_end\n"


@pytest.mark.parametrize(
    "reference",
    ["CR/2026/0042", " CR/2026/0042", "CR/2026/0042\t", "cr/2026/0042", "CR / 2026 / 0042"],
)
def test_spacing_and_case_do_not_make_another_scene(reference: str) -> None:
    assert ids.scene_id(reference, 51.45, -0.97, T0, T1) == ids.scene_id(
        "CR/2026/0042", 51.45, -0.97, T0, T1
    )


def test_the_window_counts_in_utc_and_minus_zero_is_zero() -> None:
    bst = timezone(timedelta(hours=1))
    base = ids.scene_id("CR/1", 0.0, 0.0, T0, T1)
    assert ids.scene_id("CR/1", -0.0, -0.0, T0.astimezone(bst), T1.astimezone(bst)) == base


@pytest.mark.parametrize(
    "other",
    [
        ("CR/2026/0043", 51.45, -0.97, T0, T1),
        ("CR/2026/0042", 51.46, -0.97, T0, T1),
        ("CR/2026/0042", 51.45, -0.96, T0, T1),
        ("CR/2026/0042", 51.45, -0.97, T0 - timedelta(minutes=1), T1),
        ("CR/2026/0042", 51.45, -0.97, T0, T1 + timedelta(minutes=1)),
    ],
)
def test_another_crime_is_another_scene(other: tuple) -> None:
    assert ids.scene_id(*other) != ids.scene_id("CR/2026/0042", 51.45, -0.97, T0, T1)


def test_ids_of_canonical_references_are_unchanged() -> None:
    """Scenes stored before the ids were unified keep their ids (upper case, no spaces)."""
    parts = ("CR/2026/0042", repr(51.45), repr(-0.97), T0.isoformat(), T1.isoformat())
    before = "sc-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    assert ids.scene_id("CR/2026/0042", 51.45, -0.97, T0, T1) == before
    crime_id = f"{7:064x}"
    assert ids.police_uk_scene_id(f" {crime_id.upper()} ") == ids.police_uk_scene_id(crime_id)
    assert ids.police_uk_scene_id(crime_id) == (
        "pu-" + hashlib.sha256(crime_id.encode()).hexdigest()[:24]
    )


@pytest.fixture
def kafka_api(tmp_path: Path, database: Database, kafka_bootstrap: str) -> Iterator[Api]:
    yield from make_api(tmp_path, database, kafka_bootstrap)


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("api_reference", "csv_row"),
    [
        (
            "CR/2026/0042",
            " cr/2026/0042 ,burglary_dwelling,51.4500,-0.970,2026-10-24T21:00:00Z,"
            "2026-10-25T07:00:00Z",
        ),
        (
            " CR/2026/ 0042",
            "CR/2026/0042,burglary_dwelling,51.45,-0.97,2026-10-24T22:00:00+01:00,"
            "2026-10-25T07:00:00+00:00",
        ),
        (
            "cr/2026/0042",
            "Cr/2026/0042,burglary_dwelling,51.45,-0.97,2026-10-24T21:00:00Z,2026-10-25T07:00:00Z",
        ),
    ],
)
def test_the_api_and_the_csv_import_make_one_scene_of_one_crime(
    kafka_api: Api, tmp_path: Path, api_reference: str, csv_row: str
) -> None:
    body = {
        "crime_reference": api_reference,
        "crime_type": "burglary_dwelling",
        "lat": 51.45,
        "lon": -0.97,
        "window_start": "2026-10-24T22:00:00+01:00",
        "window_end": "2026-10-25T07:00:00Z",
    }
    posted = kafka_api.client.post(
        "/api/v1/scenes", headers=kafka_api.headers("investigator"), json=body
    )
    assert posted.status_code == 201, posted.text
    path = tmp_path / "scenes.csv"
    path.write_text(CSV_HEADER + csv_row + "\n")
    imported = []

    def store_batch(batch: list) -> None:
        imported.extend(batch)
        with kafka_api.store.write() as session:
            scene_store.upsert_scenes(session, batch, crs=kafka_api.settings.projected_crs, now=T1)

    report = asyncio.run(
        import_file(
            path, SceneSettings(), store_batch=store_batch, publish_batch=None, progress=False
        )
    )
    assert (report.imported, report.bad) == (1, [])
    assert [s.scene_id for s in imported] == [posted.json()["scene_id"]]
    listed = kafka_api.client.get("/api/v1/scenes", headers=kafka_api.headers("investigator"))
    assert listed.json()["total"] == 2  # the seeded sc-1 and this crime, once
