"""Tokens are stored hashed, carry one role, can be revoked; caseloads are assignable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text

from em_service.store import Store, tokens
from em_service.store.models import ApiToken


def test_token_is_stored_only_as_its_hash(store: Store) -> None:
    with store.write() as s:
        token = tokens.create_token(s, name="officer-a", role="officer", caseload=["off-1"])
    with store.read() as s:
        stored = s.scalars(select(ApiToken.token_sha256)).all()
        dump = "\n".join(str(r) for r in s.execute(text("SELECT * FROM api_tokens")).all())
        caller = tokens.authenticate(s, token)
    assert token.startswith("em_") and len(token) > 40
    assert stored == [tokens.hash_token(token)] and token not in dump
    assert caller == tokens.Caller("officer-a", "officer", frozenset({"off-1"}))


@pytest.mark.parametrize("token", ["", "em_nope", "Bearer x"])
def test_unknown_tokens_are_refused(store: Store, token: str) -> None:
    with store.read() as s:
        assert tokens.authenticate(s, token) is None


def test_revoked_tokens_are_refused(store: Store) -> None:
    with store.write() as s:
        first = tokens.create_token(s, name="ops-1", role="ops")
        second = tokens.create_token(s, name="ops-1", role="ops")
        assert tokens.revoke_tokens(s, name="ops-1") == 2
    with store.read() as s:
        assert tokens.authenticate(s, first) is None and tokens.authenticate(s, second) is None


def test_one_role_per_principal(store: Store) -> None:
    with store.write() as s:
        tokens.create_token(s, name="x", role="officer")
        with pytest.raises(tokens.TokenError, match="exists with role"):
            tokens.create_token(s, name="x", role="admin")
        with pytest.raises(tokens.TokenError, match="unknown role"):
            tokens.create_token(s, name="y", role="root")  # type: ignore[arg-type]


def test_caseload_assign_remove_and_set(store: Store) -> None:
    with store.write() as s:
        tokens.create_token(s, name="officer-a", role="officer")
        assert tokens.assign_caseload(s, name="officer-a", offender_ids=["b", "a"]) == ["a", "b"]
        assert tokens.assign_caseload(s, name="officer-a", offender_ids=["a"], remove=True) == ["b"]
        assert tokens.set_caseload(s, name="officer-a", offender_ids=["c"], actor="admin") == ["c"]
        assert tokens.caseload_offenders(s, role="officer") == {"c"}
        with pytest.raises(tokens.TokenError, match="no principal"):
            tokens.assign_caseload(s, name="nobody", offender_ids=["a"])


def test_cli_prints_the_token_once_and_it_works(tmp_path: Path) -> None:
    env = {**os.environ, "EM_STATE_DIR": str(tmp_path)}
    env.pop("EM_DATABASE_URL", None)
    cli = [sys.executable, "-m", "em_service.cli"]
    made = subprocess.run(
        [
            *cli,
            "tokens",
            "create",
            "--role",
            "officer",
            "--name",
            "officer-b",
            "--caseload",
            "off-7",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = made.stdout.strip()
    assigned = subprocess.run(
        [*cli, "caseload", "assign", "--name", "officer-b", "off-8"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "off-7, off-8" in assigned.stdout
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    try:
        with store.read() as s:
            caller = tokens.authenticate(s, token)
    finally:
        store.dispose()
    assert caller is not None and caller.caseload == {"off-7", "off-8"}
