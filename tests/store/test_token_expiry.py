"""Tokens expire (default 90 days), can be renewed, expired now or revoked one by one; each
change is audited. Fixed clock (T0); both engines (the ``store`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from em_service.store import Store, audit, migrate, tokens
from tests.store.factories import T0

DAY = timedelta(days=1)


def _actions(store: Store, action: str) -> list[dict]:
    import json

    with store.read() as s:
        return [json.loads(e.detail_json) for e in audit.list_entries(s, action=action)[0]]


def test_a_token_works_until_it_expires(store: Store) -> None:
    with store.write() as s:
        token = tokens.create_token(s, name="officer-a", role="officer", now=T0)
        (info,) = tokens.list_tokens(s)
    assert info.created_at == T0 and info.expires_at == T0 + 90 * DAY
    with store.read() as s:
        assert tokens.check(s, token, T0 + 90 * DAY - timedelta(seconds=1)).name == "officer-a"
        assert tokens.check(s, token, T0 + 90 * DAY) == "expired"
        assert tokens.authenticate(s, token, T0 + 91 * DAY) is None
        assert tokens.check(s, "em_nope", T0) == "unknown"
    assert _actions(store, "token.create")[0]["expires_at"] == (T0 + 90 * DAY).isoformat()


def test_lifetime_at_creation_within_the_maximum(store: Store) -> None:
    with store.write() as s:
        tokens.create_token(s, name="ops-a", role="ops", ttl_days=7, now=T0)
        tokens.create_token(s, name="ops-a", role="ops", ttl_days=30, max_ttl_days=30, now=T0)
        for bad in (0, -1, 31):
            with pytest.raises(tokens.TokenError, match="at most 30 days"):
                tokens.create_token(s, name="ops-a", role="ops", ttl_days=bad, max_ttl_days=30)
        expiries = [t.expires_at for t in tokens.list_tokens(s)]
    assert expiries == [T0 + 7 * DAY, T0 + 30 * DAY]


def test_renew_an_expired_token_and_expire_a_live_one(store: Store) -> None:
    with store.write() as s:
        token = tokens.create_token(s, name="admin-a", role="admin", ttl_days=1, now=T0)
        (info,) = tokens.list_tokens(s)
    later = T0 + 5 * DAY
    with store.read() as s:
        assert tokens.check(s, token, later) == "expired"
    with store.write() as s:
        until = tokens.renew_token(s, token_id=info.id, actor="boss", now=later, ttl_days=10)
    assert until == later + 10 * DAY
    with store.read() as s:
        assert tokens.check(s, token, later).name == "admin-a"
    with store.write() as s:
        tokens.expire_token(s, token_id=info.id, actor="boss", now=later + DAY)
        tokens.expire_token(s, token_id=info.id, actor="boss", now=later + 2 * DAY)  # no-op
    with store.read() as s:
        assert tokens.check(s, token, later + DAY) == "expired"
        assert tokens.list_tokens(s)[0].status(later + DAY) == "expired"
    (renewed,) = _actions(store, "token.renew")
    assert renewed == {
        "principal": "admin-a",
        "token_id": info.id,
        "expired_at": (T0 + DAY).isoformat(),
        "expires_at": (later + 10 * DAY).isoformat(),
    }
    assert _actions(store, "token.expire") == [{"principal": "admin-a", "token_id": info.id}]


def test_revoke_one_leaves_the_other_token_of_the_principal(store: Store) -> None:
    with store.write() as s:
        first = tokens.create_token(s, name="ops-b", role="ops", now=T0)
        second = tokens.create_token(s, name="ops-b", role="ops", now=T0)
        one, _ = tokens.list_tokens(s, name="ops-b")
        assert tokens.revoke_token(s, token_id=one.id, actor="boss", now=T0 + DAY) == "ops-b"
    with store.read() as s:
        assert tokens.check(s, first, T0 + DAY) == "revoked"
        assert tokens.check(s, second, T0 + DAY).name == "ops-b"
    with store.write() as s, pytest.raises(tokens.TokenError, match="revoked"):
        tokens.renew_token(s, token_id=one.id, now=T0 + DAY)
    with store.write() as s, pytest.raises(tokens.TokenError, match="no token 999"):
        tokens.revoke_token(s, token_id=999)
    assert _actions(store, "token.revoke") == [
        {"principal": "ops-b", "token_id": one.id, "revoked": 1}
    ]


def test_expiring_soon_counts_live_tokens_only(store: Store) -> None:
    with store.write() as s:
        for days in (3, 6, 8, 30):
            tokens.create_token(s, name="ops-c", role="ops", ttl_days=days, now=T0)
        gone = tokens.list_tokens(s)[1]
        tokens.revoke_token(s, token_id=gone.id, now=T0)
        tokens.create_token(s, name="ops-c", role="ops", ttl_days=1, now=T0 - 5 * DAY)  # expired
    with store.read() as s:
        assert tokens.count_expiring(s, now=T0, within=7 * DAY) == 1  # the 3-day one


def test_migration_gives_existing_tokens_90_days_from_the_upgrade(store: Store) -> None:
    """Upgrade from 0005 (before expiry) with a token in place: it expires 90 days after the upgrade."""
    from alembic import command

    owner = Store(store.migrate_url)
    cfg = migrate.alembic_config(owner.url)
    with owner.engine.execution_options(sqlite_begin="IMMEDIATE").begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    with owner.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO principals (name, role, created_at) VALUES ('old', 'ops', :t)"),
            {"t": datetime(2020, 1, 1)},
        )
        conn.execute(
            text(
                "INSERT INTO api_tokens (principal_id, token_sha256, created_at) "
                "SELECT id, :h, :t FROM principals WHERE name = 'old'"
            ),
            {"h": tokens.hash_token("em_old"), "t": datetime(2020, 1, 1)},
        )
    owner.dispose()
    before = datetime.now(UTC)
    assert migrate.upgrade(store) == migrate.head_revision()
    after = datetime.now(UTC)
    with store.read() as s:
        (info,) = tokens.list_tokens(s)
        assert tokens.check(s, "em_old", after).name == "old"
    assert before + 90 * DAY <= info.expires_at <= after + 90 * DAY


def test_cli_lists_renews_expires_and_revokes_one_token(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "EM_STATE_DIR": str(tmp_path)}
    env.pop("EM_DATABASE_URL", None)

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "em_service.cli", "tokens", *args],
            env=env,
            capture_output=True,
            text=True,
        )
        assert (done.returncode == 0) == ok, done.stderr
        return done

    first = cli("create", "--role", "ops", "--name", "ops-z", "--ttl-days", "10").stdout.strip()
    second = cli("create", "--role", "ops", "--name", "ops-z").stdout.strip()
    assert (
        "error: token lifetime"
        in cli("create", "--role", "ops", "--name", "ops-z", "--ttl-days", "999", ok=False).stderr
    )
    cli("revoke", "--id", "1")
    cli("expire", "--id", "2")
    listed = cli("list").stdout.splitlines()
    assert listed[1].split()[0:3] == ["1", "ops-z", "ops"] and listed[1].endswith("revoked")
    assert listed[2].endswith("expired")
    assert "now expires" in cli("renew", "--id", "2", "--ttl-days", "5").stdout
    assert "is revoked" in cli("renew", "--id", "1", ok=False).stderr
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    try:
        with store.read() as s:
            assert tokens.check(s, first) == "revoked"
            assert tokens.check(s, second).name == "ops-z"
            (one, two) = tokens.list_tokens(s)
        assert two.expires_at - one.created_at < timedelta(days=5, minutes=5)
        actions = [a for a in ("token.revoke", "token.expire", "token.renew") if _actions(store, a)]
    finally:
        store.dispose()
    assert actions == ["token.revoke", "token.expire", "token.renew"]
