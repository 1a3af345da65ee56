"""Alcohol rules: drinking episodes, interferents, tamper and missed readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from em_service.contracts import AlcoholReading
from em_service.rules.alcohol import AlcoholState, step

T0 = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


def _reading(i: int, tac: float, *, skin: float = 33.0, ir: float = 1200.0, contact=None):
    return AlcoholReading(
        device_id="scram-1",
        ts=T0 + i * HALF_HOUR,
        tac_g_dl=tac,
        skin_temp_c=skin,
        ir_value=ir,
        ir_contact=contact,
    )


def _run(readings: list[AlcoholReading]) -> list:
    state, alerts = AlcoholState(), []
    for r in readings:
        alerts += step(state, r, "off-1", now=r.ts + timedelta(seconds=5))
    return alerts


def _drink_curve() -> list[float]:
    # Absorption ~0.02 g/dL/h up to 0.06, then elimination ~0.015 g/dL/h.
    up = [0.0, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06]
    down = [round(0.06 - 0.0075 * k, 4) for k in range(1, 9)]
    return [*up, *down, 0.0, 0.0]


def test_drinking_episode_raises_exactly_one_alcohol_detected() -> None:
    readings = [_reading(i, tac) for i, tac in enumerate(_drink_curve())]
    alerts = _run(readings)
    assert [a.type for a in alerts] == ["alcohol_detected"]
    assert alerts[0].occurred_at == readings[3].ts, "episode starts at the first reading over 0.020"
    assert alerts[0].severity == "high"


def test_single_reading_over_threshold_is_not_enough() -> None:
    alerts = _run([_reading(i, t) for i, t in enumerate([0.0, 0.0, 0.025, 0.0, 0.0])])
    assert alerts == []


def test_fast_spike_is_suspect_interferent_not_drink() -> None:
    alerts = _run([_reading(i, t) for i, t in enumerate([0.0, 0.0, 0.0, 0.12, 0.09, 0.03, 0.0])])
    assert [a.type for a in alerts] == ["alcohol_suspect_interferent"]
    assert alerts[0].severity == "medium"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"ir": 300.0}, "IR value"),
        ({"skin": 24.0}, "skin temperature"),
        ({"contact": False}, "no skin contact"),
    ],
)
def test_bracelet_off_is_tamper(change: dict, why: str) -> None:
    readings = [_reading(i, 0.0) for i in range(5)] + [_reading(5, 0.0, **change)] * 1
    readings += [_reading(6, 0.0, **change), _reading(7, 0.0)]
    alerts = _run(readings)
    assert [a.type for a in alerts] == ["alcohol_tamper"], "one alert per tamper episode"
    assert why in alerts[0].details["reason"]


def test_missed_readings_after_a_gap() -> None:
    readings = [_reading(0, 0.0), _reading(1, 0.0), _reading(6, 0.0)]
    alerts = _run(readings)
    assert [a.type for a in alerts] == ["alcohol_missed_readings"]
    assert alerts[0].details["gap_s"] == 5 * 1800


def test_ids_are_deterministic_and_old_readings_ignored() -> None:
    readings = [_reading(i, tac) for i, tac in enumerate(_drink_curve())]
    first, second = _run(readings), _run(readings)
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    state = AlcoholState()
    for r in readings[:5]:
        step(state, r, "off-1", now=r.ts)
    assert step(state, readings[1], "off-1", now=T0) == []
