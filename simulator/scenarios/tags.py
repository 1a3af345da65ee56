"""Device and alcohol-tag scenarios: strap tamper, battery low, drinking, interferent, removal."""

from __future__ import annotations

from simulator.alcohol import random_drink
from simulator.device import snap_to_fix
from simulator.scenarios.base import Ctx, ScenarioSkipped, Script


def strap_tamper(ctx: Ctx) -> Script:
    """The strap circuit opens in the afternoon and is restored 10–30 min later."""
    person = ctx.person
    assert person is not None
    day = ctx.pick_day(720, 1080)
    t = float(round(ctx.local(day, float(ctx.rng.uniform(720, 1020)))))
    back = float(round(t + ctx.rng.uniform(600, 1800)))
    return Script(
        ctx.kind,
        ctx.scenario_id,
        person,
        events=[(t, "strap_tamper", "strap circuit open"), (back, "strap_restored", None)],
        clean=[(t - 1800.0, back + 1800.0)],
        facts={"tamper_s": t, "restored_s": back},
    )


def battery_low(ctx: Ctx) -> Script:
    """The person forgot to charge: the battery crosses 15 % in the afternoon."""
    person = ctx.person
    assert person is not None
    day = ctx.pick_day(780, 1020)
    t = float(round(ctx.local(day, float(ctx.rng.uniform(780, 960)))))
    return Script(ctx.kind, ctx.scenario_id, person, battery_low_at_s=t, facts={"low_s": t})


def drinking(ctx: Ctx) -> Script:
    """An evening drinking episode (peak 0.04–0.10 g/dL)."""
    person = ctx.person
    assert person is not None
    day = ctx.pick_day(1080, 1320)
    drink = random_drink(ctx.rng, ctx.local(day, float(ctx.rng.uniform(1080, 1200))))
    confirm = drink.crossing_s()[0] + 2 * ctx.config.alcohol_interval_s
    if confirm > ctx.end_s - 600.0:
        raise ScenarioSkipped("the drinking episode would not be confirmed before the end")
    return Script(ctx.kind, ctx.scenario_id, person, drinks=[drink])


def interferent(ctx: Ctx) -> Script:
    """A morning reading jumps to 0.06–0.12 g/dL out of nothing (then 40 %, then gone)."""
    person = ctx.person
    assert person is not None
    c = ctx.config
    day = ctx.pick_day(480, 780)
    t = snap_to_fix(
        ctx.local(day, float(ctx.rng.uniform(480, 660))),
        c.start_s,
        person.alcohol_phase_s,
        c.alcohol_interval_s,
    )
    t = float(int(t))
    peak = float(ctx.rng.uniform(0.06, 0.12))
    return Script(ctx.kind, ctx.scenario_id, person, interferents=[(t, peak)])


def alcohol_tamper(ctx: Ctx) -> Script:
    """The alcohol bracelet is taken off for 2–3 h in the afternoon."""
    person = ctx.person
    assert person is not None
    day = ctx.pick_day(720, 1080)
    off = ctx.local(day, float(ctx.rng.uniform(720, 840)))
    on = off + float(ctx.rng.uniform(7200, 10800))
    return Script(ctx.kind, ctx.scenario_id, person, removals=[(off, on)])
