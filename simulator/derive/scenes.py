"""Scene truth: everyone whose true trail entered a scene's radius in its window."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.scenes import AT_SCENE_DWELL_S, proximity
from simulator.truth import TruthRecord, record

if TYPE_CHECKING:
    from simulator.engine import Simulation

#: True closest approach within this of the radius (either side) is too close to call.
BORDER_M = 25.0
#: Matches just outside the window, within this pad, are optional (services pad windows).
SCENE_PAD_S = 3600.0


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
        near = np.flatnonzero(padded.min_distance_m <= sc.radius_m + 50.0)
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
    return out
