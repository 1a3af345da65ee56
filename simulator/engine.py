"""Run a simulation: cohort → scenarios → conditions → trails → tags → readings → ground truth.

Every random stream is seeded from ``(seed, stream number[, chunk])``, so a configuration always
gives the same output, independent of progress reporting or output mode.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

import msgspec
import numpy as np

from em_service.contracts import Conditions, Scene
from simulator.alcohol import (
    AlcoholPlan,
    AlcoholReadings,
    random_drink,
    reading_times,
    simulate_tag,
)
from simulator.cohort import Person, build_cohort
from simulator.conditions import (
    ZoneSpec,
    build_conditions,
    curfew_addresses,
    inclusion_shape,
    make_zone,
    place_background_zones,
    publish_drafts,
)
from simulator.config import SimConfig
from simulator.device import DevicePlan, plan_battery, plan_random_gaps
from simulator.geo import Circle, LocalFrame
from simulator.gps import GpsFixes, NoiseSets, deliver, generate_fixes
from simulator.intervals import IntervalSet, PiecewiseSeries
from simulator.localtime import local_dates, local_to_utc_s, weekly_windows_utc
from simulator.movement import Itinerary, Trajectories, default_bounds, jittered, plan_default_day
from simulator.scenarios import KINDS, Ctx, ScenarioSkipped, Script, assign
from simulator.scenes import SceneSpec, make_scene
from simulator.truth import TruthRecord

STREAMS = {
    "cohort": 1,
    "scenarios": 2,
    "zones": 3,
    "movement": 4,
    "device": 5,
    "alcohol": 6,
    "events": 7,
    "scenes": 8,
    "gps": 100,
}
GPS_CHUNK = 256
Progress = Callable[[str, int, int], None]


def stream(seed: int, name: str, *extra: int) -> np.random.Generator:
    """Return the random generator of stream ``name`` (and chunk ``extra``)."""
    return np.random.default_rng([seed, STREAMS[name], *extra])


@dataclass(slots=True)
class DeviceEvents:
    """Device events of GPS tags, one row each."""

    dev: np.ndarray
    ts_s: np.ndarray
    kind: list[str]
    detail: list[str | None]
    delivered_s: np.ndarray
    buffered: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_s)


@dataclass
class Simulation:
    """Everything a run produced; readings are in tables, messages are built by ``output``."""

    config: SimConfig
    frame: LocalFrame
    persons: list[Person]
    zones: dict[int, list[ZoneSpec]]
    conditions: list[Conditions]
    scripts: list[Script]
    skipped: list[tuple[str, str, str]]
    scene_specs: list[SceneSpec]
    trajectories: Trajectories
    device_plans: list[DevicePlan]
    alcohol_plans: dict[int, AlcoholPlan]
    curfew_windows: dict[int, list[tuple[float, float, date]]]
    curfew_circles: dict[int, Circle]
    fixes: GpsFixes
    alcohol: AlcoholReadings
    events: DeviceEvents
    fix_seq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    event_seq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    alcohol_seq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    truth: list[TruthRecord] = field(default_factory=list)
    #: Protected victims' own fixes (the victim topic), by time; never part of ``fixes``.
    victim_readings: list = field(default_factory=list)

    @cached_property
    def fix_key(self) -> np.ndarray:
        """``device * 1e10 + ts_s`` of every fix: sorted, for lookups by (device, time)."""
        return self.fixes.dev.astype(np.int64) * 10**10 + self.fixes.ts_s

    @property
    def scenes(self) -> list[Scene]:
        """The scene messages."""
        return [s.message() for s in self.scene_specs]

    @property
    def end_s(self) -> float:
        """Simulation end, epoch seconds."""
        return self.config.start_s + self.config.duration_s

    def delivery_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(kind, index)`` of every reading in delivery order (0 gps, 1 alcohol, 2 event).

        Ties in delivery time (practically absent: latencies are random floats) keep the table
        order: GPS by device and time, then alcohol, then events.
        """
        f, a, e = self.fixes, self.alcohol, self.events
        kind = np.concatenate(
            [np.zeros(len(f), np.int8), np.ones(len(a), np.int8), np.full(len(e), 2, np.int8)]
        )
        index = np.concatenate([np.arange(len(f)), np.arange(len(a)), np.arange(len(e))])
        delivered = np.concatenate([f.delivered_s, a.delivered_s, e.delivered_s])
        order = np.argsort(delivered, kind="stable")
        return kind[order], index[order]


def _scripts(config: SimConfig, frame: LocalFrame, persons: list[Person], inclusion: dict):
    scripts, skipped = [], []
    for n, inst in enumerate(assign(config.scenarios, config.persons)):
        person = persons[inst.person] if inst.person is not None else None
        ctx = Ctx(
            config,
            frame,
            person,
            stream(config.seed, "scenarios", n),
            inst.scenario_id,
            inst.kind,
            inst.number,
            inclusion.get(inst.person),
        )
        try:
            scripts.append(KINDS[inst.kind].build(ctx))
        except ScenarioSkipped as exc:
            skipped.append((inst.scenario_id, inst.kind, str(exc)))
    return scripts, skipped


