"""Every error is a 4xx with JSON ``{"detail": …}``."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api


def test_unknown_route_and_method(api: Api) -> None:
    r = api.client.get("/api/v1/nowhere")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = api.client.delete("/api/v1/alerts")
    assert r.status_code == 401  # a body method is authenticated before anything (issue 13)
    r = api.client.delete("/api/v1/alerts", headers=api.headers("officer"))
    assert r.status_code == 405 and "GET" in r.headers["allow"] and "detail" in r.json()


def test_malformed_json_body(api: Api) -> None:
    r = api.client.post(
        "/api/v1/alerts/alert-off-1/close",
        headers={**api.headers("officer"), "Content-Type": "application/json"},
        content=b"{nope",
    )
    assert r.status_code == 422 and "JSON" in r.json()["detail"]


def test_conditions_without_kafka_is_503_with_a_message(api: Api) -> None:
    r = api.client.put(
        "/api/v1/offenders/off-5/conditions",
        headers=api.headers("admin"),
        json={"offender_id": "off-5", "device_ids": ["tag-5"]},
    )
    assert r.status_code == 503 and "not published" in r.json()["detail"]


@pytest.mark.parametrize("value", ["2.173536517487059e+16", "1700000000", "yesterday"])
def test_query_time_must_be_rfc3339_text(api: Api, value: str) -> None:
    # Regression (schemathesis): pydantic read a bare number as a Unix time and answered 200.
    resp = api.client.get("/api/v1/alerts", params={"until": value}, headers=api.headers("officer"))
    assert resp.status_code == 422 and "RFC 3339" in resp.text


def test_a_query_parameter_given_twice_is_422_not_the_last_one_silently(api: Api) -> None:
    # Regression (schemathesis): ?actor=false&actor=true answered 200 with actor=true.
    resp = api.client.get(
        "/api/v1/audit?actor=a&actor=b&limit=5&limit=6", headers=api.headers("admin")
    )
    assert resp.status_code == 422
    assert resp.json() == {
        "detail": "query.actor: given more than once; query.limit: given more than once"
    }
    assert api.client.get("/api/v1/audit?actor=a", headers=api.headers("admin")).status_code == 200


def test_body_that_is_not_utf8_is_422(api: Api) -> None:
    r = api.client.post(
        "/api/v1/scenes",
        headers={**api.headers("investigator"), "Content-Type": "application/json"},
        content=b"\xff",
    )
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
