"""Location failure through the engine, pure: heartbeats without a usable fix, distinct from
silence; inside a curfew window it is curfew_unverified; a usable fix ends it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import DeviceEvent
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state, load_state
from tests.trails import ORIGIN_X, ORIGIN_Y, curfew, fix

HOME = (ORIGIN_X, ORIGIN_Y)
MIN = timedelta(minutes=1)
G = 60 + Settings().silence_buffer_s


def engine() -> Engine:
    registry = ConditionsRegistry()
    d = {"offender_id": "off-1", "device_ids": ["tag-1"], "curfews": [curfew("c-1", *HOME)]}
    registry.apply("off-1", json.dumps(d).encode())
    return Engine(registry, Settings())


def beat(t: datetime) -> DeviceEvent:
    return DeviceEvent(
        device_id="tag-1", ts=t, event="heartbeat", battery_pct=80.0, signal_dbm=-90.0
    )


def run(readings: list) -> list:
    eng, state, alerts, tick = engine(), DeviceState(), [], readings[0].ts
    for r in readings:
        while tick < r.ts:
            alerts += eng.on_tick(state, "tag-1", now=tick, detected_at=tick)
            tick += 5 * MIN
        state = load_state(dump_state(state))
        alerts += eng.on_reading(state, r, now=r.ts).alerts
    return alerts


def day(t0: datetime, broken: tuple[datetime, datetime], unusable: bool = False) -> list:
    """Fixes every minute; during ``broken`` heartbeats every 5 min (or fixes of 500 m)."""
    out, t = [], t0
    while t < t0 + timedelta(hours=8):
        if not broken[0] <= t < broken[1]:
            out.append(fix("tag-1", t, *HOME))
        elif unusable:
            out.append(fix("tag-1", t, *HOME, acc=500.0))
        elif t.minute % 5 == 0:
            out.append(beat(t))
        t += MIN
    return out


def test_heartbeats_without_fix_in_the_day_raise_location_failure_once() -> None:
    t0 = datetime(2026, 11, 10, 8, tzinfo=UTC)
    broken = (t0 + timedelta(hours=2), t0 + timedelta(hours=4))
    alerts = run(day(t0, broken))
    assert [(a.type, a.severity) for a in alerts] == [
        ("location_failure", "high"),
        ("location_failure_ended", "info"),
    ]
    raised, ended = alerts
    assert raised.episode_start == broken[0] - MIN  # the last usable fix
    assert raised.occurred_at > raised.episode_start + timedelta(seconds=G)
    assert ended.ref_alert_id == raised.alert_id and ended.occurred_at == broken[1]
    assert "device_silent" not in {a.type for a in alerts}  # the tag talked all along


def test_unusable_fixes_count_as_contact_without_location() -> None:
    t0 = datetime(2026, 11, 10, 8, tzinfo=UTC)
    alerts = run(day(t0, (t0 + timedelta(hours=2), t0 + timedelta(hours=4)), unusable=True))
    assert [a.type for a in alerts] == ["location_failure", "location_failure_ended"]


def test_short_gap_is_not_a_failure() -> None:
    t0 = datetime(2026, 11, 10, 8, tzinfo=UTC)
    short = (t0 + timedelta(hours=2), t0 + timedelta(hours=2) + timedelta(seconds=G - 120))
    assert run(day(t0, short)) == []


def test_during_curfew_it_is_curfew_unverified() -> None:
    t0 = datetime(2026, 11, 10, 15, tzinfo=UTC)  # curfew 19:00-07:00 (GMT)
    broken = (t0 + timedelta(hours=4, minutes=30), t0 + timedelta(hours=6))
    alerts = run(day(t0, broken))
    assert [(a.type, a.curfew_id) for a in alerts] == [
        ("curfew_unverified", "c-1"),
        ("curfew_unverified_ended", "c-1"),
    ]
    assert alerts[0].details["cause"] == "location_failure"


def test_nothing_at_all_is_silence_not_location_failure() -> None:
    t0 = datetime(2026, 11, 10, 8, tzinfo=UTC)
    readings = [
        r
        for r in day(t0, (t0 + timedelta(hours=2), t0 + timedelta(hours=4)))
        if not isinstance(r, DeviceEvent)
    ]
    types = [a.type for a in run(readings)]
    assert types == ["device_silent", "device_silent_ended"]