def _zones(config, frame, persons, scripts_of, inclusion) -> dict[int, list[ZoneSpec]]:
    rng = stream(config.seed, "zones")
    drafts = {}
    for p in persons:
        scripted = [z for s in scripts_of[p.index] for z in s.zones]
        paths = p.routes + [path for s in scripts_of[p.index] for path in s.paths]
        drafts[p.index] = place_background_zones(
            p,
            rng,
            count=max(0, p.n_zones - len(scripted)),
            avoid_paths=paths,
            taken=scripted,
            half_size_m=config.half_size_m,
            scheduled_fraction=config.scheduled_zone_fraction,
        )
    flat = publish_drafts(frame, [d for p in persons for d in drafts[p.index]])
    out = {}
    k = 0
    for p in persons:
        n = len(drafts[p.index])
        zones = [z for s in scripts_of[p.index] for z in s.zones] + flat[k : k + n]
        k += n
        if p.index in inclusion:
            zones.append(
                make_zone(
                    frame,
                    f"z-{p.index:05d}-in",
                    inclusion[p.index],
                    kind="inclusion",
                    name="Simulated inclusion area",
                )
            )
        out[p.index] = zones
    return out


def _trails(config, persons, scripts_of, curfew_windows, dates) -> Trajectories:
    # Per-day choices are many small scalar draws: Python's generator is far quicker for those.
    rng = random.Random(int(stream(config.seed, "movement").integers(2**63)))
    tz = config.timezone
    end_s = config.start_s + config.duration_s
    t0 = local_to_utc_s(dates[0], 0.0, tz)
    itineraries = []
    for p in persons:
        it = Itinerary(t0, jittered(rng, p.home))
        scripted = {s.day: s for s in scripts_of[p.index] if s.plan_day is not None}
        for day in dates:
            if day in scripted:
                scripted[day].plan_day(it, rng)
            else:
                bounds = default_bounds(rng, day, curfew_windows.get(p.index, []), tz)
                plan_default_day(it, p, rng, bounds)
        it.stay_until(max(it.now_s, end_s + 2 * 86400.0))
        itineraries.append(it)
    return Trajectories(itineraries, t0 - 1.0)


def _devices(config, persons, scripts_of, dates) -> list[DevicePlan]:
    rng = stream(config.seed, "device")
    start, end = config.start_s, config.start_s + config.duration_s
    plans = []
    for p in persons:
        plan = DevicePlan()
        low_at = None
        for s in scripts_of[p.index]:
            plan.clean += s.clean
            plan.silences += s.silences + s.gps_broken
            plan.heartbeats_in += s.gps_broken
            plan.outages += s.outages
            plan.events += s.events
            low_at = s.battery_low_at_s or low_at
        plan_battery(plan, rng, dates, config.timezone, low_at_s=low_at)
        plan_random_gaps(
            plan,
            rng,
            start_s=start,
            end_s=end,
            phase_s=p.gps_phase_s,
            interval_s=config.gps_interval_s,
            outages_per_day=config.noise.outages_per_day,
            long_outages_per_day=config.noise.long_outages_per_day,
            nofix_per_day=config.noise.nofix_gaps_per_day,
        )
        plan.events = sorted(
            e
            for e in plan.events
            if start <= e[0] < end
            and (
                not any(a <= e[0] < b for a, b in plan.silences)
                or any(a <= e[0] < b for a, b in plan.heartbeats_in)
            )
        )
        plans.append(plan)
    return plans


def _interval_set(plans: list[DevicePlan], attr: str) -> IntervalSet:
    rows = [(i, a, b) for i, plan in enumerate(plans) for a, b in getattr(plan, attr)]
    if not rows:
        return IntervalSet([], [], [])
    dev, t0, t1 = zip(*rows, strict=True)
    return IntervalSet(dev, t0, t1)


def _alcohol(config, persons, scripts_of, dates) -> tuple[dict[int, AlcoholPlan], AlcoholReadings]:
    rng = stream(config.seed, "alcohol")
    start, end = config.start_s, config.start_s + config.duration_s
    plans, parts = {}, []
    for p in persons:
        if p.alcohol_device_id is None:
            continue
        plan = AlcoholPlan(float(rng.uniform(32.0, 34.0)), float(rng.uniform(900, 1400)))
        scripted = scripts_of[p.index]
        for s in scripted:
            plan.drinks += s.drinks
            plan.interferents += s.interferents
            plan.removals += s.removals
        if not scripted:
            for day in dates:
                if rng.random() < config.drinking_per_day:
                    t = local_to_utc_s(day, float(rng.uniform(1080, 1260)), config.timezone)
                    if start <= t < end:
                        plan.drinks.append(random_drink(rng, t))
        plans[p.index] = plan
        ts = reading_times(start, end, p.alcohol_phase_s, config.alcohol_interval_s)
        parts.append(simulate_tag(p.index, plan, ts, rng))
    return plans, AlcoholReadings.concat(parts) if parts else AlcoholReadings.empty()


