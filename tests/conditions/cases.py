"""Conditions documents the worker refuses, one per case seen in probing, and a valid base."""

from __future__ import annotations

import math
from typing import Any


def rect(w: float, s: float, e: float, n: float) -> list[list[float]]:
    """A closed counter-clockwise ring around the box [w, e] × [s, n] (lon, lat degrees)."""
    return [[w, s], [e, s], [e, n], [w, n], [w, s]]


def circle_ring(
    positions: int, lon: float = -0.973, lat: float = 51.455, radius_m: float = 2000.0
) -> list[list[float]]:
    """A closed ring of ``positions`` positions (the closing one included) on a circle."""
    n = positions - 1
    ring = [
        [
            round(lon + radius_m / 69_400 * math.cos(2 * math.pi * i / n), 7),
            round(lat + radius_m / 111_200 * math.sin(2 * math.pi * i / n), 7),
        ]
        for i in range(n)
    ]
    return [*ring, ring[0]]


def polygon_zone(rings: list[list[list[float]]], zone_id: str = "zone-1") -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": rings},
        "properties": {"zone_id": zone_id, "kind": "exclusion"},
    }


def doc(offender_id: str, device_id: str, **fields: Any) -> dict[str, Any]:
    """A conditions document for one offender and device with ``fields`` added."""
    return {"offender_id": offender_id, "device_ids": [device_id], **fields}


#: A small valid exclusion zone in Reading (about 280 m × 440 m).
VALID_ZONE = polygon_zone([rect(-0.975, 51.453, -0.971, 51.457)])

#: case → (zones, a phrase the reason contains)
REFUSED: dict[str, tuple[list[dict[str, Any]], str]] = {
    "bowtie": (
        [
            polygon_zone(
                [[[-0.97, 51.45], [-0.96, 51.46], [-0.96, 51.45], [-0.97, 51.46], [-0.97, 51.45]]]
            )
        ],
        "Self-intersection",
    ),
    "outside_crs_area": (
        [polygon_zone([rect(-74.01, 40.70, -74.00, 40.71)])],  # New York
        "outside the area of use of EPSG:27700",
    ),
    "335_km": ([polygon_zone([rect(-2.0, 50.8, 0.0, 53.8)])], "absurd size: 33"),
    "over_vertex_cap": (  # EM_MAX_ZONE_VERTICES, default 5,000
        [polygon_zone([circle_ring(5_001)])],
        "polygon has 5,001 vertices",
    ),
    "hole_outside_shell": (
        [polygon_zone([rect(-0.975, 51.453, -0.971, 51.457), rect(-0.95, 51.40, -0.94, 51.41)])],
        "Hole lies outside shell",
    ),
}
