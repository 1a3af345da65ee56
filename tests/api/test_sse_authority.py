"""Issue 13 finding 3: an open alert stream re-checks its authority (token or console session,
and the caseload) and ends when it changed; every stream ends after a maximum lifetime.
Real uvicorn, real HTTP streams; short intervals from the settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from em_service.api.main import create_app
from em_service.console.sessions import COOKIE, identity_from_token, sessions
from em_service.store import tokens
from tests.api.conftest import Api, make_api
from tests.api.live_server import serve
from tests.database import Database

RECHECK_S = 0.3


class Stream(threading.Thread):
    """Holds one SSE stream open; ``ended`` is set when the server ends it."""

    def __init__(self, url: str, headers: dict[str, str], cookies: dict[str, str] | None = None):
        super().__init__(daemon=True)
        self.url, self.headers, self.cookies = url, headers, cookies
        self.connected, self.ended = threading.Event(), threading.Event()
        self.status = 0

    def run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=None), cookies=self.cookies) as client,
            client.stream("GET", self.url, headers=self.headers) as response,
        ):
            self.status = response.status_code
            self.connected.set()
            for _ in response.iter_lines():
                pass
        self.ended.set()


@pytest.fixture
def live(tmp_path: Path, sqlite_db: Database) -> Iterator[tuple[Api, str, object]]:
    gen = make_api(
        tmp_path,
        sqlite_db,
        None,
        sse_recheck_interval_s=RECHECK_S,
        sse_max_lifetime_s=30.0,
    )
    api = next(gen)
    app = create_app(api.settings)
    with serve(app) as port:
        yield api, f"http://127.0.0.1:{port}/api/v1/alerts/stream", app
    gen.close()


def _open(url: str, headers: dict[str, str], cookies=None) -> Stream:
    s = Stream(url, headers, cookies)
    s.start()
    assert s.connected.wait(10) and s.status == 200
    return s


def test_stream_ends_when_the_token_is_revoked(live) -> None:
    api, url, _ = live
    s = _open(url, api.headers("officer"))
    time.sleep(3 * RECHECK_S)
    assert not s.ended.is_set()  # unchanged authority: the stream stays open
    with api.store.write() as session:
        tokens.revoke_tokens(session, name="officer-1")
    assert s.ended.wait(5 * RECHECK_S + 2)


def test_stream_ends_when_the_caseload_changes(live) -> None:
    api, url, _ = live
    s = _open(url, api.headers("officer"))
    with api.store.write() as session:
        tokens.set_caseload(session, name="officer-1", offender_ids=[], actor="test")
    assert s.ended.wait(5 * RECHECK_S + 2)


def test_console_cookie_stream_ends_when_the_token_is_revoked(live) -> None:
    api, url, app = live
    identity = identity_from_token(api.store, api.tokens["officer"])
    sid, _ = sessions(app).open(identity)
    s = _open(url, {}, {COOKIE: sid})
    time.sleep(2 * RECHECK_S)
    assert not s.ended.is_set()
    with api.store.write() as session:
        tokens.revoke_tokens(session, name="officer-1")
    assert s.ended.wait(5 * RECHECK_S + 2)


def test_console_cookie_stream_ends_at_sign_out(live) -> None:
    api, url, app = live
    sid, _ = sessions(app).open(identity_from_token(api.store, api.tokens["officer"]))
    s = _open(url, {}, {COOKIE: sid})
    sessions(app).close(sid)
    assert s.ended.wait(5 * RECHECK_S + 2)


def test_streams_have_a_maximum_lifetime(tmp_path: Path, sqlite_db: Database) -> None:
    gen = make_api(tmp_path, sqlite_db, None, sse_max_lifetime_s=1.0)
    api = next(gen)
    try:
        with serve(create_app(api.settings)) as port:
            started = time.monotonic()
            s = _open(f"http://127.0.0.1:{port}/api/v1/alerts/stream", api.headers("officer"))
            assert s.ended.wait(10)
            assert 0.9 <= time.monotonic() - started < 5
    finally:
        gen.close()