def _events(config, plans: list[DevicePlan], outages: IntervalSet) -> DeviceEvents:
    rows = [(i, t, k, d) for i, plan in enumerate(plans) for t, k, d in plan.events]
    dev = np.array([r[0] for r in rows], np.int32)
    ts = np.array([int(r[1]) for r in rows], np.int64)
    delivered, buffered = deliver(dev, ts.astype(float), outages, stream(config.seed, "events"))
    return DeviceEvents(dev, ts, [r[2] for r in rows], [r[3] for r in rows], delivered, buffered)


def _background_scenes(config, frame) -> list[SceneSpec]:
    rng = stream(config.seed, "scenes")
    start, end = config.start_s, config.start_s + config.duration_s
    h = config.half_size_m - 500.0
    out = []
    for n in range(rng.poisson(config.scenes_per_day * config.days)):
        hours = float(rng.uniform(2, 10))
        ws = float(rng.uniform(start, max(start, end - hours * 3600.0)))
        we = min(end, ws + hours * 3600.0)
        x, y = (float(v) for v in rng.uniform(-h, h, size=2))
        out.append(
            make_scene(
                frame,
                f"sc-bg-{n + 1:04d}",
                (x, y),
                (ws, we),
                we + float(rng.uniform(1, 6)) * 3600.0,
            )
        )
    return out


def _seqs(sim: Simulation) -> None:
    """Number each tag's readings (fixes and events, by timestamp; fixes first on a tie)."""
    f, e, a = sim.fixes, sim.events, sim.alcohol
    fkey = f.dev.astype(np.int64) * 10**10 + f.ts_s
    ekey = e.dev.astype(np.int64) * 10**10 + e.ts_s
    eorder = np.argsort(ekey, kind="stable")
    ekey_sorted = ekey[eorder]
    first_fix = np.searchsorted(f.dev, np.arange(len(sim.persons)), side="left")
    first_event = np.searchsorted(e.dev[eorder], np.arange(len(sim.persons)), side="left")
    # fixes: rank among the device's fixes + events stamped strictly earlier
    events_before = np.searchsorted(ekey_sorted, fkey, side="left") - first_event[f.dev]
    sim.fix_seq = np.arange(len(f)) - first_fix[f.dev] + events_before
    # events: rank among the device's events + fixes stamped at or before
    fixes_upto = np.searchsorted(fkey, ekey_sorted, side="right") - first_fix[e.dev[eorder]]
    seq = np.empty(len(e), np.int64)
    seq[eorder] = np.arange(len(e)) - first_event[e.dev[eorder]] + fixes_upto
    sim.event_seq = seq
    aorder = np.lexsort((a.ts_s, a.dev))
    adev = a.dev[aorder]
    aseq = np.empty(len(a), np.int64)
    aseq[aorder] = np.arange(len(a)) - np.searchsorted(adev, adev, side="left")
    sim.alcohol_seq = aseq


def simulate(config: SimConfig, progress: Progress | None = None) -> Simulation:
    """Return a complete, deterministic simulation for ``config``.

    ``progress(stage, done, total)`` is called at each stage and as GPS tags are done (``done``
    counts people). The cyclic garbage
    collector is paused meanwhile: the run allocates millions of long-lived objects and nothing
    cyclic, and collections would make the run time grow faster than the cohort.
    """
    with paused_gc():
        return _simulate(config, progress)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored afterwards)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _people(config: SimConfig, frame: LocalFrame):
    """Return people, placed scripts, skipped scenarios, scripts per person, inclusion areas."""
    instances = assign(config.scenarios, config.persons)
    needs = {i.person: set(KINDS[i.kind].needs) for i in instances if i.person is not None}
    persons = build_cohort(config, stream(config.seed, "cohort"), needs)
    for inst in instances:
        if inst.person is not None:
            persons[inst.person].scenario = inst.kind
    inclusion = {p.index: inclusion_shape(p.routes) for p in persons if p.inclusion}
    scripts, skipped = _scripts(config, frame, persons, inclusion)
    scripts_of: dict[int, list[Script]] = {p.index: [] for p in persons}
    for s in scripts:
        if s.person is not None:
            scripts_of[s.person.index].append(s)
    return persons, scripts, skipped, scripts_of, inclusion


