"""Token expiry and revocation of one token at the API, the per-client limit on failed
authentications (429, metrics, one audit row per window), security headers on every response,
the admin token routes and hiding /docs (issue 13 finding 10)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from em_service.api.auth_guard import AuthThrottle, client_of
from em_service.clock import wall_now
from em_service.settings import Settings
from em_service.store import audit, tokens
from tests.api.conftest import Api, make_api
from tests.database import Database

DAY = timedelta(days=1)


@pytest.fixture
def api(tmp_path: Path, sqlite_db: Database) -> Iterator[Api]:
    yield from make_api(tmp_path, sqlite_db, None)


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _entries(api: Api, action: str) -> list[dict]:
    with api.store.read() as s:
        return [json.loads(e.detail_json) for e in audit.list_entries(s, action=action)[0]]


# --- Expiry and revoking one token ---------------------------------------------------------


def test_an_expired_token_is_401_token_expired_on_reads_and_on_bodies(api: Api) -> None:
    with api.store.write() as s:  # created 91 days before the service's clock: 90-day lifetime
        old = tokens.create_token(
            s, name="admin-1", role="admin", now=wall_now(api.settings) - 91 * DAY
        )
    before = _metric("em_api_auth_failures_total", reason="expired")
    read = api.client.get("/api/v1/me", headers=_bearer(old))
    assert read.status_code == 401 and read.json() == {"detail": "token expired"}
    body = api.client.put(
        "/api/v1/caseloads/officer-1", headers=_bearer(old), json={"offender_ids": []}
    )
    assert body.status_code == 401 and body.json() == {"detail": "token expired"}
    assert _metric("em_api_auth_failures_total", reason="expired") == before + 2
    assert api.client.get("/api/v1/me", headers=api.headers("admin")).status_code == 200


def test_revoking_one_token_leaves_the_principals_other_token_working(api: Api) -> None:
    with api.store.write() as s:
        second = tokens.create_token(s, name="officer-1", role="officer")
        first_id = tokens.list_tokens(s, name="officer-1")[0].id
    revoked = api.client.post(f"/api/v1/tokens/{first_id}/revoke", headers=api.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    gone = api.client.get("/api/v1/me", headers=api.headers("officer"))
    assert gone.status_code == 401 and gone.json() == {"detail": "unknown or revoked token"}
    assert api.client.get("/api/v1/me", headers=_bearer(second)).json()["name"] == "officer-1"
    assert _entries(api, "token.revoke") == [
        {"principal": "officer-1", "token_id": first_id, "revoked": 1}
    ]


def test_admin_lists_expires_and_renews_tokens(api: Api) -> None:
    admin = api.headers("admin")
    listed = api.client.get("/api/v1/tokens", headers=admin, params={"principal": "ops-1"})
    (ops,) = listed.json()
    assert ops["status"] == "live" and ops["role"] == "ops"
    assert "token" not in ops and "token_sha256" not in ops
    expired = api.client.post(f"/api/v1/tokens/{ops['id']}/expire", headers=admin)
    assert expired.json()["status"] == "expired"
    refused = api.client.get("/api/v1/me", headers=api.headers("ops"))
    assert refused.json() == {"detail": "token expired"}
    too_long = api.client.post(
        f"/api/v1/tokens/{ops['id']}/renew", headers=admin, json={"ttl_days": 400}
    )
    assert too_long.status_code == 422
    renewed = api.client.post(
        f"/api/v1/tokens/{ops['id']}/renew", headers=admin, json={"ttl_days": 30}
    )
    assert renewed.status_code == 200 and renewed.json()["status"] == "live"
    assert api.client.get("/api/v1/me", headers=api.headers("ops")).status_code == 200
    assert [e["token_id"] for e in _entries(api, "token.renew")] == [ops["id"]]
    assert [e["token_id"] for e in _entries(api, "token.expire")] == [ops["id"]]
    api.client.post(f"/api/v1/tokens/{ops['id']}/revoke", headers=admin)
    again = api.client.post(f"/api/v1/tokens/{ops['id']}/renew", headers=admin)
    assert again.status_code == 409 and "revoked" in again.json()["detail"]


def test_metrics_count_tokens_expiring_within_7_days(api: Api) -> None:
    with api.store.write() as s:
        tokens.create_token(s, name="ops-9", role="ops", ttl_days=3)
        tokens.create_token(s, name="ops-9", role="ops", ttl_days=8)
    scrape = api.client.get("/metrics", headers=api.headers("ops"))
    assert "em_tokens_expiring_7d 1.0" in scrape.text


# --- The limit on failed authentications ---------------------------------------------------


def test_429_after_the_threshold_with_metrics_and_exactly_one_audit_row(api: Api) -> None:
    limit = api.settings.api_auth_failures_max
    failures = _metric("em_api_auth_failures_total", reason="unknown")
    throttled = _metric("em_api_auth_throttled_total")
    for _ in range(limit):
        assert api.client.get("/api/v1/me", headers=api.headers("bogus")).status_code == 401
    for _ in range(3):  # a valid token too: the client is refused before any token is read
        refused = api.client.get("/api/v1/me", headers=api.headers("admin"))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= api.settings.api_auth_failures_window_s
        assert "too many failed authentications" in refused.json()["detail"]
    body = api.client.put(
        "/api/v1/caseloads/officer-1", headers=api.headers("admin"), json={"offender_ids": []}
    )
    assert body.status_code == 429 and "retry-after" in body.headers  # the body guard too
    assert _metric("em_api_auth_failures_total", reason="unknown") == failures + limit
    assert _metric("em_api_auth_throttled_total") == throttled + 4
    (row,) = _entries(api, "auth.failures")
    assert row == {
        "client": "testclient",
        "failures": limit,
        "reasons": {"unknown": limit},
        "via": "api",
        "window_s": api.settings.api_auth_failures_window_s,
    }
    assert api.client.get("/healthz").status_code == 200  # no token needed: not throttled


def test_the_window_resets_and_memory_is_bounded() -> None:
    now = [0.0]
    throttle = AuthThrottle(max_failures=3, window_s=60, max_clients=2, clock=lambda: now[0])
    assert [throttle.failed("a", "unknown") is not None for _ in range(4)] == [
        False,
        False,
        True,  # crossing: the one audit row
        False,
    ]
    now[0] = 20.5
    assert throttle.retry_after("a") == 40
    now[0] = 60.0
    assert throttle.retry_after("a") is None  # a new window
    throttle.failed("b", "missing")
    throttle.failed("c", "missing")
    assert len(throttle) == 2  # "a", the least recent, was forgotten


def test_the_client_behind_a_trusted_proxy_is_the_forwarded_address() -> None:
    settings = Settings(api_trusted_proxies=["10.0.0.0/8"])
    forwarded = [(b"x-forwarded-for", b"203.0.113.9, 10.0.0.7")]
    behind = {"client": ("10.0.0.1", 5000), "headers": forwarded}
    assert client_of(behind, settings) == "203.0.113.9"
    direct = {"client": ("198.51.100.4", 5000), "headers": forwarded}  # a spoofed header
    assert client_of(direct, settings) == "198.51.100.4"
    assert client_of(behind, Settings()) == "10.0.0.1"  # no proxy trusted


# --- Security headers and /docs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "who", "code"),
    [
        ("GET", "/api/v1/me", "officer", 200),
        ("GET", "/api/v1/me", None, 401),
        ("GET", "/api/v1/alerts/alert-nobody", "officer", 404),
        ("GET", "/api/v1/alerts?limit=x", "officer", 422),
        ("POST", "/api/v1/tokens/1/revoke", None, 401),  # answered by the body guard
        ("GET", "/healthz", None, 200),
        ("GET", "/no-such-path", None, 404),
    ],
)
def test_api_responses_carry_security_headers(
    api: Api, method: str, path: str, who: str | None, code: int
) -> None:
    response = api.client.request(method, path, headers=api.headers(who))
    assert response.status_code == code
    h = response.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert h["cache-control"] == "no-store"
    assert h["content-security-policy"].startswith("default-src 'none'; frame-ancestors 'none'")


def test_console_pages_and_their_errors_carry_the_strict_policy(api: Api) -> None:
    for path, code in (("/console/sign-in", 200), ("/console/no-such-page", 404)):
        page = api.client.get(path)
        assert page.status_code == code
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-content-type-options"] == "nosniff"
    asset = api.client.get("/console/static/console.css")
    assert asset.headers["x-content-type-options"] == "nosniff"
    assert asset.headers.get("cache-control") != "no-store"  # static assets may be cached


def test_an_uncaught_error_is_a_500_with_the_headers_and_no_traceback(api: Api) -> None:
    """Starlette's ServerErrorMiddleware answers an uncaught exception outside every user
    middleware: its 500 must carry the security headers too, and say nothing of the error."""

    def boom() -> None:
        raise RuntimeError("internal-secret-detail")

    for path in ("/test-only/boom", "/console/test-only/boom"):  # this app object only
        api.app.add_api_route(path, boom)
    client = TestClient(api.app, raise_server_exceptions=False)
    for path, policy in (
        ("/test-only/boom", "default-src 'none'; frame-ancestors 'none'"),
        ("/console/test-only/boom", "default-src 'self'"),
    ):
        response = client.get(path)
        assert response.status_code == 500, path
        h = response.headers
        assert h["x-content-type-options"] == "nosniff", path
        assert h["referrer-policy"] == "no-referrer" and h["x-frame-options"] == "DENY", path
        assert h["cache-control"] == "no-store", path
        assert h["content-security-policy"].startswith(policy), path
        assert response.json() == {"detail": "Internal server error"}, path
        assert "internal-secret-detail" not in response.text and "Traceback" not in response.text


def test_docs_are_served_by_default(api: Api) -> None:
    assert api.client.get("/openapi.json").status_code == 200
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_docs_hidden_by_the_setting(tmp_path: Path, sqlite_db: Database) -> None:
    for api in make_api(tmp_path, sqlite_db, None, api_docs_enabled=False):
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
            assert api.client.get(path).status_code == 404, path
        assert "/api/v1/me" in api.app.openapi()["paths"]  # still built for tests and tools
        assert api.client.get("/api/v1/me", headers=api.headers("officer")).status_code == 200


def test_throttled_routes_document_429(api: Api) -> None:
    doc = api.app.openapi()
    me = doc["paths"]["/api/v1/me"]["get"]["responses"]
    assert "429" in me and "Retry-After" in me["429"]["headers"]
    assert "429" not in doc["paths"]["/healthz"]["get"]["responses"]


def test_an_untouched_client_is_never_throttled(api: Api) -> None:
    """The limit counts failures only: many good requests are fine."""
    for _ in range(api.settings.api_auth_failures_max * 2):
        assert api.client.get("/api/v1/me", headers=api.headers("officer")).status_code == 200
    assert _entries(api, "auth.failures") == []
