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

from em_service.contracts import (
    Conditions,
    Curfew,
    PointGeometry,
    PolygonGeometry,
    WeeklyWindow,
    ZoneFeature,
    ZoneProperties,
)
from simulator.cohort import ALL_WEEK, XY, Person
from simulator.geo import (
    Circle,
    ConvexPolygon,
    LocalFrame,
    Shape,
    distance_to_segments,
    path_segments,
    rectangle,
)

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


def publish_many(
    frame: LocalFrame, shapes: list[Shape]
) -> list[tuple[PointGeometry | PolygonGeometry, Shape]]:
    """Return, per shape, its GeoJSON geometry and the shape as that geometry describes it.

    All coordinates go through the projection in one call each way (rounded to 1e-7 degree).
    """
    xs: list[float] = []
    ys: list[float] = []
    counts = []
    for shape in shapes:
        if isinstance(shape, Circle):
            px, py = [shape.cx_m], [shape.cy_m]
        else:
            px, py = shape.xs_m.tolist(), shape.ys_m.tolist()
        xs += px
        ys += py
        counts.append(len(px))
    lon, lat = frame.to_lonlat(np.asarray(xs), np.asarray(ys))
    bx, by = frame.to_xy(lon, lat)
    lon, lat, bx, by = (np.atleast_1d(v).tolist() for v in (lon, lat, bx, by))
    out: list[tuple[PointGeometry | PolygonGeometry, Shape]] = []
    k = 0
    for shape, n in zip(shapes, counts, strict=True):
        if isinstance(shape, Circle):
            out.append((PointGeometry([lon[k], lat[k]]), Circle(bx[k], by[k], shape.r_m)))
        else:
            ring = [[a, b] for a, b in zip(lon[k : k + n], lat[k : k + n], strict=True)]
            ring.append(ring[0])
            polygon = ConvexPolygon(np.asarray(bx[k : k + n]), np.asarray(by[k : k + n]))
            out.append((PolygonGeometry([ring]), polygon))
        k += n
    return out


def publish(frame: LocalFrame, shape: Shape) -> tuple[PointGeometry | PolygonGeometry, Shape]:
    """Return the GeoJSON geometry of ``shape`` and the shape as that geometry describes it."""
    return publish_many(frame, [shape])[0]


@dataclass(frozen=True, eq=False)
class ZoneDraft:
    """A zone before publication (local shape, not yet rounded)."""

    zone_id: str
    shape: Shape
    schedule: tuple[Window, ...] | None
    name: str


def publish_drafts(frame: LocalFrame, drafts: list[ZoneDraft]) -> list[ZoneSpec]:
    """Return exclusion zones for ``drafts``, projected in one go."""
    published = publish_many(frame, [d.shape for d in drafts]) if drafts else []
    return [
        ZoneSpec(d.zone_id, "exclusion", shape, geometry, d.schedule, d.name)
        for d, (geometry, shape) in zip(drafts, published, strict=True)
    ]


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
    *,
    count: int,
    avoid_paths: list[list[XY]],
    taken: list[ZoneSpec],
    half_size_m: float,
    scheduled_fraction: float,
) -> list[ZoneDraft]:
    """Return ``count`` exclusion zones clear of ``avoid_paths`` and of the zones ``taken``.

    Candidates are circles (r 100–350 m) or rotated rectangles (sides 150–600 m) 0.3–3 km from
    home; a candidate is kept when its bounding circle keeps :data:`CLEARANCE_M` from every path
    and 20 m from the other zones (conservative for rectangles).
    """
    if count <= 0:
        return []
    segments = path_segments(avoid_paths)
    centres = [z.shape.centre for z in taken]
    bounds = [z.shape.bounding_radius_m for z in taken]
    out: list[ZoneDraft] = []
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
        ok = distance_to_segments(cx, cy, segments) - bound >= CLEARANCE_M
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
                ZoneDraft(
                    f"z-{person.index:05d}-{k}", shape, schedule, f"Simulated exclusion zone {k}"
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


def curfew_addresses(
    frame: LocalFrame, persons: list[Person]
) -> dict[int, tuple[PointGeometry, Circle]]:
    """Return, per person with a curfew, the published address (home point) and its circle."""
    with_curfew = [p for p in persons if p.curfew is not None]
    shapes: list[Shape] = [Circle(*p.home, p.curfew.radius_m) for p in with_curfew]  # type: ignore[union-attr]
    published = publish_many(frame, shapes) if shapes else []
    return {p.index: pub for p, pub in zip(with_curfew, published, strict=True)}  # type: ignore[misc]


def _windows(windows: tuple[Window, ...]) -> list[WeeklyWindow]:
    return [WeeklyWindow(days=list(d), start=s, end=e) for d, s, e in windows]


def build_conditions(
    person: Person,
    zones: list[ZoneSpec],
    *,
    curfew_point: PointGeometry | None,
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
        assert curfew_point is not None
        curfews.append(
            Curfew(
                curfew_id=person.curfew.curfew_id,
                geometry=curfew_point,
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
