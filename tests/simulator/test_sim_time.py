"""Local time and pacing: the October 2026 clock change, doctests, the pacer."""

from __future__ import annotations

import doctest
import importlib
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from simulator import Simulation
from simulator.clock import Pacer, parse_speed
from simulator.localtime import hhmm_minutes, weekly_windows_utc
from tests.simulator.conftest import script_of, truth_of

LONDON = ZoneInfo("Europe/London")


def _utc(day: date, hhmm: str) -> datetime:
    h, m = divmod(hhmm_minutes(hhmm), 60)
    return datetime(day.year, day.month, day.day, h, m, tzinfo=LONDON).astimezone(UTC)


def test_late_return_on_the_clock_change_night(dst_sim: Simulation) -> None:
    person = script_of(dst_sim, "curfew_late_return").person
    _days, start, end = person.curfew.windows[0]
    (rec,) = truth_of(dst_sim, "curfew_late_return", "curfew_breach")
    window_start = _utc(date(2026, 10, 24), start)  # BST, UTC+1
    window_end = _utc(date(2026, 10, 25), end)  # GMT, UTC+0
    assert window_start.hour == hhmm_minutes(start) // 60 - 1
    assert window_end.hour == hhmm_minutes(end) // 60
    assert rec.occurred_at == window_start
    assert rec.details["subtype"] == "late_return"
    hours = (window_end - window_start).total_seconds() / 3600
    assert rec.details["window_hours"] == pytest.approx(hours)
    assert hours == 24 - hhmm_minutes(start) / 60 + hhmm_minutes(end) / 60 + 1  # the extra hour
    assert "BST" in rec.details["window_local"] and "GMT" in rec.details["window_local"]
    (ended,) = truth_of(dst_sim, "curfew_late_return", "curfew_breach_ended")
    assert ended.occurred_at <= datetime.fromtimestamp(
        script_of(dst_sim, "curfew_late_return").facts["arrive_s"], UTC
    )
    assert (ended.occurred_at - window_start).total_seconds() >= 25 * 60 - 120


def test_early_leave_ends_with_the_gmt_window(dst_sim: Simulation) -> None:
    person = script_of(dst_sim, "curfew_early_leave").person
    _days, _start, end = person.curfew.windows[0]
    (rec,) = truth_of(dst_sim, "curfew_early_leave", "curfew_breach")
    (ended,) = truth_of(dst_sim, "curfew_early_leave", "curfew_breach_ended")
    assert rec.details["subtype"] == "early_leave"
    assert ended.occurred_at == _utc(date(2026, 10, 25), end)
    assert ended.occurred_at.utcoffset().total_seconds() == 0


def test_curfew_unverified_on_the_clock_change_night(dst_sim: Simulation) -> None:
    (rec,) = truth_of(dst_sim, "curfew_silent", "curfew_unverified")
    assert (
        datetime(2026, 10, 25, tzinfo=UTC) < rec.occurred_at < datetime(2026, 10, 25, 8, tzinfo=UTC)
    )


def test_windows_agree_with_the_service_schedule() -> None:
    schedule = pytest.importorskip("geofences.schedule")
    windows = (("sat", "sun"), "19:00", "07:00"), (("fri",), "21:00", "06:00")
    t0 = datetime(2026, 10, 20, tzinfo=UTC).timestamp()
    t1 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
    mine = [(s, e) for s, e, _d in weekly_windows_utc(windows, t0, t1)]
    spec = [{"days": list(d), "start": s, "end": e} for d, s, e in windows]
    theirs = schedule.windows_overlapping(schedule.parse_schedule(spec), t0, t1)
    assert mine == [(float(w[0]), float(w[1])) for w in theirs]


@pytest.mark.parametrize(
    "module",
    [
        "simulator.localtime",
        "simulator.clock",
        "simulator.geo",
        "simulator.intervals",
        "simulator.scenarios",
        "simulator.cli",
    ],
)
def test_doctests(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0


def test_speed_parsing() -> None:
    assert parse_speed("fast") is None
    assert parse_speed("x1440") == 1440.0
    with pytest.raises(ValueError):
        parse_speed("slow")


def test_pacer_waits_by_delivery_time() -> None:
    now = [100.0]
    pacer = Pacer(60.0, clock=lambda: now[0])
    assert pacer.delay_s(1_000.0) == 0.0  # the first instant is due at once
    assert pacer.delay_s(1_060.0) == pytest.approx(1.0)  # one simulated minute at x60
    now[0] += 0.25
    assert pacer.delay_s(1_060.0) == pytest.approx(0.75)
    assert Pacer(None).delay_s(5e9) == 0.0
