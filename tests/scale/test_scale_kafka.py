"""Issue 14: several of everything, on the real broker and PostgreSQL.

Simulated people (``em-service simulate``) stream into a 12-partition readings topic read by
3 workers, 2 archivers and 2 API processes on one database; one worker and one archiver are
killed with SIGKILL mid-stream and restarted. A single worker reads the same input into its own
alerts topic (the reference run). Afterwards: the committed alert ids equal the reference's,
each once; the database holds every alert and every fix exactly once; and an SSE client on each
API process (two officers, caseloads split) received every alert of its caseload exactly once.

Size: ``EM_SCALE_TEST_PEOPLE`` (default 300) people for ``EM_SCALE_TEST_HOURS`` (default 2)
hours at one fix a minute; the issue's full size is 2,000 people (README "Running several
processes" has its timings).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from em_service.archiver import group_id as archiver_group
from em_service.devstack import ensure_topics
from em_service.store import ingest, tokens
from em_service.store.models import AlertRow, Fix
from em_service.store.trail import fix_rows
from tests.api.test_sse_kafka import SseClient as _SseClient
from tests.database import Database, drop_pg_database, pg_database
from tests.scale.kafka_tools import group_lag, metric_sum, read_all
from tests.service_env import ServiceEnv, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PEOPLE = int(os.environ.get("EM_SCALE_TEST_PEOPLE", "300"))
HOURS = float(os.environ.get("EM_SCALE_TEST_HOURS", "2"))
PARTITIONS = 12
SEED = "14"
START = "2026-11-16T06:00:00Z"
STREAM = {
    "EM_TOPIC_PARTITIONS": str(PARTITIONS),
    "EM_RULE_CLOCK": "event",
    "EM_TICK_INTERVAL_S": "1",
    "EM_STARTUP_GRACE_S": "0",
    "EM_MAX_PAST_AGE_S": str(3 * 365 * 86400),
    "EM_SCENES_OPEN_DAYS": "3650",
    "EM_CONSOLE_TILE_URL": "",
    "EM_SSE_POLL_INTERVAL_S": "0.2",
    # More alerts from two hours of background life: short silences count, context events alert.
    "EM_SILENCE_BUFFER_S": "120",
    "EM_ALERT_ON_INFO": "true",
}


def _env(bootstrap: str, path: Path, db: Database | None = None) -> ServiceEnv:
    path.mkdir()
    env = ServiceEnv(bootstrap, path)
    env.env.update(STREAM | (db.env() if db else {}))
    env.settings = env.settings.model_copy(update={"topic_partitions": PARTITIONS})
    return env


def _simulate(env: ServiceEnv, *more: str) -> list[str]:
    days = f"{HOURS / 24:.6f}"
    base = ["--persons", str(PEOPLE), "--days", days, "--start", START, "--seed", SEED]
    base += ["--noise", "heavy", "--silence-buffer-s", STREAM["EM_SILENCE_BUFFER_S"]]
    return [sys.executable, "-m", "em_service.cli", "simulate", *base, "--no-progress", *more]


def _expected_fixes(sim_dir: Path, env: ServiceEnv) -> set[tuple[str, int, int]]:
    """The fix keys the simulator's readings hold (decoded as the archiver decodes them)."""
    batch = ingest.Batch()
    now = datetime.now(UTC)
    with open(sim_dir / "readings.jsonl", "rb") as fh:
        for line in fh:
            batch.add_reading(line.rstrip(b"\n"), env.settings, now, watermark=None)
    return {row[:3] for row in fix_rows(batch.gps, env.settings.projected_crs)}


class SseClient(_SseClient):
    """The SSE test client; a stream cut by stopping its API at the end is no error."""

    seen: list[dict]

    def run(self) -> None:
        try:
            super().run()
        except httpx.HTTPError:
            if not self.stop.is_set():
                raise


