"""Monitoring status through the engine, pure: a custody suspension with the tag off raises
nothing; a tamper still does; back to active starts clean; ended silences everything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from em_service.conditions.registry import ConditionsRegistry
from em_service.conditions.validate import InvalidConditions, check
from em_service.contracts import DeviceEvent
from em_service.rules.monitoring import status_at
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state, load_state
from tests.trails import ORIGIN_X, ORIGIN_Y, curfew, fix, zone

HOME = (ORIGIN_X, ORIGIN_Y)
ZONE = (ORIGIN_X + 1000.0, ORIGIN_Y)
T0 = datetime(2026, 11, 9, 8, tzinfo=UTC)
MIN = timedelta(minutes=1)
CUSTODY = (T0 + timedelta(days=1), T0 + timedelta(days=4))


def doc(monitoring: dict | None = None, updated_at: datetime = T0 - timedelta(days=30)) -> bytes:
    d = {
        "offender_id": "off-1",
        "device_ids": ["tag-1"],
        "zones": [zone("z-1", *ZONE, 150)],
        "curfews": [curfew("c-1", *HOME)],
        "updated_at": updated_at.isoformat(),
    }
    if monitoring:
        d["monitoring"] = monitoring
    return json.dumps(d).encode()


SUSPENSION = {
    "status": "suspended",
    "reason": "custody",
    "from": CUSTODY[0].isoformat(),
    "until": CUSTODY[1].isoformat(),
    "approved_by": "IOM sergeant 1234",
}


def run(eng: Engine, readings: list, tick_every: timedelta = timedelta(minutes=10)) -> list:
    """Feed readings in order with event-time ticks between them, as the worker does."""
    state, alerts, next_tick = DeviceState(), [], readings[0].ts
    for r in readings:
        while next_tick < r.ts:
            alerts += eng.on_tick(state, "tag-1", now=next_tick, detected_at=next_tick)
            next_tick += tick_every
        state = load_state(dump_state(state))
        alerts += eng.on_reading(state, r, now=r.ts).alerts
    return alerts


def minutes(t0: datetime, t1: datetime, where=lambda t: HOME, off=()) -> list:
    out, t = [], t0
    while t < t1:
        if not any(a <= t < b for a, b in off):
            out.append(fix("tag-1", t, *where(t)))
        t += MIN
    return out


def engine(*docs: bytes) -> Engine:
    registry = ConditionsRegistry()
    for d in docs:
        registry.apply("off-1", d)
    return Engine(registry, Settings())


def test_status_by_event_time() -> None:
    c = check(doc(SUSPENSION), crs="EPSG:27700").conditions
    assert status_at(c, CUSTODY[0] - MIN) == "active"
    assert status_at(c, CUSTODY[0]) == "suspended"
    assert status_at(c, CUSTODY[1]) == "active"
    ended = check(doc({"status": "ended", "from": CUSTODY[0].isoformat()}), crs="EPSG:27700")
    assert status_at(ended.conditions, CUSTODY[1]) == "ended"


def test_custody_with_tag_off_raises_nothing() -> None:
    readings = minutes(T0, T0 + timedelta(days=5), off=[CUSTODY])
    assert run(engine(doc(SUSPENSION)), readings) == []
    # The control: the same gap without the suspension is a silence and unverified curfews.
    control = {a.type for a in run(engine(doc()), readings)}
    assert {"device_silent", "curfew_unverified"} <= control


def test_breach_during_suspension_is_not_alerted_but_tamper_is() -> None:
    mid = CUSTODY[0] + timedelta(hours=5)
    readings = minutes(
        T0, T0 + timedelta(days=5), where=lambda t: ZONE if mid <= t < mid + 30 * MIN else HOME
    )
    tamper = DeviceEvent(device_id="tag-1", ts=mid + MIN, event="strap_tamper")
    readings = sorted([*readings, tamper], key=lambda r: r.ts)
    alerts = run(engine(doc(SUSPENSION)), readings)
    assert [a.type for a in alerts] == ["strap_tamper"]


def test_open_episode_is_closed_at_the_suspension_and_resumes_clean() -> None:
    # In the zone from 30 min before custody into it: breach, then closed by the suspension.
    start = CUSTODY[0] - 30 * MIN
    readings = minutes(
        T0, T0 + timedelta(days=5), where=lambda t: ZONE if start <= t < CUSTODY[0] + MIN else HOME
    )
    alerts = run(engine(doc(SUSPENSION)), readings)
    assert [a.type for a in alerts] == ["exclusion_breach", "exclusion_breach_ended"]
    assert alerts[1].details["reason"] == "conditions_changed"
    assert alerts[1].ref_alert_id == alerts[0].alert_id


def test_back_to_active_starts_clean_then_rules_apply_again() -> None:
    # The tag stays off for an hour after release: a fresh silence counted from the release.
    after = CUSTODY[1] + timedelta(hours=1)
    readings = minutes(T0, T0 + timedelta(days=5), off=[(CUSTODY[0], after)])
    alerts = run(engine(doc(SUSPENSION)), readings)
    silent = [a for a in alerts if a.type == "device_silent"]
    assert len(silent) == 1 and silent[0].episode_start >= CUSTODY[1]


def test_suspension_published_as_a_new_version_applies_by_event_time() -> None:
    eng = engine(doc(), doc(SUSPENSION, updated_at=CUSTODY[0]))
    readings = minutes(T0, T0 + timedelta(days=5), off=[CUSTODY])
    assert run(eng, readings) == []


def test_ended_silences_everything_even_tamper() -> None:
    ended = {"status": "ended", "from": CUSTODY[0].isoformat()}
    readings = minutes(T0, CUSTODY[0] + timedelta(hours=3), where=lambda t: ZONE)
    tamper = DeviceEvent(device_id="tag-1", ts=CUSTODY[0] + MIN, event="strap_tamper")
    alerts = run(engine(doc(ended)), sorted([*readings, tamper], key=lambda r: r.ts))
    assert all(a.occurred_at < CUSTODY[0] or a.type.endswith("_ended") for a in alerts)
    assert "strap_tamper" not in {a.type for a in alerts}


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "suspended", "from": "2026-11-10T08:00:00Z", "reason": "custody"},
        {"status": "suspended", "approved_by": "x", "reason": "custody"},
        {**SUSPENSION, "until": SUSPENSION["from"]},
        {"status": "paused"},
    ],
)
def test_invalid_status_is_refused(bad: dict) -> None:
    with pytest.raises(InvalidConditions):
        check(doc(bad), crs="EPSG:27700")


@pytest.mark.parametrize("silent_from", [CUSTODY[0] - 5 * MIN, CUSTODY[0] - timedelta(hours=1)])
def test_what_a_pause_does_does_not_depend_on_where_the_ticks_fell(silent_from) -> None:
    """The tag goes quiet shortly (or an hour) before custody and reports again after it. The
    alerts are the same whether timer ticks fell inside the custody or the rule clock jumped
    over all of it (a faster replay, another batching: a scale test's single reference worker
    and its three workers disagreed): a silence overdue only after custody began is no alert;
    one overdue before it is raised and ended at the custody's start."""
    readings = minutes(T0, T0 + timedelta(days=5), off=[(silent_from, CUSTODY[1] + MIN)])
    runs = {
        every: run(engine(doc(SUSPENSION)), readings, tick_every=every)
        for every in (timedelta(minutes=10), timedelta(days=10))
    }
    ticked, jumped = runs.values()
    assert [(a.alert_id, a.occurred_at) for a in jumped] == [
        (a.alert_id, a.occurred_at) for a in ticked
    ]
    overdue = silent_from - MIN + timedelta(seconds=60 + 600)  # last fix + interval + buffer
    if overdue >= CUSTODY[0]:
        assert ticked == []
    else:
        assert [a.type for a in ticked] == ["device_silent", "device_silent_ended"]
        assert ticked[1].occurred_at == CUSTODY[0]
        assert ticked[1].details["reason"] == "monitoring_suspended"
