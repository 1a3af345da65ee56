"""Victim proximity end to end on the real broker, through the real worker.

Two protected victims report from their own topic; one person approaches a victim and leaves, one
passes another victim at 1.5 times the radius, one without a protection walks right past a
victim. Bad victim records are dead-lettered once to the victim dead-letter topic. The worker is
then killed (SIGKILL) and restarted: it rebuilds the victims' positions from the topic, and a
second approach after the restart is alerted as well. The archiver, running alongside, stores
the people's fixes and the alerts, and never a victim's fix.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from em_service import kafka_io
from em_service.contracts import GpsReading
from em_service.contracts.codec import encode
from em_service.devstack.kafka import service_topics
from em_service.settings import Settings
from tests.service_env import ServiceEnv, free_port
from tests.tracking.test_rules_kafka import _alerts, _consumed, _env
from tests.trails import ORIGIN_X, ORIGIN_Y, fix, ll

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DAY = datetime(2026, 11, 10, tzinfo=UTC)
MIN = timedelta(minutes=1)
RADIUS = 200.0
VA = (ORIGIN_X + 2000.0, ORIGIN_Y)  # victim A stays here
VB = (ORIGIN_X + 8000.0, ORIGIN_Y)  # victim B stays here


def at(h: float) -> datetime:
    return DAY + timedelta(hours=h)


def _protection(pid: str, device: str) -> dict:
    return {"protection_id": pid, "victim_device_id": device, "radius_m": RADIUS}


DOCS = [
    {
        "offender_id": "off-vapp",
        "device_ids": ["tag-vapp"],
        "victims": [_protection("vp-a", "vd-a")],
    },
    {
        "offender_id": "off-vmiss",
        "device_ids": ["tag-vmiss"],
        "victims": [_protection("vp-b", "vd-b")],
    },
    {"offender_id": "off-plain", "device_ids": ["tag-plain"]},
]


def _victims() -> list[GpsReading]:
    out, t = [], at(9)
    while t <= at(13):
        out += [fix("vd-a", t, *VA, 10.0), fix("vd-b", t + 20 * MIN / 60, *VB, 10.0)]
        t += MIN
    return out


def _near(t: datetime, start: float, victim: tuple[float, float], gap_m: float, home) -> tuple:
    """Where someone is at ``t``: ``gap_m`` south of ``victim`` for 20 min from ``start``."""
    if at(start) <= t < at(start) + 20 * MIN:
        return victim[0], victim[1] - gap_m
    return home


def _people(t0: datetime, t1: datetime) -> list[GpsReading]:
    out, t = [], t0
    homes = {k: (ORIGIN_X + 3000.0 * i, ORIGIN_Y - 3000.0) for i, k in enumerate(("a", "m", "p"))}
    while t < t1:
        a = _near(t, 10, VA, 60.0, homes["a"])
        a = _near(t, 12, VA, 100.0, homes["a"]) if a == homes["a"] else a
        out += [
            fix("tag-vapp", t, *a),
            fix("tag-vmiss", t, *_near(t, 10.5, VB, 1.5 * RADIUS, homes["m"])),
            fix("tag-plain", t, *_near(t, 10.2, VA, 10.0, homes["p"])),
        ]
        t += MIN
    return out


BAD = [
    (b"vd-a", b"{not json"),
    (b"someone-else", encode(fix("vd-a", at(9.5), *VA))),
    (
        b"vd-a",
        b'{"type":"event","device_id":"vd-a","ts":"2026-11-10T09:30:00Z","event":"heartbeat"}',
    ),
]


def _send(env: ServiceEnv, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    asyncio.run(kafka_io.send_all(env.bootstrap, topic, records))


def _keyed(readings: list[GpsReading]) -> list[tuple[bytes, bytes]]:
    return [(r.device_id.encode(), encode(r)) for r in readings]


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory) -> dict:
    env = _env(kafka_bootstrap, tmp_path_factory.mktemp("victims"))
    env.env["EM_ARCHIVER_METRICS_PORT"] = str(free_port())
    s = env.settings
    db = s.resolved_database_url().removeprefix("sqlite:///")
    first, second = _people(at(9), at(11.5)), _people(at(11.5), at(13))
    try:
        _send(
            env,
            s.topic_conditions,
            [(d["offender_id"].encode(), json.dumps(d).encode()) for d in DOCS],
        )
        _send(env, s.topic_victim_readings, _keyed(_victims()) + BAD)
        worker = env.start("worker", log_name="worker")
        env.start("archiver", log_name="archiver")
        _send(env, s.topic_readings, _keyed(first))
        env.wait_until(lambda: _consumed(env) >= len(first), 180, "the first readings consumed")
        env.wait_until(lambda: len(_alerts(env, 2, timeout_s=2)) >= 2, 60, "the first episode")
        before = _alerts(env, 50, timeout_s=3)
        env.stop(worker, signal.SIGKILL)
        env.procs.remove(worker)
        _send(env, s.topic_readings, _keyed(second))
        env.start("worker", log_name="worker-again")
        env.wait_until(lambda: _consumed(env) >= len(second), 180, "the rest consumed")
        env.wait_until(lambda: len(_alerts(env, 4, timeout_s=2)) >= 4, 60, "the second episode")
        alerts = _alerts(env, 50, timeout_s=5)  # and nothing more arrives
        n = len(first) + len(second)
        env.wait_until(
            lambda: (a := _archived(db))[0] >= n and len(a[2]) == 2 and all(e for _, e in a[2]),
            120,
            "every person's fix and both ended episodes archived",
        )
        archived = _archived(db)
        letters = asyncio.run(
            kafka_io.read_since(env.bootstrap, s.topic_victim_dlq, None, want=10, timeout_s=5)
        )
        readings_dlq = asyncio.run(
            kafka_io.read_since(env.bootstrap, s.topic_dlq, None, want=1, timeout_s=2)
        )
    finally:
        env.stop_all()
    return {
        "before": before,
        "alerts": alerts,
        "letters": [json.loads(r.value) for r in letters],
        "readings_dlq": readings_dlq,
        "archived": archived,
    }


def _archived(db: str) -> tuple[int, set[str], int]:
    """Return the fixes archived, their devices, and the victim alerts stored."""
    try:
        with sqlite3.connect(db) as con:
            n, devices = 0, set()
            for device, count in con.execute("SELECT device_id, count(*) FROM fixes GROUP BY 1"):
                n += count
                devices.add(device)
            stored = con.execute(
                "SELECT type, ended_alert_id IS NOT NULL FROM alerts WHERE type LIKE 'victim%'"
            ).fetchall()
            return n, devices, stored
    except sqlite3.OperationalError:  # not created yet
        return 0, set(), []


def test_only_the_approaches_alert_once_each_across_a_restart(run: dict) -> None:
    alerts = run["alerts"]
    assert Counter((a["offender_id"], a["type"]) for a in alerts) == {
        ("off-vapp", "victim_proximity"): 2,
        ("off-vapp", "victim_proximity_ended"): 2,
    }
    assert len({a["alert_id"] for a in alerts}) == len(alerts)
    starts = sorted(a["episode_start"] for a in alerts if a["type"] == "victim_proximity")
    assert starts == ["2026-11-10T10:00:00Z", "2026-11-10T12:00:00Z"]  # the second after restart
    assert {a["alert_id"] for a in run["before"]} <= {a["alert_id"] for a in alerts}


def test_alerts_carry_the_distance_and_the_persons_fix_only(run: dict) -> None:
    for a in run["alerts"]:
        assert a["details"]["protection_id"] == "vp-a" and a["details"]["radius_m"] == RADIUS
        assert "vd-a" not in json.dumps(a)
    opened = sorted(
        (a for a in run["alerts"] if a["type"] == "victim_proximity"),
        key=lambda a: a["episode_start"],
    )
    assert [a["details"]["closest_m"] for a in opened] == [60.0, 100.0]
    lon, lat = ll(VA[0], VA[1] - 60.0)  # where the person stood, not where the victim was
    assert opened[0]["location"]["lat"] == pytest.approx(lat, abs=1e-9)
    assert opened[0]["location"]["lon"] == pytest.approx(lon, abs=1e-9)


def test_the_archive_holds_the_peoples_fixes_and_never_the_victims(run: dict) -> None:
    _n, devices, stored = run["archived"]
    assert devices == {"tag-vapp", "tag-vmiss", "tag-plain"}  # no vd-a, no vd-b
    # The alerts are stored as any other: each episode one row, ended by its _ended alert.
    assert stored == [("victim_proximity", 1), ("victim_proximity", 1)]


def test_bad_victim_records_are_dead_lettered_once_to_their_own_topic(run: dict) -> None:
    assert sorted(letter["reason"] for letter in run["letters"]) == [
        "invalid_json",
        "unknown_type",
        "wrong_key",
    ]
    assert run["readings_dlq"] == []  # nothing of a victim's in the long-lived dead letters


def test_victim_topics_keep_records_for_the_retention_only() -> None:
    s = Settings(retention_victim_s=3600)
    topics = {t.name: t.topic_configs for t in service_topics(s)}
    for name in (s.topic_victim_readings, s.topic_victim_dlq):
        assert topics[name]["retention.ms"] == "3600000"
        assert int(topics[name]["segment.ms"]) <= 3_600_000 // 4
        assert topics[name].get("cleanup.policy", "delete") == "delete"
