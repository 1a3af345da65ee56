"""Admin pages for principals: a token is shown once and works, one token is revoked (the API
refuses it at once), a caseload is replaced; the store's audit rows name the admin."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from em_service.store import audit
from tests.api.conftest import Api
from tests.console.conftest import csrf_of, sign_in


@pytest.fixture
def admin(api: Api) -> TestClient:
    assert sign_in(api.client, api.tokens["admin"]).status_code == 303
    return api.client


def _token(client: TestClient) -> str:
    return csrf_of(client.get("/console/admin/tokens").text)


def _entries(api: Api, action: str) -> list:
    with api.store.read() as s:
        return audit.list_entries(s, action=action)[0]


def test_token_is_shown_once_and_works(api: Api, admin: TestClient) -> None:
    page = admin.post(
        "/console/admin/tokens",
        data={"csrf_token": _token(admin), "name": "officer-9", "role": "officer"},
    )
    assert page.status_code == 200
    text = re.search(r'id="new-token" class="em-token">([^<]+)<', page.text).group(1)
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {text}"})
    assert me.json()["name"] == "officer-9"
    assert text not in admin.get("/console/admin/tokens").text
    entry = _entries(api, "token.create")[0]
    assert entry.actor == "admin-1" and json.loads(entry.detail_json)["principal"] == "officer-9"
    clash = admin.post(
        "/console/admin/tokens",
        data={"csrf_token": _token(admin), "name": "officer-9", "role": "admin"},
    )
    assert clash.status_code == 409 and "exists with role" in clash.text
    bad = admin.post(
        "/console/admin/tokens", data={"csrf_token": _token(admin), "name": "<x>", "role": "ops"}
    )
    assert bad.status_code == 422


def test_revoke_one_token(api: Api, admin: TestClient) -> None:
    page = admin.get("/console/admin/tokens").text
    row = page.split('data-principal="officer-1"', 1)[1]
    token_id = re.search(r'data-token-id="(\d+)"', row).group(1)
    assert api.client.get("/api/v1/me", headers=api.headers("officer")).status_code == 200
    r = admin.post(
        f"/console/admin/tokens/{token_id}/revoke",
        data={"csrf_token": csrf_of(page)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert api.client.get("/api/v1/me", headers=api.headers("officer")).status_code == 401
    (entry,) = _entries(api, "token.revoke")
    assert json.loads(entry.detail_json)["token_id"] == int(token_id) and entry.actor == "admin-1"
    assert "revoked" in admin.get("/console/admin/tokens").text
    assert admin.post(f"/console/admin/tokens/{token_id}/revoke", data={}).status_code == 403


def test_caseload_is_replaced(api: Api, admin: TestClient) -> None:
    r = admin.post(
        "/console/admin/caseloads/officer-1",
        data={"csrf_token": _token(admin), "offender_ids": "off-2, off-3"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    got = api.client.get("/api/v1/caseloads/officer-1", headers=api.headers("admin")).json()
    assert got["offender_ids"] == ["off-2", "off-3"]
    bad = admin.post(
        "/console/admin/caseloads/officer-1",
        data={"csrf_token": _token(admin), "offender_ids": "../etc"},
    )
    assert bad.status_code == 422


def test_only_admins(api: Api) -> None:
    assert sign_in(api.client, api.tokens["investigator"]).status_code == 303
    assert api.client.get("/console/admin/tokens").status_code == 403
