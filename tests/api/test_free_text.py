"""Issue 13 finding 5: purposes, notes and crime references are normalised (NFC, stripped)
before their length is checked, and control or bidi characters are refused — in the API, the
console and the scene importer alike (one function, em_service.text.clean_text)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from em_service.store import audit
from em_service.text import TextError, clean_text
from tests.api.conftest import Api
from tests.store.factories import T0

WINDOW = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}
BAD = ["  x", "ab\x00cd", "CR-1\u202egnp.exe", "CR-1\nforged line", "x\u2066yz", "ab\rcd"]


@pytest.mark.parametrize("text", BAD)
def test_clean_text_refuses(text: str) -> None:
    with pytest.raises(TextError):
        clean_text(text, min_length=3)


def test_clean_text_normalises() -> None:
    assert clean_text("  cafe\u0301 visit  ", min_length=3) == "caf\u00e9 visit"
    assert clean_text("line 1\r\nline 2\t", multiline=True) == "line 1\nline 2"


def _trail(api: Api, purpose: str):
    return api.client.get(
        "/api/v1/offenders/off-1/trail",
        headers=api.headers("investigator"),
        params={**WINDOW, "purpose": purpose},
    )


@pytest.mark.parametrize("purpose", BAD)
def test_trail_purpose_is_refused(api: Api, purpose: str) -> None:
    r = _trail(api, purpose)
    assert r.status_code == 422 and "purpose" in r.json()["detail"]
    with api.store.read() as s:
        assert audit.list_entries(s, action="trail.read")[1] == 0


def test_trail_purpose_is_audited_normalised(api: Api) -> None:
    assert _trail(api, "  cafe\u0301 CR-9  ").status_code == 200
    with api.store.read() as s:
        (entry,), _ = audit.list_entries(s, action="trail.read")
    assert entry.purpose == "caf\u00e9 CR-9"


@pytest.mark.parametrize("note", ["bad\x00", "\u202eevil", "  "])
def test_alert_notes_are_refused(api: Api, note: str) -> None:
    r = api.client.post(
        "/api/v1/alerts/alert-off-1/close", json={"note": note}, headers=api.headers("officer")
    )
    assert r.status_code == 422 and "note" in r.json()["detail"]
    r = api.client.post(
        "/api/v1/alerts/alert-off-1/acknowledge",
        json={"note": note},
        headers=api.headers("officer"),
    )
    assert r.status_code == 422


def test_notes_may_have_line_breaks(api: Api) -> None:
    r = api.client.post(
        "/api/v1/alerts/alert-off-1/close",
        json={"note": " Spoke to him\r\nLeft the zone "},
        headers=api.headers("officer"),
    )
    assert r.status_code == 200, r.text
    got = api.client.get("/api/v1/alerts/alert-off-1", headers=api.headers("officer")).json()
    assert got["transitions"][-1]["note"] == "Spoke to him\nLeft the zone"


@pytest.mark.parametrize("ref", ["CR/2026/1\u202e", "CR/2026/\x001", "CR/2026\n/1"])
def test_scene_crime_reference_is_refused(api: Api, ref: str) -> None:
    body = {
        "crime_reference": ref,
        "crime_type": "burglary_dwelling",
        "lat": 51.45,
        "lon": -0.97,
        "window_start": T0.isoformat(),
        "window_end": (T0 + timedelta(hours=1)).isoformat(),
    }
    r = api.client.post("/api/v1/scenes", json=body, headers=api.headers("investigator"))
    assert r.status_code == 422 and "crime_reference" in r.json()["detail"]
