"""The console in-process (TestClient) on the API test database (tests/api/conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Api, make_api
from tests.database import Database

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """Return the first CSRF token in a page."""
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, token: str) -> httpx.Response:
    """Sign in through the form (as a browser does); return the POST's response."""
    page = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in",
        data={"token": token, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


@pytest.fixture
def api(tmp_path: Path, sqlite_db: Database) -> Iterator[Api]:
    """The app on SQLite (the store's own suites run on both engines)."""
    yield from make_api(tmp_path, sqlite_db, None, console_tile_url="")


@pytest.fixture
def officer(api: Api) -> TestClient:
    """The app's client, signed in as officer-1 (caseload: off-1)."""
    response = sign_in(api.client, api.tokens["officer"])
    assert response.status_code == 303, response.text
    return api.client


def rich_conditions(person: str = "off-1", device: str = "tag-1"):
    """An exclusion zone at the seeded fixes and a 19:00–07:00 curfew elsewhere."""
    import msgspec

    from em_service.contracts import Conditions
    from tests.store.factories import READING

    lon, lat = READING
    d = 0.002
    ring = [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d]]
    return msgspec.convert(
        {
            "offender_id": person,
            "device_ids": [device],
            "zones": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                    "properties": {"zone_id": "z-town", "kind": "exclusion", "name": "Town <b>"},
                }
            ],
            "curfews": [
                {
                    "curfew_id": "c-home",
                    "geometry": {"type": "Point", "coordinates": [lon + 0.02, lat - 0.01]},
                    "radius_m": 60.0,
                    "windows": [
                        {
                            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                            "start": "19:00",
                            "end": "07:00",
                        }
                    ],
                }
            ],
            "valid_from": "2026-01-01T00:00:00Z",
        },
        Conditions,
    )


def enrich(api: Api) -> None:
    """off-1: rich conditions, more fixes (gaps of 6 and 20 min), clock fixed at T0 + 40 min."""
    from datetime import timedelta

    from em_service.store import offenders, trail
    from tests.store.factories import READING, T0, gps

    with api.store.write() as s:
        offenders.put_conditions(s, conditions=rich_conditions(), changed_at=T0 - timedelta(days=1))
        trail.insert_fixes(
            s,
            readings=[
                gps(
                    "tag-1",
                    T0 + timedelta(minutes=10),
                    lon=READING[0] + 0.001,
                    lat=READING[1] + 0.001,
                ),
                gps(
                    "tag-1",
                    T0 + timedelta(minutes=30),
                    lon=READING[0] - 0.001,
                    lat=READING[1] + 0.0015,
                ),
            ],
            crs="EPSG:27700",
        )
    api.app.state.console_clock = lambda: T0 + timedelta(minutes=40)
