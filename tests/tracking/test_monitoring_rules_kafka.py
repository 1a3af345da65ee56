"""Issue 15's rules end to end on the real broker, through the real worker: attendance (kept,
late, missed, unverified), a custody suspension with the tag off (only a tamper gets through), a
hospital visit under a single-zone suspension (recorded as suppressed; raised again at the
suspension's end when the visit outlives it) and a broken GPS module that keeps sending heartbeats (location failure, then its end)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from em_service import kafka_io
from em_service.contracts import DeviceEvent, Reading
from em_service.contracts.codec import encode
from tests.service_env import ServiceEnv
from tests.tracking.test_rules_kafka import _alerts, _consumed, _env
from tests.trails import ORIGIN_X, ORIGIN_Y, fix, ll, zone

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

START = datetime(2026, 11, 10, 8, tzinfo=UTC)
END = datetime(2026, 11, 10, 14, tzinfo=UTC)
MIN = timedelta(minutes=1)


def at(h: float) -> datetime:
    return datetime(2026, 11, 10, tzinfo=UTC) + timedelta(hours=h)


def _appointment(name: str, office: tuple[float, float]) -> dict:
    return {
        "appointment_id": f"ap-{name}",
        "geometry": {"type": "Point", "coordinates": list(ll(*office))},
        "radius_m": 60,
        "date": "2026-11-10",
        "start": "10:00",
        "end": "11:00",
    }


def _scenario() -> tuple[list[dict], list[Reading]]:
    docs: list[dict] = []
    readings: list[Reading] = []
    # (name, where at minute t or None for no fix) for the attendance people.
    plans = {
        "akept": lambda t, o: o if at(9.9) <= t < at(10.8) else None,
        "alate": lambda t, o: o if at(10.3) <= t < at(10.9) else None,
        "amiss": lambda t, o: None,
        "aunv": lambda t, o: "gap" if at(10.2) <= t < at(10.6) else None,
    }
    for i, (name, plan) in enumerate(plans.items()):
        home = (ORIGIN_X + 3000.0 * i, ORIGIN_Y)
        office = (home[0] + 1500.0, home[1])
        docs.append(
            {
                "offender_id": f"off-{name}",
                "device_ids": [f"tag-{name}"],
                "appointments": [_appointment(name, office)],
                "updated_at": "2026-11-01T00:00:00Z",
            }
        )
        t = START
        while t <= END:
            where = plan(t, office)
            if where != "gap":
                readings.append(fix(f"tag-{name}", t, *(where or home)))
            t += MIN
    # Custody 10:00-12:00 with the tag off, a tamper at 10:30 (let through), approved.
    home = (ORIGIN_X + 3000.0 * 5, ORIGIN_Y)
    docs.append(
        {
            "offender_id": "off-cust",
            "device_ids": ["tag-cust"],
            "monitoring": {
                "status": "suspended",
                "reason": "custody",
                "from": at(10).isoformat(),
                "until": at(12).isoformat(),
                "approved_by": "IOM sergeant 1234",
            },
            "updated_at": "2026-11-01T00:00:00Z",
        }
    )
    t = START
    while t <= END:
        if not at(10) <= t < at(12):
            readings.append(fix("tag-cust", t, *home))
        t += MIN
    readings.append(DeviceEvent(device_id="tag-cust", ts=at(10.5), event="strap_tamper"))
    # Broken GPS 10:00-11:30: heartbeats every 5 minutes instead of fixes.
    home = (ORIGIN_X + 3000.0 * 6, ORIGIN_Y)
    docs.append({"offender_id": "off-locf", "device_ids": ["tag-locf"]})
    t = START
    while t <= END:
        if not at(10) <= t < at(11.5):
            readings.append(fix("tag-locf", t, *home))
        elif t.minute % 5 == 0:
            readings.append(
                DeviceEvent(
                    device_id="tag-locf", ts=t, event="heartbeat", battery_pct=64, signal_dbm=-95
                )
            )
        t += MIN
    # A hospital visit 10:30-11:10 inside an exclusion zone under an approved suspension, and an
    # unapproved visit 12:00-12:40: the first is recorded as suppressed, the second alerts.
    home = (ORIGIN_X + 3000.0 * 7, ORIGIN_Y)
    hospital = (home[0] + 1000.0, home[1])
    docs.append(
        {
            "offender_id": "off-hosp",
            "device_ids": ["tag-hosp"],
            "zones": [zone("z-hosp", *hospital, 150)],
            "suspensions": [
                {
                    "suspension_id": "sp-hosp",
                    "subject_id": "z-hosp",
                    "from": at(10).isoformat(),
                    "until": at(11.5).isoformat(),
                    "reason": "hospital appointment",
                    "approved_by": "IOM sergeant 1234",
                }
            ],
        }
    )
    t = START
    while t <= END:
        inside = at(10.5) <= t < at(10.5) + 40 * MIN or at(12) <= t < at(12) + 40 * MIN
        readings.append(fix("tag-hosp", t, *(hospital if inside else home)))
        t += MIN
    # The same approved absence 10:00-11:30, but the visit 10:30-12:00 outlives it: suppressed,
    # then raised at 11:30 (once), each with its end.
    home2 = (ORIGIN_X + 3000.0 * 8, ORIGIN_Y)
    hospital2 = (home2[0] + 1000.0, home2[1])
    docs.append(
        {
            "offender_id": "off-hosp2",
            "device_ids": ["tag-hosp2"],
            "zones": [zone("z-hosp2", *hospital2, 150)],
            "suspensions": [{**docs[-1]["suspensions"][0], "subject_id": "z-hosp2"}],
        }
    )
    t = START
    while t <= END:
        inside = at(10.5) <= t < at(12)
        readings.append(fix("tag-hosp2", t, *(hospital2 if inside else home2)))
        t += MIN
    readings.sort(key=lambda r: r.ts)
    return docs, readings


EXPECTED = Counter(
    {
        ("off-akept", "attendance_kept"): 1,
        ("off-alate", "attendance_late"): 1,
        ("off-amiss", "attendance_missed"): 1,
        ("off-aunv", "attendance_unverified"): 1,
        ("off-aunv", "device_silent"): 1,  # the gap is a silence too: both are true
        ("off-aunv", "device_silent_ended"): 1,
        ("off-cust", "strap_tamper"): 1,
        ("off-locf", "location_failure"): 1,
        ("off-locf", "location_failure_ended"): 1,
        ("off-hosp", "exclusion_breach"): 2,
        ("off-hosp", "exclusion_breach_ended"): 2,
        ("off-hosp2", "exclusion_breach"): 2,
        ("off-hosp2", "exclusion_breach_ended"): 2,
    }
)


@pytest.fixture(scope="module")
def alerts(kafka_bootstrap: str, tmp_path_factory) -> list[dict]:
    docs, readings = _scenario()
    env: ServiceEnv = _env(kafka_bootstrap, tmp_path_factory.mktemp("issue15"))
    s = env.settings
    try:
        conditions = [(d["offender_id"].encode(), json.dumps(d).encode()) for d in docs]
        asyncio.run(kafka_io.send_all(env.bootstrap, s.topic_conditions, conditions))
        env.start("worker", log_name="worker")
        records = [(r.device_id.encode(), encode(r)) for r in readings]
        asyncio.run(kafka_io.send_all(env.bootstrap, s.topic_readings, records))
        env.wait_until(lambda: _consumed(env) >= len(records), 180, "every reading consumed")
        want = sum(EXPECTED.values())
        env.wait_until(lambda: len(_alerts(env, want, timeout_s=2)) >= want, 60, "every alert")
        return _alerts(env, want + 20, timeout_s=5)  # and nothing more arrives
    finally:
        env.stop_all()


def test_exactly_the_expected_alerts(alerts: list[dict]) -> None:
    assert Counter((a["offender_id"], a["type"]) for a in alerts) == EXPECTED
    assert len({a["alert_id"] for a in alerts}) == len(alerts)


def test_attendance_alerts_name_the_appointment(alerts: list[dict]) -> None:
    att = {a["offender_id"]: a for a in alerts if a["type"].startswith("attendance")}
    assert {o: a["details"]["appointment_id"] for o, a in att.items()} == {
        "off-akept": "ap-akept",
        "off-alate": "ap-alate",
        "off-amiss": "ap-amiss",
        "off-aunv": "ap-aunv",
    }
    assert att["off-amiss"]["severity"] == "high" and att["off-alate"]["severity"] == "medium"
    assert att["off-alate"]["occurred_at"] == "2026-11-10T10:18:00Z"


def test_custody_lets_only_the_tamper_through(alerts: list[dict]) -> None:
    cust = [a for a in alerts if a["offender_id"] == "off-cust"]
    assert [(a["type"], a["occurred_at"]) for a in cust] == [
        ("strap_tamper", "2026-11-10T10:30:00Z")
    ]


def test_location_failure_is_urgent_and_ends_with_the_next_fix(alerts: list[dict]) -> None:
    by_type = {a["type"]: a for a in alerts if a["offender_id"] == "off-locf"}
    raised, ended = by_type["location_failure"], by_type["location_failure_ended"]
    assert raised["severity"] == "high" and raised["episode_start"] == "2026-11-10T09:59:00Z"
    assert ended["ref_alert_id"] == raised["alert_id"]
    assert ended["occurred_at"] == "2026-11-10T11:30:00Z"


def test_hospital_visit_under_suspension_is_recorded_suppressed(alerts: list[dict]) -> None:
    hosp = sorted(
        (a["occurred_at"][11:16], a["type"], a["severity"], "suppressed" in a["details"])
        for a in alerts
        if a["offender_id"] == "off-hosp"
    )
    assert [h for h in hosp if h[1] == "exclusion_breach"] == [
        ("10:30", "exclusion_breach", "info", True),
        ("12:00", "exclusion_breach", "high", False),
    ]
    assert sum(1 for h in hosp if h[1].endswith("_ended") and h[3]) == 1


def test_a_breach_outliving_its_suspension_is_raised_at_its_end(alerts: list[dict]) -> None:
    hosp = sorted(
        (a["occurred_at"][11:16], a["type"], a["severity"], "suppressed" in a["details"])
        for a in alerts
        if a["offender_id"] == "off-hosp2"
    )
    assert hosp == [
        ("10:30", "exclusion_breach", "info", True),
        ("11:30", "exclusion_breach", "high", False),
        ("12:00", "exclusion_breach_ended", "info", False),
        ("12:00", "exclusion_breach_ended", "info", True),
    ]
    by_id = {a["alert_id"]: a for a in alerts if a["offender_id"] == "off-hosp2"}
    realert = next(a for a in by_id.values() if a["severity"] == "high")
    assert by_id[realert["details"]["after_suspension"]["suppressed_alert_id"]]["severity"] == (
        "info"
    )
