"""GET /offenders/{id} shows the monitoring status in force (with a suspension's reason, from,
until and approved_by) and the single-rule suspensions in force or to come, by the API's clock
(EM_WALL_CLOCK_OFFSET_S fixes it: nothing depends on today's date)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from em_service.contracts import Conditions
from em_service.store import offenders
from em_service.store.models import Offender
from tests.api.conftest import Api, make_api
from tests.database import Database
from tests.store.factories import T0
from tests.trails import ORIGIN_X, ORIGIN_Y, zone

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)
H = timedelta(hours=1)


def _conditions(monitoring: dict) -> Conditions:
    def suspension(sid: str, start: datetime, end: datetime) -> dict:
        return {
            "suspension_id": sid,
            "subject_id": "z-1",
            "from": start.isoformat(),
            "until": end.isoformat(),
            "reason": "hospital appointment",
            "approved_by": "IOM sergeant 1234",
        }

    doc = {
        "offender_id": "off-1",
        "device_ids": ["tag-1"],
        "zones": [zone("z-1", ORIGIN_X, ORIGIN_Y, 150)],
        "monitoring": monitoring,
        "suspensions": [
            suspension("sp-over", NOW - 3 * H, NOW - H),  # over: not shown
            suspension("sp-later", NOW + 2 * H, NOW + 3 * H),
            suspension("sp-now", NOW - H, NOW + H),
        ],
    }
    return msgspec.json.decode(json.dumps(doc), type=Conditions)


CUSTODY = {
    "status": "suspended",
    "reason": "custody",
    "from": (NOW - 2 * H).isoformat(),
    "until": (NOW + 24 * H).isoformat(),
    "approved_by": "Duty manager 77",
}


@pytest.fixture
def api(tmp_path: Path, sqlite_db: Database) -> Iterator[Api]:
    offset = (NOW - datetime.now(UTC)).total_seconds()
    yield from make_api(tmp_path, sqlite_db, None, wall_clock_offset_s=offset)


def test_status_shows_the_suspension_and_the_rule_suspensions(api: Api) -> None:
    with api.store.write() as s:
        offenders.put_conditions(s, conditions=_conditions(CUSTODY), changed_at=T0)
    body = api.client.get("/api/v1/offenders/off-1", headers=api.headers("officer")).json()
    assert body["monitoring"] == {
        "status": "suspended",
        "declared": "suspended",
        "reason": "custody",
        "from": "2026-11-10T10:00:00Z",
        "until": "2026-11-11T12:00:00Z",
        "approved_by": "Duty manager 77",
    }
    assert [(x["suspension_id"], x["active"]) for x in body["suspensions"]] == [
        ("sp-now", True),
        ("sp-later", False),
    ]
    now = body["suspensions"][0]
    assert now["subject_id"] == "z-1" and now["reason"] == "hospital appointment"
    assert now["approved_by"] == "IOM sergeant 1234" and now["from"] == "2026-11-10T11:00:00Z"
    listed = api.client.get("/api/v1/offenders", headers=api.headers("officer")).json()
    assert listed["items"][0]["monitoring"]["status"] == "suspended"


def test_a_suspension_not_yet_begun_leaves_monitoring_active(api: Api) -> None:
    later = {**CUSTODY, "from": (NOW + H).isoformat()}
    with api.store.write() as s:
        offenders.put_conditions(s, conditions=_conditions(later), changed_at=T0)
    body = api.client.get("/api/v1/offenders/off-1", headers=api.headers("officer")).json()
    assert (body["monitoring"]["status"], body["monitoring"]["declared"]) == (
        "active",
        "suspended",
    )


@pytest.mark.parametrize(
    ("at", "status", "shown"),
    [
        (NOW - 3 * H, "active", ["sp-over", "sp-now", "sp-later"]),
        (NOW, "suspended", ["sp-now", "sp-later"]),
        (NOW + 25 * H, "active", []),
    ],
)
def test_monitoring_of_by_time(at: datetime, status: str, shown: list[str]) -> None:
    offender = Offender(
        offender_id="off-1", conditions_json=msgspec.json.encode(_conditions(CUSTODY)).decode()
    )
    monitoring, suspensions = offenders.monitoring_of(offender, at)
    assert monitoring is not None and monitoring.status == status
    assert [x.suspension_id for x in suspensions] == shown


def test_without_conditions_there_is_no_monitoring() -> None:
    assert offenders.monitoring_of(Offender(offender_id="off-9"), NOW) == (None, ())
