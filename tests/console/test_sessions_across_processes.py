"""Issue 14: two real API processes (uvicorn, ``em-service api``) on one database share console
sessions: a session opened on A works on B (pages, forms with A's CSRF token, the live stream
over the cookie) and a sign-out on B ends it on A."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from em_service.console.sessions import COOKIE, PRE_COOKIE
from em_service.store import tokens
from tests.console.conftest import csrf_of
from tests.database import Database
from tests.service_env import ServiceEnv, free_port

pytestmark = pytest.mark.kafka


def _client(port: int, sid: str | None = None) -> httpx.Client:
    """A client of one API process; the session cookie (if any) is sent by hand, per process."""
    cookies = {COOKIE: sid} if sid else {}
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", cookies=cookies, timeout=10)


def test_a_session_opened_on_one_api_process_works_on_another(
    kafka_bootstrap: str, tmp_path: Path, database: Database
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env |= database.env() | {"EM_CONSOLE_TILE_URL": ""}
    store = database.store()
    with store.write() as s:
        token = tokens.create_token(s, name="officer-1", role="officer", caseload=["off-1"])
    store.dispose()
    ports = [env.api_port, free_port()]
    try:
        for i, port in enumerate(ports):
            env.start("api", "--port", str(port), log_name=f"api{i}")
        for port in ports:
            env.wait_until(
                lambda p=port: (
                    httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=1).status_code == 200
                ),
                30,
                what=f"the API on {port}",
            )
        a_port, b_port = ports
        with _client(a_port) as a:  # sign in on A, as a browser does
            form = a.get("/console/sign-in")
            signed = a.post(
                "/console/sign-in",
                data={"token": token, "csrf_token": csrf_of(form.text)},
                cookies={PRE_COOKIE: form.cookies[PRE_COOKIE]},
            )
            assert signed.status_code == 303, signed.text
            sid = signed.cookies[COOKIE]
        with _client(a_port, sid) as a, _client(b_port, sid) as b:
            assert "officer-1" in b.get("/console/me").text  # B knows A's session
            assert b.get("/console/", follow_redirects=False).status_code == 200
            csrf_a = csrf_of(a.get("/console/me").text)
            assert csrf_of(b.get("/console/me").text) == csrf_a  # one CSRF token per session
            assert b.get("/api/v1/alerts/stream?max_s=0.1").status_code == 200
            refused = b.post("/console/sign-out", data={"csrf_token": "x" * 43})
            assert refused.status_code == 403  # CSRF still checked on B
            out = b.post("/console/sign-out", data={"csrf_token": csrf_a})  # A's token, on B
            assert out.status_code == 200 and "You have signed out" in out.text
            assert a.get("/console/", follow_redirects=False).status_code == 303  # ended on A
            assert a.get("/api/v1/alerts/stream?max_s=0.1").status_code == 401
            assert b.get("/console/", follow_redirects=False).status_code == 303
    finally:
        env.stop_all()
