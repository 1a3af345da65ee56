"""A person's page, the pure parts: status against conditions, the curfew week grid in local
time (DST-correct: every instant is computed in UTC from the local wall clock), trail gaps and
trail exports."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from em_service.contracts import Conditions
from em_service.store.records import StoredFix
from geofences import CompiledConditions
from geofences.curfew import curfew_window_at, curfew_windows
from geofences.schedule import local_to_utc_s

Gap = Literal["short", "medium", "long"]
#: Gap classes between consecutive fixes: < 2 min, < 10 min, longer.
GAP_SHORT_S, GAP_MEDIUM_S = 120.0, 600.0
TRAIL_MAX = timedelta(hours=48)


def gap_class(seconds: float) -> Gap:
    """Return the colour class of the gap between two consecutive fixes."""
    return "short" if seconds < GAP_SHORT_S else "medium" if seconds < GAP_MEDIUM_S else "long"


def trail_points(fixes: list[StoredFix]) -> list[dict]:
    """Return the fixes for the map: time, position, accuracy and the gap class to the next."""
    out = []
    for i, f in enumerate(fixes):
        gap = gap_class((fixes[i + 1].ts - f.ts).total_seconds()) if i + 1 < len(fixes) else None
        out.append(
            {
                "t": f.ts.astimezone(UTC).isoformat(),
                "lat": f.lat,
                "lon": f.lon,
                "acc": f.accuracy_m,
                "gap": gap,
            }
        )
    return out


def gap_counts(points: list[dict]) -> dict[str, int]:
    """Return how many segments fall in each gap class."""
    counts = {"short": 0, "medium": 0, "long": 0}
    for p in points:
        if p["gap"]:
            counts[p["gap"]] += 1
    return counts


def export_csv(offender_id: str, fixes: list[StoredFix]) -> str:
    """Return the trail as CSV (UTC times, WGS84 degrees, metres)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["offender_id", "device_id", "ts_utc", "lat", "lon", "accuracy_m"])
    for f in fixes:
        w.writerow(
            [offender_id, f.device_id, f.ts.astimezone(UTC).isoformat(), f.lat, f.lon, f.accuracy_m]
        )
    return buf.getvalue()


