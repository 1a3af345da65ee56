"""SSE resume ids are bounded: nonsense (negative, not plain decimal, ≥ 2^63, too long) is a
422 with a message before the stream starts — never a 200 then a broken stream or a 5xx — and
an id beyond the newest event resumes from the newest. Every integer parameter of the API is
bounded the same way."""

from __future__ import annotations

import threading

import pytest

from em_service.api.alert_stream import MAX_EVENT_ID
from em_service.store import alerts
from tests.api.conftest import ROLES, Api
from tests.api.test_alerts_api import _sse
from tests.store.factories import alert

STREAM = "/api/v1/alerts/stream"
NONSENSE = [
    "-1",
    "abc",
    "",
    "1.5",
    "5.0",
    "+5",
    "1_000",
    "0x10",
    "1e3",
    str(MAX_EVENT_ID + 1),  # 2^63: used to pass, then OverflowError in SQLite after the 200
    str(2**64),
    "9" * 20,
    "1" * 5000,
    "٣",  # a digit, but not an ASCII one
]


@pytest.mark.parametrize("value", NONSENSE)
def test_a_nonsense_last_event_id_is_422_before_the_stream(api: Api, value: str) -> None:
    h = {**api.headers("officer"), "Last-Event-ID": value.encode()}  # bytes: not only ASCII
    r = api.client.get(STREAM, headers=h, params={"max_s": 0.1})
    assert r.status_code == 422, r.text
    assert "Last-Event-ID" in r.json()["detail"]


@pytest.mark.parametrize("value", NONSENSE)
def test_a_nonsense_after_is_422_before_the_stream(api: Api, value: str) -> None:
    r = api.client.get(
        STREAM, headers=api.headers("officer"), params={"after": value, "max_s": 0.1}
    )
    assert r.status_code == 422, r.text
    assert "query.after" in r.json()["detail"]


@pytest.mark.parametrize("header", [True, False])
def test_an_id_beyond_the_newest_resumes_from_the_newest(api: Api, header: bool) -> None:
    """The largest id is valid; the stream then carries the next new event (no endless wait)."""
    resume = str(MAX_EVENT_ID)
    h = {**api.headers("officer"), **({"Last-Event-ID": resume} if header else {})}
    params = {"max_s": 3.0, **({} if header else {"after": resume})}

    def raise_alert() -> None:
        with api.store.write() as s:
            alerts.apply_alert(s, alert("alert-after-resume", offender_id="off-1"))

    timer = threading.Timer(0.5, raise_alert)  # once the stream is waiting
    timer.start()
    try:
        r = api.client.get(STREAM, headers=h, params=params)
    finally:
        timer.join()
    assert r.status_code == 200
    events = _sse(r.text)
    assert [(e["kind"], e["alert"]["alert_id"]) for e in events] == [
        ("created", "alert-after-resume")
    ]


def _call_as_allowed(api: Api, method: str, path: str, param: dict, value: str):
    """Call with ``value`` for ``param`` as the first role the endpoint lets in."""
    for role in ROLES:
        headers = api.headers(role)
        params = {"max_s": 0.1} if path == STREAM else {}
        if param["in"] == "header":
            headers[param["name"]] = value
        else:
            params[param["name"]] = value
        r = api.client.request(method.upper(), path, headers=headers, params=params)
        if r.status_code not in (401, 403):
            return r
    raise AssertionError(f"no role may call {method} {path}")


def test_every_integer_parameter_of_the_api_is_bounded(api: Api) -> None:
    """Each integer query/header parameter refuses 2^63, -1 and text with a 422, never 5xx."""
    spec = api.client.get("/openapi.json").json()
    checked = []
    for path, ops in spec["paths"].items():
        if "{" in path:
            continue  # no integer path parameters; string ids are bounded by their patterns
        for method, op in ops.items():
            for param in op.get("parameters", []):
                schema = param["schema"].get("anyOf", [param["schema"]])
                if not any(s.get("type") == "integer" for s in schema):
                    continue
                checked.append((method, path, param["name"]))
                for bad in (str(2**63), "-1", "x"):
                    r = _call_as_allowed(api, method, path, param, bad)
                    assert r.status_code == 422, (method, path, param["name"], bad, r.text)
    assert ("get", STREAM, "Last-Event-ID") in checked and ("get", STREAM, "after") in checked
    assert ("get", "/api/v1/alerts", "limit") in checked
