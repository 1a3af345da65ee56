"""Weekly windows, exceptions and the DST rule (geofences.schedule)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from geofences.errors import ConditionsError
from geofences.schedule import (
    local_to_utc_s,
    merged_intervals,
    parse_hhmm,
    parse_schedule,
    to_epoch_s,
    windows_covering,
    windows_overlapping,
)
from tests.geofences.helpers import PROPS, utc

LONDON = ZoneInfo("Europe/London")
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
NIGHT = [{"days": EVERY_DAY, "start": "19:00", "end": "07:00"}]


def window_starting(schedule, day: date):
    """Return the one window that starts on local ``day``."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=LONDON).timestamp()
    span = windows_overlapping(schedule, midnight - 86400, midnight + 2 * 86400)
    found = [w for w in span if w.local_date == day]
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- local → UTC


@pytest.mark.parametrize(
    ("day", "hhmm", "expected_utc"),
    [
        # Ordinary winter and summer times.
        (date(2026, 1, 15), "19:00", (2026, 1, 15, 19, 0)),
        (date(2026, 7, 15), "19:00", (2026, 7, 15, 18, 0)),
        # Spring gap 2026-03-29 and 2027-03-28 (01:00 → 02:00): end of the gap, 01:00 UTC.
        (date(2026, 3, 29), "01:00", (2026, 3, 29, 1, 0)),
        (date(2026, 3, 29), "01:30", (2026, 3, 29, 1, 0)),
        (date(2026, 3, 29), "01:59", (2026, 3, 29, 1, 0)),
        (date(2026, 3, 29), "02:00", (2026, 3, 29, 1, 0)),
        (date(2026, 3, 29), "00:59", (2026, 3, 29, 0, 59)),
        (date(2027, 3, 28), "01:30", (2027, 3, 28, 1, 0)),
        # Autumn fold 2026-10-25 and 2027-10-31 (02:00 → 01:00): first occurrence (BST).
        (date(2026, 10, 25), "01:00", (2026, 10, 25, 0, 0)),
        (date(2026, 10, 25), "01:30", (2026, 10, 25, 0, 30)),
        (date(2026, 10, 25), "02:00", (2026, 10, 25, 2, 0)),
        (date(2027, 10, 31), "01:30", (2027, 10, 31, 0, 30)),
    ],
)
def test_local_to_utc_rule(day: date, hhmm: str, expected_utc: tuple[int, ...]) -> None:
    assert local_to_utc_s(day, parse_hhmm(hhmm), LONDON) == utc(*expected_utc)


@PROPS
@given(
    tz=st.sampled_from(["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Tehran"]),
    day=st.dates(date(2025, 1, 1), date(2028, 12, 31)),
    minute=st.integers(0, 24 * 60 - 1),
)
def test_local_to_utc_is_first_instant_showing_that_time_or_later(
    tz: str, day: date, minute: int
) -> None:
    zone = ZoneInfo(tz)
    wall = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
    t = local_to_utc_s(day, minute, zone)
    assert datetime.fromtimestamp(t, zone).replace(tzinfo=None) >= wall
    assert datetime.fromtimestamp(t - 1, zone).replace(tzinfo=None) < wall


# --------------------------------------------------------------------------- DST nights


@pytest.mark.parametrize(
    ("start_day", "hours", "start_utc", "end_utc"),
    [
        (date(2026, 3, 27), 12, (2026, 3, 27, 19), (2026, 3, 28, 7)),
        (date(2026, 3, 28), 11, (2026, 3, 28, 19), (2026, 3, 29, 6)),  # spring forward 29 Mar
        (date(2026, 3, 29), 12, (2026, 3, 29, 18), (2026, 3, 30, 6)),
        (date(2026, 10, 24), 13, (2026, 10, 24, 18), (2026, 10, 25, 7)),  # fall back 25 Oct
        (date(2026, 10, 25), 12, (2026, 10, 25, 19), (2026, 10, 26, 7)),
        (date(2027, 3, 27), 11, (2027, 3, 27, 19), (2027, 3, 28, 6)),  # spring forward 28 Mar
        (date(2027, 10, 30), 13, (2027, 10, 30, 18), (2027, 10, 31, 7)),  # fall back 31 Oct
        (date(2027, 7, 1), 12, (2027, 7, 1, 18), (2027, 7, 2, 6)),
    ],
)
def test_overnight_window_across_dst(start_day, hours, start_utc, end_utc) -> None:
    w = window_starting(parse_schedule(NIGHT), start_day)
    assert w.duration_s == hours * 3600
    assert (w.nominal_start_s, w.end_s) == (utc(*start_utc), utc(*end_utc))


