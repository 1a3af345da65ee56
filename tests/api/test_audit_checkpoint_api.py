"""The API writes signed audit checkpoints when a key is set (issue 13 finding 2)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from em_service.store import checkpoints
from tests.api.conftest import make_api
from tests.database import Database


def test_api_writes_checkpoints_periodically(tmp_path: Path, sqlite_db: Database) -> None:
    key = tmp_path / "audit.key"
    key.write_text(secrets.token_hex(32))
    gen = make_api(
        tmp_path,
        sqlite_db,
        None,
        audit_checkpoint_key_file=key,
        audit_checkpoint_interval_s=0.2,
    )
    api = next(gen)
    try:
        path = checkpoints.checkpoint_path(api.settings)
        deadline = time.monotonic() + 10
        while len(checkpoints.read_all(path)) < 2:
            assert time.monotonic() < deadline, "no periodic checkpoints"
            time.sleep(0.05)
        with api.store.read() as s:
            assert checkpoints.verify(s, path, key.read_text().encode()) == []
    finally:
        gen.close()
