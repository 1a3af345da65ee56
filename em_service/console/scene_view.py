"""The investigator's scene pages, the pure parts: a scene's status in words, local wall-clock
times to UTC (DST-correct, refusing times that do not exist or happen twice without an offset),
places typed as lat/lon, a lettered OS grid reference or easting/northing, and the scene map's
data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from em_service.scenes import store as scene_store
from em_service.scenes.matching import RANK, Match
from geofences.grid_ref import BadGridRef, parse_os_grid_ref
from geofences.national_grid import grid_to_wgs84
from geofences.projection import get_projector

LONDON = ZoneInfo("Europe/London")
MATCH_CLASSES = ("at_scene", "passed_by", "near_scene")


def status(searched_at: datetime | None, counts: dict[str, int]) -> str:
    """Return a scene's status in words: searching, matched n tags, or no match."""
    if searched_at is None:
        return "searching"
    n = sum(counts.get(c, 0) for c in MATCH_CLASSES)
    return f"matched {n} tag{'s' if n != 1 else ''}" if n else "no match"


def offset_text(ts: datetime) -> str:
    """Return the UTC offset of an aware time as ``UTC+01:00``."""
    off = ts.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


class BadField(ValueError):
    """A form field that cannot be used; ``field`` names it for the error summary."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def local_time(
    field: str, day: str, clock: str, offset: str = "", zone: ZoneInfo = LONDON
) -> datetime:
    """Return the aware UTC instant of a local date and time in ``zone``.

    A time skipped when the clocks go forward is refused; one that happens twice when they go
    back needs ``offset`` (``+01:00`` or ``+00:00``) to say which.
    """
    try:
        naive = datetime.strptime(f"{day.strip()} {clock.strip()}", "%Y-%m-%d %H:%M")
    except ValueError:
        raise BadField(field, "Enter a date (YYYY-MM-DD) and a time (HH:MM)") from None
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise BadField(
            field,
            f"{clock.strip()} on {day.strip()} does not exist in UK time (the clocks go forward)",
        )
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    wanted = {offset_text(first)[3:]: first, offset_text(second)[3:]: second}
    if offset.strip() not in wanted:
        raise BadField(
            field,
            f"{clock.strip()} on {day.strip()} happens twice (the clocks go back): "
            f"choose its UTC offset ({' or '.join(wanted)})",
        )
    return wanted[offset.strip()].astimezone(UTC)


def number(field: str, text: str, what: str) -> float:
    """Return ``text`` as a finite number or raise :class:`BadField`."""
    try:
        value = float(text.strip())
    except ValueError:
        raise BadField(field, f"Enter the {what} as a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadField(field, f"Enter the {what} as a number")
    return value


GRID_REF_EXAMPLE = "Enter an OS grid reference like TQ 30 80 or TQ 3004 8012"
_FIGURES = {10_000.0: 2, 1_000.0: 4, 100.0: 6, 10.0: 8, 1.0: 10}


def grid_ref_place(text: str, radius_m: float | None, max_radius_m: float) -> tuple[float, float]:
    """Return (lat, lon) of the centre of the square a lettered OS grid reference names.

    The square must be no wider than the scene's circle: its side (the precision) at most twice
    ``radius_m``, so the circle reaches every side of it. A 1 km square (``TQ 30 80``) therefore
    needs a radius of at least 500 m; ``radius_m`` None (not yet known) skips the check.
    """
    try:
        ref = parse_os_grid_ref(text)
    except BadGridRef as exc:
        raise BadField("grid_ref", f"{GRID_REF_EXAMPLE} ({exc})") from None
    side = ref.precision_m
    if radius_m is not None and radius_m > 0 and side > 2 * radius_m:
        more = next((f for p, f in _FIGURES.items() if p <= 2 * min(radius_m, max_radius_m)), 10)
        size = f"{side / 1000:g} km" if side >= 1000 else f"{side:g} m"
        message = (
            f"{text.strip()} names a {size} square, too wide for a {radius_m:g} m radius: "
            f"give at least {more} figures"
        )
        if side / 2 <= max_radius_m:
            message += f", or a radius of at least {side / 2:g} m"
        raise BadField("grid_ref", message)
    return grid_to_wgs84(ref.easting_m, ref.northing_m)


def place(
    lat: str,
    lon: str,
    easting: str,
    northing: str,
    crs: str,
    grid_ref: str = "",
    radius_m: float | None = None,
    max_radius_m: float = float("inf"),
) -> tuple[float, float]:
    """Return (lat, lon) from a typed lat/lon, an easting/northing in ``crs`` (metres) or a
    lettered OS grid reference (always the National Grid, see :func:`grid_ref_place`).

    Lat/lon wins over easting/northing (a map click fills it); a grid reference given with
    either is refused, as it is unclear which was meant.
    """
    if grid_ref.strip():
        if any(v.strip() for v in (lat, lon, easting, northing)):
            raise BadField(
                "grid_ref",
                "Give the place one way: clear the grid reference, or the latitude and "
                "longitude and the easting and northing",
            )
        return grid_ref_place(grid_ref, radius_m, max_radius_m)
    if lat.strip() or lon.strip():
        return number("lat", lat, "latitude"), number("lon", lon, "longitude")
    if easting.strip() or northing.strip():
        x = number("easting", easting, "easting")
        y = number("northing", northing, "northing")
        if crs.upper() == "EPSG:27700":  # the National Grid: OS's own transformation
            return grid_to_wgs84(x, y)
        out_lon, out_lat = get_projector(crs).to_lonlat(x, y)
        return float(out_lat), float(out_lon)
    raise BadField(
        "lat",
        "Choose the place: click the map, or enter lat/lon, an OS grid reference or "
        "easting/northing",
    )


@dataclass
class MatchView:
    """One row of a scene's table of matches."""

    row: scene_store.SceneMatchRow
    fixes_used: int
    fixes_total: int | None