def test_window_inside_the_spring_gap_is_empty_and_one_across_it_shrinks() -> None:
    gap = parse_schedule([{"days": ["sun"], "start": "01:15", "end": "02:00"}])
    t = utc(2026, 3, 29, 0)
    assert windows_overlapping(gap, t - 86400, t + 86400) == []
    across = parse_schedule([{"days": ["sun"], "start": "00:30", "end": "03:00"}])
    (w,) = windows_overlapping(across, t - 86400, t + 86400)
    assert (w.start_s, w.end_s) == (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 2, 0))


def test_window_in_the_autumn_fold_starts_at_first_occurrence() -> None:
    s = parse_schedule([{"days": ["sun"], "start": "01:30", "end": "02:30"}])
    w = window_starting(s, date(2026, 10, 25))
    assert (w.start_s, w.end_s) == (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 30))
    assert w.duration_s == 2 * 3600


def test_other_timezone_new_york_spring_forward() -> None:
    s = parse_schedule(
        [{"days": ["sat"], "start": "22:00", "end": "06:00"}], timezone="America/New_York"
    )
    w = windows_overlapping(s, utc(2026, 3, 8, 4), utc(2026, 3, 8, 4))[0]
    assert w.duration_s == 7 * 3600


# --------------------------------------------------------------------------- windows


def test_covering_is_half_open_and_crosses_midnight() -> None:
    s = parse_schedule([{"days": ["fri"], "start": "19:00", "end": "07:00"}])
    fri_19 = utc(2026, 1, 16, 19)
    assert windows_covering(s, fri_19 - 1) == []
    assert len(windows_covering(s, fri_19)) == 1
    assert len(windows_covering(s, utc(2026, 1, 17, 3))) == 1  # Saturday 03:00
    assert windows_covering(s, utc(2026, 1, 17, 7)) == []  # end excluded
    assert windows_covering(s, utc(2026, 1, 17, 20)) == []  # no window starts on Saturday


def test_per_day_windows() -> None:
    s = parse_schedule(
        [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "19:00", "end": "07:00"},
            {"days": ["sat", "sun"], "start": "21:00", "end": "09:00"},
        ]
    )
    week = windows_overlapping(s, utc(2026, 1, 12, 12), utc(2026, 1, 18, 23))  # Mon..Sun
    starts = [datetime.fromtimestamp(w.start_s, UTC).strftime("%a %H") for w in week]
    assert starts == ["Mon 19", "Tue 19", "Wed 19", "Thu 19", "Fri 19", "Sat 21", "Sun 21"]


def test_all_day_is_a_24_hour_window_from_start() -> None:
    s = parse_schedule([{"days": ["wed"], "start": "08:00", "all_day": True}])
    (w,) = windows_overlapping(s, utc(2026, 1, 14, 9), utc(2026, 1, 14, 9))
    assert w.duration_s == 86400
    assert datetime.fromtimestamp(w.start_s, UTC) == datetime(2026, 1, 14, 8, tzinfo=UTC)


def test_all_day_across_the_clock_change_is_the_local_day() -> None:
    s = parse_schedule([{"days": ["sun"], "start": "00:00", "all_day": True}])
    (w,) = windows_overlapping(s, utc(2026, 3, 29, 12), utc(2026, 3, 29, 12))
    assert w.duration_s == 23 * 3600  # spring forward: local midnight to midnight is 23 h


@pytest.mark.parametrize(
    ("window", "phrase"),
    [
        ({"days": ["wed"], "start": "08:00", "end": "08:00"}, "start equals end (08:00)"),
        ({"days": ["wed"], "start": "08:00", "end": "09:00", "all_day": True}, "not both"),
        ({"days": ["wed"], "start": "08:00"}, "needs end"),
    ],
)
def test_a_window_whose_end_equals_its_start_is_refused(window, phrase) -> None:
    with pytest.raises(ConditionsError, match=re.escape(phrase)):
        parse_schedule([window], item_id="c1")
    exception = {k: v for k, v in window.items() if k != "days"} | {"date": "2026-12-24"}
    with pytest.raises(ConditionsError, match=re.escape(phrase)):
        parse_schedule(NIGHT, [exception], item_id="c1")


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        ({"date": "2026-12-24", "cancelled": True}, None),
        ({"date": "2026-12-24", "start": "21:00", "end": "06:00"}, ((2026, 12, 24, 21), 9)),
        ({"date": date(2026, 12, 24), "start": "12:00", "end": "13:00"}, ((2026, 12, 24, 12), 1)),
    ],
)
def test_exceptions_replace_or_cancel_the_window_starting_that_date(exception, expected) -> None:
    s = parse_schedule(NIGHT, [exception])
    t = utc(2026, 12, 24, 12)
    found = [w for w in windows_overlapping(s, t, t + 86400) if w.local_date == date(2026, 12, 24)]
    if expected is None:
        assert found == []
    else:
        (w,) = found
        assert (w.nominal_start_s, w.duration_s) == (utc(*expected[0]), expected[1] * 3600)
    # The neighbouring nights are untouched.
    for d in (date(2026, 12, 23), date(2026, 12, 25)):
        assert window_starting(s, d).duration_s == 12 * 3600


