"""Real headless Chromium (Debian's, driven by Playwright) against a real HTTP server.

Browser tests skip with a reason only when Chromium is absent outside CI; with ``CI=true`` they
fail instead. ``playwright install`` is never used: the system Chromium is launched directly.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from tests.service_env import free_port

ROOT = Path(__file__).resolve().parents[2]
AXE = "/console/static/vendor/axe/axe.min.js"


def chromium_path() -> str:
    """Return Chromium's path, or skip (fail on CI) when it is not installed."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None or not (ROOT / "em_service/console/static/vendor/axe/axe.min.js").exists():
        what = "chromium" if path is None else "the console assets (scripts/install.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} missing on CI: the browser tests cannot run")
        pytest.skip(f"{what} not installed (apt-get install chromium; bash scripts/install.sh)")
    return path


@contextmanager
def browser() -> Iterator:
    """Yield a Playwright Chromium browser (headless, system binary)."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class LiveServer:
    """Serve an ASGI app with uvicorn on a free port in a thread (lifespan included)."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the console server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def watch_csp(page) -> list[str]:
    """Collect console messages that report a Content-Security-Policy violation."""
    found: list[str] = []
    page.on(
        "console",
        lambda m: found.append(m.text) if "Content Security Policy" in m.text else None,
    )
    return found


_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def record_violations(page) -> None:
    """Record ``securitypolicyviolation`` events of every document the page loads (read them
    with :func:`violations` before navigating away)."""
    page.add_init_script(_VIOLATIONS)


def violations(page) -> list[str]:
    """The CSP violations the current document reported (``directive blocked-uri``)."""
    return page.evaluate("window.__cspViolations || []")


def sign_in(page, base: str, token: str) -> None:
    """Sign in through the form as an officer does."""
    page.goto(f"{base}/console/sign-in")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def axe_violations(page) -> list[dict]:
    """Run axe-core (served by the app, so CSP allows it) and return serious/critical issues."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(url=AXE)
    result = page.evaluate("axe.run(document).then(r => r.violations)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``EM_CONSOLE_SCREENSHOTS`` (e.g. docs/screenshots) or tmp."""
    where = Path(os.environ.get("EM_CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def shoot(page, tmp_path: Path, name: str) -> Path:
    """Write a full-page screenshot ``name``.png and return its path."""
    path = screenshot_dir(tmp_path) / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    return path
