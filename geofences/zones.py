"""Compile conditions to projected, validated zones; accuracy-aware verdicts, batch and scalar.

Input is the JSON form of the conditions contract (``msgspec.to_builtins(conditions)``): zones
as GeoJSON Features in WGS84 ``[lon, lat]``, curfews with an address and weekly windows. Each zone
and curfew address is projected once to metres (:mod:`geofences.projection`), validated, and kept
with what the batch engine needs: an exact circle for Point + ``radius_m``, or a prepared polygon
with its prepared boundary, two prepared *band* buffers (inward and outward by the largest usable
accuracy radius) and a coarse *grid* whose cells are known to be wholly inside the inward band or
wholly outside the outward one, so that most fixes are classified by one array lookup and only
fixes near a boundary reach GEOS.

Verdicts (see :mod:`geofences.verdicts`): with ``s`` the signed distance from the fix to the zone
boundary (positive inside the closed zone) and ``r = accuracy_m * accuracy_scale``, the disc is
*inside* the zone iff ``s >= r``, *outside* iff ``s < -r``, else it *straddles* the boundary. For an
exclusion zone inside → ``definite``, straddle → ``possible``, outside → ``clear``; for an inclusion
zone or curfew address the mirror. ``depth_m`` is the signed distance of the fix *into the breach
region* (positive = on the breach side), given for ``possible`` and ``definite`` verdicts.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import msgspec
import numpy as np
import shapely
from shapely import geometry as sgeom

from geofences import verdicts as V
from geofences.errors import ConditionsError, GeometryError
from geofences.projection import Projector, get_projector
from geofences.schedule import Schedule, get_timezone, merged_intervals, parse_schedule, to_epoch_s

Kind = Literal["exclusion", "inclusion", "curfew"]

#: Band buffers are built ``band * (1 + _BAND_REL) + _BAND_ABS`` wide, so that GEOS's buffer
#: input simplification (up to about 1 % of the distance) can never misclassify a fix.
_BAND_REL = 0.05
_BAND_ABS = 0.05
_CIRCLE_QUAD_SEGS = 16
#: Disc classes: inside the zone, straddling its boundary, outside (also grid cell classes, where
#: 1 means "mixed: look closer").
INSIDE, STRADDLE, OUTSIDE = 2, 1, 0
_GRID_MAX_CELLS = 64
_GRID_MIN_CELL_M = 25.0
#: Band buffers of a ring with more vertices than this are built from a simplified copy (see
#: :func:`_coarse`): GEOS buffers a jagged 5,000-vertex ring in 5–70 s, its simplified copy in ms.
_COARSE_MAX_VERTICES = 1_000
_COARSE_TOLERANCES_M = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
_DAY_S = 86400.0


@dataclass(frozen=True, eq=False)
class CompiledZone:
    """One zone or curfew address, in projected metres.

    Attributes
    ----------
    zone_id
        ``zone_id`` of a zone or ``curfew_id`` of a curfew.
    kind
        ``"exclusion"``, ``"inclusion"`` or ``"curfew"`` (a curfew address behaves as an inclusion
        zone that is active only during its windows, after the grace).
    geometry
        Projected polygon (a circle is approximated by 64 segments here, for display and
        benchmarks; verdicts use the exact circle).
    circle
        ``(cx_m, cy_m, radius_m)`` for Point + radius zones, else None.
    schedule
        Weekly windows when the zone applies (None = always), in the conditions' timezone.
    valid_from_s, valid_to_s
        Validity as epoch seconds, ``-inf``/``inf`` if open; the zone applies in ``[from, to)``.
    name
        Optional human name.
    """

    zone_id: str
    kind: Kind
    geometry: shapely.Geometry
    circle: tuple[float, float, float] | None
    schedule: Schedule | None
    valid_from_s: float
    valid_to_s: float
    name: str | None = None
    band_m: float = 0.0
    inner: shapely.Geometry | None = field(default=None, repr=False)
    outer: shapely.Geometry | None = field(default=None, repr=False)
    boundary: shapely.Geometry | None = field(default=None, repr=False)
    grid: np.ndarray | None = field(default=None, repr=False)
    grid_origin: tuple[float, float] = (0.0, 0.0)
    grid_cell_m: float = 1.0
    _intervals: dict[str, Any] = field(default_factory=dict, repr=False, init=False)

    def active_until(self, ts_s: float) -> float | None:
        """Return the end of the active period containing ``ts_s``, or None if inactive then.

        The end is ``valid_to_s`` (``inf`` if open) or the end of the schedule window, whichever is
        first; back-to-back windows count as one period (looked ahead at least a day).
        """
        if not (self.valid_from_s <= ts_s < self.valid_to_s):
            return None
        if self.schedule is None:
            return self.valid_to_s
        cached = self._intervals.get("h")
        if cached is None or not (cached[0] + _DAY_S <= ts_s <= cached[1] - _DAY_S):
            h0 = math.floor(ts_s / _DAY_S) * _DAY_S - _DAY_S
            starts, ends = merged_intervals(self.schedule, h0, h0 + 9 * _DAY_S)
            cached = (h0, h0 + 9 * _DAY_S, starts.tolist(), ends.tolist())
            self._intervals["h"] = cached
        i = bisect.bisect_right(cached[2], ts_s) - 1
        if i >= 0 and ts_s < cached[3][i]:
            return min(cached[3][i], self.valid_to_s)
        return None

    def classify(self, x: float, y: float, r: float) -> tuple[int, float | None]:
        """Return ``(class, signed distance or None)`` of the disc ``(x, y, r)`` (scalar path).

        Class is :data:`INSIDE`, :data:`STRADDLE` or :data:`OUTSIDE`; ``r`` must not exceed the
        band the zone was compiled for. The signed distance (positive inside) is given when it
        was needed to decide.
        """
        if self.circle is not None:
            cx, cy, radius = self.circle
            s = radius - math.hypot(x - cx, y - cy)
            return _class_of(s, r), s
        gx = (x - self.grid_origin[0]) / self.grid_cell_m
        gy = (y - self.grid_origin[1]) / self.grid_cell_m
        ny, nx = self.grid.shape
        if not (0 <= gx < nx and 0 <= gy < ny):
            return OUTSIDE, None
        cell = int(self.grid[int(gy), int(gx)])
        if cell != STRADDLE:
            return cell, None
        if not shapely.contains_xy(self.outer, x, y):
            return OUTSIDE, None
        if shapely.contains_xy(self.inner, x, y):
            return INSIDE, None
        s = self.signed_distance(x, y)
        return _class_of(s, r), s

    def signed_distance(self, x: float, y: float) -> float:
        """Return the distance from ``(x, y)`` to the boundary, metres, positive inside."""
        if self.circle is not None:
            cx, cy, radius = self.circle
            return radius - math.hypot(x - cx, y - cy)
        d = float(shapely.distance(self.boundary, shapely.Point(x, y)))
        return d if shapely.intersects_xy(self.geometry, x, y) else -d


def _class_of(s: float, r: float) -> int:
    return INSIDE if s >= r else (OUTSIDE if s < -r else STRADDLE)


class ZoneVerdict(msgspec.Struct, frozen=True):
    """The verdict of one fix against one zone or curfew (the scalar API's result).

    ``verdict`` is the name (curfew names for curfews); ``code`` its integer code;
    ``depth_m`` the signed depth into the breach region for possible/definite verdicts, else None;
    ``active_until_s`` the end of the current active period (window end, valid_to), None when
    inactive and ``inf`` when open-ended.
    """

    zone_id: str
    kind: Kind
    verdict: str
    code: int
    depth_m: float | None
    active_until_s: float | None


@dataclass(frozen=True, eq=False)
class CompiledConditions:
    """One person's zones and curfews, compiled (build with :func:`compile_conditions`).

    Attributes
    ----------
    offender_id
        From the conditions, if given.
    zones
        Zones then curfews, in input order.
    projector
        The WGS84 ⇄ metres transformation shared by zones and fixes.
    timezone
        IANA name of the local clock for schedules.
    gps_interval_s
        Expected reporting interval of the tag.
    max_accuracy_m
        Fixes with a worse (larger) accuracy are ``unusable``.
    accuracy_scale
        The disc radius is ``accuracy_m * accuracy_scale``.
    """

    offender_id: str | None
    zones: tuple[CompiledZone, ...]
    projector: Projector
    timezone: str
    gps_interval_s: float
    max_accuracy_m: float
    accuracy_scale: float
    appointments: Any = None  # geofences.appointments.CompiledAppointments, if any

    def zone(self, zone_id: str) -> CompiledZone:
        """Return the zone or curfew called ``zone_id`` (KeyError if absent)."""
        for z in self.zones:
            if z.zone_id == zone_id:
                return z
        raise KeyError(zone_id)

    def evaluate_fix(
        self,
        ts: float | datetime,
        *,
        accuracy_m: float,
        lon: float | None = None,
        lat: float | None = None,
        x: float | None = None,
        y: float | None = None,
    ) -> list[ZoneVerdict]:
        """Return one :class:`ZoneVerdict` per zone and curfew for a single fix.

        The scalar twin of :meth:`ZoneIndex.evaluate` (same rules, plain Python per zone).

        Parameters
        ----------
        ts
            Fix time: epoch seconds or an aware datetime.
        accuracy_m
            Reported horizontal accuracy, metres.
        lon, lat
            WGS84 degrees, or
        x, y
            projected metres.
        """
        ts_s = ts.timestamp() if isinstance(ts, datetime) else float(ts)
        if lon is not None:
            x, y = self.projector.forward.transform(float(lon), float(lat))
        x, y, acc = float(x), float(y), float(accuracy_m)
        usable = acc <= self.max_accuracy_m and math.isfinite(x) and math.isfinite(y)
        r = acc * self.accuracy_scale
        out = []
        for z in self.zones:
            until = z.active_until(ts_s)
            depth = None
            if until is None:
                code = V.INACTIVE
            elif not usable:
                code = V.UNUSABLE
            else:
                cls, s = z.classify(x, y, r)
                exclusion = z.kind == "exclusion"
                code = cls if exclusion else 2 - cls
                if code != V.CLEAR:
                    s = z.signed_distance(x, y) if s is None else s
                    depth = s if exclusion else -s
            names = V.CURFEW_NAMES if z.kind == "curfew" else V.ZONE_NAMES
            out.append(ZoneVerdict(z.zone_id, z.kind, names[code], code, depth, until))
        return out


# --------------------------------------------------------------------------- compilation


def _get(obj: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = obj.get(key, default)
    return default if value is None else value


def _fmt_reason(reason: str, projector: Projector) -> str:
    """Rewrite a GEOS reason ``Self-intersection[x y]`` with the location in lon/lat."""
    m = re.search(r"\[([-+\d.eE]+) ([-+\d.eE]+)\]", reason)
    if not m:
        return reason
    lon, lat = projector.to_lonlat(float(m.group(1)), float(m.group(2)))
    return f"{reason[: m.start()]} near lon {float(lon):.6f}, lat {float(lat):.6f}"


def _project(geom: shapely.Geometry, projector: Projector) -> shapely.Geometry:
    def fwd(coords: np.ndarray) -> np.ndarray:
        x, y = projector.to_xy(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geom, fwd)


def _compile_geometry(
    item_id: str, geojson: Any, radius_m: float | None, projector: Projector
) -> tuple[shapely.Geometry | None, tuple[float, float, float] | None]:
    """Parse GeoJSON (WGS84), check it is in the CRS's area, project it: (polygon, circle)."""
    if not isinstance(geojson, Mapping) or "type" not in geojson:
        raise GeometryError("geometry is missing or not GeoJSON", item_id=item_id)
    gtype = geojson["type"]
    if gtype not in ("Point", "Polygon", "MultiPolygon"):
        raise GeometryError(
            f"geometry type {gtype!r} is not Point/Polygon/MultiPolygon", item_id=item_id
        )
    try:
        lonlat = sgeom.shape(geojson)
    except (ValueError, TypeError, IndexError, shapely.errors.GEOSException) as exc:
        raise GeometryError(f"malformed {gtype} coordinates: {exc}", item_id=item_id) from exc
    if lonlat.is_empty:
        raise GeometryError("geometry is empty", item_id=item_id)
    coords = shapely.get_coordinates(lonlat)
    if not np.isfinite(coords).all():
        raise GeometryError("coordinates are not finite numbers", item_id=item_id)
    if (np.abs(coords[:, 0]) > 180).any() or (np.abs(coords[:, 1]) > 90).any():
        raise GeometryError("coordinates are not [lon, lat] in WGS84 degrees", item_id=item_id)
    inside = projector.in_area(coords[:, 0], coords[:, 1])
    if not inside.all():
        w, s, e, n = projector.area_of_use
        bad = coords[~inside][0]
        raise GeometryError(
            f"position [{bad[0]:.6f}, {bad[1]:.6f}] is outside the area of use of {projector.crs} "
            f"(lon {w}..{e}, lat {s}..{n}); configure a projected CRS that covers it",
            item_id=item_id,
        )
    if gtype == "Point":
        if radius_m is None or not (math.isfinite(radius_m) and radius_m > 0):
            raise GeometryError("a Point needs a positive radius_m", item_id=item_id)
        cx, cy = (float(v) for v in projector.to_xy(lonlat.x, lonlat.y))
        return None, (cx, cy, float(radius_m))
    if radius_m is not None:
        raise GeometryError("radius_m is only for a Point", item_id=item_id)
    return _project(lonlat, projector), None


def _validate_xy(zone: CompiledZone, projector: Projector, max_extent_m: float) -> CompiledZone:
    """Return ``zone`` checked (and its circle polygonised) or raise :class:`GeometryError`."""
    item_id = zone.zone_id
    limit = f"(limit {max_extent_m / 1000:.0f} km)"
    if zone.circle is not None:
        cx, cy, radius = zone.circle
        if not (math.isfinite(cx) and math.isfinite(cy)):
            raise GeometryError(f"cannot be projected to {projector.crs}", item_id=item_id)
        if not (math.isfinite(radius) and radius > 0):
            raise GeometryError("a circle needs a positive radius_m", item_id=item_id)
        if 2 * radius > max_extent_m:
            raise GeometryError(
                f"absurd size: circle {2 * radius / 1000:.1f} km across {limit}", item_id=item_id
            )
        poly = shapely.buffer(shapely.Point(cx, cy), radius, quad_segs=_CIRCLE_QUAD_SEGS)
        return dataclasses.replace(zone, geometry=poly)
    geom = zone.geometry
    if geom is None or geom.is_empty:
        raise GeometryError("geometry is empty", item_id=item_id)
    if shapely.get_type_id(geom) not in (3, 6):
        raise GeometryError(f"{geom.geom_type} is not a Polygon/MultiPolygon", item_id=item_id)
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise GeometryError(f"cannot be projected to {projector.crs}", item_id=item_id)
    reason = shapely.is_valid_reason(geom)
    if reason != "Valid Geometry":
        raise GeometryError(f"invalid geometry: {_fmt_reason(reason, projector)}", item_id=item_id)
    if geom.area <= 1.0:
        raise GeometryError(f"degenerate polygon (area {geom.area:.3g} m²)", item_id=item_id)
    minx, miny, maxx, maxy = geom.bounds
    extent = max(maxx - minx, maxy - miny)
    if extent > max_extent_m:
        raise GeometryError(f"absurd size: {extent / 1000:.1f} km across {limit}", item_id=item_id)
    return zone


def _band_buffer(geom: shapely.Geometry, distance: float) -> shapely.Geometry:
    # Mitre joins never cut inside the round offset, so both directions stay conservative.
    return shapely.buffer(geom, distance, join_style="mitre", mitre_limit=5.0)


def _coarse(geom: shapely.Geometry) -> tuple[shapely.Geometry, float]:
    """Return a copy of ``geom`` with at most ``_COARSE_MAX_VERTICES`` vertices where a small
    tolerance gets there, and that tolerance (0 when ``geom`` is used as it is).

    Simplification moves no boundary point more than the tolerance (Hausdorff distance), so band
    buffers of the copy widened by it still only ever say INSIDE or OUTSIDE where the exact
    polygon does: they are shortcuts, and everything they leave undecided goes to the exact
    distance to the *original* boundary. A coarser copy only sends more fixes down that path.
    """
    if shapely.get_num_coordinates(geom) <= _COARSE_MAX_VERTICES:
        return geom, 0.0
    best, best_tol = geom, 0.0
    for tol in _COARSE_TOLERANCES_M:
        simple = shapely.simplify(geom, tol, preserve_topology=True)
        if shapely.is_empty(simple) or not shapely.is_valid(simple):
            break
        best, best_tol = simple, tol
        if shapely.get_num_coordinates(simple) <= _COARSE_MAX_VERTICES:
            break
    return best, best_tol


def _with_band(zone: CompiledZone, band_m: float) -> CompiledZone:
    """Return ``zone`` with its band buffers, boundary and grid for discs up to ``band_m``."""
    if zone.circle is not None:
        return dataclasses.replace(zone, band_m=band_m)
    geom, inner, outer, boundary, grid, origin, cell = _band_structures(
        shapely.to_wkb(zone.geometry), band_m
    )
    return dataclasses.replace(
        zone,
        geometry=geom,
        band_m=band_m,
        inner=inner,
        outer=outer,
        boundary=boundary,
        grid=grid,
        grid_origin=origin,
        grid_cell_m=cell,
    )


@lru_cache(maxsize=1024)
def _band_structures(wkb: bytes, band_m: float) -> tuple[Any, ...]:
    """Build (geometry, inner, outer, boundary, grid, origin, cell) once per distinct polygon.

    Cached: people often share a zone (a county, a town centre), so its grid is built once.
    """
    geom = shapely.from_wkb(wkb)
    coarse, tol = _coarse(geom)
    width = band_m * (1 + _BAND_REL) + _BAND_ABS
    inner, outer = _band_buffer(coarse, -(width + tol)), _band_buffer(coarse, width + tol)
    boundary = shapely.boundary(geom)
    # Grid over the outward band's bounds: a cell whose centre is deeper than width + half a
    # diagonal is wholly INSIDE; one farther out than that is wholly OUTSIDE; others are mixed.
    minx, miny, maxx, maxy = geom.bounds
    x0, y0 = minx - width, miny - width
    w, h = maxx - minx + 2 * width, maxy - miny + 2 * width
    cell = max(max(w, h) / _GRID_MAX_CELLS, _GRID_MIN_CELL_M)
    nx, ny = max(1, math.ceil(w / cell)), max(1, math.ceil(h / cell))
    half_diag = cell * math.sqrt(0.5)
    margin = (width + half_diag) * (1 + _BAND_REL) + _BAND_ABS
    cx, cy = np.meshgrid(x0 + (np.arange(nx) + 0.5) * cell, y0 + (np.arange(ny) + 0.5) * cell)
    grid = np.full((ny, nx), STRADDLE, dtype=np.int8)
    deep, far = _band_buffer(coarse, -(margin + tol)), _band_buffer(coarse, margin + tol)
    shapely.prepare([deep, far])
    near = shapely.contains_xy(far, cx, cy)
    grid[~near] = OUTSIDE
    grid[near] = np.where(shapely.contains_xy(deep, cx[near], cy[near]), INSIDE, STRADDLE)
    grid.flags.writeable = False
    shapely.prepare([geom, inner, outer, boundary])
    return geom, inner, outer, boundary, grid, (x0, y0), cell


def _validity(
    props: Mapping[str, Any], item_id: str, outer: tuple[float, float]
) -> tuple[float, float]:
    vf = to_epoch_s(props.get("valid_from"), item_id=item_id)
    vt = to_epoch_s(props.get("valid_to"), item_id=item_id)
    lo = max(outer[0], -math.inf if vf is None else vf)
    hi = min(outer[1], math.inf if vt is None else vt)
    if vf is not None and vt is not None and vt <= vf:
        raise ConditionsError("valid_to must be after valid_from", item_id=item_id)
    return lo, hi


def compile_conditions(
    conditions: Mapping[str, Any] | Any,
    *,
    crs: str = "EPSG:27700",
    max_accuracy_m: float = 100.0,
    accuracy_scale: float = 1.0,
    max_extent_m: float = 100_000.0,
) -> CompiledConditions:
    """Return the conditions' zones and curfews projected, validated and prepared.

    Parameters
    ----------
    conditions
        The JSON form of the conditions contract (``msgspec.to_builtins(conditions)``); a msgspec
        Struct is converted. Times may be RFC 3339 strings or aware datetimes.
    crs
        Projected CRS in metres (default British National Grid).
    max_accuracy_m
        Fixes with ``accuracy_m`` above this are ``unusable`` (default 100 m).
    accuracy_scale
        Disc radius = ``accuracy_m * accuracy_scale`` (default 1: the device's own radius).
    max_extent_m
        Reject a zone wider or taller than this (default 100 km).

    Raises
    ------
    GeometryError
        A geometry is empty, invalid (self-intersection …), too big or outside the CRS's area.
    ConditionsError
        A schedule, timezone or timestamp is malformed.

    Examples
    --------
    >>> cc = compile_conditions({"offender_id": "o1", "zones": [{"type": "Feature",
    ...     "geometry": {"type": "Point", "coordinates": [-0.1276, 51.5072]},
    ...     "properties": {"zone_id": "z1", "kind": "exclusion", "radius_m": 200}}]})
    >>> verdicts = cc.evaluate_fix(0, lon=-0.1276, lat=51.5072, accuracy_m=10)
    >>> [(v.zone_id, v.verdict) for v in verdicts]
    [('z1', 'definite')]
    """
    if not isinstance(conditions, Mapping):
        conditions = msgspec.to_builtins(conditions)
    if not (max_accuracy_m > 0 and accuracy_scale > 0):
        raise ConditionsError("max_accuracy_m and accuracy_scale must be positive")
    projector = get_projector(crs)
    tz_name = _get(conditions, "timezone", "Europe/London")
    tz = get_timezone(tz_name)
    outer = _validity(
        conditions, str(_get(conditions, "offender_id", "conditions")), (-math.inf, math.inf)
    )
    raw: list[CompiledZone] = []
    for feature in _get(conditions, "zones", []):
        props = _get(feature, "properties", {})
        zone_id = str(props.get("zone_id") or feature.get("id") or "?")
        kind = props.get("kind")
        if kind not in ("exclusion", "inclusion"):
            raise ConditionsError(f"kind {kind!r} is not exclusion/inclusion", item_id=zone_id)
        geom, circle = _compile_geometry(
            zone_id, feature.get("geometry"), props.get("radius_m"), projector
        )
        windows = props.get("schedule")
        schedule = parse_schedule(windows, timezone=tz, item_id=zone_id) if windows else None
        vf, vt = _validity(props, zone_id, outer)
        raw.append(CompiledZone(zone_id, kind, geom, circle, schedule, vf, vt, props.get("name")))

    for curfew in _get(conditions, "curfews", []):
        curfew_id = str(curfew.get("curfew_id") or "?")
        geom, circle = _compile_geometry(
            curfew_id, curfew.get("geometry"), curfew.get("radius_m"), projector
        )
        windows = curfew.get("windows") or []
        if not windows:
            raise ConditionsError("a curfew needs at least one window", item_id=curfew_id)
        schedule = parse_schedule(
            windows,
            _get(curfew, "exceptions", []),
            timezone=tz,
            start_offset_s=float(_get(curfew, "grace_s", 0.0)),
            item_id=curfew_id,
        )
        raw.append(CompiledZone(curfew_id, "curfew", geom, circle, schedule, outer[0], outer[1]))

    compiled = compile_zones(
        raw,
        offender_id=conditions.get("offender_id"),
        crs=crs,
        timezone=tz_name,
        gps_interval_s=float(_get(conditions, "gps_interval_s", 60.0)),
        max_accuracy_m=max_accuracy_m,
        accuracy_scale=accuracy_scale,
        max_extent_m=max_extent_m,
    )
    appointments = _get(conditions, "appointments", [])
    if not appointments:
        return compiled
    from geofences.appointments import compile_appointments

    return dataclasses.replace(
        compiled,
        appointments=compile_appointments(
            appointments,
            timezone=tz_name,
            projector_crs=crs,
            compile_place=lambda i, g, r: _compile_geometry(i, g, r, projector),
            max_accuracy_m=max_accuracy_m,
            accuracy_scale=accuracy_scale,
            max_extent_m=max_extent_m,
        ),
    )


def compile_zones(
    zones: Sequence[CompiledZone],
    *,
    offender_id: str | None = None,
    crs: str = "EPSG:27700",
    timezone: str = "Europe/London",
    gps_interval_s: float = 60.0,
    max_accuracy_m: float = 100.0,
    accuracy_scale: float = 1.0,
    max_extent_m: float = 100_000.0,
) -> CompiledConditions:
    """Return :class:`CompiledConditions` from zones already in projected metres.

    The lower half of :func:`compile_conditions`, for callers (tests, benchmarks) that hold
    projected geometry: give each :class:`CompiledZone` its ``zone_id``, ``kind``, ``geometry``
    (Polygon/MultiPolygon in metres; None for a circle), ``circle``, ``schedule`` and validity.
    The geometry is validated as in :func:`compile_conditions` (not the area-of-use check).

    Examples
    --------
    >>> z = CompiledZone("z1", "inclusion", None, (0.0, 0.0, 500.0), None, -math.inf, math.inf)
    >>> cc = compile_zones([z], crs="EPSG:27700")
    >>> [v.verdict for v in cc.evaluate_fix(0, x=600.0, y=0.0, accuracy_m=50)]
    ['definite']
    """
    if not (max_accuracy_m > 0 and accuracy_scale > 0):
        raise ConditionsError("max_accuracy_m and accuracy_scale must be positive")
    projector = get_projector(crs)
    get_timezone(timezone)
    band = max_accuracy_m * accuracy_scale
    compiled: list[CompiledZone] = []
    seen: set[str] = set()
    for zone in zones:
        if zone.zone_id in seen:
            raise ConditionsError("zone_id/curfew_id is not unique", item_id=zone.zone_id)
        if zone.kind not in ("exclusion", "inclusion", "curfew"):
            raise ConditionsError(f"kind {zone.kind!r} is unknown", item_id=zone.zone_id)
        seen.add(zone.zone_id)
        compiled.append(_with_band(_validate_xy(zone, projector, max_extent_m), band))
    return CompiledConditions(
        offender_id=offender_id,
        zones=tuple(compiled),
        projector=projector,
        timezone=timezone,
        gps_interval_s=float(gps_interval_s),
        max_accuracy_m=float(max_accuracy_m),
        accuracy_scale=float(accuracy_scale),
    )
