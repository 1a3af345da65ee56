"""The console in-process (TestClient) on the API test database (tests/api/conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Api, db_template_dir, make_api

__all__ = ["db_template_dir"]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """Return the first CSRF token in a page."""
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, token: str) -> httpx.Response:
    """Sign in through the form (as a browser does); return the POST's response."""
    page = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in",
        data={"token": token, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


@pytest.fixture
def api(tmp_path: Path, db_template_dir: Path) -> Iterator[Api]:
    yield from make_api(tmp_path, db_template_dir, None, console_tile_url="")


@pytest.fixture
def officer(api: Api) -> TestClient:
    """The app's client, signed in as officer-1 (caseload: off-1)."""
    response = sign_in(api.client, api.tokens["officer"])
    assert response.status_code == 303, response.text
    return api.client
