"""Crime-scene scenarios: at the scene, passed by between fixes, there but outside the window,
and a scene no one visited.

Passed-by is built around the tag's fix grid: the person drives (11–14 m/s) along a straight road
whose closest point to the scene is 30–60 m away, and passes that point 35–65 % of the way between
two fixes — so both fixes are more than 200 m from the scene while the segment between them passes
within the radius. The fix interval must be at most 90 s.
"""

from __future__ import annotations

import numpy as np
import shapely

from simulator.device import snap_to_fix
from simulator.geo import segment_point_distance
from simulator.localtime import iso_utc
from simulator.movement import DRIVE_MPS, Itinerary, Rng, jittered
from simulator.scenarios.base import Ctx, ScenarioSkipped, Script, in_area, offset, site, unit
from simulator.scenarios.trips import duration_s, legs_to, out_and_back, path_of
from simulator.scenes import RADIUS_M, make_scene, proximity
from simulator.truth import TruthRecord, record

PASS_MAX_INTERVAL_S = 90.0
ROAD_HALF_M = 1200.0


def _scene_id(ctx: Ctx) -> str:
    return f"sc-{ctx.scenario_id}"


def _visit(ctx: Ctx, *, dwell_min: tuple[float, float], scene_offset_m: tuple[float, float]):
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    _s, paths, _t, _d = site(
        ctx,
        lambda th, d: (None, [[person.home, offset(person.home, unit(th), d)]]),
        dist_m=(600.0, 1500.0),
    )
    spot = paths[0][-1]
    out = legs_to(rng, person.home, spot)
    dwell = float(rng.uniform(*dwell_min)) * 60.0
    centre = offset(
        spot, unit(float(rng.uniform(0, 2 * np.pi))), float(rng.uniform(*scene_offset_m))
    )
    return spot, out, dwell, centre


def scene_at(ctx: Ctx) -> Script:
    """Stand 20–40 m from a burglary scene for 20–30 min inside its window."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    _spot, out, dwell, centre = _visit(ctx, dwell_min=(20, 30), scene_offset_m=(20, 40))
    day = ctx.pick_day(600, 960)
    depart = ctx.local(day, float(rng.uniform(600, 720)))
    arrive = depart + duration_s(out, person.home)
    window = (
        arrive - float(rng.uniform(1, 3)) * 3600.0,
        arrive + dwell + float(rng.uniform(1, 3)) * 3600.0,
    )
    scene = make_scene(
        ctx.frame,
        _scene_id(ctx),
        centre,
        window,
        window[1] + float(rng.uniform(1800, 7200)),
        scenario=ctx.kind,
        scenario_id=ctx.scenario_id,
    )
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=out_and_back(person.home, depart, out, dwell, dwell_indoor=False),
        paths=[path_of(person.home, out)],
        scenes=[scene],
        clean=[(depart - 900.0, arrive + dwell + 3600.0)],
        truth=scene_truth,
        facts={"expect": "match", "match_class": "at_scene"},
    )


def scene_outside_window(ctx: Ctx) -> Script:
    """Stand 10–20 m from a scene for 30 min, 3–4 h before its window opens."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    _spot, out, dwell, centre = _visit(ctx, dwell_min=(30, 30), scene_offset_m=(10, 20))
    day = ctx.pick_day(540, 1140)
    depart = ctx.local(day, float(rng.uniform(540, 600)))
    leave = depart + duration_s(out, person.home) + dwell
    ws = leave + float(rng.uniform(3, 4)) * 3600.0
    window = (ws, ws + 3 * 3600.0)
    scene = make_scene(
        ctx.frame,
        _scene_id(ctx),
        centre,
        window,
        window[1] + float(rng.uniform(1800, 7200)),
        scenario=ctx.kind,
        scenario_id=ctx.scenario_id,
    )
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=out_and_back(person.home, depart, out, dwell, dwell_indoor=False),
        paths=[path_of(person.home, out)],
        scenes=[scene],
        truth=scene_truth,
        facts={"expect": "no_match", "visited_until_s": leave},
    )


