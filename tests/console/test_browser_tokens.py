"""Headless Chromium on the Tokens page: create a token with a lifetime (shown once), expire it
now, renew it, revoke it; the console's pages (the map editor included) load with no CSP
violation (``securitypolicyviolation`` events and console reports) under the strict policy."""

from __future__ import annotations

from pathlib import Path

from em_service.api.main import create_app
from tests.api.conftest import Api
from tests.console.browser import (
    LiveServer,
    axe_violations,
    browser,
    record_violations,
    shoot,
    sign_in,
    violations,
    watch_csp,
)


def test_tokens_page_and_pages_without_csp_violations(api: Api, tmp_path: Path) -> None:
    with LiveServer(create_app(api.settings)) as server, browser() as b:
        live = server.url
        page = b.new_page(viewport={"width": 1280, "height": 900})
        reported = watch_csp(page)
        record_violations(page)
        seen: list[str] = []

        page.goto(f"{live}/console/sign-in")
        seen += violations(page)
        sign_in(page, live, api.tokens["admin"])
        seen += violations(page)

        page.goto(f"{live}/console/admin/tokens")
        page.fill("#token-name", "ops-7")
        page.select_option("#token-role", "ops")
        page.fill("#token-ttl", "3")
        page.click("#create-token")
        assert page.inner_text("#new-token").startswith("em_")
        row = page.locator('tr[data-principal="ops-7"] li[data-token-id]')
        assert row.get_attribute("data-status") == "expiring"
        assert "expires soon" in row.inner_text()
        assert axe_violations(page) == []
        seen += violations(page)

        row.get_by_role("button", name="Expire now").click()
        page.wait_for_load_state("networkidle")
        row = page.locator('tr[data-principal="ops-7"] li[data-token-id]')
        assert row.get_attribute("data-status") == "expired"
        row.get_by_role("button", name="Renew").click()
        page.wait_for_load_state("networkidle")
        row = page.locator('tr[data-principal="ops-7"] li[data-token-id]')
        assert row.get_attribute("data-status") == "live"
        page.evaluate("document.querySelectorAll('#new-token').forEach(e => e.remove())")
        shoot(page, tmp_path, "admin-tokens-expiry")
        row.get_by_role("button", name="Revoke").click()
        page.wait_for_load_state("networkidle")
        assert "revoked" in page.locator('tr[data-principal="ops-7"]').inner_text()
        seen += violations(page)

        for path in (
            "/console/admin/people",
            "/console/admin/people/off-1/conditions",
            "/console/me",
        ):
            page.goto(f"{live}{path}")
            page.wait_for_load_state("networkidle")
            seen += violations(page)
        page.wait_for_selector("h1")
        assert seen == [] and reported == []

        # The watch works: an image from another host is blocked and reported.
        page.evaluate(
            "const i = document.createElement('img'); i.src = 'https://example.invalid/x.png';"
            "document.body.appendChild(i)"
        )
        page.wait_for_function("window.__cspViolations.length > 0")
        assert violations(page) == ["img-src https://example.invalid/x.png"]
