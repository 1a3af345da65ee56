"""Compile conditions to projected, validated zones; accuracy-aware verdicts, batch and scalar.

Input is the JSON form of the conditions contract (``msgspec.to_builtins(conditions)``): zones
as GeoJSON Features in WGS84 ``[lon, lat]``, curfews with an address and weekly windows. Each zone
and curfew address is projected once to metres (:mod:`geofences.projection`), validated, and kept
with what the batch engine needs: an exact circle for Point + ``radius_m``, or a prepared polygon
with its prepared boundary and two prepared *band* buffers (inward and outward by the largest
usable accuracy radius) so that most fixes are classified by one ``contains_xy`` call.

Verdicts (see :mod:`geofences.verdicts`): with ``s`` the signed distance from the fix to the zone
boundary (positive inside the closed zone) and ``r = accuracy_m * accuracy_scale``, the disc is
*inside* the zone iff ``s >= r``, *outside* iff ``s < -r``, else it *straddles* the boundary. For an
exclusion zone inside → ``definite``, straddle → ``possible``, outside → ``clear``; for an inclusion
zone or curfew address the mirror. ``depth_m`` is the signed distance of the fix *into the breach
region* (positive = on the breach side), given for ``possible`` and ``definite`` verdicts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
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
_KIND_CODE = {"exclusion": 0, "inclusion": 1, "curfew": 2}

#: Band buffers are built ``band * (1 + _BAND_REL) + _BAND_ABS`` wide, so that chord and GEOS
#: input-simplification errors (about 0.5 % and 1 % of the distance) can never misclassify a fix.
_BAND_REL = 0.05
_BAND_ABS = 0.05
_CIRCLE_QUAD_SEGS = 16
_INSIDE, _STRADDLE, _OUTSIDE = 2, 1, 0


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
    inner: shapely.Geometry | None = field(default=None, repr=False)
    outer: shapely.Geometry | None = field(default=None, repr=False)
    boundary: shapely.Geometry | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ZoneVerdict:
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
    """One person's zones and curfews compiled for evaluation (build with :func:`compile_conditions`).

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

    def zone(self, zone_id: str) -> CompiledZone:
        """Return the zone or curfew called ``zone_id`` (KeyError if absent)."""
        for z in self.zones:
            if z.zone_id == zone_id:
                return z
        raise KeyError(zone_id)

    @cached_property
    def index(self) -> ZoneIndex:
        """A single-owner :class:`ZoneIndex` (built on first use, then reused)."""
        return ZoneIndex([self])

    def evaluate_fix(
        self,
        ts: float | datetime,
        *,
        lon: float | None = None,
        lat: float | None = None,
        x: float | None = None,
        y: float | None = None,
        accuracy_m: float,
    ) -> list[ZoneVerdict]:
        """Return one :class:`ZoneVerdict` per zone and curfew for a single fix.

        A thin wrapper over :meth:`ZoneIndex.evaluate`. Give ``lon``/``lat`` (WGS84 degrees) or
        ``x``/``y`` (projected metres); ``ts`` is epoch seconds or an aware datetime.
        """
        ts_s = ts.timestamp() if isinstance(ts, datetime) else float(ts)
        coords = {"x": x, "y": y} if lon is None else {"lon": lon, "lat": lat}
        res = self.index.evaluate(
            np.zeros(1, np.intp),
            np.array([ts_s]),
            accuracy_m=np.array([accuracy_m], np.float64),
            **{k: np.array([v], np.float64) for k, v in coords.items()},
        )
        return res.zone_verdicts(0)


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
    item_id: str,
    geojson: Any,
    radius_m: float | None,
    projector: Projector,
    max_extent_m: float,
) -> tuple[shapely.Geometry, tuple[float, float, float] | None]:
    if not isinstance(geojson, Mapping) or "type" not in geojson:
        raise GeometryError("geometry is missing or not GeoJSON", item_id=item_id)
    gtype = geojson["type"]
    if gtype not in ("Point", "Polygon", "MultiPolygon"):
        raise GeometryError(f"geometry type {gtype!r} is not Point/Polygon/MultiPolygon", item_id=item_id)
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
        if 2 * radius_m > max_extent_m:
            raise GeometryError(
                f"absurd size: circle {2 * radius_m / 1000:.1f} km across "
                f"(limit {max_extent_m / 1000:.0f} km)",
                item_id=item_id,
            )
        cx, cy = (float(v) for v in projector.to_xy(lonlat.x, lonlat.y))
        circle = (cx, cy, float(radius_m))
        poly = shapely.buffer(shapely.Point(cx, cy), radius_m, quad_segs=_CIRCLE_QUAD_SEGS)
        return poly, circle
    if radius_m is not None:
        raise GeometryError("radius_m is only for a Point", item_id=item_id)
    geom = _project(lonlat, projector)
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
        raise GeometryError(
            f"absurd size: {extent / 1000:.1f} km across (limit {max_extent_m / 1000:.0f} km)",
            item_id=item_id,
        )
    return geom, None


