"""Scene truth: everyone whose true trail entered a scene's radius in its window.

Services match on *recorded* fixes with accuracy-discounted distances (``distance - accuracy``,
interpolated between fixes), so a fix whose accuracy disc comes within the radius plus the near
margin (noise, a multipath outlier) can raise a legitimate weak match even where the true trail
stayed further away: such people get an ``optional`` ``near_scene`` record for that time too
(too close to call from the evidence).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.geo import segment_point_distance
from simulator.scenes import AT_SCENE_DWELL_S, proximity
from simulator.truth import TruthRecord, record

if TYPE_CHECKING:
    from simulator.engine import Simulation

#: True closest approach within this of the radius (either side) is too close to call.
BORDER_M = 25.0
#: Matches just outside the window, within this pad, are optional (services pad windows).
SCENE_PAD_S = 3600.0
#: A service's "near the scene" margin beyond the radius (for accuracy-discounted fixes).
NEAR_MARGIN_M = 50.0
#: Consecutive fixes further apart than this are not interpolated (as services do).
MAX_GAP_S = 600.0


def scene_truth(sim: Simulation) -> list[TruthRecord]:
    """Return matches for everyone whose true trail entered a scene's radius in its window."""
    interval = sim.config.gps_interval_s
    scripted = {sc.scene_id: s.person for s in sim.scripts for sc in s.scenes}
    out = []
    for sc in sim.scene_specs:
        ws, we = sc.window_s
        exact = proximity(sim.trajectories, sc.centre, sc.radius_m, ws, we)
        padded = proximity(
            sim.trajectories, sc.centre, sc.radius_m, ws - SCENE_PAD_S, we + SCENE_PAD_S
        )
        owner = scripted.get(sc.scene_id)
        near = np.flatnonzero(padded.min_distance_m <= sc.radius_m + NEAR_MARGIN_M)
        for i in near:
            p = sim.persons[int(i)]
            if owner is not None and owner.index == p.index:
                continue
            inside = exact.min_distance_m[i] <= sc.radius_m
            border = exact.min_distance_m[i] > sc.radius_m - BORDER_M
            src = exact if inside else padded
            dwell = float(src.dwell_s[i])
            klass = (
                "at_scene"
                if dwell >= AT_SCENE_DWELL_S
                else ("passed_by" if dwell > 0 else "near_scene")
            )
            first = (
                float(src.first_in_s[i])
                if np.isfinite(src.first_in_s[i])
                else float(src.closest_s[i])
            )
            last = (
                float(src.last_in_s[i])
                if np.isfinite(src.last_in_s[i])
                else float(src.closest_s[i])
            )
            label = sc.scenario if owner is not None else "background"
            out.append(
                record(
                    "match",
                    "scene_proximity",
                    label if owner is None else "incidental",
                    at_s=float(src.closest_s[i]),
                    from_s=first - interval - 60.0,
                    to_s=last + interval + 60.0,
                    episode=(first, last),
                    match_class=klass,
                    optional=bool(not inside or border),
                    scene_id=sc.scene_id,
                    offender_id=p.offender_id,
                    device_id=p.gps_device_id,
                    details={
                        "closest_approach_m": round(float(src.min_distance_m[i]), 2),
                        "dwell_s": round(dwell, 1),
                        "in_window": bool(inside),
                        "radius_m": sc.radius_m,
                    },
                )
            )
        out += _measured_near(sim, sc, owner)
    return out


def _measured_near(sim: Simulation, sc, owner) -> list[TruthRecord]:
    """Return optional ``near_scene`` records for everyone but the scene's scripted person whose
    recorded fixes (or the straight line between two of them) came, accuracy-discounted, within
    the radius plus the near margin during the padded window (outliers and noise included); a
    true match of the same person keeps precedence (required records match first)."""
    f, interval = sim.fixes, sim.config.gps_interval_s
    ws, we = sc.window_s
    m = (f.ts_s >= ws - SCENE_PAD_S - MAX_GAP_S) & (f.ts_s <= we + SCENE_PAD_S + MAX_GAP_S)
    dev, ts, x, y, acc = f.dev[m], f.ts_s[m], f.x_m[m], f.y_m[m], f.accuracy_m[m]
    if len(dev) < 2:
        return []
    pair = (dev[1:] == dev[:-1]) & (np.diff(ts) <= MAX_GAP_S)
    seg, _u = segment_point_distance(x[:-1], y[:-1], x[1:], y[1:], *sc.centre)
    seg_disc = np.where(pair, seg - np.maximum(acc[:-1], acc[1:]), np.inf)
    disc = np.hypot(x - sc.centre[0], y - sc.centre[1]) - acc
    disc[:-1] = np.minimum(disc[:-1], seg_disc)
    padded = (ts >= ws - SCENE_PAD_S) & (ts <= we + SCENE_PAD_S)
    close = padded & (disc <= sc.radius_m + NEAR_MARGIN_M)
    out = []
    for d in np.unique(dev[close]):
        i = int(d)
        if owner is not None and i == owner.index:
            continue
        rows = np.flatnonzero(close & (dev == d))
        best = rows[np.argmin(disc[rows])]
        p = sim.persons[i]
        out.append(
            record(
                "match",
                "scene_proximity",
                "background" if owner is None else "incidental",
                at_s=float(ts[best]),
                from_s=float(ts[rows[0]]) - interval - 60.0,
                to_s=float(ts[rows[-1]]) + 2 * interval + 60.0,
                match_class="near_scene",
                optional=True,
                scene_id=sc.scene_id,
                offender_id=p.offender_id,
                device_id=p.gps_device_id,
                details={
                    "closest_fix_discounted_m": round(float(disc[best]), 2),
                    "radius_m": sc.radius_m,
                    "reason": "a recorded fix's accuracy disc came within radius + near margin",
                },
            )
        )
    return out