def ordered(rows: list[scene_store.SceneMatchRow]) -> list[scene_store.SceneMatchRow]:
    """Strongest confidence first, then the closest approach."""
    return sorted(rows, key=lambda m: (-RANK.get(m.confidence, 0), m.closest_m, m.offender_id))


def map_data(scene: scene_store.SceneRow, rows: list[scene_store.SceneMatchRow]) -> dict[str, Any]:
    """Return the scene map's data: the circle, and each match's fixes, pass-by segments and
    closest approach (WGS84 degrees, UTC times)."""
    matches = []
    for m in rows:
        _kind, found, _cfg = scene_store.load_evidence(m)
        fixes = list(found.fixes) if found is not None else []
        by_time = {(f.device_id, f.ts_s): f for f in fixes}
        segments = []
        for s in found.segments if isinstance(found, Match) else ():
            a, b = by_time.get((s.device_id, s.start_ts_s)), by_time.get((s.device_id, s.end_ts_s))
            pts = [[p.lat, p.lon] for p in (a,) if p] + [[s.closest_lat, s.closest_lon]]
            pts += [[p.lat, p.lon] for p in (b,) if p]
            segments.append({"points": pts, "closest_m": round(s.closest_m, 1)})
        matches.append(
            {
                "offender_id": m.offender_id,
                "confidence": m.confidence,
                "closest": None
                if m.closest_lat is None
                else {
                    "lat": m.closest_lat,
                    "lon": m.closest_lon,
                    "m": round(m.closest_m, 1),
                    "t": m.closest_at.astimezone(UTC).isoformat(),
                },
                "fixes": [
                    {
                        "lat": f.lat,
                        "lon": f.lon,
                        "t": datetime.fromtimestamp(f.ts_s, UTC).isoformat(),
                        "acc": f.accuracy_m,
                        "in": f.in_window,
                    }
                    for f in sorted(fixes, key=lambda f: f.ts_s)
                ],
                "segments": segments,
            }
        )
    return {
        "scene": {"lat": scene.lat, "lon": scene.lon, "radius_m": scene.radius_m},
        "matches": matches,
    }


def fixes_counts(row: scene_store.SceneMatchRow) -> tuple[int, int | None]:
    """Return (evidence fixes, fixes seen in total or None) of a match row."""
    _kind, found, _cfg = scene_store.load_evidence(row)
    if found is None:
        return 0, None
    total = found.fixes_total if isinstance(found, Match) else found.fixes_in_window
    return len(found.fixes), total
