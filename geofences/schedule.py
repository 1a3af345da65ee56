"""Weekly local-time windows with one-off exceptions, turned into UTC intervals, DST-correct.

A window ``{"days": ["fri"], "start": "19:00", "end": "07:00"}`` *starts* on each listed local
date; when ``end`` is before ``start`` it ends on the next local date. ``end == start`` is
refused: a 24-hour window is ``{"start": "00:00", "all_day": true}`` (no ``end``), ending at
``start`` on the next local date. An exception ``{"date": "2026-12-24", "cancelled": true}``
removes the windows that start on that local date; ``{"date": …, "start": "21:00", "end":
"06:00"}`` (or ``"all_day": true``) replaces them by one window with those times (and adds one if
no window starts that day).

DST rule (one rule for starts and ends): a local wall time maps to **the first instant at which
the local clock shows that time or later**. So a time in the spring gap (01:30 on the last Sunday
of March in London) maps to the end of the gap (02:00 BST = 01:00 UTC), and a time that occurs
twice in the autumn fold (01:30 on the last Sunday of October) maps to its first occurrence
(01:30 BST, ``fold=0``). A window whose UTC end is not after its UTC start (e.g. 01:15–02:00 on the
spring-forward night) is empty. The window 19:00–07:00 that starts on the Saturday before the
spring change lasts 11 h; the one before the autumn change lasts 13 h.

Times in and out are epoch seconds (UTC) or aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from geofences.errors import ConditionsError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_INDEX = {d: i for i, d in enumerate(DAYS)}
_DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One weekly window: local start/end minute of day, on weekdays ``days`` (0 = Monday)."""

    days: frozenset[int]
    start_min: int
    end_min: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """Compiled weekly windows plus exceptions in one timezone.

    Attributes
    ----------
    windows
        The weekly windows.
    exceptions
        Local start date → ``(start_min, end_min)`` replacement, or ``None`` if cancelled.
    tz
        The local timezone.
    start_offset_s
        Seconds added to every window start (a curfew's grace); a window shorter than this is empty.
    """

    windows: tuple[WindowSpec, ...]
    exceptions: Mapping[date, tuple[int, int] | None] = field(default_factory=dict)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))
    start_offset_s: float = 0.0


def parse_hhmm(value: str, *, item_id: str | None = None) -> int:
    """Return the minute of day of a local ``"HH:MM"`` time.

    >>> parse_hhmm("19:30")
    1170
    """
    try:
        hh, mm = value.split(":")
        h, m = int(hh), int(mm)
    except (AttributeError, ValueError):
        raise ConditionsError(f"time {value!r} is not HH:MM", item_id=item_id) from None
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ConditionsError(f"time {value!r} is not HH:MM (24 h)", item_id=item_id)
    return h * 60 + m


def parse_span(w: Any, *, what: str, item_id: str | None = None) -> tuple[int, int]:
    """Return ``(start_min, end_min)`` of a window or exception; ``all_day`` gives
    ``end_min == start_min`` (24 h). Refuses ``end == start`` without ``all_day``.

    >>> parse_span({"start": "19:00", "end": "07:00"}, what="window")
    (1140, 420)
    >>> parse_span({"start": "00:00", "all_day": True}, what="window")
    (0, 0)
    """
    start = parse_hhmm(_field(w, "start"), item_id=item_id)
    end_text = _field(w, "end")
    if _field(w, "all_day", False):
        if end_text is not None:
            raise ConditionsError(f"{what}: give end or all_day: true, not both", item_id=item_id)
        return start, start
    if end_text is None:
        raise ConditionsError(f"{what} needs end (or all_day: true)", item_id=item_id)
    end = parse_hhmm(end_text, item_id=item_id)
    if end == start:
        raise ConditionsError(
            f"{what} start equals end ({end_text}); use all_day: true (without end) for 24 hours",
            item_id=item_id,
        )
    return start, end


