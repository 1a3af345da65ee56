"""Sign-in, the session cookie, CSRF, sign-out, timeouts, security headers and error pages."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from em_service.console.sessions import COOKIE, sessions
from em_service.store.models import ConsoleSessionRow
from tests.api.conftest import Api
from tests.console.conftest import csrf_of, sign_in


def test_sign_in_starts_a_strict_httponly_session_and_never_echoes_the_token(api: Api) -> None:
    token = api.tokens["officer"]
    response = sign_in(api.client, token)
    assert response.status_code == 303 and response.headers["location"] == "/console/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http here; see the TLS test
    assert token not in cookie
    for path in ("/console/", "/console/me", "/console/alerts/alert-off-1"):
        page = api.client.get(path)
        assert page.status_code == 200, path
        assert token not in page.text and token not in str(page.url)
    assert "officer-1" in api.client.get("/console/me").text


def test_cookie_is_secure_behind_tls(api: Api) -> None:
    client = TestClient(api.app, base_url="https://testserver")
    response = sign_in(client, api.tokens["officer"])
    assert "Secure" in response.headers["set-cookie"]


def test_unknown_token_is_refused_with_a_message(api: Api) -> None:
    response = sign_in(api.client, "em_not-a-real-token")
    assert response.status_code == 401
    assert "not known or has been revoked" in response.text
    assert f"{COOKIE}=" not in response.headers.get("set-cookie", "")


def test_sign_in_without_its_csrf_value_is_refused(api: Api) -> None:
    api.client.get("/console/sign-in")
    response = api.client.post(
        "/console/sign-in", data={"token": api.tokens["officer"]}, follow_redirects=False
    )
    assert response.status_code == 403 and f"{COOKIE}=" not in response.headers.get(
        "set-cookie", ""
    )


def test_pages_need_a_session(api: Api) -> None:
    response = api.client.get("/console/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"


def test_a_form_without_its_csrf_token_is_refused(officer: TestClient, api: Api) -> None:
    refused = officer.post("/console/alerts/alert-off-1/acknowledge", data={})
    assert refused.status_code == 403 and "security check failed" in refused.text
    wrong = officer.post("/console/alerts/alert-off-1/acknowledge", data={"csrf_token": "x" * 40})
    assert wrong.status_code == 403
    got = api.client.get("/api/v1/alerts/alert-off-1", headers=api.headers("officer")).json()
    assert got["status"] == "open"  # nothing happened
    token = csrf_of(officer.get("/console/alerts/alert-off-1").text)
    done = officer.post(
        "/console/alerts/alert-off-1/acknowledge",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    got = api.client.get("/api/v1/alerts/alert-off-1", headers=api.headers("officer")).json()
    assert got["status"] == "acknowledged"


def test_sign_out_ends_the_session_and_the_stream(officer: TestClient, api: Api) -> None:
    assert officer.get("/api/v1/alerts/stream?max_s=0.1").status_code == 200
    token = csrf_of(officer.get("/console/me").text)
    out = officer.post("/console/sign-out", data={"csrf_token": token})
    assert out.status_code == 200 and "You have signed out" in out.text
    assert len(sessions(api.app)) == 0
    assert officer.get("/console/", follow_redirects=False).status_code == 303
    assert officer.get("/api/v1/alerts/stream?max_s=0.1").status_code == 401


def test_the_cookie_is_only_for_reads_of_the_api(officer: TestClient) -> None:
    assert officer.get("/api/v1/alerts").status_code == 200
    assert officer.post("/api/v1/alerts/alert-off-1/acknowledge", json={}).status_code == 401


def _set_times(api: Api, created_s: float, last_seen_s: float) -> None:
    """Move every stored session's sign-in and last use (as if time had passed)."""
    with api.store.write() as s:
        s.execute(
            update(ConsoleSessionRow).values(
                created_at=datetime.fromtimestamp(created_s, UTC),
                last_seen_at=datetime.fromtimestamp(last_seen_s, UTC),
            )
        )


