"""Every role × endpoint pair: 401 without a valid token, 403 for a role the endpoint does not
serve, 404 for someone else's offender (no existence leak), 2xx otherwise. Table-driven."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.store.factories import T0

pytestmark = pytest.mark.kafka

CALLERS = (None, "bogus", "officer", "officer-2", "investigator", "ops", "admin", "force-feed")
TRAIL = {"from": T0.isoformat(), "to": (T0.replace(hour=23)).isoformat(), "purpose": "CR-77"}
NEW_CONDITIONS = {"offender_id": "off-3", "device_ids": ["tag-3"]}
NEW_SCENE = {
    "crime_reference": "CR-78",
    "crime_type": "robbery",
    "lat": 51.45,
    "lon": -0.97,
    "window_start": T0.isoformat(),
    "window_end": T0.replace(hour=23).isoformat(),
}

#: A one-crime batch dated by the wall clock (its date must be plausible), crime at T0.
NEW_BATCH = (
    f"Kent Police,RB,Robbery,KNT{datetime.now(UTC):%Y%m%d},CR-79,{T0:%Y%m%d%H%M%S},"
    f"{T0:%Y%m%d%H%M%S},,,51.45,-0.97,WGS84,simulated\r\n"
).encode()


def expect(ok: dict[str, int], default: int = 403) -> dict[str | None, int]:
    """Return the status per caller: ``ok`` as given, 401 without a valid token, else ``default``."""
    return {c: 401 if c in (None, "bogus") else ok.get(c, default) for c in CALLERS}


@dataclass
class Row:
    method: str
    path: str
    want: dict[str | None, int]
    kwargs: dict[str, Any] = field(default_factory=dict)


EVERYONE = {"officer": 200, "officer-2": 200, "investigator": 200, "ops": 200, "admin": 200}
EVERYONE["force-feed"] = 200
TABLE: dict[str, Row] = {
    "me": Row("GET", "/api/v1/me", expect(EVERYONE)),
    "alerts.list": Row("GET", "/api/v1/alerts", expect({"officer": 200, "officer-2": 200})),
    "alerts.get": Row(
        "GET", "/api/v1/alerts/alert-off-1", expect({"officer": 200, "officer-2": 404})
    ),
    "alerts.get.unknown": Row(
        "GET", "/api/v1/alerts/alert-nobody", expect({"officer": 404, "officer-2": 404})
    ),
    "alerts.acknowledge": Row(
        "POST",
        "/api/v1/alerts/alert-off-1/acknowledge",
        expect({"officer": 200, "officer-2": 404}),
        {"json": {"note": "seen"}},
    ),
    "alerts.close": Row(
        "POST",
        "/api/v1/alerts/alert-off-1/close",
        expect({"officer": 200, "officer-2": 404}),
        {"json": {"note": "spoke to him"}},
    ),
    "alerts.stream": Row(
        "GET",
        "/api/v1/alerts/stream",
        expect({"officer": 200, "officer-2": 200}),
        {"params": {"max_s": 0.05}},
    ),
    "offenders.list": Row(
        "GET", "/api/v1/offenders", expect({"officer": 200, "officer-2": 200, "admin": 200})
    ),
    "offenders.get": Row(
        "GET", "/api/v1/offenders/off-1", expect({"officer": 200, "officer-2": 404, "admin": 200})
    ),
    "offenders.get.unknown": Row(
        "GET", "/api/v1/offenders/off-9", expect({"officer": 404, "officer-2": 404, "admin": 404})
    ),
    "offenders.conditions": Row(
        "PUT",
        "/api/v1/offenders/off-3/conditions",
        expect({"admin": 200}),
        {"json": NEW_CONDITIONS},
    ),
    "trail": Row(
        "GET", "/api/v1/offenders/off-1/trail", expect({"investigator": 200}), {"params": TRAIL}
    ),
    "trail.unknown": Row(
        "GET", "/api/v1/offenders/off-9/trail", expect({"investigator": 404}), {"params": TRAIL}
    ),
    "audit.list": Row("GET", "/api/v1/audit", expect({"admin": 200})),
    "audit.verify": Row("GET", "/api/v1/audit/verify", expect({"admin": 200})),
    "tokens.list": Row("GET", "/api/v1/tokens", expect({"admin": 200})),
    # seeded token ids: officer-1 1, investigator-1 2, ops-1 3, admin-1 4, force-feed-1 5,
    # officer-2 6 (tests/api/conftest.py)
    "tokens.renew": Row("POST", "/api/v1/tokens/1/renew", expect({"admin": 200})),
    "tokens.expire": Row("POST", "/api/v1/tokens/6/expire", expect({"admin": 200})),
    "tokens.revoke": Row("POST", "/api/v1/tokens/6/revoke", expect({"admin": 200})),
    "tokens.renew.unknown": Row("POST", "/api/v1/tokens/999/renew", expect({"admin": 404})),
    "tokens.expire.unknown": Row("POST", "/api/v1/tokens/999/expire", expect({"admin": 404})),
    "tokens.revoke.unknown": Row("POST", "/api/v1/tokens/999/revoke", expect({"admin": 404})),
    "caseloads.get": Row("GET", "/api/v1/caseloads/officer-1", expect({"admin": 200})),
    "caseloads.get.unknown": Row("GET", "/api/v1/caseloads/nobody", expect({"admin": 404})),
    "caseloads.put": Row(
        "PUT",
        "/api/v1/caseloads/officer-1",
        expect({"admin": 200}),
        {"json": {"offender_ids": ["off-1", "off-2"]}},
    ),
    "metrics": Row("GET", "/metrics", expect({"ops": 200, "admin": 200})),
    # Scenes (em_service/api/scenes.py): investigators read; investigators and admins report.
    "scenes.create": Row(
        "POST", "/api/v1/scenes", expect({"investigator": 201, "admin": 201}), {"json": NEW_SCENE}
    ),
    "scenes.list": Row("GET", "/api/v1/scenes", expect({"investigator": 200})),
    "scenes.get": Row("GET", "/api/v1/scenes/sc-1", expect({"investigator": 200})),
    "scenes.get.unknown": Row("GET", "/api/v1/scenes/sc-9", expect({"investigator": 404})),
    "scenes.matches": Row("GET", "/api/v1/scenes/sc-1/matches", expect({"investigator": 200})),
    "scenes.evidence": Row(
        "GET",
        "/api/v1/scenes/sc-1/matches/off-1/evidence",
        expect({"investigator": 200}),
        {"params": {"format": "csv", "purpose": "CR-77 evidence"}},
    ),
    "scenes.evidence.unknown": Row(
        "GET",
        "/api/v1/scenes/sc-1/matches/off-9/evidence",
        expect({"investigator": 404}),
        {"params": {"purpose": "CR-77 evidence"}},
    ),
    "offenders.scene_matches": Row(
        "GET", "/api/v1/offenders/off-1/scene-matches", expect({"investigator": 200})
    ),
    # Crime batches (em_service/api/crime_batches.py): forces' senders and investigators upload.
    "crime_batches.upload": Row(
        "POST",
        "/api/v1/crime-batches",
        expect({"force-feed": 201, "investigator": 201, "admin": 201}),
        {"files": {"file": ("batch.csv", NEW_BATCH)}},
    ),
    "crime_batches.list": Row("GET", "/api/v1/crime-batches", expect({"investigator": 200})),
    "crime_batches.get.unknown": Row(
        "GET", "/api/v1/crime-batches/KNT20000101", expect({"investigator": 404})
    ),
    "crime_batches.report.unknown": Row(
        "GET", "/api/v1/crime-batches/KNT20000101/report", expect({"investigator": 404})
    ),
    "crime_batches.rerun.unknown": Row(
        "POST",
        "/api/v1/crime-batches/KNT20000101/rerun",
        expect({"investigator": 404, "admin": 404}),
    ),
}


@pytest.mark.parametrize("name", list(TABLE))
def test_role_endpoint_matrix(kafka_api: Api, name: str) -> None:
    row = TABLE[name]
    # Callers that succeed go last, so a state change (acknowledge…) cannot mask another row.
    order = sorted(CALLERS, key=lambda c: 200 <= row.want[c] < 300)
    got = {}
    for caller in order:
        response = kafka_api.client.request(
            row.method, row.path, headers=kafka_api.headers(caller), **row.kwargs
        )
        got[caller] = response.status_code
        if response.status_code >= 400:
            assert set(response.json()) == {"detail"}, response.text
        if response.status_code == 401:
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert got == row.want


def test_health_is_open(kafka_api: Api) -> None:
    assert kafka_api.client.get("/healthz").status_code == 200
    ready = kafka_api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"kafka": "ok", "database": "ok"}


def test_every_api_route_is_in_the_table(kafka_api: Api) -> None:
    documented = {
        (method.upper(), path)
        for path, ops in kafka_api.app.openapi()["paths"].items()
        for method in ops
        if path.startswith("/api/") or path == "/metrics"
    }
    templates = [
        (r"/alerts/alert-[\w-]+", "/alerts/{alert_id}"),
        (r"/offenders/off-\d+", "/offenders/{offender_id}"),
        (r"/caseloads/[\w-]+", "/caseloads/{name}"),
        (r"/tokens/\d+", "/tokens/{token_id}"),
        (r"/scenes/sc-\d+", "/scenes/{scene_id}"),
        (r"/matches/off-\d+", "/matches/{offender_id}"),
        (r"/crime-batches/[A-Za-z]+\d{8}", "/crime-batches/{batch_id}"),
    ]

    def template(path: str) -> str:
        for pattern, repl in templates:
            path = re.sub(pattern, repl, path)
        return path

    covered = {(r.method, template(r.path)) for r in TABLE.values()}
    assert documented <= covered, documented - covered
