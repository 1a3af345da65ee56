"""Builders for geofences tests: zones in metres near London, GeoJSON features, GPS noise."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely
from hypothesis import HealthCheck, settings

from geofences import CompiledConditions, CompiledZone, compile_zones
from geofences.projection import get_projector
from geofences.schedule import Schedule

#: A point in central London, British National Grid metres.
ORIGIN = (530_000.0, 180_000.0)
#: Per-axis sigma of a GPS error whose 68 % radius is ``accuracy_m`` (Rayleigh: 1.509 sigma).
SIGMA_PER_ACCURACY = 1 / 1.509
#: Hypothesis settings for property tests: moderate, no deadline (GEOS warm-up varies).
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def utc(*args: int) -> float:
    """Return epoch seconds of a UTC date-time."""
    return datetime(*args, tzinfo=UTC).timestamp()


def zone(
    zone_id: str,
    kind: str = "exclusion",
    geometry: shapely.Geometry | None = None,
    *,
    circle: tuple[float, float, float] | None = None,
    schedule: Schedule | None = None,
    valid_from_s: float = -math.inf,
    valid_to_s: float = math.inf,
) -> CompiledZone:
    """Return an uncompiled zone in projected metres (for :func:`conditions_xy`)."""
    return CompiledZone(zone_id, kind, geometry, circle, schedule, valid_from_s, valid_to_s)


def conditions_xy(
    *zones: CompiledZone, offender_id: str | None = "o1", **kw: Any
) -> CompiledConditions:
    """Return compiled conditions from zones in metres."""
    return compile_zones(list(zones), offender_id=offender_id, **kw)


def square(cx: float, cy: float, half_m: float) -> shapely.Polygon:
    """Return an axis-aligned square, metres."""
    return shapely.box(cx - half_m, cy - half_m, cx + half_m, cy + half_m)


def lonlat(x: float | np.ndarray, y: float | np.ndarray) -> tuple[Any, Any]:
    """Return WGS84 lon/lat of British National Grid metres."""
    lon, lat = get_projector().to_lonlat(x, y)
    return lon, lat


def polygon_feature(
    zone_id: str, ring_xy: np.ndarray, kind: str = "exclusion", **props: Any
) -> dict:
    """Return a GeoJSON Polygon Feature (WGS84) from a ring in metres."""
    ring_xy = np.asarray(ring_xy, dtype=float)
    lon, lat = lonlat(ring_xy[:, 0], ring_xy[:, 1])
    ring = np.column_stack([lon, lat]).tolist()
    ring[-1] = ring[0]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"zone_id": zone_id, "kind": kind, **props},
    }


def circle_feature(
    zone_id: str, x: float, y: float, radius_m: float, kind: str = "exclusion", **props: Any
) -> dict:
    """Return a GeoJSON Point + radius_m Feature (WGS84) centred on metres ``x, y``."""
    lon, lat = lonlat(x, y)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
        "properties": {"zone_id": zone_id, "kind": kind, "radius_m": radius_m, **props},
    }


def noisy(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, accuracy_m: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return positions with a GPS error drawn consistently with ``accuracy_m`` (68 % radius)."""
    sigma = np.asarray(accuracy_m) * SIGMA_PER_ACCURACY
    return x + rng.normal(0.0, sigma), y + rng.normal(0.0, sigma)
