"""Build tag trails for tests in projected metres, emitted as contract readings (WGS84)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import numpy as np
from pyproj import Transformer

from em_service.contracts import GpsReading

TO_M = Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)
TO_LL = Transformer.from_crs("EPSG:27700", "EPSG:4326", always_xy=True)
ORIGIN_X, ORIGIN_Y = TO_M.transform(-0.98, 51.45)  # a simulated town; coordinates only


def ll(x: float, y: float) -> tuple[float, float]:
    """Return (lon, lat) of projected metres (x, y)."""
    lon, lat = TO_LL.transform(x, y)
    return float(lon), float(lat)


def square(cx: float, cy: float, half_m: float) -> list:
    """Return GeoJSON Polygon coordinates of a square around (cx, cy) metres."""
    ring = [
        (cx - half_m, cy - half_m),
        (cx + half_m, cy - half_m),
        (cx + half_m, cy + half_m),
        (cx - half_m, cy + half_m),
        (cx - half_m, cy - half_m),
    ]
    return [[list(ll(x, y)) for x, y in ring]]


def zone(zone_id: str, cx: float, cy: float, half_m: float, kind: str = "exclusion") -> dict:
    """Return a square zone Feature."""
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": square(cx, cy, half_m)},
        "properties": {"zone_id": zone_id, "kind": kind},
    }


def curfew(
    curfew_id: str,
    x: float,
    y: float,
    radius_m: float = 60.0,
    start: str = "19:00",
    end: str = "07:00",
) -> dict:
    """Return a nightly curfew at (x, y) metres."""
    return {
        "curfew_id": curfew_id,
        "geometry": {"type": "Point", "coordinates": list(ll(x, y))},
        "radius_m": radius_m,
        "windows": [
            {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": start, "end": end}
        ],
    }


def fix(device_id: str, t: datetime, x: float, y: float, acc: float = 8.0) -> GpsReading:
    """Return a GPS reading at (x, y) metres."""
    lon, lat = ll(x, y)
    return GpsReading(device_id=device_id, ts=t, lat=lat, lon=lon, accuracy_m=float(acc))


def trail(
    device_id: str,
    t0: datetime,
    points: Iterable[tuple[float, float]],
    every_s: float = 60.0,
    acc: float = 8.0,
) -> list[GpsReading]:
    """Return fixes every ``every_s`` along ``points`` (metres), no noise."""
    return [
        fix(device_id, t0 + timedelta(seconds=i * every_s), x, y, acc)
        for i, (x, y) in enumerate(points)
    ]


def noisy_stay(
    device_id: str,
    t0: datetime,
    x: float,
    y: float,
    n: int,
    rng: np.random.Generator,
    acc_range: tuple[float, float] = (5.0, 30.0),
    every_s: float = 60.0,
) -> list[GpsReading]:
    """Return ``n`` fixes of a stationary tag with error drawn consistently with the accuracy.

    Each fix reports an accuracy in ``acc_range``; its error is 2-D Gaussian with
    sigma = accuracy / 2 per axis (about 86 % of fixes within the stated radius).
    """
    acc = rng.uniform(*acc_range, size=n)
    dx, dy = rng.normal(0.0, acc / 2), rng.normal(0.0, acc / 2)
    return [
        fix(device_id, t0 + timedelta(seconds=i * every_s), x + dx[i], y + dy[i], acc[i])
        for i in range(n)
    ]


def line(x0: float, y0: float, x1: float, y1: float, n: int) -> list[tuple[float, float]]:
    """Return ``n`` points from (x0, y0) to (x1, y1) inclusive."""
    return list(zip(np.linspace(x0, x1, n), np.linspace(y0, y1, n), strict=True))
