"""Victim scenarios: a protected victim carries a device of their own (its fixes go to the victim
topic); the person either approaches them (stands 30–50 % of the radius away for 8–15 min) or
walks past at 1.5 times the radius, standing still 2–5 min at the closest point.

The victim waits 600–1400 m from the person's home (plus the radius), clear of the person's usual
routes, reporting a fix a minute from an hour before the person leaves until an hour after they
are back (reported accuracy 5–15 m, true error Gaussian with sigma = accuracy / 2, as the tags).
The truth follows the true trail: ``victim_proximity`` when the person's true distance to the
victim first drops to the radius, ``…_ended`` when it rises above it again; for the near miss, a
``no_alert`` record over the walk past.
"""

from __future__ import annotations

import numpy as np

from em_service.contracts import GpsReading
from simulator.geo import Circle
from simulator.localtime import as_utc
from simulator.movement import WALK_MPS, Itinerary, Rng, jittered
from simulator.scenarios.base import Ctx, ScenarioSkipped, Script, offset, site, unit
from simulator.scenarios.trips import duration_s, legs_back, legs_to, out_and_back, path_of
from simulator.truth import TruthRecord, record

RADIUS_M = (150.0, 250.0)
NEAR_MISS_FACTOR = 1.5
VICTIM_FIX_S = 60.0