def test_idle_and_absolute_timeouts(officer: TestClient, api: Api) -> None:
    store = sessions(api.app)
    t = [1_000_000.0]
    store.clock = lambda: t[0]
    _set_times(api, t[0], t[0])
    t[0] += store.idle_s - 5
    assert officer.get("/console/", follow_redirects=False).status_code == 200
    t[0] += store.idle_s - 5  # active again before the idle limit: still signed in
    assert officer.get("/console/", follow_redirects=False).status_code == 200
    t[0] += store.idle_s - 5  # only the live stream in between: it does not count as use
    assert officer.get("/api/v1/alerts/stream?max_s=0.05").status_code == 200
    t[0] += 10
    assert officer.get("/console/", follow_redirects=False).status_code == 303
    assert len(store) == 0  # the expired session was deleted, not just ignored
    sign_in(officer, api.tokens["officer"])
    _set_times(api, t[0] - store.max_s - 1, t[0])  # active all along, but 12 h are up
    assert officer.get("/console/", follow_redirects=False).status_code == 303


def test_last_seen_is_written_at_most_every_touch_interval(officer: TestClient, api: Api) -> None:
    """Per request: one read; a write of last_seen only when the last one is older than touch_s."""
    store = sessions(api.app)
    t = [2_000_000.0]
    store.clock = lambda: t[0]
    _set_times(api, t[0], t[0])

    def seen() -> float:
        with api.store.read() as s:
            return s.scalar(select(ConsoleSessionRow.last_seen_at)).timestamp()

    t[0] += store.touch_s - 1
    assert officer.get("/console/", follow_redirects=False).status_code == 200
    assert seen() == 2_000_000.0  # not yet due
    t[0] += 2
    assert officer.get("/console/", follow_redirects=False).status_code == 200
    assert seen() == t[0]


def test_the_database_keeps_hashes_not_the_cookie_or_csrf(officer: TestClient, api: Api) -> None:
    sid = officer.cookies[COOKIE]
    csrf = csrf_of(officer.get("/console/me").text)
    with api.store.read() as s:
        row = s.scalars(select(ConsoleSessionRow)).one()
    stored = " ".join(str(v) for v in vars(row).values())
    assert sid not in stored and csrf not in stored and api.tokens["officer"] not in stored
    assert row.sid_sha256 == hashlib.sha256(sid.encode()).hexdigest()
    assert row.principal == "officer-1"


def test_a_revoked_token_ends_its_session(officer: TestClient, api: Api) -> None:
    from em_service.store import tokens

    with api.store.write() as s:
        tokens.revoke_tokens(s, name="officer-1")
    assert officer.get("/console/", follow_redirects=False).status_code == 303


def test_security_headers_and_no_inline_script(officer: TestClient) -> None:
    page = officer.get("/console/")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text and "<script " in page.text  # only external scripts
    assert " on" + "click=" not in page.text and "style=" not in page.text


def test_csp_allows_the_configured_tile_host(tmp_path, sqlite_db) -> None:
    from tests.api.conftest import make_api

    for api in make_api(tmp_path, sqlite_db, None):  # default: OpenStreetMap tiles
        page = api.client.get("/console/sign-in")
        assert (
            "img-src 'self' data: https://tile.openstreetmap.org;"
            in (page.headers["content-security-policy"])
        )


def test_errors_are_gov_uk_pages_for_the_console_and_json_for_the_api(officer: TestClient) -> None:
    page = officer.get("/console/no-such-page")
    assert page.status_code == 404 and "Page not found" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert officer.get("/api/v1/nothing").json() == {"detail": "Not Found"}


def test_admins_are_not_officers(api: Api) -> None:
    response = sign_in(api.client, api.tokens["admin"])
    assert response.headers["location"] == "/console/admin/people"
    page = api.client.get("/console/")
    assert page.status_code == 403 and "for officers" in page.text
