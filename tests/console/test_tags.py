"""Tag assignment (admin): the checks of a change (local time, DST, the last change, the only
tag), the page (roles, CSRF, inline errors, escaping), and a change published as a new version
of the conditions through the API's path, effective from the date given, and audited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from em_service import kafka_io
from em_service.console import scene_view as V
from em_service.console.tags import plan
from em_service.contracts import Conditions
from em_service.store import audit
from em_service.store.models import DeviceAssignment
from tests.api.conftest import Api, make_api
from tests.console.conftest import csrf_of, sign_in
from tests.database import Database

URL = "/console/admin/people/off-1/tags"
LAST = datetime(2026, 10, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def test_plan_assigns_from_a_local_time_dst_correct() -> None:
    change = plan("assign", "tag-2", ["tag-1"], LAST, "2026-10-25", "01:30", "+00:00", NOW)
    assert change.device_ids == ["tag-1", "tag-2"]
    assert change.at == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    summer = plan("assign", "tag-2", ["tag-1"], LAST, "2026-10-25", "01:30", "+01:00", NOW)
    assert summer.at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert plan(
        "unassign", "tag-1", ["tag-1", "tag-2"], None, "2026-11-02", "09:00", "", NOW
    ).at == (datetime(2026, 11, 2, 9, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("action", "device", "day", "clock", "field", "why"),
    [
        ("assign", "tag-1", "2026-11-02", "09:00", "device_id", "already assigned"),
        ("assign", "tag 2", "2026-11-02", "09:00", "device_id", "Enter the tag id"),
        ("unassign", "tag-9", "2026-11-02", "09:00", "device_id", "is not assigned"),
        ("unassign", "tag-1", "2026-11-02", "09:00", "device_id", "only tag"),
        ("assign", "tag-2", "2026-09-30", "09:00", "date", "on or after the last change"),
        ("assign", "tag-2", "2026-10-25", "01:30", "date", "happens twice"),
        ("assign", "tag-2", "2027-03-28", "01:30", "date", "does not exist"),
        ("assign", "tag-2", "2026-11-10", "12:01", "date", "no later than now"),
    ],
)
def test_plan_refuses_with_the_field(
    action: str, device: str, day: str, clock: str, field: str, why: str
) -> None:
    with pytest.raises(V.BadField, match=why) as exc:
        plan(action, device, ["tag-1"], LAST, day, clock, "", NOW)
    assert exc.value.field == field


@pytest.fixture
def admin(api: Api) -> TestClient:
    api.app.state.console_clock = lambda: NOW
    assert sign_in(api.client, api.tokens["admin"]).status_code == 303
    return api.client


@pytest.mark.parametrize("role", ["officer", "investigator", "ops"])
def test_only_admins_change_tags(api: Api, role: str) -> None:
    assert sign_in(api.client, api.tokens[role]).status_code == 303
    page = api.client.get(URL)
    assert page.status_code == 403 and "for admins" in page.text
    assert api.client.post(URL, data={"csrf_token": "x"}).status_code == 403


def test_errors_inline_escaped_and_csrf(api: Api, admin: TestClient) -> None:
    page = admin.get(URL)
    assert page.status_code == 200 and "tag-1" in page.text
    form = {"action": "unassign", "device_id": "tag-1", "date": "2026-11-02", "time": "09:00"}
    refused = admin.post(URL, data=form | {"csrf_token": "nope"})
    assert refused.status_code == 403 and "security check failed" in refused.text
    token = csrf_of(page.text)
    only = admin.post(URL, data=form | {"csrf_token": token})
    assert only.status_code == 422
    assert 'href="#device_id"' in only.text and 'id="device_id-error"' in only.text
    assert "only tag" in only.text.split('id="device_id-error"')[1].split("</p>")[0]
    hostile = admin.post(
        URL, data=form | {"action": "assign", "device_id": "<b>x", "csrf_token": token}
    )
    assert hostile.status_code == 422 and 'value="&lt;b&gt;x"' in hostile.text
    assert "<b>x" not in hostile.text
    with api.store.read() as s:
        assert audit.list_entries(s, action="conditions.put")[1] == 0
    assert admin.get("/console/admin/people/nobody/tags").status_code == 404


@pytest.fixture
def kafka_api(tmp_path: Path, sqlite_db: Database, kafka_bootstrap: str) -> Iterator[Api]:
    yield from make_api(tmp_path, sqlite_db, kafka_bootstrap, console_tile_url="")


@pytest.mark.kafka
def test_assign_then_unassign_publishes_versions_by_date(kafka_api: Api) -> None:
    client, s = kafka_api.client, kafka_api.settings
    kafka_api.app.state.console_clock = lambda: NOW
    assert sign_in(client, kafka_api.tokens["admin"]).status_code == 303
    mark = asyncio.run(kafka_io.end_offsets(s.kafka_bootstrap, s.topic_conditions))
    for action, device, day in (
        ("assign", "tag-new", "2026-10-25"),
        ("unassign", "tag-1", "2026-10-26"),
    ):
        token = csrf_of(client.get(URL).text)
        r = client.post(
            URL,
            data={
                "csrf_token": token,
                "action": action,
                "device_id": device,
                "date": day,
                "time": "01:30",
                "offset": "+00:00" if day == "2026-10-25" else "",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    records = asyncio.run(
        kafka_io.read_since(
            s.kafka_bootstrap, s.topic_conditions, mark or None, want=2, timeout_s=10
        )
    )
    docs = [msgspec.json.decode(r.value, type=Conditions) for r in records]
    assert [d.device_ids for d in docs] == [["tag-1", "tag-new"], ["tag-new"]]
    assert [d.updated_at for d in docs] == [
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]
    with kafka_api.store.read() as session:
        entries = audit.list_entries(session, offender_id="off-1")[0]
        worn = session.scalars(
            select(DeviceAssignment).where(DeviceAssignment.offender_id == "off-1")
        ).all()
    # The store's who-wore-what (trails, scene matching) by the dates given, as the worker.
    spans = {a.device_id: (a.assigned_at, a.unassigned_at) for a in worn}
    assert spans["tag-new"] == (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), None)
    assert spans["tag-1"][1] == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)
    actions = [e.action for e in entries if e.action.startswith(("tag.", "conditions."))]
    assert actions == ["tag.unassign", "conditions.put", "tag.assign", "conditions.put"]
    assert json.loads(entries[0].detail_json)["until"] == "2026-10-26T01:30:00+00:00"
    page = client.get(URL + "?done=unassign")
    assert (
        "Tag unassigned" in page.text
        and page.text.count('class="govuk-table__row em-tag-change"') == 2
    )
    assert '<dd class="govuk-summary-list__value" id="current-tags">tag-new</dd>' in page.text