class Supervisor:
    """Starts workers and archivers and restarts one that exits on its own, as compose's
    ``restart: unless-stopped`` does: a worker fenced by a newer owner of its partition (its
    heartbeats late on a loaded machine) exits non-zero by design (README, "Worker")."""

    def __init__(self, env: ServiceEnv) -> None:
        self.env = env
        self.procs: dict[str, tuple[str, subprocess.Popen, str]] = {}
        self.unplanned: list[str] = []

    def start(self, kind: str, name: str) -> None:
        port = free_port()
        self.env.env[f"EM_{kind.upper()}_METRICS_PORT"] = str(port)
        proc = self.env.start(kind, log_name=name)
        self.env.procs.remove(proc)  # env.wait_until must not fail when it exits: restarted
        self.procs[name] = (kind, proc, f"http://127.0.0.1:{port}/metrics")

    def urls(self, kind: str) -> list[str]:
        return [url for k, _, url in self.procs.values() if k == kind]

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` and start it again."""
        kind, proc, _ = self.procs[name]
        self.env.stop(proc, sig=signal.SIGKILL)
        self.start(kind, name)

    def check(self) -> None:
        """Restart what has exited (and note it)."""
        for name, (kind, proc, _) in list(self.procs.items()):
            if proc.poll() is not None:
                self.unplanned.append(f"{name} exited with {proc.returncode}")
                self.start(kind, name)

    def stop_all(self) -> None:
        for _, proc, _ in self.procs.values():
            self.env.stop(proc)


def test_several_workers_archivers_and_apis_lose_and_repeat_nothing(
    kafka_bootstrap: str, tmp_path: Path, pg_cluster, pg_template_db: str
) -> None:
    t_start = time.monotonic()
    db, db_name = pg_database(pg_cluster, pg_template_db)
    env = _env(kafka_bootstrap, tmp_path / "scaled", db)
    ref = _env(kafka_bootstrap, tmp_path / "ref")
    for name in ("readings", "conditions", "scenes"):  # the reference reads the same input
        ref.env[f"EM_TOPIC_{name.upper()}"] = env.env[f"EM_TOPIC_{name.upper()}"]
    ref.settings = ref.settings.model_copy(
        update={
            f"topic_{n}": getattr(env.settings, f"topic_{n}")
            for n in ("readings", "conditions", "scenes")
        }
    )
    ensure_topics(env.settings, kafka_bootstrap)
    ensure_topics(ref.settings, kafka_bootstrap)

    sim_dir = tmp_path / "sim"
    subprocess.run(_simulate(env, "--out", str(sim_dir)), check=True, capture_output=True)
    expected_fixes = _expected_fixes(sim_dir, env)
    n_readings = len((sim_dir / "readings.jsonl").read_bytes().splitlines())
    conditions = (sim_dir / "conditions.jsonl").read_text().splitlines()
    people = [json.loads(line)["offender_id"] for line in conditions]
    caseloads = [people[0::2], people[1::2]]
    store = db.store()
    with store.write() as s:
        officer_tokens = [
            tokens.create_token(s, name=f"officer-{i}", role="officer", caseload=caseload)
            for i, caseload in enumerate(caseloads)
        ]
    sse: list[SseClient] = []
    fleet, ref_fleet = Supervisor(env), Supervisor(ref)

    def check() -> None:
        fleet.check()
        ref_fleet.check()

    try:
        api_ports = [env.api_port, free_port()]
        for i, port in enumerate(api_ports):
            env.start("api", "--port", str(port), log_name=f"api-{i}")
        for i in range(2):
            fleet.start("archiver", f"archiver-{i}")
        for i in range(3):
            fleet.start("worker", f"worker-{i}")
        ref_fleet.start("worker", "worker-ref")
        for port in api_ports:
            env.wait_until(
                lambda p=port: (
                    httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=2).status_code == 200
                ),
                60,
                what=f"the API on port {port}",
            )
        for port, token in zip(api_ports, officer_tokens, strict=True):
            client = SseClient(
                f"http://127.0.0.1:{port}/api/v1/alerts/stream",
                {"Authorization": f"Bearer {token}"},
            )
            client.seen = []
            client.start()
            assert client.connected.wait(20)
            sse.append(client)

        # The stream: the same simulation (same seed) sent to Kafka, while everything runs.
        simulator = subprocess.Popen(
            _simulate(
                env,
                "--kafka",
                "--bootstrap",
                kafka_bootstrap,
                "--topic-readings",
                env.settings.topic_readings,
                "--topic-conditions",
                env.settings.topic_conditions,
                "--topic-scenes",
                env.settings.topic_scenes,
                "--truth",
                str(tmp_path / "truth.jsonl"),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        env.wait_until(
            lambda: (
                check()
                or metric_sum(fleet.urls("worker"), "em_readings_consumed_total") >= n_readings / 3
            ),
            240,
            "the workers to read a third of the stream",
        )
        fleet.kill("worker-0")  # mid-stream: it may hold open transactions; restarted

        def fixes_stored() -> int:
            with store.read() as s:
                return s.scalar(select(func.count()).select_from(Fix)) or 0

        env.wait_until(
            lambda: check() or fixes_stored() >= len(expected_fixes) / 3, 240, "a third archived"
        )
        fleet.kill("archiver-0")  # mid-batch, perhaps: it re-reads from its commits; restarted
        env.wait_until(lambda: check() or simulator.poll() is not None, 300, "the simulator")
        assert simulator.returncode == 0, simulator.stderr.read() if simulator.stderr else ""
        topic = env.settings.topic_readings
        for e, group, what in (
            (ref, ref.settings.app_id, "the reference worker"),
            (env, env.settings.app_id, "the workers"),
            (env, archiver_group(env.settings), "the archivers"),
        ):
            e.wait_until(
                lambda g=group: check() or group_lag(kafka_bootstrap, g, topic) == 0, 600, what
            )
        # Read all: now the timer. Silences, missed appointments and window ends that the last
        # readings made due are raised by the next tick, not by the batch (CI once read the
        # reference's alerts before that tick had committed, and the scaled run had "more").
        _ticked(ref, ref_fleet, check)
        _ticked(env, fleet, check)
        ref_alerts = [
            json.loads(r.value) for r in read_all(kafka_bootstrap, ref.settings.topic_alerts)
        ]
        reference = Counter(a["alert_id"] for a in ref_alerts)
        alerts = {a["alert_id"]: a for a in ref_alerts}
        # The archivers have stored every alert; then the SSE hubs have had it.
        ended_parent = {
            a["ref_alert_id"]: i for i, a in alerts.items() if a["type"].endswith("_ended")
        }

        def stored_alerts() -> set[str]:
            with store.read() as s:
                rows = s.execute(select(AlertRow.alert_id, AlertRow.ended_alert_id)).all()
            return {r[0] for r in rows} | {r[1] for r in rows if r[1]}

        env.wait_until(
            lambda: check() or stored_alerts() >= set(reference), 180, "every alert stored"
        )
        want_created = [
            {
                i
                for i, a in alerts.items()
                if a["offender_id"] in set(c) and not a["type"].endswith("_ended")
            }
            for c in caseloads
        ]

        def sse_has_all() -> bool:
            return all(
                {e["alert"]["alert_id"] for e in c.seen if e["kind"] == "created"} >= w
                for c, w in zip(sse, want_created, strict=True)
            )

        env.wait_until(lambda: _drain(sse) or sse_has_all(), 120, "every alert on the streams")
        time.sleep(1.0)  # a repeated event would come within the hub's poll interval
        _drain(sse)
        scaled_alerts = [
            json.loads(r.value) for r in read_all(kafka_bootstrap, env.settings.topic_alerts)
        ]
        committed = Counter(a["alert_id"] for a in scaled_alerts)
        with store.read() as s:
            fixes = s.execute(select(Fix.device_id, Fix.ts_ms, Fix.seq)).all()
            stored = stored_alerts()
        elapsed = time.monotonic() - t_start
    finally:
        for client in sse:
            client.stop.set()
        fleet.stop_all()
        ref_fleet.stop_all()
        env.stop_all()
        ref.stop_all()
        store.dispose()
        drop_pg_database(pg_cluster, db_name)

    print(
        f"scale test: {PEOPLE} people × {HOURS} h, {n_readings} readings, "
        f"{len(expected_fixes)} fixes, {len(reference)} alerts, {elapsed:.0f} s; "
        f"unplanned restarts: {fleet.unplanned + ref_fleet.unplanned or 'none'}"
    )
    assert len(reference) >= PEOPLE // 20 and max(reference.values()) == 1
    extra, missing = committed - reference, reference - committed
    assert not extra and not missing, _explain(extra, missing, scaled_alerts, ref_alerts)
    assert stored == set(reference)
    assert len(fixes) == len(set(fixes)) == len(expected_fixes)
    assert {tuple(f) for f in fixes} == expected_fixes
    for client, caseload, want in zip(sse, caseloads, want_created, strict=True):
        kinds = Counter((e["kind"], e["alert"]["alert_id"]) for e in client.seen)
        assert max(kinds.values(), default=1) == 1, [k for k, n in kinds.items() if n > 1]
        assert len({e["id"] for e in client.seen}) == len(client.seen)
        assert {e["alert"]["offender_id"] for e in client.seen} <= set(caseload)
        assert {a for k, a in kinds if k == "created"} == want
        ended = {
            p
            for p, _ in ended_parent.items()
            if alerts.get(p, {}).get("offender_id") in set(caseload)
        }
        assert {a for k, a in kinds if k == "ended"} == ended


def _ticked(env: ServiceEnv, fleet: Supervisor, check: Callable[[], None]) -> None:
    """Wait until every worker of ``fleet`` has done three timer rounds since now: the second
    began after everything read so far was processed, and its outputs were committed before
    the third (the commit interval, 0.1 s, is shorter than the tick interval, 1 s)."""
    urls = fleet.urls("worker")
    base = {url: metric_sum([url], "em_ticks_total") for url in urls}

    def done() -> bool:
        check()
        for url in urls:
            now = metric_sum([url], "em_ticks_total")
            base[url] = min(base[url], now)  # restarted: counts again from zero
            if now < base[url] + 3:
                return False
        return True

    env.wait_until(done, 60, "three timer rounds of every worker")


def _drain(clients: list[SseClient]) -> bool:
    """Move each client's received events to ``client.seen``; return False (keep waiting)."""
    for client in clients:
        while not client.events.empty():
            client.seen.append(client.events.get_nowait()[1])
    return False


def _explain(extra: Counter, missing: Counter, scaled: list[dict], ref: list[dict]) -> str:
    """Say which alerts differ from the reference run, with what each run had of that person."""
    lines = []
    for what, ids, mine in (("extra", extra, scaled), ("missing", missing, ref)):
        for alert_id, n in sorted(ids.items()):
            a = next(x for x in mine if x["alert_id"] == alert_id)
            lines.append(
                f"{what} ×{n}: {alert_id} {a['type']} {a['offender_id']} "
                f"episode {a.get('episode_start')} at {a['occurred_at']} {a.get('details')}"
            )
    people = sorted({ln.split()[4] for ln in lines})[:3]
    for run, alerts in (("scaled", scaled), ("reference", ref)):
        for a in alerts:
            if a["offender_id"] in people:
                lines.append(
                    f"  {run}: {a['offender_id']} {a['type']} {a['alert_id']} "
                    f"episode {a.get('episode_start')} at {a['occurred_at']}"
                )
    return "\n".join(lines[:200])
