"""Mandatory attendance through the engine, pure (no broker): kept, late, missed, unverified,
the DST change day, out-of-order fixes, and appointments not watched from their start."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from em_service.conditions.registry import ConditionsRegistry
from em_service.conditions.validate import InvalidConditions, check
from em_service.contracts import GpsReading
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state, load_state
from tests.trails import ORIGIN_X, ORIGIN_Y, fix, ll, square

HOME = (ORIGIN_X, ORIGIN_Y)
OFFICE = (ORIGIN_X + 2000.0, ORIGIN_Y)
MIN = timedelta(minutes=1)


def appointment(appt_id: str = "ap-1", day: str = "2026-11-10", **kw: object) -> dict:
    doc = {
        "appointment_id": appt_id,
        "geometry": {"type": "Point", "coordinates": list(ll(*OFFICE))},
        "radius_m": 60,
        "date": day,
        "start": "10:00",
        "end": "11:00",
        "grace_before_s": 900,
        "grace_after_s": 600,
    }
    doc.update(kw)
    return doc


def engine(*appts: dict, **extra: object) -> Engine:
    registry = ConditionsRegistry()
    doc = {"offender_id": "off-1", "device_ids": ["tag-1"], "appointments": list(appts), **extra}
    registry.apply("off-1", json.dumps(doc).encode())
    return Engine(registry, Settings())


def run(
    eng: Engine, readings: list[GpsReading], tick_to: datetime | None = None
) -> tuple[list, DeviceState]:
    state, alerts = DeviceState(), []
    for r in readings:
        state = load_state(dump_state(state))
        alerts += eng.on_reading(state, r, now=r.ts).alerts
    if tick_to is not None:
        alerts += eng.on_tick(state, "tag-1", now=tick_to, detected_at=tick_to)
    return [a for a in alerts if a.type.startswith("attendance")], state


def day_of(start: datetime, end: datetime, where) -> list[GpsReading]:
    """A fix a minute from ``start`` to ``end``; ``where(t)`` gives (x, y) or None (no fix)."""
    out, t = [], start
    while t < end:
        p = where(t)
        if p is not None:
            out.append(fix("tag-1", t, *p))
        t += MIN
    return out


def utc(h: float, day: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=h)


def test_kept_on_time_is_one_info_alert() -> None:
    # GMT in November: 10:00 local = 10:00 UTC. Arrives 09:55, stays until 10:50.
    fixes = day_of(
        utc(8), utc(13), lambda t: OFFICE if utc(9 + 55 / 60) <= t < utc(10.84) else HOME
    )
    alerts, _ = run(engine(appointment()), fixes, utc(14))
    assert [a.type for a in alerts] == ["attendance_kept"]
    kept = alerts[0]
    assert kept.severity == "info" and kept.occurred_at == utc(9 + 55 / 60)
    assert kept.details["appointment_id"] == "ap-1" and kept.episode_start == utc(10)


def test_late_arrival_after_grace() -> None:
    fixes = day_of(utc(8), utc(13), lambda t: OFFICE if utc(10.25) <= t < utc(10.9) else HOME)
    alerts, _ = run(engine(appointment()), fixes, utc(14))
    assert [(a.type, a.severity) for a in alerts] == [("attendance_late", "medium")]
    assert alerts[0].details["minutes_after_start"] == 15.0


def test_arrival_within_grace_is_kept() -> None:
    fixes = day_of(utc(8), utc(13), lambda t: OFFICE if utc(10 + 9 / 60) <= t < utc(10.9) else HOME)
    alerts, _ = run(engine(appointment()), fixes, utc(14))
    assert [a.type for a in alerts] == ["attendance_kept"]


def test_missed_when_usable_fixes_away_cover_the_window() -> None:
    fixes = day_of(utc(8), utc(13), lambda t: HOME)
    alerts, _ = run(engine(appointment()), fixes)  # decided by the fixes' own time (no tick)
    assert [(a.type, a.severity) for a in alerts] == [("attendance_missed", "high")]
    assert alerts[0].occurred_at == utc(11)


def test_a_gap_in_the_window_is_unverified_not_missed() -> None:
    fixes = day_of(utc(8), utc(13), lambda t: None if utc(10.2) <= t < utc(10.5) else HOME)
    alerts, _ = run(engine(appointment()), fixes)
    assert [(a.type, a.severity) for a in alerts] == [("attendance_unverified", "medium")]
    g = 60 + Settings().silence_buffer_s  # each fix vouches for the next g seconds
    assert alerts[0].details["uncovered_s"] == (utc(10.5) - utc(10.2)).total_seconds() + 60 - g


def test_unusable_fixes_do_not_make_a_miss() -> None:
    fixes = [
        fix("tag-1", r.ts, *HOME, acc=500.0) if utc(10) <= r.ts < utc(10.5) else r
        for r in day_of(utc(8), utc(13), lambda t: HOME)
    ]
    alerts, _ = run(engine(appointment()), fixes)
    assert [a.type for a in alerts] == ["attendance_unverified"]


def test_silent_device_is_decided_by_the_tick() -> None:
    fixes = day_of(utc(8), utc(9), lambda t: HOME)  # then nothing at all
    alerts, state = run(engine(appointment()), fixes, utc(10.5))
    assert [a.type for a in alerts if a.type.startswith("attendance")] == []
    more = engine(appointment()).on_tick(state, "tag-1", now=utc(12), detected_at=utc(12))
    assert [a.type for a in more if a.type.startswith("attendance")] == ["attendance_unverified"]


def test_decided_once() -> None:
    eng = engine(appointment())
    fixes = day_of(utc(8), utc(13), lambda t: HOME)
    alerts, state = run(eng, fixes, utc(14))
    alerts += eng.on_tick(state, "tag-1", now=utc(15), detected_at=utc(15))
    alerts = [a for a in alerts if a.type.startswith("attendance")]
    assert [a.type for a in alerts] == ["attendance_missed"]


def test_out_of_order_fixes_still_cover_the_window() -> None:
    # Store-and-forward: the fixes of 09:30-11:05 upload in one shuffled burst.
    fixes = day_of(utc(8), utc(13), lambda t: HOME)
    burst = [f for f in fixes if utc(9.5) <= f.ts < utc(11 + 5 / 60)]
    rest = [f for f in fixes if f not in burst]
    order = np.random.default_rng(3).permutation(len(burst))
    shuffled = rest[:90] + [burst[i] for i in order] + rest[90:]
    alerts, _ = run(engine(appointment()), shuffled, utc(14))
    assert [a.type for a in alerts] == ["attendance_missed"]


def test_late_fix_inside_arrives_after_away_fixes() -> None:
    # Store-and-forward: the fixes at the office upload after the others; still kept.
    fixes = day_of(utc(8), utc(13), lambda t: OFFICE if utc(9.9) <= t < utc(10.8) else HOME)
    inside = [f for f in fixes if utc(9.9) <= f.ts < utc(10.8)]
    others = [f for f in fixes if f not in inside and f.ts < utc(11)]
    alerts, _ = run(engine(appointment()), others + inside, utc(11.02))
    assert [a.type for a in alerts] == ["attendance_kept"]


@pytest.mark.parametrize(
    ("local", "utc_start"),
    [
        (("10:00", "11:00"), utc(9, day=29, month=3)),  # BST from 01:00 UTC that day
        (("01:30", "02:30"), utc(1, day=29, month=3)),  # 01:30 does not exist: the gap's end
    ],
)
def test_dst_change_day(local: tuple[str, str], utc_start: datetime) -> None:
    appt = appointment(day="2026-03-29", start=local[0], end=local[1], grace_before_s=0)
    eng = engine(appt)
    slot = eng.registry.at("off-1", utc_start).compiled.appointments.slots[0]
    assert slot.start_s == utc_start.timestamp()
    # At the office from 5 minutes after the UTC start: kept (within 10 min grace) …
    t0 = utc_start - timedelta(hours=2)
    fixes = day_of(
        t0, t0 + timedelta(hours=5), lambda t: OFFICE if t >= utc_start + 5 * MIN else HOME
    )
    alerts, _ = run(eng, fixes)
    assert [a.type for a in alerts] == ["attendance_kept"]
    # … whereas an hour-off (naive UTC) reading of the local time would have called it late/missed.
    late = day_of(
        t0, t0 + timedelta(hours=5), lambda t: OFFICE if t >= utc_start + 15 * MIN else HOME
    )
    assert [a.type for a in run(eng, late)[0]] == ["attendance_late"]


def test_not_judged_before_the_device_was_watched() -> None:
    fixes = day_of(utc(10.5), utc(13), lambda t: HOME)  # first reading after the window opened
    alerts, _ = run(engine(appointment()), fixes, utc(14))
    assert alerts == []


def test_validation_refuses_bad_appointments() -> None:
    ok = {"offender_id": "off-1", "device_ids": ["tag-1"], "appointments": [appointment()]}
    check(json.dumps(ok), crs="EPSG:27700")
    for bad in (
        appointment(end="09:00"),
        appointment(radius_m=None),
        {**appointment(), "geometry": {"type": "Polygon", "coordinates": square(*OFFICE, 50)}},
        appointment(date="2026-13-01"),
    ):
        doc = {**ok, "appointments": [bad]}
        with pytest.raises(InvalidConditions):
            check(json.dumps(doc), crs="EPSG:27700")
    dup = {**ok, "appointments": [appointment(), appointment()]}
    with pytest.raises(InvalidConditions, match="unique"):
        check(json.dumps(dup), crs="EPSG:27700")


def test_polygon_place() -> None:
    appt = appointment()
    del appt["radius_m"]
    appt["geometry"] = {"type": "Polygon", "coordinates": square(*OFFICE, 50)}
    fixes = day_of(utc(8), utc(13), lambda t: OFFICE if utc(9.9) <= t < utc(10.8) else HOME)
    alerts, _ = run(engine(appt), fixes, utc(14))
    assert [a.type for a in alerts] == ["attendance_kept"]


# --- A decision revised by a late (store-and-forward) fix at the place ------------------------


def _late_upload(where_inside, tick_to: datetime):
    """Fixes 08:00-13:00; those inside [10:00, 10:50) are at the office or missing per
    ``where_inside`` and upload only after the decision (after a tick at ``tick_to``)."""
    eng = engine(appointment())
    fixes = day_of(utc(8), utc(13), lambda t: HOME)
    held = [f for f in fixes if utc(10) <= f.ts < utc(10 + 50 / 60)]
    first = [f for f in fixes if f not in held]
    alerts, state = run(eng, [f for f in first if f.ts < utc(10)])
    uploaded = [fix("tag-1", f.ts, *where_inside(f.ts)) for f in held]
    # No fixes in the window yet: decided unverified by the rule clock …
    alerts += eng.on_tick(state, "tag-1", now=tick_to, detected_at=tick_to)
    for r in uploaded + [f for f in first if f.ts >= utc(10)]:
        state = load_state(dump_state(state))
        alerts += eng.on_reading(state, r, now=tick_to + MIN).alerts
    alerts += eng.on_tick(state, "tag-1", now=utc(14), detected_at=utc(14))
    return [a for a in alerts if a.type.startswith("attendance")]


def test_late_fix_at_the_place_revises_an_unverified_decision_once() -> None:
    alerts = _late_upload(lambda t: OFFICE if t >= utc(10 + 5 / 60) else HOME, utc(11.5))
    assert [(a.type, a.severity) for a in alerts] == [
        ("attendance_unverified", "medium"),
        ("attendance_kept", "info"),
    ]
    unverified, kept = alerts
    assert kept.details["revises"] == unverified.alert_id
    assert kept.details["revised_type"] == "attendance_unverified"
    assert kept.occurred_at == utc(10 + 5 / 60) and kept.late  # arrived long after its time


def test_late_arrival_revises_as_late() -> None:
    alerts = _late_upload(lambda t: OFFICE if t >= utc(10.5) else HOME, utc(11.5))
    assert [a.type for a in alerts] == ["attendance_unverified", "attendance_late"]
    assert alerts[1].details["revises"] == alerts[0].alert_id


def test_late_fixes_away_do_not_revise() -> None:
    alerts = _late_upload(lambda t: HOME, utc(11.5))
    assert [a.type for a in alerts] == ["attendance_unverified"]


def test_a_missed_decision_is_revised_by_a_late_fix_at_the_place() -> None:
    eng = engine(appointment())
    fixes = day_of(utc(8), utc(13), lambda t: HOME)
    alerts, state = run(eng, fixes)
    assert [a.type for a in alerts] == ["attendance_missed"]
    # A second tag's worth of truth: a store-and-forward fix at the office at 10:20 …
    for r in (fix("tag-1", utc(10 + 20 / 60), *OFFICE), fix("tag-1", utc(10.4), *OFFICE)):
        state = load_state(dump_state(state))
        alerts += eng.on_reading(state, r, now=utc(13)).alerts
    # … and one outside the window (after its end) changes nothing.
    alerts += eng.on_reading(state, fix("tag-1", utc(11.2), *OFFICE), now=utc(13)).alerts
    got = [a for a in alerts if a.type.startswith("attendance")]
    assert [(a.type, a.details.get("revises")) for a in got] == [
        ("attendance_missed", None),
        ("attendance_late", got[0].alert_id),  # 20 min after the start: beyond the grace
    ]
