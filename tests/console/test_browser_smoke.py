"""Headless Chromium: sign in, the pages render with no CSP violation and no serious or critical
axe-core issue, a note containing <script> renders as text, sign out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from em_service.api.main import create_app
from tests.api.conftest import Api
from tests.console.browser import LiveServer, axe_violations, browser, shoot, sign_in, watch_csp


@pytest.fixture
def live(api: Api) -> Iterator[str]:
    """The same seeded database served over HTTP by a second app instance."""
    with LiveServer(create_app(api.settings)) as server:
        yield server.url


def test_sign_in_queue_alert_and_sign_out(live: str, api: Api, tmp_path: Path) -> None:
    with browser() as b:
        page = b.new_page()
        csp = watch_csp(page)
        page.goto(f"{live}/console/sign-in")
        assert axe_violations(page) == []
        shoot(page, tmp_path, "sign-in")
        sign_in(page, live, api.tokens["officer"])
        assert page.url == f"{live}/console/"
        page.wait_for_selector("#queue[data-live='1']")
        assert page.locator("tr.em-row").count() == 1
        assert page.title().startswith("(1) Alert queue")
        assert axe_violations(page) == []

        page.locator("tr.em-row a", has_text="Close").first.click()
        page.fill("#close-note", "<script>window.pwned=1</script> spoke to him")
        page.click("#close-button")
        page.wait_for_load_state("networkidle")
        assert "<script>window.pwned=1</script> spoke to him" in page.inner_text("#history")
        assert page.evaluate("window.pwned") is None
        assert axe_violations(page) == []

        page.goto(f"{live}/console/me")
        assert page.inner_text("#me-name") == "officer-1"
        assert axe_violations(page) == []
        page.goto(f"{live}/console/nowhere")
        assert "Page not found" in page.inner_text("h1")
        assert axe_violations(page) == []
        page.click(".em-sign-out button")
        assert "You have signed out" in page.inner_text("h1")
        assert csp == []
    got = TestClient(api.app).get("/api/v1/alerts/alert-off-1", headers=api.headers("officer"))
    assert got.json()["status"] == "closed"
