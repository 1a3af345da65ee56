"""Local wall-clock time (default Europe/London) ⇄ UTC, DST-correct, for schedules and scenarios.

Same rule as the service (``geofences.schedule``): a local wall time maps to the first instant at
which the local clock shows that time or later. A time in the spring gap maps to the end of the
gap; a time in the autumn fold maps to its first occurrence. A weekly window starts on each listed
local date and, when ``end <= start``, ends on the next local date — so the 19:00–07:00 window
starting on Saturday 24 October 2026 lasts 13 hours.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=8)
def zone(name: str) -> ZoneInfo:
    """Return the :class:`ZoneInfo` ``name`` (cached)."""
    return ZoneInfo(name)


def hhmm_minutes(value: str) -> int:
    """Return the minute of day of ``"HH:MM"``.

    >>> hhmm_minutes("21:30")
    1290
    """
    hh, mm = value.split(":")
    return int(hh) * 60 + int(mm)


def minutes_hhmm(minute: int) -> str:
    """Return ``"HH:MM"`` for a minute of day (0–1439).

    >>> minutes_hhmm(1290)
    '21:30'
    """
    return f"{minute // 60:02d}:{minute % 60:02d}"


@lru_cache(maxsize=65536)
def local_to_utc_s(day: date, minute: float, tz_name: str = "Europe/London") -> float:
    """Return epoch seconds of local wall time ``minute`` (may be fractional) on local ``day``.

    >>> datetime.fromtimestamp(local_to_utc_s(date(2026, 10, 25), 90), UTC).time()
    datetime.time(0, 30)
    >>> datetime.fromtimestamp(local_to_utc_s(date(2026, 3, 29), 90), UTC).time()
    datetime.time(1, 0)
    """
    tz = zone(tz_name)
    whole = int(minute)
    extra_s = (minute - whole) * 60.0
    wall = datetime.combine(day, time(whole // 60, whole % 60))
    u0 = wall.replace(tzinfo=tz, fold=0).timestamp()
    u1 = wall.replace(tzinfo=tz, fold=1).timestamp()
    if u0 == u1:
        return u0 + extra_s
    if datetime.fromtimestamp(u0, tz).replace(tzinfo=None) == wall:
        return min(u0, u1) + extra_s  # ambiguous: first occurrence
    lo, hi = int(min(u0, u1)), int(max(u0, u1))  # nonexistent: end of the gap
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return float(hi) + extra_s


def local_date(ts_s: float, tz_name: str = "Europe/London") -> date:
    """Return the local calendar date at epoch seconds ``ts_s``."""
    return datetime.fromtimestamp(ts_s, zone(tz_name)).date()


def local_dates(t0_s: float, t1_s: float, tz_name: str = "Europe/London") -> list[date]:
    """Return every local date from the day before ``t0_s`` to the day after ``t1_s``."""
    first = local_date(t0_s, tz_name) - timedelta(days=1)
    last = local_date(t1_s, tz_name) + timedelta(days=1)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def weekly_windows_utc(
    windows: Iterable[tuple[Iterable[str], str, str]],
    t0_s: float,
    t1_s: float,
    tz_name: str = "Europe/London",
    start_offset_s: float = 0.0,
) -> list[tuple[float, float, date]]:
    """Return ``(start_s, end_s, local_start_date)`` of every window overlapping ``[t0_s, t1_s]``.

    ``windows`` are ``(days, "HH:MM", "HH:MM")``; ``start_offset_s`` (a grace) delays each start.
    """
    out = []
    for day in local_dates(t0_s - 86400.0, t1_s, tz_name):
        wd = DAYS[day.weekday()]
        for days, start, end in windows:
            if wd not in days:
                continue
            s_min, e_min = hhmm_minutes(start), hhmm_minutes(end)
            end_day = day + timedelta(days=1) if e_min <= s_min else day
            s = local_to_utc_s(day, s_min, tz_name) + start_offset_s
            e = local_to_utc_s(end_day, e_min, tz_name)
            if e > s and s <= t1_s and e > t0_s:
                out.append((s, e, day))
    out.sort()
    return out


def iso_utc(ts_s: float) -> str:
    """Return RFC 3339 UTC (``Z``) for epoch seconds, with microseconds only when needed."""
    dt = datetime.fromtimestamp(ts_s, UTC)
    return dt.isoformat().replace("+00:00", "Z")


def as_utc(ts_s: float) -> datetime:
    """Return the aware UTC datetime of epoch seconds ``ts_s``."""
    return datetime.fromtimestamp(ts_s, UTC)
