"""The console's Tokens page: a lifetime at creation, expiry shown, renew and expire now
(audited, the API follows at once); sign-in refuses an expired token with its own message and
a client guessing tokens is throttled (429, one audit row)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from em_service.clock import wall_now
from em_service.store import audit, tokens
from tests.api.conftest import Api
from tests.console.conftest import csrf_of, sign_in


@pytest.fixture
def admin(api: Api) -> TestClient:
    assert sign_in(api.client, api.tokens["admin"]).status_code == 303
    return api.client


def _row(page: str, principal: str) -> str:
    return page.split(f'data-principal="{principal}"', 1)[1].split("</tr>", 1)[0]


def _details(api: Api, action: str) -> list[dict]:
    with api.store.read() as s:
        return [json.loads(e.detail_json) for e in audit.list_entries(s, action=action)[0]]


def test_create_with_a_lifetime_then_expire_now_and_renew(api: Api, admin: TestClient) -> None:
    page = admin.get("/console/admin/tokens").text
    made = admin.post(
        "/console/admin/tokens",
        data={"csrf_token": csrf_of(page), "name": "ops-7", "role": "ops", "ttl_days": "3"},
    )
    text = re.search(r'id="new-token" class="em-token">([^<]+)<', made.text).group(1)
    row = _row(made.text, "ops-7")
    assert 'data-status="expiring"' in row and "expires soon" in row  # 3 days: within 7
    token_id = re.search(r'data-token-id="(\d+)"', row).group(1)
    with api.store.read() as s:
        (info,) = tokens.list_tokens(s, name="ops-7")
    assert info.expires_at - info.created_at == timedelta(days=3)

    csrf = csrf_of(made.text)
    done = admin.post(
        f"/console/admin/tokens/{token_id}/expire",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    me = admin.get("/api/v1/me", headers={"Authorization": f"Bearer {text}"})
    assert me.status_code == 401 and me.json() == {"detail": "token expired"}
    assert 'data-status="expired"' in _row(admin.get("/console/admin/tokens").text, "ops-7")

    admin.post(f"/console/admin/tokens/{token_id}/renew", data={"csrf_token": csrf})
    me = admin.get("/api/v1/me", headers={"Authorization": f"Bearer {text}"})
    assert me.json()["name"] == "ops-7"
    with api.store.read() as s:
        (info,) = tokens.list_tokens(s, name="ops-7")
    now = wall_now(api.settings)
    assert timedelta(days=89) < info.expires_at - now <= timedelta(days=90)
    assert [d["token_id"] for d in _details(api, "token.expire")] == [int(token_id)]
    assert [d["token_id"] for d in _details(api, "token.renew")] == [int(token_id)]
    assert admin.post(f"/console/admin/tokens/{token_id}/renew", data={}).status_code == 403


def test_bad_lifetimes_are_refused_on_the_page(admin: TestClient) -> None:
    for ttl, message in (("x", "number of days"), ("0", "at most"), ("9999", "at most")):
        page = admin.get("/console/admin/tokens").text
        r = admin.post(
            "/console/admin/tokens",
            data={"csrf_token": csrf_of(page), "name": "ops-8", "role": "ops", "ttl_days": ttl},
        )
        assert r.status_code == 422 and message in r.text, ttl


def test_renewing_a_revoked_token_is_refused(api: Api, admin: TestClient) -> None:
    with api.store.write() as s:
        ops = tokens.list_tokens(s, name="ops-1")[0].id
        tokens.revoke_token(s, token_id=ops)
    csrf = csrf_of(admin.get("/console/admin/tokens").text)
    r = admin.post(f"/console/admin/tokens/{ops}/renew", data={"csrf_token": csrf})
    assert r.status_code == 409 and "revoked" in r.text
    assert (
        admin.post("/console/admin/tokens/999/expire", data={"csrf_token": csrf}).status_code == 404
    )


def test_sign_in_with_an_expired_token_says_so(api: Api) -> None:
    with api.store.write() as s:
        old = tokens.create_token(
            s, name="officer-1", role="officer", now=wall_now(api.settings) - timedelta(days=91)
        )
    r = sign_in(api.client, old)
    assert r.status_code == 401 and "That token has expired" in r.text


def test_guessing_tokens_at_sign_in_is_throttled(api: Api) -> None:
    limit = api.settings.api_auth_failures_max
    for i in range(limit):
        assert sign_in(api.client, f"em_guess-{i}").status_code == 401
    r = sign_in(api.client, api.tokens["officer"])  # even the right one: not looked at
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    (row,) = _details(api, "auth.failures")
    assert row["via"] == "console" and row["failures"] == limit