def test_exception_on_a_day_without_windows_adds_one() -> None:
    s = parse_schedule(
        [{"days": ["mon"], "start": "19:00", "end": "07:00"}],
        [{"date": "2026-01-14", "start": "20:00", "end": "23:00"}],  # a Wednesday
    )
    assert window_starting(s, date(2026, 1, 14)).duration_s == 3 * 3600


def test_exception_on_the_spring_night_follows_the_dst_rule() -> None:
    s = parse_schedule(NIGHT, [{"date": "2026-03-29", "start": "01:30", "end": "07:00"}])
    w = window_starting(s, date(2026, 3, 29))
    assert (w.start_s, w.end_s) == (utc(2026, 3, 29, 1), utc(2026, 3, 29, 6))


def test_grace_delays_the_enforced_start_only() -> None:
    s = parse_schedule(NIGHT, start_offset_s=900)
    w = window_starting(s, date(2026, 1, 15))
    assert w.start_s - w.nominal_start_s == 900
    assert w.duration_s == 12 * 3600
    assert windows_covering(s, utc(2026, 1, 15, 19, 10)) == []
    assert len(windows_covering(s, utc(2026, 1, 15, 19, 10), nominal=True)) == 1


def test_merged_intervals_join_back_to_back_windows() -> None:
    s = parse_schedule(
        [
            {"days": ["mon"], "start": "08:00", "end": "12:00"},
            {"days": ["mon"], "start": "12:00", "end": "14:00"},
            {"days": ["mon"], "start": "13:00", "end": "15:00"},
            {"days": ["mon"], "start": "16:00", "end": "17:00"},
        ]
    )
    starts, ends = merged_intervals(s, utc(2026, 1, 12), utc(2026, 1, 13))
    assert starts.tolist() == [utc(2026, 1, 12, 8), utc(2026, 1, 12, 16)]
    assert ends.tolist() == [utc(2026, 1, 12, 15), utc(2026, 1, 12, 17)]


def test_a_week_of_nights_has_seven_windows() -> None:
    t0 = utc(2026, 6, 1, 12)
    assert len(windows_overlapping(parse_schedule(NIGHT), t0, t0 + 7 * 86400 - 1)) == 7


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("windows", "exceptions", "timezone", "message"),
    [
        ([{"days": ["mon"], "start": "24:00", "end": "07:00"}], [], "Europe/London", "HH:MM"),
        ([{"days": ["mon"], "start": "7pm", "end": "07:00"}], [], "Europe/London", "HH:MM"),
        ([{"days": ["monday"], "start": "19:00", "end": "07:00"}], [], "Europe/London", "day"),
        ([{"days": [], "start": "19:00", "end": "07:00"}], [], "Europe/London", "day"),
        (NIGHT, [], "Mars/Olympus", "timezone"),
        (NIGHT, [{"date": "2026-01-01"}], "Europe/London", "neither"),
        (NIGHT, [{"date": "01/01/2026", "cancelled": True}], "Europe/London", "YYYY-MM-DD"),
        (
            NIGHT,
            [{"date": "2026-01-01", "cancelled": True}, {"date": "2026-01-01", "cancelled": True}],
            "Europe/London",
            "two exceptions",
        ),
    ],
)
def test_bad_schedules_name_the_item(windows, exceptions, timezone, message) -> None:
    with pytest.raises(ConditionsError, match=message) as info:
        parse_schedule(windows, exceptions, timezone=timezone, item_id="c1")
    assert info.value.item_id == "c1" or "timezone" in message


def test_to_epoch_s_accepts_strings_datetimes_and_numbers() -> None:
    t = utc(2026, 10, 25, 1, 30)
    assert to_epoch_s("2026-10-25T01:30:00Z") == t
    assert to_epoch_s("2026-10-25T02:30:00+01:00") == t
    assert to_epoch_s(datetime(2026, 10, 25, 1, 30, tzinfo=UTC) + timedelta(0)) == t
    assert to_epoch_s(t) == t
    assert to_epoch_s(None) is None
    with pytest.raises(ConditionsError, match="offset"):
        to_epoch_s("2026-10-25T01:30:00")