def _victim_fixes(ctx: Ctx, device: str, where: tuple[float, float], t0: float, t1: float):
    rng = ctx.rng
    n = int((t1 - t0) // VICTIM_FIX_S)
    ts = np.round(t0 + float(rng.uniform(0, VICTIM_FIX_S)) + VICTIM_FIX_S * np.arange(n))
    acc = rng.uniform(5.0, 15.0, n)
    x = where[0] + rng.normal(0.0, acc / 2)
    y = where[1] + rng.normal(0.0, acc / 2)
    lon, lat = ctx.frame.to_lonlat(x, y)
    return [
        GpsReading(
            device_id=device,
            ts=as_utc(float(t)),
            lat=float(la),
            lon=float(lo),
            accuracy_m=round(float(a), 1),
        )
        for t, lo, la, a in zip(ts, lon, lat, acc, strict=True)
    ]


def _protection(ctx: Ctx, radius: float) -> tuple[str, dict]:
    person = ctx.person
    assert person is not None
    device = f"vd-{person.index:05d}-{ctx.instance}"
    return device, {
        "protection_id": f"vp-{person.index:05d}-{ctx.instance}",
        "victim_device_id": device,
        "radius_m": round(radius, 1),
    }


def _distances(sim, script: Script, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    person = script.person
    assert person is not None
    vx, vy = script.facts["victim_xy"]
    t = np.arange(t0, t1, 1.0)
    x, y, *_ = sim.trajectories.sample(np.full(len(t), person.index), t)
    return t, np.hypot(x - vx, y - vy)


def victim_approach(ctx: Ctx) -> Script:
    """Go to 30–50 % of the radius from a protected victim, stay 8–15 min outdoors, leave."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    radius = float(rng.uniform(*RADIUS_M))
    near = float(rng.uniform(0.3, 0.5)) * radius

    def build(theta: float, dist: float):
        u = unit(theta)
        victim = offset(person.home, u, dist + radius)
        return Circle(*victim, radius), [[person.home, offset(victim, u, -near)]]

    _shape, paths, theta, dist = site(ctx, build)
    victim = offset(person.home, unit(theta), dist + radius)
    target = paths[0][-1]
    out = legs_to(rng, person.home, target)
    day = ctx.pick_day(600, 900)
    depart = ctx.local(day, float(rng.uniform(600, 690)))
    dwell = float(rng.uniform(8, 15)) * 60.0
    back = (
        depart
        + dwell
        + duration_s(out, person.home)
        + duration_s(legs_back(out, person.home), target)
    )
    device, protection = _protection(ctx, radius)
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=out_and_back(person.home, depart, out, dwell, dwell_indoor=False),
        paths=[path_of(person.home, out)],
        clean=[(depart - 900.0, back + 900.0)],
        victims=[protection],
        victim_readings=_victim_fixes(ctx, device, victim, depart - 3600.0, back + 3600.0),
        truth=approach_truth,
        facts={
            "victim_xy": victim,
            "radius_m": protection["radius_m"],
            "depart_s": depart,
            "back_s": back,
            "protection_id": protection["protection_id"],
        },
    )


def approach_truth(sim, script: Script) -> list[TruthRecord]:
    """Return the ``victim_proximity`` record at the true entry and its ``…_ended`` at the exit."""
    person = script.person
    assert person is not None
    f = script.facts
    t, dist = _distances(sim, script, f["depart_s"] - 600.0, f["back_s"] + 600.0)
    inside = np.flatnonzero(dist <= f["radius_m"])
    if inside.size == 0:
        raise ScenarioSkipped("the approach never came within the radius")
    a, b = float(t[inside[0]]), float(t[inside[-1]])
    interval = sim.config.gps_interval_s
    key = f"{person.index}:victim:{a}"
    common = {
        "scenario_id": script.scenario_id,
        "offender_id": person.offender_id,
        "device_id": person.gps_device_id,
        "episode": (a, b),
    }
    details = {
        "protection_id": f["protection_id"],
        "min_true_distance_m": round(float(dist.min()), 1),
    }
    return [
        record(
            "alert",
            "victim_proximity",
            script.kind,
            at_s=a,
            from_s=a - interval - 60.0,
            to_s=a + 2 * interval + 60.0,
            severity="high",
            details={**details, "_key": key},
            **common,
        ),
        record(
            "alert",
            "victim_proximity_ended",
            script.kind,
            at_s=b,
            from_s=b - interval - 60.0,
            to_s=b + 2 * interval + 60.0,
            severity="info",
            ref_truth_id=key,
            details=details,
            **common,
        ),
    ]


def victim_near_miss(ctx: Ctx) -> Script:
    """Walk past a protected victim at 1.5 times the radius, standing still 2–5 min nearest."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    radius = float(rng.uniform(*RADIUS_M))
    gap = NEAR_MISS_FACTOR * radius
    half = float(rng.uniform(250.0, 400.0))

    def build(theta: float, dist: float):
        u = unit(theta)
        n = (-u[1], u[0])
        mid = offset(person.home, u, dist)
        victim = offset(mid, u, gap)
        walk = [offset(mid, n, -half), mid, offset(mid, n, half)]
        return Circle(*victim, radius), [[person.home, *walk, person.home]]

    _shape, paths, theta, _dist = site(ctx, build)
    walk = paths[0][1:-1]
    victim = offset(walk[1], unit(theta), gap)
    speed = float(rng.uniform(*WALK_MPS))
    to_start = legs_to(rng, person.home, walk[0])
    day = ctx.pick_day(600, 900)
    depart = ctx.local(day, float(rng.uniform(600, 690)))
    stand_s = float(rng.uniform(120, 300))
    end = depart + 3 * 3600.0

    def plan(it: Itinerary, rng_: Rng) -> None:
        for k, leg in enumerate(to_start):
            it.go(list(leg.path), leg.speed_mps, depart_s=depart if k == 0 else None)
        it.go([walk[1]], speed)
        it.stay_until(it.now_s + stand_s, indoor=False)
        it.go([walk[2]], speed)
        for leg in legs_to(rng_, walk[2], jittered(rng_, person.home)):
            it.go(list(leg.path), leg.speed_mps)

    device, protection = _protection(ctx, radius)
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=plan,
        paths=paths,
        clean=[(depart - 900.0, end)],
        victims=[protection],
        victim_readings=_victim_fixes(ctx, device, victim, depart - 3600.0, end + 3600.0),
        truth=near_miss_truth,
        facts={
            "victim_xy": victim,
            "radius_m": protection["radius_m"],
            "depart_s": depart,
            "end_s": end,
            "protection_id": protection["protection_id"],
        },
    )


def near_miss_truth(sim, script: Script) -> list[TruthRecord]:
    """Return the ``no_alert`` record over the time the person was within twice the radius."""
    person = script.person
    assert person is not None
    f = script.facts
    t, dist = _distances(sim, script, f["depart_s"], f["end_s"])
    close = np.flatnonzero(dist <= 2 * f["radius_m"])
    if close.size == 0:
        raise ScenarioSkipped("the walk never came near the victim")
    a, b = float(t[close[0]]), float(t[close[-1]])
    return [
        record(
            "no_alert",
            "victim_proximity",
            script.kind,
            at_s=None,
            from_s=a - 300.0,
            to_s=b + 300.0,
            episode=(a, b),
            scenario_id=script.scenario_id,
            offender_id=person.offender_id,
            device_id=person.gps_device_id,
            details={
                "protection_id": f["protection_id"],
                "radius_m": f["radius_m"],
                "min_true_distance_m": round(float(dist.min()), 1),
                "rule": "no victim_proximity (nor _ended) in the window",
            },
        )
    ]
