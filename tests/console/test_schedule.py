"""The schedule editor (admin): the week grid form ⇄ the conditions contract, one-off
exceptions and validity dates in local time (DST-correct), errors next to the field or the
curfew that caused them, roles and CSRF, and a save through the API's path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest
from fastapi.testclient import TestClient

from em_service import kafka_io
from em_service.conditions.validate import check
from em_service.console import person as P
from em_service.console import schedule as S
from em_service.contracts import Conditions
from em_service.store import audit, offenders
from tests.api.conftest import Api, make_api
from tests.console.conftest import csrf_of, rich_conditions, sign_in
from tests.database import Database
from tests.store.factories import T0

URL = "/console/admin/people/off-1/schedule"
DOC = msgspec.to_builtins(rich_conditions())


def form_fields(form: S.Form) -> dict[str, str]:
    """The posted fields of a form (what a browser sends for the rendered page)."""
    out: dict[str, str] = {}
    for s in form.subjects:
        for d in S.DAYS:
            for j, (a, b) in enumerate(s.days[d]):
                out[f"{s.key}-{d}-{j}-start"], out[f"{s.key}-{d}-{j}-end"] = a, b
        for k, x in enumerate(s.exceptions):
            out[f"{s.key}-x{k}-date"] = x["date"]
            out[f"{s.key}-x{k}-start"], out[f"{s.key}-x{k}-end"] = x["start"], x["end"]
            if x["cancelled"]:
                out[f"{s.key}-x{k}-cancelled"] = "yes"
        if s.always:
            out[f"{s.key}-always"] = "yes"
    return out | form.valid


def test_grid_round_trip_groups_days() -> None:
    windows = [
        {"days": ["mon", "tue"], "start": "19:00", "end": "07:00"},
        {"days": ["sat"], "start": "21:00", "end": "06:00"},
        {"days": ["sat"], "start": "12:00", "end": "13:00"},
    ]
    grid = S.grid_of(windows)
    assert grid["sat"] == [("12:00", "13:00"), ("21:00", "06:00")] and grid["sun"] == []
    assert sorted(map(json.dumps, S.windows_of(grid))) == sorted(map(json.dumps, windows))


def test_unchanged_form_gives_the_same_document() -> None:
    form, errors = S.read_form(DOC, form_fields(S.form_of(DOC)))
    draft, more = S.draft_of(DOC, form)
    assert errors == more == []
    assert check(json.dumps(draft).encode(), crs="EPSG:27700").conditions == msgspec.convert(
        {**DOC, "updated_at": None}, Conditions
    )


def test_exceptions_and_validity_are_local_time_dst_correct() -> None:
    """Saturday 24 Oct 2026 19:00 to Sunday 07:00 spans the clocks going back (13 h); the
    Sunday window is cancelled; Monday's starts at 21:00 instead; valid from midnight on
    the Sunday, local (00:00 BST = 23:00 UTC the day before)."""
    fields = form_fields(S.form_of(DOC))
    fields |= {"c0-x0-date": "2026-10-25", "c0-x0-cancelled": "yes"}
    fields |= {"c0-x1-date": "2026-10-26", "c0-x1-start": "21:00", "c0-x1-end": "07:00"}
    fields |= {"valid_from_date": "2026-10-25", "valid_from_time": "00:00"}
    form, errors = S.read_form(DOC, fields)
    draft, more = S.draft_of(DOC, form)
    assert errors == more == []
    assert draft["curfews"][0]["exceptions"] == [
        {"date": "2026-10-25", "cancelled": True},
        {"date": "2026-10-26", "start": "21:00", "end": "07:00"},
    ]
    assert draft["valid_from"] == "2026-10-24T23:00:00+00:00"
    checked = check(json.dumps(draft).encode(), crs="EPSG:27700")
    week = P.week_grid(
        checked.compiled, checked.conditions, date(2026, 10, 19), ZoneInfo("Europe/London")
    )
    by_day = {r.day.isoformat(): r.windows for r in week}
    assert by_day["2026-10-24"] == ["19:00–07:00 next day (13 h; UTC 18:00–07:00)"]
    assert by_day["2026-10-25"] == []


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        ({"c0-mon-0-start": "25:00"}, "c0-mon-0-start", "enter the start as HH:MM"),
        ({"c0-mon-0-end": ""}, "c0-mon-0-end", "enter the end as HH:MM"),
        ({"c0-x0-date": "soon", "c0-x0-cancelled": "yes"}, "c0-x0-date", "exception's date"),
        (
            {"c0-x0-date": "2026-10-26", "c0-x0-start": "21:00"},
            "c0-x0-end",
            "or tick cancelled",
        ),
        (
            {"valid_from_date": "2026-03-29", "valid_from_time": "01:30"},
            "valid_from_date",
            "does not exist",
        ),
    ],
)
def test_field_errors_name_their_field(change: dict, field: str, why: str) -> None:
    form, errors = S.read_form(DOC, form_fields(S.form_of(DOC)) | change)
    errors += S.draft_of(DOC, form)[1]
    assert [f for f, _ in errors] == [field] and why in errors[0][1]


def test_a_curfew_without_windows_and_check_errors_point_at_their_curfew() -> None:
    fields = {k: v for k, v in form_fields(S.form_of(DOC)).items() if not k.startswith("c0-")}
    form, errors = S.read_form(DOC, fields)
    assert errors == [] and S.draft_of(DOC, form)[1] == [
        ("c0", "Curfew c-home: enter at least one window")
    ]
    message = "conditions contract: Expected `array` of length >= 1 - at `$.curfews[0].windows`"
    assert S.subject_error(form, message) == ("c0", message)
    assert S.subject_error(form, "z-town: invalid geometry")[0] == "z0"
    assert S.subject_error(form, "valid_to must be after valid_from")[0] == "valid_to_date"


@pytest.fixture
def admin(api: Api) -> TestClient:
    with api.store.write() as s:
        offenders.put_conditions(s, conditions=rich_conditions(), changed_at=T0)
    assert sign_in(api.client, api.tokens["admin"]).status_code == 303
    return api.client


def _post(client: TestClient, change: dict[str, str], action: str = "check"):
    page = client.get(URL)
    fields = form_fields(S.form_of(DOC)) | change
    return client.post(URL, data=fields | {"csrf_token": csrf_of(page.text), "action": action})


@pytest.mark.parametrize("role", ["officer", "investigator", "ops"])
def test_only_admins_edit_schedules(api: Api, role: str) -> None:
    assert sign_in(api.client, api.tokens[role]).status_code == 303
    page = api.client.get(URL)
    assert page.status_code == 403 and "for admins" in page.text
    assert api.client.post(URL, data={"csrf_token": "x"}).status_code == 403


def test_page_shows_the_grid_and_errors_inline(api: Api, admin: TestClient) -> None:
    page = admin.get(URL)
    assert page.status_code == 200
    assert 'id="c0-mon-0-start" name="c0-mon-0-start"' in page.text and 'value="19:00"' in page.text
    assert 'id="c0-mon-1-start"' in page.text  # the empty row to add a window
    assert "Zone Town &lt;b&gt; (z-town)" in page.text and "Town <b>" not in page.text
    refused = admin.post(URL, data={"csrf_token": "nope"})
    assert refused.status_code == 403
    bad = _post(admin, {"c0-tue-0-start": "7pm<"})
    assert bad.status_code == 422
    assert '<a href="#c0-tue-0-start">' in bad.text and 'id="c0-tue-0-start-error"' in bad.text
    assert 'value="7pm&lt;"' in bad.text  # what was typed is kept, escaped
    empty = {k: "" for k in form_fields(S.form_of(DOC)) if k.startswith("c0-")}
    gone = _post(admin, empty)
    assert gone.status_code == 422 and 'id="c0-error"' in gone.text
    ok = _post(admin, {"c0-x0-date": "2026-10-25", "c0-x0-cancelled": "yes"})
    assert ok.status_code == 200 and 'id="draft-grid"' in ok.text and "pass every check" in ok.text
    with api.store.read() as s:
        assert audit.list_entries(s, action="conditions.put")[1] == 0
    saved = _post(admin, {}, action="save")  # no Kafka here: refused, shown, nothing stored
    assert saved.status_code == 503 and 'id="schedule-form-error"' in saved.text


@pytest.fixture
def kafka_api(tmp_path: Path, sqlite_db: Database, kafka_bootstrap: str) -> Iterator[Api]:
    yield from make_api(tmp_path, sqlite_db, kafka_bootstrap, console_tile_url="")


@pytest.mark.kafka
def test_save_publishes_the_grid(kafka_api: Api) -> None:
    client, s = kafka_api.client, kafka_api.settings
    with kafka_api.store.write() as session:
        offenders.put_conditions(session, conditions=rich_conditions(), changed_at=T0)
    assert sign_in(client, kafka_api.tokens["admin"]).status_code == 303
    mark = asyncio.run(kafka_io.end_offsets(s.kafka_bootstrap, s.topic_conditions))
    r = _post(
        client,
        {"c0-sat-0-start": "21:00", "c0-x0-date": "2026-12-25", "c0-x0-cancelled": "yes"},
        "save",
    )
    assert r.status_code == 200 and "Schedules saved and published" in r.text, r.text
    (record,) = asyncio.run(
        kafka_io.read_since(
            s.kafka_bootstrap, s.topic_conditions, mark or None, want=1, timeout_s=10
        )
    )
    published = msgspec.json.decode(record.value, type=Conditions)
    windows = {(tuple(w.days), w.start, w.end) for w in published.curfews[0].windows}
    assert windows == {
        (("mon", "tue", "wed", "thu", "fri", "sun"), "19:00", "07:00"),
        (("sat",), "21:00", "07:00"),
    }
    assert published.curfews[0].exceptions[0].cancelled
    assert published.updated_at is not None and published.updated_at > datetime(
        2026, 1, 1, tzinfo=UTC
    )
