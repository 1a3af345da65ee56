"""Zone scenarios: exclusion breaches (brief, long, during an outage), a near-miss, leaving an
inclusion zone.

The scripted zone faces the person's home, 600–1400 m away, clear of their usual routes. A breach
walks straight from home into it (driving to 150 m short of it when far), stays, and walks back; the
near-miss walks along the zone's near side at 18–35 m outside, stands still for 2–5 min, and
walks on — every straight piece stays on the outer side of the side's line, so the true distance to
the zone never drops below 18 m.
"""

from __future__ import annotations

import numpy as np
import shapely

from simulator.conditions import make_zone
from simulator.device import snap_to_fix
from simulator.geo import Circle, ConvexPolygon, rectangle
from simulator.movement import WALK_MPS, Itinerary, Rng, jittered
from simulator.scenarios.base import Ctx, ScenarioSkipped, Script, offset, site, unit
from simulator.scenarios.trips import duration_s, legs_back, legs_to, out_and_back, path_of
from simulator.truth import TruthRecord, record

NEAR_MISS_OFFSET_M = (18.0, 35.0)
NEAR_MISS_MIN_M = 15.0


def _breach(ctx: Ctx, *, dwell_min: tuple[float, float], deep: bool, outage: bool) -> Script:
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    circle = rng.random() < 0.5
    r = float(rng.uniform(150, 250))
    w, h = (float(v) for v in rng.uniform(250, 450, size=2))
    depth = float(rng.uniform(70, 90))

    def build(theta: float, dist: float):
        u = unit(theta)
        if circle:
            shape, far = Circle(*offset(person.home, u, dist + r), r), 2 * r
        else:
            shape, far = rectangle(*offset(person.home, u, dist + w / 2), w, h, theta), w
        target = offset(person.home, u, dist + (far / 2 if deep else depth))
        return shape, [[person.home, target]]

    shape, paths, _theta, _dist = site(ctx, build)
    target = paths[0][-1]
    out = legs_to(rng, person.home, target)
    day = ctx.pick_day(600, 1020 if deep else 900)
    depart = ctx.local(day, float(rng.uniform(600, 690)))
    dwell = float(rng.uniform(*dwell_min)) * 60.0
    arrive = depart + duration_s(out, person.home)
    back = arrive + dwell + duration_s(legs_back(out, person.home), target)
    zone = make_zone(
        ctx.frame,
        f"z-{person.index:05d}-0",
        shape,
        name="Simulated exclusion zone 0",
        scenario_id=ctx.scenario_id,
    )
    script = Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=out_and_back(person.home, depart, out, dwell, dwell_indoor=deep),
        zones=[zone],
        paths=[path_of(person.home, out)],
        clean=[(depart - 900.0, back + 900.0)],
        facts={"zone_id": zone.zone_id, "dwell_s": dwell},
    )
    if outage:
        c = ctx.config
        t1 = snap_to_fix(arrive + dwell + 480.0, c.start_s, person.gps_phase_s, c.gps_interval_s)
        script.outages.append((arrive - 720.0, t1))
    return script


def exclusion_brief(ctx: Ctx) -> Script:
    """Walk 70–90 m into an exclusion zone, stay 4–6 min, walk out."""
    return _breach(ctx, dwell_min=(4, 6), deep=False, outage=False)


def exclusion_long(ctx: Ctx) -> Script:
    """Go to the middle of an exclusion zone and stay indoors 45–120 min."""
    return _breach(ctx, dwell_min=(45, 120), deep=True, outage=False)


def late_burst(ctx: Ctx) -> Script:
    """A brief breach (8–12 min) during a cellular outage: its fixes arrive later, in a burst."""
    return _breach(ctx, dwell_min=(8, 12), deep=False, outage=True)


