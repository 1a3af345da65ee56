"""Per-person conditions: exclusion zones (some scheduled), an inclusion zone, a home curfew.

Background zones are placed 0.3–3 km from home with at least :data:`CLEARANCE_M` between the zone
and every path the person may take (all candidate routes between home and regular places, and any
scripted path), so a background person never truly enters one. Shapes are circles (GeoJSON Point +
``radius_m``) or rotated rectangles. What is published is rounded to 1e-7 degree; the ground truth
uses the geometry *as published* (converted back to local metres).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import msgspec
import numpy as np
import shapely

from em_service.contracts import (
    Conditions,
    Curfew,
    PointGeometry,
    PolygonGeometry,
    WeeklyWindow,
    ZoneFeature,
    ZoneProperties,
)
from simulator.cohort import ALL_WEEK, XY, Person, routes_geometry
from simulator.geo import Circle, ConvexPolygon, LocalFrame, Shape, rectangle

CLEARANCE_M = 150.0
INCLUSION_MARGIN_M = 600.0
Window = tuple[tuple[str, ...], str, str]
ZONE_SCHEDULES: tuple[Window, ...] = (
    (("fri", "sat"), "20:00", "04:00"),
    (("mon", "tue", "wed", "thu", "fri"), "08:00", "18:00"),
    (ALL_WEEK, "22:00", "06:00"),
)


@dataclass(frozen=True, eq=False)
class ZoneSpec:
    """A zone as published: ``shape`` in local metres recomputed from the rounded coordinates."""

    zone_id: str
    kind: Literal["exclusion", "inclusion"]
    shape: Shape
    geometry: PointGeometry | PolygonGeometry
    schedule: tuple[Window, ...] | None = None
    name: str | None = None
    scenario_id: str | None = None


def publish(frame: LocalFrame, shape: Shape) -> tuple[PointGeometry | PolygonGeometry, Shape]:
    """Return the GeoJSON geometry of ``shape`` and the shape as that geometry describes it."""
    if isinstance(shape, Circle):
        lon, lat = frame.to_lonlat(shape.cx_m, shape.cy_m)
        x, y = frame.to_xy(lon, lat)
        return PointGeometry([float(lon), float(lat)]), Circle(float(x), float(y), shape.r_m)
    lon, lat = frame.to_lonlat(shape.xs_m, shape.ys_m)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    x, y = frame.to_xy(lon, lat)
    return PolygonGeometry([ring]), ConvexPolygon(x, y)


def make_zone(
    frame: LocalFrame,
    zone_id: str,
    shape: Shape,
    *,
    kind: Literal["exclusion", "inclusion"] = "exclusion",
    schedule: tuple[Window, ...] | None = None,
    name: str | None = None,
    scenario_id: str | None = None,
) -> ZoneSpec:
    """Return a publishable zone for ``shape``."""
    geometry, published = publish(frame, shape)
    return ZoneSpec(zone_id, kind, published, geometry, schedule, name, scenario_id)


def place_background_zones(
    person: Person,
    rng: np.random.Generator,
    frame: LocalFrame,
    *,
    count: int,
    avoid_paths: list[list[XY]],
    taken: list[ZoneSpec],
    half_size_m: float,
    scheduled_fraction: float,
) -> list[ZoneSpec]:
    """Return ``count`` exclusion zones clear of ``avoid_paths`` and of the zones ``taken``.

    Candidates are circles (r 100–350 m) or rotated rectangles (sides 150–600 m) 0.3–3 km from
    home; a candidate is kept when its bounding circle keeps :data:`CLEARANCE_M` from every path
    and 20 m from the other zones (conservative for rectangles).
    """
    if count <= 0:
        return []
    avoid = routes_geometry(avoid_paths)
    centres = [z.shape.centre for z in taken]
    bounds = [z.shape.bounding_radius_m for z in taken]
    out: list[ZoneSpec] = []
    for _attempt in range(20):
        n = 32
        dist = rng.uniform(300, 3000, size=n)
        ang = rng.uniform(0, 2 * np.pi, size=n)
        cx = np.clip(person.home[0] + dist * np.cos(ang), -half_size_m, half_size_m)
        cy = np.clip(person.home[1] + dist * np.sin(ang), -half_size_m, half_size_m)
        circle = rng.random(n) < 0.5
        radius = rng.uniform(100, 350, size=n)
        side_w, side_h = rng.uniform(150, 600, size=(2, n))
        turn = rng.uniform(0, np.pi, size=n)
        sched = rng.random(n)
        which = rng.integers(len(ZONE_SCHEDULES), size=n)
        bound = np.where(circle, radius, np.hypot(side_w, side_h) / 2)
        ok = shapely.distance(shapely.points(cx, cy), avoid) - bound >= CLEARANCE_M
        for j in np.flatnonzero(ok):
            if len(out) >= count:
                return out
            if centres:
                c = np.asarray(centres)
                gap = np.hypot(c[:, 0] - cx[j], c[:, 1] - cy[j]) - np.asarray(bounds) - bound[j]
                if np.any(gap < 20.0):
                    continue
            if circle[j]:
                shape: Shape = Circle(float(cx[j]), float(cy[j]), float(radius[j]))
            else:
                shape = rectangle(
                    float(cx[j]), float(cy[j]), float(side_w[j]), float(side_h[j]), float(turn[j])
                )
            k = len(taken) + len(out)
            schedule = (ZONE_SCHEDULES[which[j]],) if sched[j] < scheduled_fraction else None
            out.append(
                make_zone(
                    frame, f"z-{person.index:05d}-{k}", shape, schedule=schedule,
                    name=f"Simulated exclusion zone {k}",
                )
            )
            centres.append((float(cx[j]), float(cy[j])))
            bounds.append(float(bound[j]))
        if len(out) >= count:
            break
    return out


def inclusion_shape(paths: list[list[XY]], margin_m: float = INCLUSION_MARGIN_M) -> ConvexPolygon:
    """Return the axis-aligned rectangle around ``paths``, ``margin_m`` wider on every side."""
    pts = np.concatenate([np.asarray(p, float) for p in paths])
    x0, y0 = pts.min(axis=0) - margin_m
    x1, y1 = pts.max(axis=0) + margin_m
    return ConvexPolygon(np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1]))


def curfew_circle(frame: LocalFrame, person: Person) -> tuple[PointGeometry, Circle]:
    """Return the published curfew address (home point) and its circle in local metres."""
    assert person.curfew is not None
    geometry, shape = publish(frame, Circle(*person.home, person.curfew.radius_m))
    assert isinstance(geometry, PointGeometry) and isinstance(shape, Circle)
    return geometry, shape


def _windows(windows: tuple[Window, ...]) -> list[WeeklyWindow]:
    return [WeeklyWindow(days=list(d), start=s, end=e) for d, s, e in windows]


def build_conditions(
    frame: LocalFrame,
    person: Person,
    zones: list[ZoneSpec],
    *,
    gps_interval_s: float,
    timezone: str,
    updated_at: datetime,
) -> Conditions:
    """Return the ``Conditions`` message of ``person`` (validated by the contract)."""
    features = [
        ZoneFeature(
            geometry=z.geometry,
            properties=ZoneProperties(
                zone_id=z.zone_id,
                kind=z.kind,
                name=z.name,
                radius_m=z.shape.r_m if isinstance(z.shape, Circle) else None,
                schedule=_windows(z.schedule) if z.schedule else None,
            ),
            id=z.zone_id,
        )
        for z in zones
    ]
    curfews = []
    if person.curfew is not None:
        point, _circle = curfew_circle(frame, person)
        curfews.append(
            Curfew(
                curfew_id=person.curfew.curfew_id,
                geometry=point,
                windows=_windows(person.curfew.windows),
                radius_m=person.curfew.radius_m,
            )
        )
    cond = Conditions(
        offender_id=person.offender_id,
        device_ids=person.device_ids,
        zones=features,
        curfews=curfews,
        alcohol_monitoring=person.alcohol_device_id is not None,
        timezone=timezone,
        gps_interval_s=float(gps_interval_s),
        updated_at=updated_at - timedelta(days=1),
    )
    # Round-trip through the decoder so that __post_init__ checks run exactly as for the service.
    return msgspec.json.decode(msgspec.json.encode(cond), type=Conditions)
