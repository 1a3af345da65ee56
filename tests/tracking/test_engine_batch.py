"""Engine.evaluate_batch: which fixes it evaluates, and that its verdicts change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import DeviceEvent, GpsReading
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state
from tests.trails import ORIGIN_X, ORIGIN_Y, ll, square

ZONE_X, ZONE_Y = ORIGIN_X + 2000, ORIGIN_Y
NIGHTLY = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "19:00", "end": "07:00"}
]
T0 = datetime(2026, 11, 18, 16, 0, tzinfo=UTC)  # a Wednesday, three hours before the curfew


def _conditions(offender: str, device: str, **extra: object) -> bytes:
    doc = {
        "offender_id": offender,
        "device_ids": [device],
        "zones": [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": square(ZONE_X, ZONE_Y, 150)},
                "properties": {"zone_id": "z-square", "kind": "exclusion"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(ll(ZONE_X, ZONE_Y - 900))},
                "properties": {"zone_id": "z-circle", "kind": "exclusion", "radius_m": 200},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(ll(ZONE_X - 900, ZONE_Y))},
                "properties": {
                    "zone_id": "z-evenings",
                    "kind": "exclusion",
                    "radius_m": 200,
                    "schedule": [{"days": ["wed"], "start": "17:00", "end": "18:00"}],
                },
            },
        ],
        "curfews": [
            {
                "curfew_id": "c-home",
                "geometry": {"type": "Point", "coordinates": list(ll(ORIGIN_X, ORIGIN_Y))},
                "radius_m": 60,
                "windows": NIGHTLY,
            }
        ],
        **extra,
    }
    return json.dumps(doc).encode()


def _fix(device: str, t: datetime, x: float, y: float, acc: float = 8.0) -> GpsReading:
    lon, lat = ll(x, y)
    return GpsReading(device_id=device, ts=t, lat=lat, lon=lon, accuracy_m=acc)


def _rounded(value: object) -> object:
    """Return ``value`` with floats to 1e-6: batch and scalar depths may differ in the last bit."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_batch_verdicts_give_the_same_alerts_and_states_as_evaluating_each_fix() -> None:
    registry = ConditionsRegistry()
    for k in range(3):
        registry.apply(f"off-{k}", _conditions(f"off-{k}", f"tag-{k}"))
    engine = Engine(registry, Settings())
    rng = np.random.default_rng(4)
    # Three wearers wander over the zones and home for six hours (into the curfew), with noisy
    # accuracy (some unusable) and every seventh fix late by up to 40 minutes.
    readings: list[GpsReading | DeviceEvent | None] = []
    for i in range(360):
        for k in range(3):
            x = ORIGIN_X + 2000 + 1600 * np.sin(i / (37 + 11 * k))
            y = ORIGIN_Y - 450 + 700 * np.cos(i / (23 + 5 * k))
            if i > 200 + 40 * k:  # then home
                x, y = ORIGIN_X + rng.normal(0, 30), ORIGIN_Y + rng.normal(0, 30)
            late = timedelta(minutes=int(rng.integers(1, 40)) if i % 7 == 3 else 0)
            acc = float(rng.choice([5.0, 20.0, 60.0, 150.0], p=[0.5, 0.3, 0.15, 0.05]))
            readings.append(_fix(f"tag-{k}", T0 + timedelta(minutes=i) - late, x, y, acc))
        if i % 50 == 0:
            readings += [None, DeviceEvent(device_id="tag-1", ts=T0, event="battery_low")]
    batched: dict[str, DeviceState] = {}
    each: dict[str, DeviceState] = {}
    types = set()
    for lo in range(0, len(readings), 257):
        chunk = readings[lo : lo + 257]
        verdicts = engine.evaluate_batch(chunk)
        assert sorted(verdicts) == [i for i, r in enumerate(chunk) if isinstance(r, GpsReading)]
        for pos, r in enumerate(chunk):
            if r is None:
                continue
            now = r.ts + timedelta(seconds=30)
            got = []
            for states, given in ((batched, verdicts.get(pos)), (each, None)):
                state = states.setdefault(r.device_id, DeviceState())
                alerts = engine.on_reading(state, r, now=now, verdicts=given).alerts
                got.append(_rounded([msgspec.to_builtins(alerts), json.loads(dump_state(state))]))
            assert got[0] == got[1]
            types |= {a.type for a in alerts}
    assert {"exclusion_breach", "exclusion_breach_ended", "curfew_breach"} <= types


def test_batch_leaves_out_fixes_not_under_the_newest_version() -> None:
    t1, t2 = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    registry = ConditionsRegistry()
    # off-a: two versions, the newer from t2. off-b: one version, from t2, ending at t2 + 1 h.
    registry.apply("off-a", _conditions("off-a", "tag-a", updated_at=t1.isoformat()))
    registry.apply("off-a", _conditions("off-a", "tag-a", updated_at=t2.isoformat()))
    registry.apply(
        "off-b",
        _conditions(
            "off-b",
            "tag-b",
            updated_at=t2.isoformat(),
            valid_to=(t2 + timedelta(hours=1)).isoformat(),
        ),
    )
    engine = Engine(registry, Settings())
    readings = [
        _fix("tag-a", t2 + timedelta(minutes=5), ZONE_X, ZONE_Y),  # newest version: in
        _fix("tag-a", t1 + timedelta(minutes=5), ZONE_X, ZONE_Y),  # older version: out
        _fix("tag-a", T0, ZONE_X, ZONE_Y),  # before both: the oldest applies, out
        _fix("tag-b", T0, ZONE_X, ZONE_Y),  # before its only version: that one applies, in
        _fix("tag-b", t2 + timedelta(minutes=5), ZONE_X, ZONE_Y),  # in
        _fix("tag-b", t2 + timedelta(hours=2), ZONE_X, ZONE_Y),  # after valid_to: none, out
        _fix("tag-x", t2, ZONE_X, ZONE_Y),  # unknown device: out
        DeviceEvent(device_id="tag-a", ts=t2, event="battery_low"),
        None,
    ]
    verdicts = engine.evaluate_batch(readings)
    assert sorted(verdicts) == [0, 3, 4]
    for pos, got in verdicts.items():
        r = readings[pos]
        version = registry.at(registry.offender_for(r.device_id), r.ts)
        assert got == version.compiled.evaluate_fix(
            r.ts, lon=r.lon, lat=r.lat, accuracy_m=r.accuracy_m
        )
    assert engine.evaluate_batch([None, readings[1]]) == {}
