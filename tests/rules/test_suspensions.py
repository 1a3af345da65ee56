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
from tests.trails import ORIGIN_X, ORIGIN_Y, curfew, fix, zone

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


def run(raw: bytes, readings: list, ticks: list[datetime] = ()) -> list:
    """Feed ``readings`` (state through its JSON form each time), tick at ``ticks`` and after
    the last reading; return the zone and curfew alerts."""
    registry = ConditionsRegistry()
    registry.apply("off-1", raw)
    eng, state, alerts = Engine(registry, Settings()), DeviceState(), []
    pending = sorted(ticks)
    for r in readings:
        while pending and pending[0] < r.ts:
            t = pending.pop(0)
            alerts += eng.on_tick(state, "tag-1", now=t, detected_at=t)
        state = load_state(dump_state(state))
        alerts += eng.on_reading(state, r, now=r.ts).alerts
    for t in pending:
        alerts += eng.on_tick(state, "tag-1", now=t, detected_at=t)
    end = max([readings[-1].ts, *pending]) + 10 * MIN
    alerts += eng.on_tick(state, "tag-1", now=end, detected_at=end)
    return [a for a in alerts if a.zone_id or a.curfew_id]


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
        "until": SUSPENSION["until"],
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


# --- A suppressed breach that outlives its suspension is raised again at its end -------------

UNTIL = T0 + timedelta(hours=4)


def visit_for(start: datetime, minutes: int) -> list:
    """Fixes a minute at home from T0 for 8 h, at the hospital ``minutes`` from ``start``."""
    out, t = [], T0
    while t < T0 + timedelta(hours=8):
        inside = start <= t < start + minutes * MIN
        out.append(fix("tag-1", t, *(HOSPITAL if inside else HOME)))
        t += MIN
    return out


def test_still_in_breach_when_the_suspension_ends_alerts_at_its_end_once() -> None:
    alerts = run(doc(SUSPENSION), visit_for(T0 + timedelta(hours=3), 120))
    assert [(a.type, a.severity) for a in alerts] == [
        ("exclusion_breach", "info"),  # suppressed: inside the approved absence
        ("exclusion_breach", "high"),  # the absence is over, the breach is not
        ("exclusion_breach_ended", "info"),
        ("exclusion_breach_ended", "info"),
    ]
    suppressed, realert, ended, realert_ended = alerts
    assert realert.occurred_at == UNTIL and realert.episode_start == suppressed.episode_start
    assert realert.alert_id != suppressed.alert_id and "suppressed" not in realert.details
    assert realert.details["after_suspension"] == {
        "suspension_id": "sp-1",
        "until": UNTIL.isoformat(),
        "suppressed_alert_id": suppressed.alert_id,
    }
    assert "suppressed" in ended.details and ended.ref_alert_id == suppressed.alert_id
    assert realert_ended.ref_alert_id == realert.alert_id
    assert "suppressed" not in realert_ended.details
    assert realert_ended.episode_end == ended.episode_end
    # The same evidence again gives the same ids (deterministic, de-duplicated downstream).
    again = run(doc(SUSPENSION), visit_for(T0 + timedelta(hours=3), 120))
    assert [a.alert_id for a in again] == [a.alert_id for a in alerts]


def test_ending_inside_the_suspension_is_not_raised_again() -> None:
    alerts = run(doc(SUSPENSION), visit_for(T0 + timedelta(hours=3), 40))
    assert [(a.type, a.severity) for a in alerts] == [
        ("exclusion_breach", "info"),
        ("exclusion_breach_ended", "info"),
    ]


def test_the_tick_raises_it_when_no_fix_comes_after_the_end() -> None:
    """Fixes stop inside the zone before the suspension ends: the rule clock reaching the end
    (a tick) raises the breach, at the suspension's end, not at the tick's time."""
    readings = [r for r in visit_for(T0 + timedelta(hours=3), 300) if r.ts < UNTIL - 5 * MIN]
    alerts = run(doc(SUSPENSION), readings, ticks=[UNTIL - MIN, UNTIL + 2 * MIN])
    assert [(a.type, a.severity, a.occurred_at) for a in alerts][:2] == [
        ("exclusion_breach", "info", alerts[0].occurred_at),
        ("exclusion_breach", "high", UNTIL),
    ]
    assert alerts[1].detected_at == UNTIL + 2 * MIN