def get_timezone(name: str, *, item_id: str | None = None) -> ZoneInfo:
    """Return the :class:`~zoneinfo.ZoneInfo` called ``name`` or raise :class:`ConditionsError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConditionsError(f"unknown timezone {name!r}", item_id=item_id) from exc


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _as_date(value: Any, item_id: str | None) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConditionsError(
            f"exception date {value!r} is not YYYY-MM-DD", item_id=item_id
        ) from None


def parse_schedule(
    windows: Iterable[Any],
    exceptions: Iterable[Any] = (),
    *,
    timezone: str | ZoneInfo = "Europe/London",
    start_offset_s: float = 0.0,
    item_id: str | None = None,
) -> Schedule:
    """Return a :class:`Schedule` from contract-shaped windows and exceptions (dicts or structs).

    Parameters
    ----------
    windows
        ``[{"days": ["mon", …], "start": "HH:MM", "end": "HH:MM"}, …]`` (or ``"all_day": true``
        instead of ``end``).
    exceptions
        ``[{"date": "YYYY-MM-DD", "cancelled": bool, "start": "HH:MM", "end": "HH:MM"}, …]``.
    timezone
        IANA name or ZoneInfo of the local wall clock.
    start_offset_s
        Grace added to every window start, seconds.
    item_id
        Zone or curfew id, for error messages.
    """
    tz = timezone if isinstance(timezone, ZoneInfo) else get_timezone(timezone, item_id=item_id)
    specs = []
    for w in windows:
        days = _field(w, "days") or []
        try:
            idx = frozenset(_DAY_INDEX[d] for d in days)
        except KeyError as exc:
            raise ConditionsError(f"unknown day {exc.args[0]!r}", item_id=item_id) from None
        if not idx:
            raise ConditionsError("a window needs at least one day", item_id=item_id)
        specs.append(WindowSpec(idx, *parse_span(w, what="weekly window", item_id=item_id)))
    exc_map: dict[date, tuple[int, int] | None] = {}
    for e in exceptions:
        d = _as_date(_field(e, "date"), item_id)
        if d in exc_map:
            raise ConditionsError(f"two exceptions for {d.isoformat()}", item_id=item_id)
        if _field(e, "cancelled", False):
            exc_map[d] = None
        else:
            if _field(e, "start") is None:
                raise ConditionsError(
                    f"exception {d.isoformat()} is neither cancelled nor gives start and end",
                    item_id=item_id,
                )
            exc_map[d] = parse_span(e, what=f"exception {d.isoformat()}", item_id=item_id)
    if start_offset_s < 0:
        raise ConditionsError("grace must not be negative", item_id=item_id)
    return Schedule(tuple(specs), exc_map, tz, float(start_offset_s))


@lru_cache(maxsize=65536)
def local_to_utc_s(day: date, minute: int, tz: ZoneInfo) -> float:
    """Return epoch seconds of local wall time ``minute`` (of the day) on local date ``day``.

    Nonexistent times (spring gap) map to the end of the gap; ambiguous times (autumn fold) to
    their first occurrence: the first instant the clock shows that time or later.

    >>> london = ZoneInfo("Europe/London")
    >>> datetime.fromtimestamp(local_to_utc_s(date(2026, 3, 29), 90, london), UTC).time()
    datetime.time(1, 0)
    >>> datetime.fromtimestamp(local_to_utc_s(date(2026, 10, 25), 90, london), UTC).time()
    datetime.time(0, 30)
    """
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    u0 = wall.replace(tzinfo=tz, fold=0).timestamp()
    u1 = wall.replace(tzinfo=tz, fold=1).timestamp()
    if u0 == u1:
        return u0
    if datetime.fromtimestamp(u0, tz).replace(tzinfo=None) == wall:
        return min(u0, u1)  # ambiguous: first occurrence
    # Nonexistent: the transition lies in (min, max]; find the first instant whose wall >= wall.
    lo, hi = int(min(u0, u1)), int(max(u0, u1))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return float(hi)


def _local_date(ts_s: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts_s, tz).date()


class Window(NamedTuple):
    """One occurrence of a window in UTC epoch seconds, half-open ``[start_s, end_s)``.

    ``start_s`` includes the grace (``start_offset_s``); ``nominal_start_s`` does not;
    ``local_date`` is the local date the window starts on (the date exceptions refer to).
    """

    start_s: float
    end_s: float
    nominal_start_s: float
    local_date: date

    @property
    def duration_s(self) -> float:
        """Nominal length of the window, seconds (from the nominal start)."""
        return self.end_s - self.nominal_start_s


def _windows_starting(schedule: Schedule, day: date) -> list[Window]:
    if day in schedule.exceptions:
        times = schedule.exceptions[day]
        pairs = [] if times is None else [times]
    else:
        wd = day.weekday()
        pairs = [(w.start_min, w.end_min) for w in schedule.windows if wd in w.days]
    out = []
    for start_min, end_min in pairs:
        start = local_to_utc_s(day, start_min, schedule.tz)
        end_day = day + timedelta(days=1) if end_min <= start_min else day
        end = local_to_utc_s(end_day, end_min, schedule.tz)
        enforced = start + schedule.start_offset_s
        if end > enforced:
            out.append(Window(enforced, end, start, day))
    return out


def windows_overlapping(
    schedule: Schedule, t0_s: float, t1_s: float, *, nominal: bool = False
) -> list[Window]:
    """Return the windows overlapping ``[t0_s, t1_s]`` (epoch seconds), sorted by start.

    Windows are half-open and their ``start_s`` includes the grace (``nominal=True`` tests the
    overlap from the nominal start instead). They are returned as defined, not merged: two
    overlapping weekly windows give two entries.

    >>> s = parse_schedule([{"days": ["sat"], "start": "19:00", "end": "07:00"}])
    >>> t = datetime(2026, 3, 28, 20, tzinfo=UTC).timestamp()
    >>> [w.duration_s / 3600 for w in windows_overlapping(s, t, t)]
    [11.0]
    """
    if t1_s < t0_s:
        return []
    first = _local_date(t0_s - _DAY_S - 7200.0, schedule.tz)
    last = _local_date(t1_s, schedule.tz)
    out = []
    day = first
    while day <= last:
        for w in _windows_starting(schedule, day):
            if (w.nominal_start_s if nominal else w.start_s) <= t1_s and w.end_s > t0_s:
                out.append(w)
        day += timedelta(days=1)
    out.sort()
    return out


def windows_covering(schedule: Schedule, ts_s: float, *, nominal: bool = False) -> list[Window]:
    """Return the windows with ``start_s <= ts_s < end_s`` (usually none or one).

    With ``nominal=True`` a window covers ``ts_s`` from its nominal start (during the grace too).
    """
    return [
        w
        for w in windows_overlapping(schedule, ts_s, ts_s, nominal=nominal)
        if (w.nominal_start_s if nominal else w.start_s) <= ts_s < w.end_s
    ]


def merged_intervals(schedule: Schedule, t0_s: float, t1_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted, disjoint ``(starts_s, ends_s)`` covering the windows in ``[t0_s, t1_s]``.

    Touching or overlapping windows are merged, so ``ends_s`` is the end of continuous activity.
    """
    merged: list[list[float]] = []
    for s, e, *_ in windows_overlapping(schedule, t0_s, t1_s):
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    arr = np.array(merged, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy()


def to_epoch_s(
    value: float | int | str | datetime | None, *, item_id: str | None = None
) -> float | None:
    """Return epoch seconds of an aware datetime, RFC 3339 string or number (None stays None)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ConditionsError(f"timestamp {value!r} is not RFC 3339", item_id=item_id) from None
    if not isinstance(value, datetime):
        raise ConditionsError(f"timestamp {value!r} has an unsupported type", item_id=item_id)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ConditionsError(f"timestamp {value.isoformat()} has no UTC offset", item_id=item_id)
    return value.timestamp()


def as_utc(ts_s: float) -> datetime:
    """Return the aware UTC datetime of epoch seconds ``ts_s``."""
    return datetime.fromtimestamp(ts_s, UTC)
