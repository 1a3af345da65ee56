"""``/readyz`` says what the API waits for; the error text behind it only to ops and admin."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import Api, make_api
from tests.database import Database


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


def test_health_judges_the_ops_token_by_the_settings_clock(
    tmp_path: Path, sqlite_db: Database
) -> None:
    """A token expired by the service's clock (100 days on; tokens live 90) shows no detail,
    as it is refused everywhere else — whatever the machine's own date."""
    for api in make_api(tmp_path, sqlite_db, None, wall_clock_offset_s=100 * 86400.0):
        assert api.client.get("/api/v1/me", headers=api.headers("ops")).status_code == 401
        response = api.client.get("/readyz", headers=api.headers("ops"))
        assert response.status_code == 503 and response.json()["detail"] is None
