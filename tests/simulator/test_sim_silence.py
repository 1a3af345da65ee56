"""Silence truth agrees with the service's rule: by event time, one alert per curfew window."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import Alert, GpsReading
from em_service.evaluate import Truth, score
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine
from simulator import Simulation
from simulator.derive.tags import _silence

SILENCE = ("device_silent", "curfew_unverified")


def _gap(sim: Simulation, last: float, back: float) -> tuple[list[Truth], list[Alert], list[Alert]]:
    """Truth of a gap of the first person with a curfew, and the service's alerts for it (from
    contact only, and with a tick every 5 min)."""
    p = next(p for p in sim.persons if p.curfew)
    threshold = sim.config.gps_interval_s + sim.config.silence_buffer_s
    records = _silence(sim, p.index, last, back, threshold)
    truth = [
        msgspec.convert({**msgspec.to_builtins(r), "truth_id": f"t{i}"}, Truth)
        for i, r in enumerate(records)
    ]
    registry = ConditionsRegistry()
    for c in sim.conditions:
        registry.apply(c.offender_id, msgspec.json.encode(c))
    engine = Engine(registry, Settings(silence_buffer_s=sim.config.silence_buffer_s))
    runs = []
    for tick_s in (None, 300.0):
        ticks = (
            [last + k * tick_s for k in range(1, int((back - last) // tick_s))] if tick_s else []
        )
        state, alerts = DeviceState(), []
        for t in (last, *ticks, back):
            now = datetime.fromtimestamp(t, UTC)
            if t in (last, back):
                fix = GpsReading(
                    device_id=p.gps_device_id,
                    ts=now,
                    lat=sim.config.centre_lat,
                    lon=sim.config.centre_lon,
                    accuracy_m=8.0,
                )
                alerts += engine.on_reading(state, fix, now=now).alerts
            else:
                alerts += engine.on_tick(state, p.gps_device_id, now=now, detected_at=now)
        runs.append([a for a in alerts if a.type.removesuffix("_ended") in SILENCE])
    return truth, runs[0], runs[1]


def _windows(sim: Simulation) -> list[tuple[float, float]]:
    p = next(p for p in sim.persons if p.curfew)
    return [(s, e) for s, e, _d in sim.curfew_windows[p.index]]


def _agree(truth: list[Truth], alerts: list[Alert]) -> None:
    report = score(truth, alerts, complete=[t + s for t in SILENCE for s in ("", "_ended")])
    assert report.findings == []
    assert report.total("true_positives") == len(truth) == len(alerts)


def test_a_silence_running_into_a_curfew_window(sim: Simulation) -> None:
    ws, _we = _windows(sim)[-1]
    truth, contact, ticked = _gap(sim, ws - 3600.0, ws + 3 * 3600.0)
    assert sorted((r.type, r.optional) for r in truth) == [
        ("curfew_unverified", False),
        ("curfew_unverified_ended", False),
        ("device_silent", False),
        ("device_silent_ended", False),
    ]
    assert next(r for r in truth if r.type == "curfew_unverified").occurred_at.timestamp() == ws
    _agree(truth, contact)
    _agree(truth, ticked)


def test_a_silence_overdue_in_one_window_running_into_the_next(sim: Simulation) -> None:
    (_ws1, we1), (ws2, _we2) = _windows(sim)[-2:]
    truth, contact, ticked = _gap(sim, we1 - 1200.0, ws2 + 3600.0)
    assert sorted(r.type for r in truth) == [
        "curfew_unverified",
        "curfew_unverified",
        "curfew_unverified_ended",
        "curfew_unverified_ended",
    ]
    _agree(truth, contact)
    _agree(truth, ticked)
