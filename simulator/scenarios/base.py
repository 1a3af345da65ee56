"""What a scripted scenario is: a person, a day, geometry, device overrides, truth hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import shapely

from simulator.alcohol import Drink
from simulator.cohort import XY, Person, routes_geometry
from simulator.conditions import CLEARANCE_M, ZoneSpec
from simulator.config import SimConfig
from simulator.geo import ConvexPolygon, LocalFrame, Shape
from simulator.localtime import local_to_utc_s
from simulator.movement import Itinerary, Rng

if TYPE_CHECKING:
    from simulator.engine import Simulation
    from simulator.scenes import SceneSpec
    from simulator.truth import TruthRecord


class ScenarioSkipped(Exception):
    """The scenario cannot be placed in this simulation (too short, interval too long, …)."""


@dataclass
class Ctx:
    """What a scenario builder sees."""

    config: SimConfig
    frame: LocalFrame
    person: Person | None
    rng: np.random.Generator
    scenario_id: str
    kind: str
    instance: int
    inclusion: ConvexPolygon | None = None

    @property
    def tz(self) -> str:
        """Local time zone name."""
        return self.config.timezone

    @property
    def start_s(self) -> float:
        """Simulation start, epoch seconds."""
        return self.config.start_s

    @property
    def end_s(self) -> float:
        """Simulation end, epoch seconds."""
        return self.config.start_s + self.config.duration_s

    def local(self, day: date, minute: float) -> float:
        """Return epoch seconds of local ``minute`` (may exceed 1440) on ``day``."""
        return local_to_utc_s(day, minute, self.tz)

    def pick_day(self, first_min: float, last_min: float, margin_s: float = 1200.0) -> date:
        """Return a local date whose ``[first_min, last_min]`` slot lies inside the simulation."""
        from simulator.localtime import local_dates

        ok = [
            d
            for d in local_dates(self.start_s, self.end_s, self.tz)
            if self.local(d, first_min) >= self.start_s + margin_s
            and self.local(d, last_min) <= self.end_s - margin_s
        ]
        if not ok:
            raise ScenarioSkipped(
                f"no local day has {first_min / 60:.1f}–{last_min / 60:.1f} h inside the run"
            )
        return ok[self.instance % len(ok)]

    def routes(self) -> shapely.Geometry:
        """The person's normal candidate routes as one geometry."""
        assert self.person is not None
        return routes_geometry(self.person.routes)


@dataclass
class Script:
    """A placed scenario: overrides for one person (or none) and what to check afterwards."""

    kind: str
    scenario_id: str
    person: Person | None
    day: date | None = None
    plan_day: Callable[[Itinerary, Rng], None] | None = None
    zones: list[ZoneSpec] = field(default_factory=list)
    paths: list[list[XY]] = field(default_factory=list)
    clean: list[tuple[float, float]] = field(default_factory=list)
    silences: list[tuple[float, float]] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)
    events: list[tuple[float, str, str | None]] = field(default_factory=list)
    battery_low_at_s: float | None = None
    drinks: list[Drink] = field(default_factory=list)
    interferents: list[tuple[float, float]] = field(default_factory=list)
    removals: list[tuple[float, float]] = field(default_factory=list)
    scenes: list[SceneSpec] = field(default_factory=list)
    truth: Callable[[Simulation, Script], list[TruthRecord]] | None = None
    facts: dict = field(default_factory=dict)
    appointments: list[dict] = field(default_factory=list)  # contract form, added to conditions
    monitoring: dict | None = None  # contract form, replaces the conditions' monitoring status
    gps_broken: list[tuple[float, float]] = field(default_factory=list)  # no fixes; events go on
    suspensions: list[dict] = field(default_factory=list)  # single-rule suspensions (contract form)
    victims: list[dict] = field(default_factory=list)  # victim protections (contract form)
    victim_readings: list = field(default_factory=list)  # the victim's own fixes (GpsReading)


def unit(theta: float) -> XY:
    """Return the unit vector at angle ``theta`` (radians, from east, counter-clockwise)."""
    return float(np.cos(theta)), float(np.sin(theta))


def offset(p: XY, u: XY, d: float) -> XY:
    """Return ``p + d * u``."""
    return p[0] + d * u[0], p[1] + d * u[1]


def in_area(ctx: Ctx, *points: XY, margin_m: float = 200.0) -> bool:
    """Return whether all points lie inside the simulated area (with a margin)."""
    h = ctx.config.half_size_m - margin_m
    return all(abs(x) <= h and abs(y) <= h for x, y in points)


def site(
    ctx: Ctx,
    build: Callable[[float, float], tuple[Shape | None, list[list[XY]]]],
    *,
    dist_m: tuple[float, float] = (600.0, 1400.0),
    attempts: int = 400,
    accept: Callable[[list[list[XY]]], bool] | None = None,
) -> tuple[Shape | None, list[list[XY]], float, float]:
    """Find a direction and distance where ``build(theta, dist)`` fits this person's life.

    ``build`` returns the scenario's zone shape (or None) and its scripted paths. The shape must
    keep :data:`CLEARANCE_M` from the person's normal routes, everything must stay inside the
    area, and ``accept(paths)`` (if given) must hold. Returns ``(shape, paths, theta, dist)``.
    """
    routes = ctx.routes()
    for _ in range(attempts):
        theta = float(ctx.rng.uniform(0, 2 * np.pi))
        dist = float(ctx.rng.uniform(*dist_m))
        shape, paths = build(theta, dist)
        pts = [p for path in paths for p in path]
        if shape is not None:
            cx, cy = shape.centre
            r = shape.bounding_radius_m
            pts += [(cx + r, cy + r), (cx - r, cy - r)]
            if shapely.distance(shape.shapely, routes) < CLEARANCE_M:
                continue
        if in_area(ctx, *pts) and (accept is None or accept(paths)):
            return shape, paths, theta, dist
    raise ScenarioSkipped("no room for the scenario around this person's home and places")