def with_orders(conditions: Conditions, scripts: list) -> Conditions:
    """Return ``conditions`` with the scripts' appointments, suspensions, victim protections and
    monitoring status."""
    appointments = [a for s in scripts for a in s.appointments]
    suspensions = [x for s in scripts for x in s.suspensions]
    victims = [v for s in scripts for v in s.victims]
    monitoring = next((s.monitoring for s in scripts if s.monitoring), None)
    if not appointments and not suspensions and not victims and monitoring is None:
        return conditions
    doc = msgspec.to_builtins(conditions)
    doc["appointments"] = doc.get("appointments", []) + appointments
    doc["suspensions"] = doc.get("suspensions", []) + suspensions
    doc["victims"] = doc.get("victims", []) + victims
    if monitoring is not None:
        doc["monitoring"] = monitoring
    return msgspec.convert(doc, Conditions)


def _conditions(config: SimConfig, frame: LocalFrame, persons, zones) -> tuple[list, dict]:
    """Return every person's ``Conditions`` and their published curfew circles."""
    addresses = curfew_addresses(frame, persons)
    conditions = [
        build_conditions(
            p,
            zones[p.index],
            curfew_point=addresses[p.index][0] if p.index in addresses else None,
            gps_interval_s=config.gps_interval_s,
            timezone=config.timezone,
            updated_at=config.start,
        )
        for p in persons
    ]
    return conditions, {i: circle for i, (_pt, circle) in addresses.items()}


def _fixes(config, frame, persons, traj, plans, stage) -> tuple[GpsFixes, IntervalSet]:
    """Return every GPS fix (in chunks of people, one random stream per chunk) and outages."""
    noise = NoiseSets(*(_interval_set(plans, a) for a in ("outages", "nofix", "silences", "clean")))
    battery = PiecewiseSeries([p.battery_t_s for p in plans], [p.battery_pct for p in plans])
    phases = np.array([p.gps_phase_s for p in persons], float)
    parts = []
    for c in range((len(persons) + GPS_CHUNK - 1) // GPS_CHUNK):
        dev = np.arange(c * GPS_CHUNK, min((c + 1) * GPS_CHUNK, len(persons)))
        parts.append(
            generate_fixes(
                dev,
                phases[dev],
                start_s=config.start_s,
                end_s=config.start_s + config.duration_s,
                interval_s=config.gps_interval_s,
                outlier_rate=config.noise.outlier_rate,
                traj=traj,
                noise=noise,
                battery=battery,
                frame=frame,
                rng=stream(config.seed, "gps", c),
            )
        )
        stage("gps fixes", int(dev[-1]) + 1)
    return GpsFixes.concat(parts), noise.outages


def _simulate(config: SimConfig, progress: Progress | None) -> Simulation:
    from simulator.derive import derive_truth

    def stage(name: str, done: int = 0) -> None:
        if progress:
            progress(name, done, config.persons)

    frame = LocalFrame(config.centre_lat, config.centre_lon)
    tz = config.timezone
    dates = local_dates(config.start_s, config.start_s + config.duration_s, tz)
    stage("people and scenarios")
    persons, scripts, skipped, scripts_of, inclusion = _people(config, frame)
    stage("zones and conditions")
    zones = _zones(config, frame, persons, scripts_of, inclusion)
    conditions, curfew_circles = _conditions(config, frame, persons, zones)
    conditions = [with_orders(c, scripts_of[i]) for i, c in enumerate(conditions)]
    span = (local_to_utc_s(dates[0], 0.0, tz), local_to_utc_s(dates[-1], 1439.0, tz))
    curfew_windows = {
        p.index: weekly_windows_utc(p.curfew.windows, *span, tz) for p in persons if p.curfew
    }
    stage("movement")
    traj = _trails(config, persons, scripts_of, curfew_windows, dates)
    plans = _devices(config, persons, scripts_of, dates)
    stage("gps fixes")
    fixes, outages = _fixes(config, frame, persons, traj, plans, stage)
    alcohol_plans, alcohol = _alcohol(config, persons, scripts_of, dates)
    sim = Simulation(
        config=config,
        frame=frame,
        persons=persons,
        zones=zones,
        conditions=conditions,
        scripts=scripts,
        skipped=skipped,
        scene_specs=[sc for s in scripts for sc in s.scenes] + _background_scenes(config, frame),
        trajectories=traj,
        device_plans=plans,
        alcohol_plans=alcohol_plans,
        curfew_windows=curfew_windows,
        curfew_circles=curfew_circles,
        fixes=fixes,
        alcohol=alcohol,
        events=_events(config, plans, outages),
        victim_readings=sorted(
            (r for s in scripts for r in s.victim_readings), key=lambda r: (r.ts, r.device_id)
        ),
    )
    _seqs(sim)
    stage("ground truth", config.persons)
    sim.truth = derive_truth(sim)
    return sim