def scene_passed_by(ctx: Ctx) -> Script:
    """Drive past a scene between two fixes: no fix inside the radius, the segment crosses it."""
    person = ctx.person
    assert person is not None
    c = ctx.config
    if c.gps_interval_s > PASS_MAX_INTERVAL_S:
        raise ScenarioSkipped(f"passed-by needs fixes at most {PASS_MAX_INTERVAL_S:.0f} s apart")
    rng = ctx.rng
    side = float(rng.uniform(30, 60))
    turn = float(rng.choice([-1, 1]) * rng.uniform(0.6, 1.2))
    facts: dict = {}

    def build(theta: float, dist: float):
        q = offset(person.home, unit(theta), dist)
        w = unit(theta + turn)
        n = (-w[1], w[0])
        r1, r2 = offset(q, w, -ROAD_HALF_M), offset(q, w, ROAD_HALF_M)
        facts.update(centre=offset(q, n, side), q=q, r1=r1, r2=r2)
        return None, [[person.home, r1, r2, person.home]]

    def accept(paths) -> bool:
        cx, cy = facts["centre"]
        lines = shapely.linestrings([[person.home, facts["r1"]], [facts["r2"], person.home]])
        return bool(np.all(shapely.distance(lines, shapely.Point(cx, cy)) > RADIUS_M + 200.0))

    _s, paths, _t, _d = site(ctx, build, dist_m=(700.0, 1500.0), accept=accept)
    centre, r1, r2 = facts["centre"], facts["r1"], facts["r2"]
    speed = float(rng.uniform(11, 14))
    day = ctx.pick_day(600, 960)
    fix = snap_to_fix(
        ctx.local(day, float(rng.uniform(630, 900))),
        c.start_s,
        person.gps_phase_s,
        c.gps_interval_s,
    )
    t_close = fix + float(rng.uniform(0.35, 0.65)) * c.gps_interval_s
    at_r1 = t_close - ROAD_HALF_M / speed
    to_road = float(rng.uniform(*DRIVE_MPS))
    window = (
        t_close - float(rng.uniform(40, 80)) * 60.0,
        t_close + float(rng.uniform(40, 80)) * 60.0,
    )

    def plan(it: Itinerary, rng_: Rng) -> None:
        it.go([r1], to_road, arrive_s=at_r1)
        it.go([r2], speed)
        it.go([jittered(rng_, person.home)], to_road)

    scene = make_scene(
        ctx.frame,
        _scene_id(ctx),
        centre,
        window,
        window[1] + float(rng.uniform(1800, 5400)),
        crime_type="theft_from_vehicle",
        scenario=ctx.kind,
        scenario_id=ctx.scenario_id,
    )
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=plan,
        paths=paths,
        scenes=[scene],
        clean=[(at_r1 - 3600.0, t_close + 3600.0)],
        truth=scene_truth,
        facts={"expect": "match", "match_class": "passed_by", "closest_s": t_close, "side_m": side},
    )


def scene_not_visited(ctx: Ctx) -> Script:
    """A night-time burglary 2 km beyond the area's edge: no one was there."""
    rng = ctx.rng
    h = ctx.config.half_size_m
    day = ctx.pick_day(60, 360)
    along = float(rng.uniform(-h, h))
    out = h + 2000.0
    centre = [(out, along), (-out, along), (along, out), (along, -out)][int(rng.integers(4))]
    window = (ctx.local(day, 60.0), ctx.local(day, 360.0))
    scene = make_scene(
        ctx.frame,
        _scene_id(ctx),
        centre,
        window,
        ctx.local(day, 480.0),
        scenario=ctx.kind,
        scenario_id=ctx.scenario_id,
    )
    assert not in_area(ctx, centre, margin_m=0.0)
    return Script(
        ctx.kind,
        ctx.scenario_id,
        None,
        scenes=[scene],
        truth=scene_truth,
        facts={"expect": "no_match"},
    )


def scene_truth(sim, script: Script) -> list[TruthRecord]:
    """Return the scripted person's expected match (or no match) for the script's scene."""
    scene = script.scenes[0]
    person = script.person
    ws, we = scene.window_s
    prox = proximity(sim.trajectories, scene.centre, scene.radius_m, ws, we)
    common = {"scenario_id": script.scenario_id, "scene_id": scene.scene_id}
    if person is None:
        return [
            record(
                "no_match",
                "scene_proximity",
                script.kind,
                from_s=ws,
                to_s=we,
                details={"min_true_distance_m_anyone": round(float(prox.min_distance_m.min()), 1)},
                **common,
            )
        ]
    i = person.index
    ids = {"offender_id": person.offender_id, "device_id": person.gps_device_id}
    details = {
        "closest_approach_m": round(float(prox.min_distance_m[i]), 2),
        "dwell_s": round(float(prox.dwell_s[i]), 1),
        "radius_m": scene.radius_m,
    }
    if script.facts["expect"] == "no_match":
        details["visited_until"] = iso_utc(script.facts["visited_until_s"])
        return [
            record(
                "no_match",
                "scene_proximity",
                script.kind,
                from_s=ws,
                to_s=we,
                details=details,
                **ids,
                **common,
            )
        ]
    interval = sim.config.gps_interval_s
    first, last = float(prox.first_in_s[i]), float(prox.last_in_s[i])
    if script.facts["match_class"] == "passed_by":
        details.update(passed_by_evidence(sim, person.index, scene, script.facts["closest_s"]))
    return [
        record(
            "match",
            "scene_proximity",
            script.kind,
            at_s=float(prox.closest_s[i]),
            from_s=first - interval - 60.0,
            to_s=last + interval + 60.0,
            episode=(first, last),
            match_class=script.facts["match_class"],
            details=details,
            **ids,
            **common,
        )
    ]


def passed_by_evidence(sim, person: int, scene, t_close: float) -> dict:
    """Return what the fixes show around a drive-by: the bracketing pair and their distances."""
    f = sim.fixes
    m = (f.dev == person) & (f.ts_s >= scene.window_s[0]) & (f.ts_s <= scene.window_s[1])
    ts, x, y, acc = f.ts_s[m], f.x_m[m], f.y_m[m], f.accuracy_m[m]
    d = np.hypot(x - scene.centre[0], y - scene.centre[1])
    k = int(np.searchsorted(ts, t_close))
    seg, _u = segment_point_distance(x[k - 1], y[k - 1], x[k], y[k], *scene.centre)
    verified = bool(
        np.all(d > scene.radius_m)
        and ts[k] - ts[k - 1] <= PASS_MAX_INTERVAL_S
        and seg <= scene.radius_m
    )
    return {
        "segment_fix_ts": [int(ts[k - 1]), int(ts[k])],
        "segment_min_distance_m": round(float(seg), 2),
        "min_fix_distance_m": round(float(d.min()), 2),
        "min_fix_distance_minus_accuracy_m": round(float(np.min(d - acc)), 2),
        "verified": verified,
    }
