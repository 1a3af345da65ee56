"""Issue 13 finding 5 in the console: notes and trail purposes go through em_service.text."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Api
from tests.console.conftest import csrf_of, enrich


def test_console_forms_use_the_same_rules(officer: TestClient, api: Api) -> None:
    token = csrf_of(officer.get("/console/").text)
    r = officer.post(
        "/console/alerts/alert-off-1/close", data={"csrf_token": token, "note": "ok\u202e"}
    )
    assert r.status_code == 400 and "bidirectional" in r.text
    r = officer.post(
        "/console/alerts/alert-off-1/acknowledge", data={"csrf_token": token, "note": "a\x1bb"}
    )
    assert r.status_code == 400 and "control character" in r.text


def test_console_trail_purpose_is_checked(officer: TestClient, api: Api) -> None:
    enrich(api)
    token = csrf_of(officer.get("/console/people/off-1").text)
    form = {"csrf_token": token, "start": "2026-10-24T22:00", "end": "2026-10-24T23:59"}
    r = officer.post("/console/people/off-1/trail", data={**form, "purpose": "CR-1\u202e"})
    assert r.status_code == 422 and "bidirectional" in r.text
    r = officer.post("/console/people/off-1/trail", data={**form, "purpose": "  x"})
    assert r.status_code == 422 and "Enter why you are viewing" in r.text