def near_miss(ctx: Ctx) -> Script:
    """Walk along an exclusion zone's edge 18–35 m outside, standing still for 2–5 min."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    w, h = float(rng.uniform(200, 400)), float(rng.uniform(300, 500))
    lateral = np.linspace(-(h / 2 + 40), h / 2 + 40, 6)
    gaps = rng.uniform(*NEAR_MISS_OFFSET_M, size=6)

    def build(theta: float, dist: float):
        u = unit(theta)
        n = (-u[1], u[0])
        shape = rectangle(*offset(person.home, u, dist + w / 2), w, h, theta)
        mid = offset(person.home, u, dist)
        walk = [
            offset(offset(mid, n, float(a)), u, -float(g))
            for a, g in zip(lateral, gaps, strict=True)
        ]
        return shape, [[person.home, *walk, person.home]]

    shape, paths, _theta, _dist = site(ctx, build)
    walk = paths[0][1:-1]
    speed = float(rng.uniform(*WALK_MPS))
    to_start = legs_to(rng, person.home, walk[0])
    day = ctx.pick_day(600, 900)
    depart = ctx.local(day, float(rng.uniform(600, 690)))
    stand_s = float(rng.uniform(120, 300))
    zone = make_zone(
        ctx.frame,
        f"z-{person.index:05d}-0",
        shape,
        name="Simulated exclusion zone 0",
        scenario_id=ctx.scenario_id,
    )

    def plan(it: Itinerary, rng_: Rng) -> None:
        for k, leg in enumerate(to_start):
            it.go(list(leg.path), leg.speed_mps, depart_s=depart if k == 0 else None)
        it.go(walk[1:3], speed)
        it.stay_until(it.now_s + stand_s, indoor=False)
        it.go(walk[3:], speed)
        home = jittered(rng_, person.home)
        for leg in legs_to(rng_, walk[-1], home):
            it.go(list(leg.path), leg.speed_mps)

    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=plan,
        zones=[zone],
        paths=paths,
        clean=[(depart - 900.0, depart + 3 * 3600.0)],
        truth=near_miss_truth,
        facts={"zone_id": zone.zone_id, "depart_s": depart, "offsets_m": gaps.round(1).tolist()},
    )


def near_miss_truth(sim, script: Script) -> list[TruthRecord]:
    """Return the ``no_alert`` record: true distance to the zone edge stayed >= 15 m."""
    person = script.person
    assert person is not None
    zone = script.zones[0]
    t0 = script.facts["depart_s"]
    t = np.arange(t0, t0 + 3 * 3600.0, 1.0)
    x, y, *_ = sim.trajectories.sample(np.full(len(t), person.index), t)
    dist = shapely.distance(shapely.points(x, y), zone.shape.shapely)
    close = np.flatnonzero(dist <= 60.0)
    if close.size == 0:
        raise ScenarioSkipped("near-miss walk never came near the zone")
    a, b = float(t[close[0]]), float(t[close[-1]])
    return [
        record(
            "no_alert",
            "exclusion_breach",
            script.kind,
            at_s=None,
            from_s=a - 300.0,
            to_s=b + 300.0,
            episode=(a, b),
            scenario_id=script.scenario_id,
            offender_id=person.offender_id,
            device_id=person.gps_device_id,
            zone_id=zone.zone_id,
            details={
                "min_true_distance_m": round(float(dist.min()), 2),
                "max_true_distance_m_while_close": round(float(dist[close].max()), 2),
                "guaranteed_min_distance_m": NEAR_MISS_MIN_M,
                "rule": "no exclusion_breach (nor _ended) for this zone in the window",
            },
        )
    ]


def _ray_exit(p, u, box: ConvexPolygon) -> float:
    """Return how far from ``p`` (inside ``box``) along ``u`` the box boundary is."""
    x0, x1 = float(box.xs_m.min()), float(box.xs_m.max())
    y0, y1 = float(box.ys_m.min()), float(box.ys_m.max())
    ts = []
    if abs(u[0]) > 1e-9:
        ts.append(((x1 if u[0] > 0 else x0) - p[0]) / u[0])
    if abs(u[1]) > 1e-9:
        ts.append(((y1 if u[1] > 0 else y0) - p[1]) / u[1])
    return min(ts)


def inclusion_breach(ctx: Ctx) -> Script:
    """Leave the inclusion zone: go 300–700 m beyond its edge, stay 30–60 min, come back."""
    person = ctx.person
    assert person is not None and ctx.inclusion is not None
    box = ctx.inclusion
    rng = ctx.rng

    def build(theta: float, beyond: float):
        u = unit(theta)
        return None, [
            [person.home, offset(person.home, u, _ray_exit(person.home, u, box) + beyond)]
        ]

    _shape, paths, _theta, _beyond = site(ctx, build, dist_m=(300.0, 700.0))
    target = paths[0][-1]
    out = legs_to(rng, person.home, target)
    day = ctx.pick_day(600, 960)
    depart = ctx.local(day, float(rng.uniform(600, 690)))
    dwell = float(rng.uniform(30, 60)) * 60.0
    back = depart + 2 * duration_s(out, person.home) + dwell
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=out_and_back(person.home, depart, out, dwell),
        paths=[path_of(person.home, out)],
        clean=[(depart - 900.0, back + 900.0)],
        facts={"dwell_s": dwell},
    )


def hospital_suspended(ctx: Ctx) -> Script:
    """A 45–120 min hospital visit inside an exclusion zone under an approved suspension."""
    script = _breach(ctx, dwell_min=(45, 120), deep=True, outage=False)
    lo, hi = script.clean[0]
    from_s, until_s = lo - 1800.0, hi + 1800.0  # the approval covers the visit with margin
    iso = np.datetime_as_string
    script.suspensions = [
        {
            "suspension_id": f"sp-{script.facts['zone_id']}",
            "subject_id": script.facts["zone_id"],
            "from": iso(np.datetime64(int(from_s), "s"), timezone="UTC"),
            "until": iso(np.datetime64(int(until_s), "s"), timezone="UTC"),
            "reason": "hospital appointment",
            "approved_by": "Simulated IOM sergeant",
        }
    ]
    script.facts.update(suspended_from_s=from_s, suspended_until_s=until_s)
    return script