def _with_band(zone: CompiledZone, band_m: float) -> CompiledZone:
    if zone.circle is not None:
        return zone
    width = band_m * (1 + _BAND_REL) + _BAND_ABS
    inner = shapely.buffer(zone.geometry, -width, quad_segs=8)
    outer = shapely.buffer(zone.geometry, width, quad_segs=8)
    boundary = shapely.boundary(zone.geometry)
    for g in (zone.geometry, inner, outer, boundary):
        shapely.prepare(g)
    return CompiledZone(**{**zone.__dict__, "inner": inner, "outer": outer, "boundary": boundary})


def _validity(props: Mapping[str, Any], item_id: str, outer: tuple[float, float]) -> tuple[float, float]:
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
    >>> [(v.zone_id, v.verdict) for v in cc.evaluate_fix(0, lon=-0.1276, lat=51.5072, accuracy_m=10)]
    [('z1', 'definite')]
    """
    if not isinstance(conditions, Mapping):
        conditions = msgspec.to_builtins(conditions)
    if not (max_accuracy_m > 0 and accuracy_scale > 0):
        raise ConditionsError("max_accuracy_m and accuracy_scale must be positive")
    projector = get_projector(crs)
    tz_name = _get(conditions, "timezone", "Europe/London")
    tz = get_timezone(tz_name)
    outer = _validity(conditions, str(_get(conditions, "offender_id", "conditions")), (-math.inf, math.inf))
    band = max_accuracy_m * accuracy_scale
    compiled: list[CompiledZone] = []
    seen: set[str] = set()

    def add(zone: CompiledZone) -> None:
        if zone.zone_id in seen:
            raise ConditionsError("zone_id/curfew_id is not unique", item_id=zone.zone_id)
        seen.add(zone.zone_id)
        compiled.append(_with_band(zone, band))

    for feature in _get(conditions, "zones", []):
        props = _get(feature, "properties", {})
        zone_id = str(props.get("zone_id") or feature.get("id") or "?")
        kind = props.get("kind")
        if kind not in ("exclusion", "inclusion"):
            raise ConditionsError(f"kind {kind!r} is not exclusion/inclusion", item_id=zone_id)
        geom, circle = _compile_geometry(
            zone_id, feature.get("geometry"), props.get("radius_m"), projector, max_extent_m
        )
        windows = props.get("schedule")
        schedule = parse_schedule(windows, timezone=tz, item_id=zone_id) if windows else None
        vf, vt = _validity(props, zone_id, outer)
        add(CompiledZone(zone_id, kind, geom, circle, schedule, vf, vt, props.get("name")))

    for curfew in _get(conditions, "curfews", []):
        curfew_id = str(curfew.get("curfew_id") or "?")
        geom, circle = _compile_geometry(
            curfew_id, curfew.get("geometry"), curfew.get("radius_m"), projector, max_extent_m
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
        add(CompiledZone(curfew_id, "curfew", geom, circle, schedule, outer[0], outer[1]))

    return CompiledConditions(
        offender_id=conditions.get("offender_id"),
        zones=tuple(compiled),
        projector=projector,
        timezone=tz_name,
        gps_interval_s=float(_get(conditions, "gps_interval_s", 60.0)),
        max_accuracy_m=float(max_accuracy_m),
        accuracy_scale=float(accuracy_scale),
    )


# --------------------------------------------------------------------------- batch engine


@dataclass(frozen=True, eq=False)
class BatchVerdicts:
    """Verdicts of many fixes, one row per (fix, zone of the fix's owner), fix-major.

    Attributes
    ----------
    offsets
        ``int64[n_fixes + 1]``: rows of fix ``i`` are ``offsets[i]:offsets[i + 1]``.
    fix
        ``int64[n_rows]`` fix index of each row.
    entry
        ``int32[n_rows]`` index into :attr:`ZoneIndex.zones`.
    verdict
        ``int8[n_rows]`` code (:mod:`geofences.verdicts`).
    depth_m
        ``float64[n_rows]`` signed depth into the breach region, NaN unless possible/definite.
    active_until_s
        ``float64[n_rows]`` end of the active period (``inf`` if open-ended), NaN if inactive.
    index
        The :class:`ZoneIndex` that produced them.
    """

    offsets: np.ndarray
    fix: np.ndarray
    entry: np.ndarray
    verdict: np.ndarray
    depth_m: np.ndarray
    active_until_s: np.ndarray
    index: ZoneIndex

    def __len__(self) -> int:
        return len(self.verdict)

    def zone_verdicts(self, fix: int) -> list[ZoneVerdict]:
        """Return the :class:`ZoneVerdict` list of fix number ``fix``."""
        out = []
        for row in range(int(self.offsets[fix]), int(self.offsets[fix + 1])):
            z = self.index.zones[int(self.entry[row])]
            code = int(self.verdict[row])
            depth = float(self.depth_m[row])
            until = float(self.active_until_s[row])
            out.append(
                ZoneVerdict(
                    zone_id=z.zone_id,
                    kind=z.kind,
                    verdict=V.verdict_name(code, curfew=z.kind == "curfew"),
                    code=code,
                    depth_m=None if math.isnan(depth) else depth,
                    active_until_s=None if math.isnan(until) else until,
                )
            )
        return out


class ZoneIndex:
    """Zones of many people, evaluated together; each fix only against its own owner's zones.

    Build once from compiled conditions (all compiled with the same CRS and accuracy settings),
    then call :meth:`evaluate` with arrays. Work is vectorised per *slot* (the k-th zone of each
    owner), so the Python loop runs over at most max-zones-per-person slots, never over fixes.
    Per slot: validity and schedule by array lookups; circles exactly with numpy; polygons by a
    bounding-box test, then prepared ``contains_xy`` against the outward and inward band buffers;
    only fixes within the band of a boundary get an exact ``distance``.

    Parameters
    ----------
    conditions
        A sequence (owner index = position) or a mapping ``owner key → CompiledConditions``.

    Notes
    -----
    Schedules are expanded to UTC intervals over a horizon around the evaluated times and cached;
    the cache is rebuilt when a batch falls outside it. Not thread-safe.
    """

    def __init__(self, conditions: Sequence[CompiledConditions] | Mapping[Any, CompiledConditions]):
        if isinstance(conditions, Mapping):
            keys, items = list(conditions.keys()), list(conditions.values())
        else:
            items = list(conditions)
            keys = [c.offender_id if c.offender_id is not None else i for i, c in enumerate(items)]
        self.owners: list[Any] = keys
        self._owner_pos = {k: i for i, k in enumerate(keys)}
        settings = {(c.projector.crs, c.max_accuracy_m, c.accuracy_scale) for c in items}
        if len(settings) > 1:
            raise ConditionsError(f"conditions compiled with different settings: {sorted(settings)}")
        first = items[0] if items else None
        self.projector = first.projector if first else get_projector()
        self.max_accuracy_m = first.max_accuracy_m if first else 100.0
        self.accuracy_scale = first.accuracy_scale if first else 1.0

        zones = [z for c in items for z in c.zones]
        self.zones: tuple[CompiledZone, ...] = tuple(zones)
        counts = np.array([len(c.zones) for c in items], dtype=np.int64)
        self._owner_count = counts
        self._owner_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._min_count = int(counts.min()) if len(counts) else 0
        self._max_count = int(counts.max()) if len(counts) else 0
        n = len(zones)
        self._kind = np.array([_KIND_CODE[z.kind] for z in zones], dtype=np.int8)
        self._is_circle = np.array([z.circle is not None for z in zones], dtype=bool)
        circ = np.array([z.circle or (np.nan, np.nan, np.nan) for z in zones], dtype=np.float64)
        circ = circ.reshape(n, 3)
        self._cx, self._cy, self._radius = circ[:, 0].copy(), circ[:, 1].copy(), circ[:, 2].copy()
        self._vf = np.array([z.valid_from_s for z in zones], dtype=np.float64)
        self._vt = np.array([z.valid_to_s for z in zones], dtype=np.float64)
        self._always = (self._vf == -np.inf) & (self._vt == np.inf)
        self._geom = np.array([z.geometry for z in zones], dtype=object)
        self._inner = np.array([z.inner for z in zones], dtype=object)
        self._outer = np.array([z.outer for z in zones], dtype=object)
        self._boundary = np.array([z.boundary for z in zones], dtype=object)
        ob = np.full((n, 4), np.nan)
        poly = ~self._is_circle
        if poly.any():
            ob[poly] = shapely.bounds(self._outer[poly])
        self._ominx, self._ominy, self._omaxx, self._omaxy = (ob[:, i].copy() for i in range(4))
        sched = [i for i, z in enumerate(zones) if z.schedule is not None]
        self._sched_entries = np.array(sched, dtype=np.int64)
        self._sched_rank = np.full(n, -1, dtype=np.int64)
        self._sched_rank[self._sched_entries] = np.arange(len(sched))
        self._horizon: tuple[float, float] | None = None
        self._iv_key = self._iv_end = np.empty(0)
        self._iv_rank = np.empty(0, np.int64)

    # -- owners -------------------------------------------------------------------------------

    def owner_indices(self, keys: Sequence[Any]) -> np.ndarray:
        """Return the owner index of each key (KeyError for an unknown owner)."""
        return np.fromiter((self._owner_pos[k] for k in keys), dtype=np.intp, count=len(keys))

    def zones_of(self, owner: int) -> tuple[CompiledZone, ...]:
        """Return the zones of owner index ``owner``."""
        s = int(self._owner_start[owner])
        return self.zones[s : s + int(self._owner_count[owner])]

    # -- schedules ----------------------------------------------------------------------------

    def _ensure_horizon(self, t0: float, t1: float) -> None:
        if self._horizon is not None and self._horizon[0] <= t0 and t1 <= self._horizon[1]:
            return
        h0 = math.floor(t0 / 86400.0) * 86400.0 - 86400.0
        h1 = max(math.ceil(t1 / 86400.0) * 86400.0, h0 + 8 * 86400.0) + 86400.0
        stride = h1 - h0 + 86400.0
        keys, ends, ranks = [], [], []
        for rank, e in enumerate(self._sched_entries):
            starts, stops = merged_intervals(self.zones[e].schedule, h0, h1)
            keys.append(rank * stride + (starts - h0))
            ends.append(stops)
            ranks.append(np.full(len(starts), rank, dtype=np.int64))
        self._iv_key = np.concatenate(keys) if keys else np.empty(0)
        self._iv_end = np.concatenate(ends) if ends else np.empty(0)
        self._iv_rank = np.concatenate(ranks) if ranks else np.empty(0, np.int64)
        self._stride = stride
        self._horizon = (h0, h1)

    def _schedule_lookup(self, e: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (active, window_end_s) of scheduled entries ``e`` at times ``ts``."""
        rank = self._sched_rank[e]
        h0 = self._horizon[0]
        pos = np.searchsorted(self._iv_key, rank * self._stride + (ts - h0), side="right") - 1
        ok = pos >= 0
        pos = np.where(ok, pos, 0)
        if len(self._iv_key):
            ok &= (self._iv_rank[pos] == rank) & (ts < self._iv_end[pos])
            return ok, np.where(ok, self._iv_end[pos], np.nan)
        return np.zeros(len(e), bool), np.full(len(e), np.nan)

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(
        self,
        owner: np.ndarray,
        ts_s: np.ndarray,
        *,
        accuracy_m: np.ndarray,
        x: np.ndarray | None = None,
        y: np.ndarray | None = None,
        lon: np.ndarray | None = None,
        lat: np.ndarray | None = None,
        with_depth: bool = True,
    ) -> BatchVerdicts:
        """Return the verdict of every fix against every zone of its owner.

        Parameters
        ----------
        owner
            Owner index of each fix (see :meth:`owner_indices`).
        ts_s
            Fix times, epoch seconds (UTC).
        accuracy_m
            Reported horizontal accuracy, metres; NaN or above the limit → ``unusable``.
        x, y
            Projected coordinates in metres, or
        lon, lat
            WGS84 degrees (projected here, which costs about 0.5 µs per fix).
        with_depth
            Compute ``depth_m`` (one exact distance per possible/definite row).
        """
        owner = np.asarray(owner, dtype=np.intp)
        ts = np.asarray(ts_s, dtype=np.float64)
        acc = np.asarray(accuracy_m, dtype=np.float64)
        if lon is not None:
            x, y = self.projector.to_xy(lon, lat)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n = len(ts)
        if not (len(owner) == len(acc) == len(x) == len(y) == n):
            raise ValueError("owner, ts_s, accuracy_m and coordinates must have the same length")
        count = self._owner_count[owner] if n else np.empty(0, np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(count, out=offsets[1:])
        rows = int(offsets[-1])
        out_entry = np.empty(rows, dtype=np.int32)
        out_verdict = np.empty(rows, dtype=np.int8)
        out_depth = np.full(rows, np.nan)
        out_until = np.empty(rows, dtype=np.float64)
        if rows:
            if len(self._sched_entries):
                self._ensure_horizon(float(ts.min()), float(ts.max()))
            radius = acc * self.accuracy_scale
            usable = acc <= self.max_accuracy_m  # False for NaN
            start = self._owner_start[owner]
            for k in range(int(count.max())):
                sel = None if k < self._min_count else np.flatnonzero(count > k)
                pick = (lambda a: a) if sel is None else (lambda a, s=sel: a[s])  # noqa: E731
                pos = pick(offsets[:-1]) + k
                e = pick(start) + k
                v, d, u = self._evaluate_slot(
                    e, pick(ts), pick(x), pick(y), pick(radius), pick(usable), with_depth
                )
                out_entry[pos] = e
                out_verdict[pos] = v
                out_depth[pos] = d
                out_until[pos] = u
        fix = np.repeat(np.arange(n, dtype=np.int64), count)
        return BatchVerdicts(offsets, fix, out_entry, out_verdict, out_depth, out_until, self)

    def _evaluate_slot(
        self,
        e: np.ndarray,
        ts: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        r: np.ndarray,
        usable: np.ndarray,
        with_depth: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = len(e)
        # Activity: validity, then schedules.
        vt = self._vt[e]
        if self._always[e].all():
            active = np.ones(m, bool)
        else:
            active = (ts >= self._vf[e]) & (ts < vt)
        until = vt.copy()
        if len(self._sched_entries):
            scheduled = np.flatnonzero(self._sched_rank[e] >= 0)
            if len(scheduled):
                ok, end = self._schedule_lookup(e[scheduled], ts[scheduled])
                active[scheduled] &= ok
                until[scheduled] = np.minimum(until[scheduled], end)
        until[~active] = np.nan

        verdict = np.full(m, V.INACTIVE, dtype=np.int8)
        verdict[active & ~usable] = V.UNUSABLE
        depth = np.full(m, np.nan)
        todo = np.flatnonzero(active & usable)
        if len(todo) == 0:
            return verdict, depth, until
        cls, s = self._classify(e[todo], x[todo], y[todo], r[todo])
        excl = self._kind[e[todo]] == 0
        v = np.where(excl, cls, 2 - cls).astype(np.int8)  # verdict codes: 0 clear, 1, 2 definite
        verdict[todo] = v
        if with_depth:
            breach = v != V.CLEAR
            need = breach & np.isnan(s)
            if need.any():
                i = np.flatnonzero(need)
                ei = e[todo[i]]
                dist = shapely.distance(self._boundary[ei], shapely.points(x[todo[i]], y[todo[i]]))
                s[i] = np.where(cls[i] == _INSIDE, dist, -dist)
            depth[todo[breach]] = np.where(excl[breach], s[breach], -s[breach])
        return verdict, depth, until

    def _classify(
        self, e: np.ndarray, x: np.ndarray, y: np.ndarray, r: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (class, signed distance or NaN): class 2 disc inside, 1 straddles, 0 outside."""
        m = len(e)
        cls = np.full(m, _OUTSIDE, dtype=np.int8)
        s = np.full(m, np.nan)
        circle = self._is_circle[e]
        ci = np.flatnonzero(circle) if not circle.all() else None
        if ci is None or len(ci):
            ec = e if ci is None else e[ci]
            xc = x if ci is None else x[ci]
            yc = y if ci is None else y[ci]
            rc = r if ci is None else r[ci]
            sc = self._radius[ec] - np.hypot(xc - self._cx[ec], yc - self._cy[ec])
            cc = np.where(sc >= rc, _INSIDE, np.where(sc < -rc, _OUTSIDE, _STRADDLE))
            if ci is None:
                return cc.astype(np.int8), sc
            cls[ci] = cc
            s[ci] = sc
        pi = np.flatnonzero(~circle)
        if len(pi) == 0:
            return cls, s
        ep, xp, yp = e[pi], x[pi], y[pi]
        near = (
            (xp >= self._ominx[ep])
            & (xp <= self._omaxx[ep])
            & (yp >= self._ominy[ep])
            & (yp <= self._omaxy[ep])
        )
        ni = np.flatnonzero(near)
        if len(ni) == 0:
            return cls, s
        en, xn, yn = ep[ni], xp[ni], yp[ni]
        in_outer = shapely.contains_xy(self._outer[en], xn, yn)
        oi = np.flatnonzero(in_outer)
        en, xn, yn = en[oi], xn[oi], yn[oi]
        in_inner = shapely.contains_xy(self._inner[en], xn, yn)
        cls[pi[ni[oi[in_inner]]]] = _INSIDE
        bi = np.flatnonzero(~in_inner)
        if len(bi):
            eb, xb, yb = en[bi], xn[bi], yn[bi]
            inside_pt = shapely.intersects_xy(self._geom[eb], xb, yb)
            dist = shapely.distance(self._boundary[eb], shapely.points(xb, yb))
            sb = np.where(inside_pt, dist, -dist)
            where = pi[ni[oi[bi]]]
            rb = r[where]
            cls[where] = np.where(sb >= rb, _INSIDE, np.where(sb < -rb, _OUTSIDE, _STRADDLE))
            s[where] = sb
        return cls, s