def export_geojson(offender_id: str, fixes: list[StoredFix]) -> str:
    """Return the trail as a GeoJSON FeatureCollection of Points (RFC 7946, [lon, lat])."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
            "properties": {
                "offender_id": offender_id,
                "device_id": f.device_id,
                "ts": f.ts.astimezone(UTC).isoformat(),
                "accuracy_m": f.accuracy_m,
            },
        }
        for f in fixes
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})


# --- Status against the conditions ------------------------------------------------------------


_WHERE = {
    ("exclusion", "clear"): "outside",
    ("exclusion", "possible"): "on the boundary (possibly inside)",
    ("exclusion", "definite"): "inside",
    ("inclusion", "clear"): "inside",
    ("inclusion", "possible"): "on the boundary (possibly outside)",
    ("inclusion", "definite"): "outside",
    ("curfew", "at_home"): "at the address",
    ("curfew", "away_possible"): "possibly away from the address",
    ("curfew", "away_definite"): "away from the address",
}


@dataclass
class ZoneStatus:
    zone_id: str
    kind: str
    name: str | None
    where: str


@dataclass
class CurfewStatus:
    curfew_id: str
    in_force: bool
    window: str | None
    at_address: str | None


def zone_status(
    compiled: CompiledConditions,
    conditions: Conditions,
    ts: datetime,
    lon: float,
    lat: float,
    acc: float,
) -> list[ZoneStatus]:
    """Return inside/outside of the fix for each zone (at the fix's time)."""
    names = {z.properties.zone_id: z.properties.name for z in conditions.zones}
    out = []
    for v in compiled.evaluate_fix(ts, lon=lon, lat=lat, accuracy_m=acc):
        if v.kind == "curfew":
            continue
        where = _WHERE.get((v.kind, v.verdict))
        if where is None:
            where = "not in force now" if v.verdict == "inactive" else "fix too inaccurate"
        out.append(ZoneStatus(v.zone_id, v.kind, names.get(v.zone_id), where))
    return out


def curfew_status(
    compiled: CompiledConditions,
    conditions: Conditions,
    now: datetime,
    tz: ZoneInfo,
    fix: tuple[float, float, float] | None,
) -> list[CurfewStatus]:
    """Return, per curfew, whether a window is in force now and whether the last fix is at home."""
    verdicts = {}
    if fix is not None:
        lon, lat, acc = fix
        verdicts = {
            v.zone_id: v.verdict
            for v in compiled.evaluate_fix(now, lon=lon, lat=lat, accuracy_m=acc)
            if v.kind == "curfew"
        }
    out = []
    for c in conditions.curfews:
        w = curfew_window_at(compiled, c.curfew_id, now.timestamp())
        text = None
        if w is not None:
            s = datetime.fromtimestamp(w.nominal_start_s, tz)
            e = datetime.fromtimestamp(w.end_s, tz)
            text = f"{s:%a %H:%M} to {e:%a %H:%M}"
        at = _WHERE.get(("curfew", verdicts.get(c.curfew_id, ""))) if w is not None else None
        if w is not None and at is None:
            at = "unknown (no usable fix)"
        out.append(CurfewStatus(c.curfew_id, w is not None, text, at))
    return out


# --- The curfew week grid ---------------------------------------------------------------------


@dataclass
class DayRow:
    """One local day of the week grid: 24 local-hour cells and the windows starting that day."""

    day: date
    cells: list[bool]
    windows: list[str] = field(default_factory=list)
    clock_change: str | None = None


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _clock_change(day: date, tz: ZoneInfo) -> str | None:
    a = datetime.combine(day, datetime.min.time(), tz).utcoffset()
    b = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).utcoffset()
    if a == b or a is None or b is None:
        return None
    return "Clocks go back 1 hour" if b < a else "Clocks go forward 1 hour"


def week_grid(
    compiled: CompiledConditions, conditions: Conditions, monday: date, tz: ZoneInfo
) -> list[DayRow]:
    """Return the curfew timetable of the week starting ``monday`` in local time."""
    days = [monday + timedelta(days=i) for i in range(7)]
    t0 = local_to_utc_s(days[0], 0, tz)
    t1 = local_to_utc_s(days[-1] + timedelta(days=1), 0, tz)
    spans: list[tuple[float, float]] = []
    texts: dict[date, list[str]] = {d: [] for d in days}
    for c in conditions.curfews:
        for w in curfew_windows(compiled, c.curfew_id, t0, t1):
            spans.append((w.nominal_start_s, w.end_s))
            if w.local_date in texts:
                s = datetime.fromtimestamp(w.nominal_start_s, tz)
                e = datetime.fromtimestamp(w.end_s, tz)
                hours = (w.end_s - w.nominal_start_s) / 3600
                nxt = " next day" if e.date() != s.date() else ""
                su = datetime.fromtimestamp(w.nominal_start_s, UTC)
                eu = datetime.fromtimestamp(w.end_s, UTC)
                texts[w.local_date].append(
                    f"{s:%H:%M}–{e:%H:%M}{nxt} ({hours:g} h; UTC {su:%H:%M}–{eu:%H:%M})"
                    + (f" [{c.curfew_id}]" if len(conditions.curfews) > 1 else "")
                )
    rows = []
    for d in days:
        cells = []
        for h in range(24):
            a = local_to_utc_s(d, h * 60, tz)
            b = (
                local_to_utc_s(d + timedelta(days=1), 0, tz)
                if h == 23
                else local_to_utc_s(d, (h + 1) * 60, tz)
            )
            cells.append(any(s < b and e > a for s, e in spans))
        rows.append(DayRow(d, cells, texts[d], _clock_change(d, tz)))
    return rows
