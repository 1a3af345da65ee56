"""Issue 13 finding 6: location data stays out of world-readable files and out of logs.

* files the service creates are private: the CLI's umask 077, a 0700 state dir, 0600 process
  logs, and the devstack broker's data (a real ``kafka-storage format`` run);
* a rejected conditions document is logged without its zone's coordinates (worker, archiver);
* the real ``em-service api`` access log has no query strings (purposes, time ranges, tokens).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from em_service import procs
from em_service.conditions.registry import ConditionsRegistry
from em_service.devstack import kafka as devstack
from em_service.settings import Settings, get_settings
from em_service.store import Store, migrate, tokens
from em_service.tracking import feed
from tests.conditions.cases import REFUSED, doc

COORDINATE_TEXT = ("51.4", "51.46", "-0.97", "0.96", "40.70", "-74.0")


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_cli_makes_the_state_dir_and_database_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "EM_STATE_DIR": str(state)}
    env.pop("EM_DATABASE_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "em_service.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert _mode(state) == 0o700
    assert _mode(state / "em.db") == 0o600


def test_spawned_process_logs_are_private(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    pid = procs.spawn("probe", ["--help"], tmp_path)
    deadline = time.monotonic() + 30
    while procs.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _mode(tmp_path / "probe.log") == 0o600
    (tmp_path / "probe.pid").unlink()


def test_devstack_broker_data_is_private(tmp_path: Path) -> None:
    settings = get_settings().model_copy(update={"state_dir": tmp_path / "state"})
    libs = devstack.fetch_jars(settings)
    paths = devstack._Paths.of(settings)
    paths.data.mkdir(parents=True, exist_ok=True)
    paths.server_properties.write_text(devstack.server_properties(settings, paths.data))
    devstack._format_storage(settings, paths, libs)
    written = [p for p in paths.data.rglob("*") if p.is_file()]
    assert written, "kafka-storage wrote nothing"
    assert [(p.name, oct(_mode(p))) for p in written if _mode(p) & 0o077] == []


@pytest.mark.parametrize("case", ["bowtie", "outside_crs_area", "hole_outside_shell"])
def test_rejected_conditions_are_logged_without_coordinates(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    zones, phrase = REFUSED[case]
    raw = json.dumps(doc("off-1", "tag-1", zones=zones)).encode()
    with caplog.at_level(logging.INFO):
        feed._apply(ConditionsRegistry(), b"off-1", raw)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "conditions for off-1 rejected" in text and phrase.split(":")[0] in text
    assert not [c for c in COORDINATE_TEXT if c in text], text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_api_access_log_has_no_query_strings(tmp_path: Path) -> None:
    db = tmp_path / "em.db"
    store = Store(f"sqlite:///{db}")
    migrate.upgrade(store)
    with store.write() as s:
        token = tokens.create_token(s, name="investigator-1", role="investigator")
    store.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "EM_DATABASE_URL": f"sqlite:///{db}",
        "EM_STATE_DIR": str(tmp_path),
        "EM_KAFKA_BOOTSTRAP": "127.0.0.1:9",
        "EM_CONDITIONS_PUBLISH_TIMEOUT_S": "1",
    }
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "em_service.cli", "api", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "api did not start"
            time.sleep(0.1)
        params = {
            "from": "2026-10-24T21:00:00Z",
            "to": "2026-10-24T22:00:00Z",
            "purpose": "CR-SECRET-77 burglary",
        }
        r = httpx.get(
            f"{base}/api/v1/offenders/off-1/trail",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 404
        httpx.get(f"{base}/api/v1/alerts", params={"access_token": token})
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
    text = (tmp_path / "api.log").read_text()
    assert "/api/v1/offenders/off-1/trail" in text  # the access log is on …
    assert "CR-SECRET" not in text and "2026-10-24" not in text and token not in text
    assert "?" not in "".join(line for line in text.splitlines() if "HTTP/1.1" in line)


def test_settings_state_dir_is_made_private(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    Settings(state_dir=loose).resolved_state_dir()
    assert _mode(loose) == 0o700


def test_a_traverse_only_state_dir_is_kept(tmp_path: Path) -> None:
    # 0711: others may pass through (the devstack's PostgreSQL runs as its own user) but not list.
    passable = tmp_path / "passable"
    passable.mkdir()
    passable.chmod(0o711)
    Settings(state_dir=passable).resolved_state_dir()
    assert _mode(passable) == 0o711
