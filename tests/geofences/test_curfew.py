"""Curfews: verdicts in and out of windows, grace, exceptions, DST nights, episodes."""

from __future__ import annotations

import pytest

from geofences import (
    EpisodeConfig,
    Observation,
    advance,
    compile_conditions,
    curfew_verdicts,
    curfew_window_at,
    curfew_windows,
    new_state,
    push,
)
from tests.geofences.helpers import ORIGIN, circle_feature, utc

X0, Y0 = ORIGIN
HOME = circle_feature("home", X0, Y0, 1.0)["geometry"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def conditions(**curfew) -> object:
    base = {
        "curfew_id": "home",
        "geometry": HOME,
        "radius_m": 50.0,
        "windows": [
            {"days": [*WEEKDAYS, "sat", "sun"], "start": "19:00", "end": "07:00"},
        ],
    }
    return compile_conditions({"offender_id": "o1", "curfews": [{**base, **curfew}]})


def verdict(cc, ts: float, dx: float, acc: float = 10.0) -> str:
    (v,) = curfew_verdicts(cc, ts, x=X0 + dx, y=Y0, accuracy_m=acc)
    return v.verdict


@pytest.mark.parametrize(
    ("when", "dx", "acc", "expected"),
    [
        (utc(2026, 1, 15, 20), 0, 10, "at_home"),
        (utc(2026, 1, 15, 20), 45, 10, "away_possible"),
        (utc(2026, 1, 15, 20), 200, 10, "away_definite"),
        (utc(2026, 1, 15, 20), 200, 150, "unusable"),
        (utc(2026, 1, 15, 12), 200, 10, "not_applicable"),
        (utc(2026, 1, 15, 12), 200, 150, "not_applicable"),
        (utc(2026, 1, 16, 6, 59), 200, 10, "away_definite"),
        (utc(2026, 1, 16, 7), 200, 10, "not_applicable"),
        (utc(2026, 1, 15, 19), 200, 10, "away_definite"),
    ],
)
def test_curfew_verdicts(when, dx, acc, expected) -> None:
    assert verdict(conditions(), when, dx, acc) == expected


def test_grace_after_window_start() -> None:
    cc = conditions(grace_s=1800)
    assert verdict(cc, utc(2026, 1, 15, 19, 20), 200) == "not_applicable"
    assert verdict(cc, utc(2026, 1, 15, 19, 30), 200) == "away_definite"
    window = curfew_window_at(
        cc, "home", utc(2026, 1, 15, 19, 20)
    )  # in the grace: still the window
    assert window.nominal_start_s == utc(2026, 1, 15, 19) and window.start_s == utc(
        2026, 1, 15, 19, 30
    )


def test_exceptions_cancel_or_move_one_night() -> None:
    cc = conditions(
        exceptions=[
            {"date": "2026-12-24", "cancelled": True},
            {"date": "2026-12-31", "start": "23:00", "end": "09:00"},
        ]
    )
    assert verdict(cc, utc(2026, 12, 24, 21), 200) == "not_applicable"
    assert verdict(cc, utc(2026, 12, 25, 3), 200) == "not_applicable"
    assert verdict(cc, utc(2026, 12, 25, 21), 200) == "away_definite"
    assert verdict(cc, utc(2026, 12, 31, 22), 200) == "not_applicable"
    assert verdict(cc, utc(2027, 1, 1, 8), 200) == "away_definite"


@pytest.mark.parametrize(
    ("night", "hours", "last_minute_utc", "first_free_utc"),
    [
        (utc(2026, 3, 28, 20), 11, utc(2026, 3, 29, 5, 59), utc(2026, 3, 29, 6)),
        (utc(2026, 10, 24, 20), 13, utc(2026, 10, 25, 6, 59), utc(2026, 10, 25, 7)),
        (utc(2027, 3, 27, 20), 11, utc(2027, 3, 28, 5, 59), utc(2027, 3, 28, 6)),
        (utc(2027, 10, 30, 20), 13, utc(2027, 10, 31, 6, 59), utc(2027, 10, 31, 7)),
    ],
)
def test_dst_nights(night, hours, last_minute_utc, first_free_utc) -> None:
    cc = conditions()
    window = curfew_window_at(cc, "home", night)
    assert window.duration_s == hours * 3600
    assert verdict(cc, last_minute_utc, 200) == "away_definite"
    assert verdict(cc, first_free_utc, 200) == "not_applicable"


def test_curfew_windows_over_a_week() -> None:
    cc = conditions(windows=[{"days": WEEKDAYS, "start": "19:00", "end": "07:00"}])
    windows = curfew_windows(cc, "home", utc(2026, 1, 12), utc(2026, 1, 19))
    assert len(windows) == 5 and all(w.duration_s == 12 * 3600 for w in windows)
    with pytest.raises(KeyError):
        curfew_windows(cc, "nope", 0, 1)


def run(cc, fixes):
    """Push (minutes after 19:00 on 2026-01-15, dx metres) fixes; tick to the next day."""
    cfg = EpisodeConfig(reorder_window_s=0)
    state, events = new_state(), []
    for minute, dx in fixes:
        ts = utc(2026, 1, 15, 19) + 60 * minute
        (v,) = curfew_verdicts(cc, ts, x=X0 + dx, y=Y0, accuracy_m=10)
        state, ev = push(state, Observation.from_verdict(ts, v), cfg)
        events += ev
    state, ev = advance(state, utc(2026, 1, 16, 12), cfg)
    return events + ev


def test_late_return_opens_at_window_start_and_closes_when_home() -> None:
    cc = conditions()
    events = run(cc, [(m, 500) for m in range(-5, 50)] + [(m, 0) for m in range(50, 60)])
    opened, closed = events
    assert opened.start_s == utc(2026, 1, 15, 19) and opened.definite
    assert closed.end_s == utc(2026, 1, 15, 19, 50) and closed.reason == "clear"


def test_early_leave_closes_at_window_end_even_without_fixes() -> None:
    cc = conditions()
    home = [(m, 0) for m in range(0, 600, 5)]
    away = [(m, 800) for m in range(600, 700, 5)]  # leaves at 05:00, last fix 06:35
    opened, closed = run(cc, home + away)
    assert opened.start_s == utc(2026, 1, 16, 5)
    assert closed.end_s == utc(2026, 1, 16, 7) and closed.reason == "window_end"
    assert closed.duration_s == 2 * 3600
