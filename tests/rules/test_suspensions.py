"""Single-rule suspensions through the engine, pure: a hospital visit inside an exclusion zone
under an approved suspension is recorded as suppressed; the same visit outside it alerts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from em_service.conditions.registry import ConditionsRegistry
from em_service.conditions.validate import InvalidConditions, check
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state, load_state
from tests.trails import ORIGIN_X, ORIGIN_Y, fix, zone

HOME = (ORIGIN_X, ORIGIN_Y)
HOSPITAL = (ORIGIN_X + 1000.0, ORIGIN_Y)
MIN = timedelta(minutes=1)
T0 = datetime(2026, 11, 10, 8, tzinfo=UTC)
SUSPENSION = {
    "suspension_id": "sp-1",
    "subject_id": "z-1",
    "from": (T0 + timedelta(hours=2)).isoformat(),
    "until": (T0 + timedelta(hours=4)).isoformat(),
    "reason": "hospital appointment",
    "approved_by": "IOM sergeant 1234",
}


def doc(*suspensions: dict) -> bytes:
    d = {
        "offender_id": "off-1",
        "device_ids": ["tag-1"],
        "zones": [zone("z-1", *HOSPITAL, 150)],
        "suspensions": list(suspensions),
    }
    return json.dumps(d).encode()


def visit(start: datetime) -> list:
    """Fixes a minute at home from T0, at the hospital for 40 min from ``start``, then home."""
    out, t = [], T0
    while t < T0 + timedelta(hours=8):
        inside = start <= t < start + 40 * MIN
        out.append(fix("tag-1", t, *(HOSPITAL if inside else HOME)))
        t += MIN
    return out


def run(raw: bytes, readings: list) -> list:
    registry = ConditionsRegistry()
    registry.apply("off-1", raw)
    eng, state, alerts = Engine(registry, Settings()), DeviceState(), []
    for r in readings:
        state = load_state(dump_state(state))
        alerts += eng.on_reading(state, r, now=r.ts).alerts
    end = readings[-1].ts + 10 * MIN
    alerts += eng.on_tick(state, "tag-1", now=end, detected_at=end)
    return [a for a in alerts if a.zone_id]


def test_breach_inside_the_suspension_is_suppressed_but_recorded() -> None:
    alerts = run(doc(SUSPENSION), visit(T0 + timedelta(hours=2, minutes=30)))
    assert [(a.type, a.severity) for a in alerts] == [
        ("exclusion_breach", "info"),
        ("exclusion_breach_ended", "info"),
    ]
    assert alerts[0].details["suppressed"] == {
        "suspension_id": "sp-1",
        "reason": "hospital appointment",
        "approved_by": "IOM sergeant 1234",
        "severity": "high",
    }
    assert "suppressed" in alerts[1].details


@pytest.mark.parametrize("hours", [0.5, 5.0])
def test_breach_outside_the_suspension_alerts(hours: float) -> None:
    alerts = run(doc(SUSPENSION), visit(T0 + timedelta(hours=hours)))
    assert [(a.type, a.severity) for a in alerts] == [
        ("exclusion_breach", "high"),
        ("exclusion_breach_ended", "info"),
    ]
    assert not any("suppressed" in a.details for a in alerts)


def test_suspension_must_name_a_zone_or_curfew_and_a_range() -> None:
    with pytest.raises(InvalidConditions, match="no zone or curfew"):
        check(doc({**SUSPENSION, "subject_id": "z-other"}), crs="EPSG:27700")
    with pytest.raises(InvalidConditions, match="until must be after from"):
        check(doc({**SUSPENSION, "until": SUSPENSION["from"]}), crs="EPSG:27700")
    with pytest.raises(InvalidConditions):
        check(doc({k: v for k, v in SUSPENSION.items() if k != "approved_by"}), crs="EPSG:27700")