def test_back_to_back_suspensions_suppress_until_the_last_ends() -> None:
    second = {
        **SUSPENSION,
        "suspension_id": "sp-2",
        "from": UNTIL.isoformat(),
        "until": (UNTIL + timedelta(hours=1)).isoformat(),
    }
    still = run(doc(SUSPENSION, second), visit_for(T0 + timedelta(hours=3), 90))
    assert [a.severity for a in still] == ["info", "info"]  # left before the second one ended
    longer = run(doc(SUSPENSION, second), visit_for(T0 + timedelta(hours=3), 150))
    assert [(a.severity, a.occurred_at) for a in longer][:2] == [
        ("info", longer[0].occurred_at),
        ("high", UNTIL + timedelta(hours=1)),
    ]
    assert longer[1].details["after_suspension"]["suspension_id"] == "sp-2"


def test_curfew_breach_outliving_a_suspension_across_the_october_dst_change() -> None:
    """Curfew 19:00-07:00 Europe/London on the night clocks go back (25 Oct 2026, 02:00 BST =
    01:00 UTC). Away from 21:30 BST; the approved absence ends at 01:30 GMT (01:30 UTC, the
    second 01:30 of the night); back home at 03:00 UTC. The breach is suppressed, then raised
    at exactly 01:30 UTC, once."""
    night = datetime(2026, 10, 24, 17, tzinfo=UTC)  # 18:00 BST
    leave, back = datetime(2026, 10, 24, 20, 30, tzinfo=UTC), datetime(2026, 10, 25, 3, tzinfo=UTC)
    until = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    suspension = {
        **SUSPENSION,
        "subject_id": "c-1",
        "from": datetime(2026, 10, 24, 20, tzinfo=UTC).isoformat(),
        "until": until.isoformat(),
        "reason": "night shift",
    }
    raw = json.dumps(
        {
            "offender_id": "off-1",
            "device_ids": ["tag-1"],
            "curfews": [curfew("c-1", *HOME)],
            "suspensions": [suspension],
        }
    ).encode()
    readings, t = [], night
    while t < night + timedelta(hours=12):
        readings.append(fix("tag-1", t, *(HOSPITAL if leave <= t < back else HOME)))
        t += 2 * MIN
    alerts = run(raw, readings)
    breaches = [a for a in alerts if a.type == "curfew_breach"]
    assert [(a.severity, "suppressed" in a.details) for a in breaches] == [
        ("info", True),
        ("high", False),
    ]
    assert breaches[1].occurred_at == until
    assert breaches[1].details["window_start_local"] == breaches[0].details["window_start_local"]
    ends = [a for a in alerts if a.type == "curfew_breach_ended"]
    assert [a.ref_alert_id for a in ends] == [breaches[0].alert_id, breaches[1].alert_id]


def test_a_late_reading_into_a_pause_raises_no_breach_after_the_suspension() -> None:
    """Monitoring suspended (custody) before the single-rule suspension ends, and the reading
    that shows it arrives hours late: the suppressed episode closes at the pause (event time),
    so no "breach after the suspension" is raised for a time monitoring was already paused."""
    raw = json.loads(doc(SUSPENSION))
    paused_at = UNTIL - 30 * MIN
    raw["monitoring"] = {
        "status": "suspended",
        "reason": "custody",
        "from": paused_at.isoformat(),
        "until": (T0 + timedelta(days=3)).isoformat(),
        "approved_by": "IOM sergeant 1234",
    }
    registry = ConditionsRegistry()
    registry.apply("off-1", json.dumps(raw).encode())
    eng, state, alerts = Engine(registry, Settings()), DeviceState(), []
    readings = [r for r in visit_for(T0 + timedelta(hours=3), 120) if r.ts < paused_at]
    for r in readings:
        alerts += eng.on_reading(state, r, now=r.ts).alerts
    # The first reading into the pause, received two hours after the suspension's end.
    late = fix("tag-1", paused_at + 5 * MIN, *HOSPITAL)
    alerts += eng.on_reading(state, late, now=UNTIL + 2 * timedelta(hours=1)).alerts
    zone_alerts = [(a.type, a.severity) for a in alerts if a.zone_id]
    assert zone_alerts == [("exclusion_breach", "info"), ("exclusion_breach_ended", "info")]
    # Closed where monitoring paused, not where a reading first showed the pause.
    assert [a.episode_end for a in alerts if a.type == "exclusion_breach_ended"] == [paused_at]
