"""Curfew and silence scenarios: late return, early leave, tag silent in and out of curfew."""

from __future__ import annotations

import numpy as np

from simulator.localtime import hhmm_minutes
from simulator.movement import Itinerary, Rng, jittered, pick_route, travel_speed
from simulator.scenarios.base import Ctx, Script


def _curfew_minutes(ctx: Ctx) -> tuple[int, int]:
    assert ctx.person is not None and ctx.person.curfew is not None
    _days, start, end = ctx.person.curfew.windows[0]
    return hhmm_minutes(start), hhmm_minutes(end)


def _trip(rng: Rng, a, b) -> tuple[list, float]:
    path = pick_route(rng, a, b)
    length = float(np.sum(np.hypot(*np.diff(np.asarray([a, *path]), axis=0).T)))
    return path, travel_speed(rng, length)


def curfew_late_return(ctx: Ctx) -> Script:
    """Out for the day, home 25–90 min after the curfew starts (local time, DST-aware)."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    start_min, end_min = _curfew_minutes(ctx)
    day = ctx.pick_day(start_min - 240, start_min + 100)
    window_start = ctx.local(day, start_min)
    arrive = window_start + float(rng.uniform(25, 90)) * 60.0
    leave = max(ctx.local(day, float(rng.uniform(450, 540))), ctx.local(day, end_min) + 900.0)
    place = person.places[0]
    out, out_speed = _trip(rng, person.home, place)
    back, back_speed = _trip(rng, place, person.home)

    def plan(it: Itinerary, rng_: Rng) -> None:
        it.stay_until(leave)
        it.go([*out[:-1], jittered(rng_, place)], out_speed)
        it.go([*back[:-1], jittered(rng_, person.home)], back_speed, arrive_s=arrive)

    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=plan,
        clean=[(window_start - 1800.0, arrive + 1800.0)],
        facts={"window_start_s": window_start, "arrive_s": arrive},
    )


def curfew_early_leave(ctx: Ctx) -> Script:
    """Leave home 40–100 min before the curfew ends (morning), out for the day."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    start_min, end_min = _curfew_minutes(ctx)
    day = ctx.pick_day(end_min - 200, end_min + 60)
    window_end = ctx.local(day, end_min)
    leave = window_end - float(rng.uniform(40, 100)) * 60.0
    home_by = min(ctx.local(day, 990.0), ctx.local(day, start_min) - 3600.0)
    place = person.places[0]
    out, out_speed = _trip(rng, person.home, place)
    back, back_speed = _trip(rng, place, person.home)

    def plan(it: Itinerary, rng_: Rng) -> None:
        it.stay_until(leave)
        it.go([*out[:-1], jittered(rng_, place)], out_speed)
        it.go([*back[:-1], jittered(rng_, person.home)], back_speed, arrive_s=home_by)

    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=day,
        plan_day=plan,
        clean=[(leave - 1800.0, window_end + 1800.0)],
        facts={"window_end_s": window_end, "leave_s": leave},
    )


def curfew_silent(ctx: Ctx) -> Script:
    """At home in the small hours of a curfew night, the tag sends nothing for 40–75 min."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    _start_min, end_min = _curfew_minutes(ctx)
    day = ctx.pick_day(end_min - 270, end_min)
    t0 = ctx.local(day, end_min - float(rng.uniform(200, 240)))
    t1 = t0 + float(rng.uniform(40, 75)) * 60.0
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        day=None,
        silences=[(t0, t1)],
        clean=[(t0 - 1800.0, t1 + 1800.0)],
        facts={"silent_from_s": t0, "silent_to_s": t1},
    )


def device_silent(ctx: Ctx) -> Script:
    """In the middle of the day (no curfew), the tag sends nothing for 30–60 min."""
    person = ctx.person
    assert person is not None
    rng = ctx.rng
    day = ctx.pick_day(690, 900)
    t0 = ctx.local(day, float(rng.uniform(690, 750)))
    t1 = t0 + float(rng.uniform(30, 60)) * 60.0
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        silences=[(t0, t1)],
        clean=[(t0 - 1800.0, t1 + 1800.0)],
        facts={"silent_from_s": t0, "silent_to_s": t1},
    )
