"""Order scenarios: mandatory attendance (kept, late, missed, unverified), a custody suspension
with the tag off, and a broken GPS module that keeps sending heartbeats.

An appointment is 10:00–11:00 local at the person's first usual place at least 400 m from home (radius 100 m), on the DST
change day when the run has one (instance 0), else an ordinary day; its truth is written by the
scenario (the service decides from fixes near the place, so the truth follows the script).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from simulator.movement import Itinerary, Rng, jittered
from simulator.scenarios.base import Ctx, ScenarioSkipped, Script
from simulator.scenarios.curfew import _trip
from simulator.truth import TruthRecord, record

START_MIN, END_MIN = 600.0, 660.0
RADIUS_M = 100.0
GRACE_BEFORE_S, GRACE_AFTER_S = 900.0, 600.0


def _dst_day(ctx: Ctx) -> date | None:
    """Return a local date in the run on which the UTC offset changes, if any."""
    tz = ZoneInfo(ctx.tz)
    t = datetime.fromtimestamp(ctx.start_s, tz).date()
    while ctx.local(t, 0.0) < ctx.end_s:
        a = datetime(t.year, t.month, t.day, 0, 30, tzinfo=tz).utcoffset()
        b = datetime(t.year, t.month, t.day, 23, 30, tzinfo=tz).utcoffset()
        if a != b and ctx.local(t, 480.0) >= ctx.start_s + 1200 and ctx.local(t, 780.0) < ctx.end_s:
            return t
        t += timedelta(days=1)
    return None


def _appointment(ctx: Ctx, mode: str) -> Script:
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    place = next((p for p in person.places if math.dist(p, person.home) >= 4 * RADIUS_M), None)
    if place is None:
        raise ScenarioSkipped("every usual place is too near home for an appointment there")
    dst = _dst_day(ctx) if ctx.instance == 0 else None
    day = dst or ctx.pick_day(480, 780)
    start, end = ctx.local(day, START_MIN), ctx.local(day, END_MIN)
    interval = ctx.config.gps_interval_s
    appt_id = f"ap-{person.index:05d}-{ctx.instance}"
    lon, lat = ctx.frame.to_lonlat(place[0], place[1])
    appt = {
        "appointment_id": appt_id,
        "name": "Simulated probation appointment",
        "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
        "radius_m": RADIUS_M,
        "date": day.isoformat(),
        "start": "10:00",
        "end": "11:00",
        "grace_before_s": GRACE_BEFORE_S,
        "grace_after_s": GRACE_AFTER_S,
    }
    out, out_speed = _trip(rng, person.home, place)
    back, back_speed = _trip(rng, place, person.home)
    if mode == "kept":
        arrive = start - float(rng.uniform(2, 12)) * 60.0
    elif mode == "late":
        arrive = start + GRACE_AFTER_S + float(rng.uniform(6, 25)) * 60.0
    else:
        arrive = None

    def plan(it: Itinerary, rng_: Rng) -> None:
        if arrive is None:  # stays at home all morning
            it.stay_until(ctx.local(day, 840.0))
            return
        it.go([*out[:-1], jittered(rng_, place, 10.0)], out_speed, arrive_s=arrive)
        it.stay_until(end + 600.0)
        it.go([*back[:-1], jittered(rng_, person.home)], back_speed)

    silences = []
    if mode == "unverified":
        gap0 = start + float(rng.uniform(5, 20)) * 60.0
        silences = [(gap0, gap0 + float(rng.uniform(25, 35)) * 60.0)]
    kind = {
        "kept": "attendance_kept",
        "late": "attendance_late",
        "missed": "attendance_missed",
        "unverified": "attendance_unverified",
    }[mode]

    def truth(sim, script: Script) -> list[TruthRecord]:
        common = {
            "scenario_id": script.scenario_id,
            "offender_id": person.offender_id,
            "device_id": person.gps_device_id,
            "details": {"appointment_id": appt_id, "date_local": day.isoformat()},
        }
        if arrive is not None:
            return [
                record(
                    "alert",
                    kind,
                    script.kind,
                    at_s=arrive,
                    from_s=arrive - 600.0,
                    to_s=arrive + 2 * interval + 60.0,
                    severity="info" if mode == "kept" else "medium",
                    **common,
                )
            ]
        return [
            record(
                "alert",
                kind,
                script.kind,
                at_s=end,
                from_s=end - 1.0,
                to_s=end + 1.0,
                severity="high" if mode == "missed" else "medium",
                **common,
            )
        ]

    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=plan,
        clean=[(start - 3600.0, end + 1800.0)],
        silences=silences,
        appointments=[appt],
        truth=truth,
        facts={"appointment_id": appt_id, "dst_day": dst is not None, "arrive_s": arrive},
    )


def attendance_kept(ctx: Ctx) -> Script:
    """At a 10:00–11:00 appointment 2–12 min early (on the DST change day if the run has one)."""
    return _appointment(ctx, "kept")


def attendance_late(ctx: Ctx) -> Script:
    """Arrives at a 10:00–11:00 appointment 16–35 min after its start (10 min grace)."""
    return _appointment(ctx, "late")


def attendance_missed(ctx: Ctx) -> Script:
    """Stays at home through a 10:00–11:00 appointment, the tag reporting all along."""
    return _appointment(ctx, "missed")


def attendance_unverified(ctx: Ctx) -> Script:
    """Stays at home through an appointment, but the tag is silent 25–35 min during it."""
    return _appointment(ctx, "unverified")


def custody(ctx: Ctx) -> Script:
    """Three days in custody mid-run (shorter runs: half the run), tag off, approved suspension."""
    person = ctx.person
    assert person is not None
    span = ctx.end_s - ctx.start_s
    length = 3 * 86400.0 if span >= 4 * 86400.0 else span / 2
    t0 = float(round(ctx.start_s + (span - length) / 2))
    t1 = t0 + length
    iso = datetime.fromtimestamp
    tz = ZoneInfo("UTC")
    monitoring = {
        "status": "suspended",
        "reason": "custody",
        "from": iso(t0, tz).isoformat(),
        "until": iso(t1, tz).isoformat(),
        "approved_by": "Simulated IOM sergeant",
    }
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        silences=[(t0, t1)],
        clean=[(t0 - 1800.0, t1 + 1800.0)],
        monitoring=monitoring,
        facts={"custody_from_s": t0, "custody_until_s": t1},
    )


def gps_broken(ctx: Ctx) -> Script:
    """By day the GPS module fails for 60–120 min; the tag sends a heartbeat every 5 minutes."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    day = ctx.pick_day(600, 900)
    t0 = float(round(ctx.local(day, float(rng.uniform(600, 720)))))
    t1 = t0 + float(round(rng.uniform(60, 120))) * 60.0
    beats = [(t0 + k * 300.0 + 30.0, "heartbeat", None) for k in range(int((t1 - t0) // 300))]
    c = ctx.config

    def truth(sim, script: Script) -> list[TruthRecord]:
        # The service sees the last fix before t0 and the first heartbeat after it + threshold.
        threshold = c.gps_interval_s + c.silence_buffer_s
        due = t0 + threshold
        first = min((t for t, _k, _d in beats if t > due - c.gps_interval_s), default=None)
        if first is None:
            return []
        common = {
            "scenario_id": script.scenario_id,
            "offender_id": person.offender_id,
            "device_id": person.gps_device_id,
        }
        key = f"{person.index}:locf:{t0}"
        return [
            record(
                "alert",
                "location_failure",
                script.kind,
                at_s=first,
                from_s=due - c.gps_interval_s,
                to_s=first + 300.0 + 60.0,
                episode=(t0, t1),
                severity="high",
                details={"_key": key},
                **common,
            ),
            record(
                "alert",
                "location_failure_ended",
                script.kind,
                at_s=t1,
                from_s=t1 - 60.0,
                to_s=t1 + 2 * c.gps_interval_s + 60.0,
                episode=(t0, t1),
                ref_truth_id=key,
                **common,
            ),
        ]

    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        gps_broken=[(t0, t1)],
        events=beats,
        clean=[(t0 - 1800.0, t1 + 1800.0)],
        truth=truth,
        facts={"broken_from_s": t0, "broken_to_s": t1},
    )
