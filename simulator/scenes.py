"""Reported crime scenes and the true proximity of every trail to them.

A scene is a point, a search radius (100 m) and the window in which the crime happened. For the
ground truth, each person's true trail inside the window is compared with the scene exactly
(straight pieces against a circle): closest approach, and dwell time within the radius.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from em_service.contracts import Scene
from simulator.cohort import XY
from simulator.geo import Circle, LocalFrame, inside_fraction, segment_point_distance
from simulator.localtime import as_utc
from simulator.movement import Trajectories

RADIUS_M = 100.0
AT_SCENE_DWELL_S = 300.0


@dataclass
class SceneSpec:
    """A scene to publish; ``centre`` is local metres as published (after rounding)."""

    scene_id: str
    crime_reference: str
    crime_type: str
    centre: XY
    lon: float
    lat: float
    window_s: tuple[float, float]
    reported_s: float
    radius_m: float = RADIUS_M
    scenario: str = "background"
    scenario_id: str | None = None
    facts: dict = field(default_factory=dict)

    def message(self) -> Scene:
        """Return the ``Scene`` contract message."""
        return Scene(
            scene_id=self.scene_id,
            crime_reference=self.crime_reference,
            crime_type=self.crime_type,
            lat=self.lat,
            lon=self.lon,
            window_start=as_utc(self.window_s[0]),
            window_end=as_utc(self.window_s[1]),
            reported_at=as_utc(self.reported_s),
            radius_m=self.radius_m,
            source="simulator",
        )


def make_scene(
    frame: LocalFrame,
    scene_id: str,
    centre: XY,
    window_s: tuple[float, float],
    reported_s: float,
    *,
    crime_type: str = "burglary_dwelling",
    scenario: str = "background",
    scenario_id: str | None = None,
) -> SceneSpec:
    """Return a scene at ``centre`` (local metres), rounded as it will be published."""
    lon, lat = frame.to_lonlat(*centre)
    x, y = frame.to_xy(lon, lat)
    return SceneSpec(
        scene_id=scene_id,
        crime_reference=f"SIM/{scene_id}",
        crime_type=crime_type,
        centre=(float(x), float(y)),
        lon=float(lon),
        lat=float(lat),
        window_s=window_s,
        reported_s=reported_s,
        scenario=scenario,
        scenario_id=scenario_id,
    )


@dataclass(frozen=True, slots=True)
class Proximity:
    """Per person: closest true approach (m) and when, dwell within the radius (s), first/last in."""

    min_distance_m: np.ndarray
    closest_s: np.ndarray
    dwell_s: np.ndarray
    first_in_s: np.ndarray
    last_in_s: np.ndarray


def proximity(
    traj: Trajectories, centre: XY, radius_m: float, t0_s: float, t1_s: float
) -> Proximity:
    """Return every person's true proximity to ``centre`` during ``[t0_s, t1_s]``."""
    person, a, b, x0, y0, x1, y1, _indoor = traj.all_pieces()
    m = (b > t0_s) & (a < t1_s)
    person, a, b, x0, y0, x1, y1 = (v[m] for v in (person, a, b, x0, y0, x1, y1))
    dur = np.maximum(b - a, 1e-9)
    ca, cb = np.maximum(a, t0_s), np.minimum(b, t1_s)
    ua, ub = (ca - a) / dur, (cb - a) / dur
    cx0, cy0 = x0 + ua * (x1 - x0), y0 + ua * (y1 - y0)
    cx1, cy1 = x0 + ub * (x1 - x0), y0 + ub * (y1 - y0)
    dist, u = segment_point_distance(cx0, cy0, cx1, cy1, *centre)
    u_in, u_out = inside_fraction(Circle(*centre, radius_m), cx0, cy0, cx1, cy1)
    inside = np.clip(u_out - u_in, 0.0, None) * (cb - ca)
    n = len(traj)
    min_d = np.full(n, np.inf)
    np.minimum.at(min_d, person, dist)
    best = dist <= min_d[person]
    closest = np.full(n, np.nan)
    closest[person[best]] = (ca + u * (cb - ca))[best]
    dwell = np.zeros(n)
    np.add.at(dwell, person, inside)
    hit = inside > 0
    first_in = np.full(n, np.inf)
    last_in = np.full(n, -np.inf)
    np.minimum.at(first_in, person[hit], (ca + u_in * (cb - ca))[hit])
    np.maximum.at(last_in, person[hit], (ca + u_out * (cb - ca))[hit])
    return Proximity(min_d, closest, dwell, first_in, last_in)
