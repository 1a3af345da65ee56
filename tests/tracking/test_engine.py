"""The tracking engine without a broker: timestamped readings in, alerts out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import DeviceEvent, GpsReading
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state, load_state
from tests.trails import ORIGIN_X, ORIGIN_Y, TO_M, ll, square

HOME_X, HOME_Y = ORIGIN_X, ORIGIN_Y


ZONE_X, ZONE_Y = HOME_X + 2000, HOME_Y


def _conditions(**extra: object) -> bytes:
    doc = {
        "offender_id": "off-1",
        "device_ids": ["tag-1"],
        "zones": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": square(ZONE_X, ZONE_Y, 150)},
                "properties": {"zone_id": "z-1", "kind": "exclusion"},
            }
        ],
        "curfews": [
            {
                "curfew_id": "c-home",
                "geometry": {"type": "Point", "coordinates": list(ll(HOME_X, HOME_Y))},
                "radius_m": 60,
                "windows": [
                    {
                        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "start": "19:00",
                        "end": "07:00",
                    }
                ],
            }
        ],
        **extra,
    }
    return json.dumps(doc).encode()


def _engine() -> Engine:
    registry = ConditionsRegistry()
    registry.apply("off-1", _conditions())
    return Engine(registry, Settings())


def _fix(t: datetime, x: float, y: float, acc: float = 8.0) -> GpsReading:
    lon, lat = ll(x, y)
    return GpsReading(device_id="tag-1", ts=t, lat=lat, lon=lon, accuracy_m=acc)


def _run(engine: Engine, fixes: list, state: DeviceState | None = None) -> list:
    state = state or DeviceState()
    alerts = []
    for f in fixes:
        state = load_state(dump_state(state))  # as the table would
        alerts += engine.on_reading(state, f, now=f.ts).alerts
    last = fixes[-1].ts + timedelta(minutes=10)
    alerts += engine.on_tick(state, "tag-1", now=last, detected_at=last)
    return alerts


def test_walk_into_exclusion_zone_gives_one_breach_and_one_end() -> None:
    t0 = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday noon: no curfew
    xs = np.concatenate(
        [
            np.linspace(ZONE_X - 600, ZONE_X, 15),
            np.full(10, ZONE_X),
            np.linspace(ZONE_X, ZONE_X - 600, 15),
        ]
    )
    fixes = [_fix(t0 + timedelta(minutes=i), x, ZONE_Y) for i, x in enumerate(xs)]
    alerts = _run(_engine(), fixes)
    assert [a.type for a in alerts] == ["exclusion_breach", "exclusion_breach_ended"]
    breach, ended = alerts
    first_inside = next(f for f in fixes if abs(_xy(f)[0] - ZONE_X) <= 150 - 8)
    assert breach.occurred_at <= first_inside.ts and breach.zone_id == "z-1"
    assert breach.severity == "high"
    assert ended.ref_alert_id == breach.alert_id and ended.details["duration_s"] > 0


def _xy(f: GpsReading) -> tuple[float, float]:
    return TO_M.transform(f.lon, f.lat)


def test_late_return_on_dst_night_has_local_times() -> None:
    # Saturday 24 Oct 2026 19:00 BST = 18:00 UTC; the window ends Sunday 07:00 GMT = 07:00 UTC.
    start = datetime(2026, 10, 24, 18, 0, tzinfo=UTC)
    away = [
        _fix(start - timedelta(minutes=30) + timedelta(minutes=i), HOME_X + 800, HOME_Y)
        for i in range(75)
    ]
    home = [_fix(away[-1].ts + timedelta(minutes=i + 1), HOME_X, HOME_Y) for i in range(10)]
    alerts = _run(_engine(), away + home)
    assert [a.type for a in alerts] == ["curfew_breach", "curfew_breach_ended"]
    breach = alerts[0]
    assert breach.curfew_id == "c-home" and breach.details["pattern"] == "late_return"
    assert breach.details["window_start_local"] == "2026-10-24T19:00:00+01:00"
    assert breach.details["window_end_local"] == "2026-10-25T07:00:00+00:00"
    assert start <= breach.occurred_at <= start + timedelta(minutes=2)


def test_unknown_device_and_strap_tamper() -> None:
    engine = _engine()
    t = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    tamper = DeviceEvent(device_id="tag-1", ts=t, event="strap_tamper")
    out = engine.on_reading(DeviceState(), tamper, now=t)
    assert [(a.type, a.severity) for a in out.alerts] == [("strap_tamper", "high")]
    stranger = DeviceEvent(device_id="tag-x", ts=t, event="strap_tamper")
    assert engine.on_reading(DeviceState(), stranger, now=t).unknown_device


def test_batch_verdicts_equal_scalar_verdicts() -> None:
    engine = _engine()
    t0 = datetime(2026, 11, 18, 18, 50, tzinfo=UTC)  # crosses the 19:00 curfew start
    xs = np.linspace(HOME_X, ZONE_X, 40)
    fixes = [_fix(t0 + timedelta(minutes=i), x, ZONE_Y, acc=5 + i) for i, x in enumerate(xs)]
    mixed = [None, *fixes, DeviceEvent(device_id="tag-1", ts=t0, event="battery_low")]
    batch = engine.evaluate_batch(mixed)
    assert sorted(batch) == list(range(1, 41))
    version = engine.registry.at("off-1", t0)
    for i, f in enumerate(fixes, start=1):
        scalar = version.compiled.evaluate_fix(f.ts, lon=f.lon, lat=f.lat, accuracy_m=f.accuracy_m)
        assert batch[i] == scalar


def test_breach_released_by_a_tick_keeps_its_late_flag() -> None:
    # Regression (quality bench, bug C): a tick that flushes the reorder buffer of a late burst
    # raised the …_ended alert with late=false.
    engine = _engine()
    t0 = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    xs = np.concatenate(
        [
            np.linspace(ZONE_X - 600, ZONE_X, 15),
            np.full(10, ZONE_X),
            np.linspace(ZONE_X, ZONE_X - 600, 15),
        ]
    )
    fixes = [_fix(t0 + timedelta(minutes=i), x, ZONE_Y) for i, x in enumerate(xs)]
    late_clock = fixes[-1].ts + timedelta(hours=1)  # the whole walk arrives an hour late
    state, alerts = DeviceState(), []
    for f in fixes:
        alerts += engine.on_reading(state, f, now=late_clock, stream_now=late_clock).alerts
        alerts += engine.on_tick(state, "tag-1", now=late_clock, detected_at=late_clock)
    kinds = {a.type: a.late for a in alerts if a.zone_id == "z-1"}
    assert kinds == {"exclusion_breach": True, "exclusion_breach_ended": True}
