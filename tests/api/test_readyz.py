"""``/readyz`` says what the API waits for; the error text behind it only to ops and admin."""

from __future__ import annotations

from tests.api.conftest import Api


def test_not_ready_without_kafka_and_no_error_text_for_the_public(api: Api) -> None:
    response = api.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body == {
        "status": "unavailable",
        "checks": {"kafka": "unavailable", "database": "ok"},
        "detail": None,
    }
    for who in ("officer", "investigator", "bogus"):
        again = api.client.get("/readyz", headers=api.headers(who))
        assert again.status_code == 503 and again.json()["detail"] is None, who


def test_ops_and_admin_see_why(api: Api) -> None:
    for who in ("ops", "admin"):
        response = api.client.get("/readyz", headers=api.headers(who))
        assert response.status_code == 503
        detail = response.json()["detail"]
        assert set(detail) == {"kafka"} and detail["kafka"], who  # e.g. KafkaConnectionError: …
