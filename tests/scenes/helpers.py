"""Trails built for the purpose, in metres around a simulated scene (coordinates only)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import numpy as np

from em_service.contracts import GpsReading, Scene
from em_service.scenes.matching import SceneGeom, Trail
from geofences.projection import get_projector

PROJ = get_projector("EPSG:27700")
#: The scene centre: a simulated town, projected once.
LON0, LAT0 = -0.98, 51.45
X0, Y0 = (float(v) for v in PROJ.to_xy(LON0, LAT0))
#: The crime window: 12 h overnight (UTC), inside the tests' retention and skew limits.
W0 = datetime(2026, 10, 20, 20, 0, tzinfo=UTC)
W1 = W0 + timedelta(hours=12)


def scene_msg(
    scene_id: str = "sc-1",
    *,
    start: datetime = W0,
    end: datetime = W1,
    radius_m: float = 100.0,
    dx_m: float = 0.0,
    dy_m: float = 0.0,
    crime_reference: str | None = None,
    low_precision: bool = False,
) -> Scene:
    """Return a ``Scene`` at (dx, dy) metres from the centre."""
    lon, lat = PROJ.to_lonlat(X0 + dx_m, Y0 + dy_m)
    return Scene(
        scene_id=scene_id,
        crime_reference=crime_reference or f"CR/{scene_id}",
        crime_type="burglary_dwelling",
        lat=float(lat),
        lon=float(lon),
        window_start=start,
        window_end=end,
        reported_at=end + timedelta(hours=1),
        radius_m=radius_m,
        low_precision=low_precision,
    )


def geom(scene: Scene | None = None) -> SceneGeom:
    return SceneGeom.of(scene or scene_msg(), PROJ)


Point = tuple[datetime, float, float]  # (time, dx_m, dy_m) from the scene centre


def stand(start: datetime, minutes: float, dx_m: float, dy_m: float, every_s: float = 60.0):
    """Return points standing at (dx, dy) from ``start`` for ``minutes``, one per ``every_s``."""
    n = int(minutes * 60 / every_s) + 1
    return [(start + timedelta(seconds=i * every_s), dx_m, dy_m) for i in range(n)]


def walk(start: datetime, a: tuple[float, float], b: tuple[float, float], every_s: float, n: int):
    """Return ``n`` points evenly from ``a`` to ``b`` (metres from the centre), ``every_s`` apart."""
    return [
        (
            start + timedelta(seconds=i * every_s),
            a[0] + (b[0] - a[0]) * i / (n - 1),
            a[1] + (b[1] - a[1]) * i / (n - 1),
        )
        for i in range(n)
    ]


def readings(device_id: str, points: Iterable[Point], accuracy_m: float = 8.0) -> list[GpsReading]:
    """Return GPS readings (WGS84) for points in metres from the centre."""
    out = []
    for t, dx, dy in points:
        lon, lat = PROJ.to_lonlat(X0 + dx, Y0 + dy)
        out.append(
            GpsReading(
                device_id=device_id, ts=t, lat=float(lat), lon=float(lon), accuracy_m=accuracy_m
            )
        )
    return out


def trail(
    points: list[Point], offender_id: str = "off-1", device_id: str = "tag-1", acc: float = 8.0
) -> Trail:
    """Return a matching ``Trail`` for points in metres from the centre."""
    ts = np.array([p[0].timestamp() for p in points])
    x = np.array([X0 + p[1] for p in points])
    y = np.array([Y0 + p[2] for p in points])
    lon, lat = PROJ.to_lonlat(x, y)
    return Trail.of(
        offender_id, [device_id] * len(points), ts, x, y, np.full(len(ts), acc), lon, lat
    )


def enrol(store, people: dict[str, list[GpsReading]], *, since: datetime | None = None) -> None:
    """Give each offender (key) the device of their readings and archive the readings."""
    from em_service.store import offenders, trail
    from tests.store.factories import conditions

    with store.write() as s:
        for offender_id, fixes in people.items():
            device = fixes[0].device_id
            offenders.put_conditions(
                s,
                conditions=conditions(offender_id, [device]),
                changed_at=since or (W0 - timedelta(days=3)),
            )
            trail.insert_fixes(s, readings=fixes, crs="EPSG:27700")
