"""True movement: daily plans turned into piecewise-linear trails, sampled in bulk with numpy.

A trail is a list of knots ``(t_s, x_m, y_m)``; between knots a person moves in a straight line at
constant speed (or stays put). ``indoor[k]`` describes the piece that starts at knot ``k``. A
default day: home overnight, out after the curfew ends (or 07:15–09:30 local), one to three
regular places, home again 20–90 min before the curfew starts (or 17:00–21:30 local). Paths are
straight or L-shaped ("streets"); people walk short trips (1.1–1.6 m/s) and drive longer ones
(7–12 m/s). Stays are 0–8 m from the place's point.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np

from simulator.cohort import XY, Person, route_variants
from simulator.localtime import local_to_utc_s

WALK_MPS = (1.1, 1.6)
DRIVE_MPS = (7.0, 12.0)
STAY_JITTER_M = 8.0
#: Anything with ``random()`` and ``uniform(a, b)``: numpy Generators and ``random.Random``.
Rng = np.random.Generator | random.Random


class ScheduleError(RuntimeError):
    """A plan asks a person to leave before they have arrived (a scripting mistake)."""


class Itinerary:
    """Build one person's trail knot by knot, in time order."""

    def __init__(self, t_s: float, xy: XY) -> None:
        self.t: list[float] = [t_s]
        self.x: list[float] = [xy[0]]
        self.y: list[float] = [xy[1]]
        self.indoor: list[bool] = [True]

    @property
    def now_s(self) -> float:
        """Time of the last knot, epoch seconds."""
        return self.t[-1]

    @property
    def pos(self) -> XY:
        """Position at the last knot, local metres."""
        return self.x[-1], self.y[-1]

    def stay_until(self, t_s: float, *, indoor: bool = True) -> None:
        """Stay at the current position until ``t_s``."""
        if t_s < self.now_s - 1e-6:
            raise ScheduleError(f"cannot stay until {t_s:.0f}: already at {self.now_s:.0f}")
        self.indoor[-1] = indoor
        if t_s > self.now_s:
            self._knot(t_s, self.pos)

    def go(
        self,
        path: Sequence[XY],
        speed_mps: float,
        *,
        depart_s: float | None = None,
        arrive_s: float | None = None,
        wait_indoor: bool = True,
    ) -> float:
        """Travel along ``path`` at ``speed_mps``; return the arrival time.

        Leaves now, at ``depart_s``, or so as to arrive at ``arrive_s`` (waiting until then
        ``wait_indoor``). Raises :class:`ScheduleError` if that would mean leaving in the past.
        """
        pts = [self.pos, *path]
        legs = [math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(pts)]
        total_s = sum(legs) / speed_mps
        if arrive_s is not None:
            depart_s = arrive_s - total_s
        if depart_s is None:
            depart_s = self.now_s
        self.stay_until(depart_s, indoor=wait_indoor)
        t = depart_s
        for point, leg in zip(pts[1:], legs, strict=False):
            if leg <= 1e-9:
                continue
            self.indoor[-1] = False
            t += leg / speed_mps
            self._knot(t, point)
        return t

    def _knot(self, t_s: float, xy: XY) -> None:
        self.t.append(float(t_s))
        self.x.append(float(xy[0]))
        self.y.append(float(xy[1]))
        self.indoor.append(True)


def jittered(rng: Rng, xy: XY, radius_m: float = STAY_JITTER_M) -> XY:
    """Return a point within ``radius_m`` of ``xy`` (where exactly one stands at a place)."""
    r = radius_m * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    return xy[0] + r * math.cos(a), xy[1] + r * math.sin(a)


def travel_speed(rng: Rng, length_m: float) -> float:
    """Return a speed for a trip of ``length_m``: walking when short, else mostly driving."""
    if length_m < 1200 or (length_m < 2500 and rng.random() < 0.3):
        return float(rng.uniform(*WALK_MPS))
    return float(rng.uniform(*DRIVE_MPS))


def path_length(path: Sequence[XY]) -> float:
    """Return the length of a polyline, metres."""
    return sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(path))


def pick_route(rng: Rng, a: XY, b: XY) -> list[XY]:
    """Return one of the candidate paths from ``a`` to ``b`` (without the start point)."""
    variants = route_variants(a, b)
    return variants[int(rng.random() * len(variants))][1:]


@dataclass(frozen=True, slots=True)
class DayBounds:
    """When a default day may start and must end (epoch seconds)."""

    leave_s: float
    home_by_s: float


def default_bounds(
    rng: Rng,
    day: date,
    curfew_windows: list[tuple[float, float, date]],
    tz_name: str,
) -> DayBounds:
    """Return when the person leaves home on ``day`` and when they are back, respecting curfews."""
    leave = local_to_utc_s(day, float(rng.uniform(435, 570)), tz_name)
    home_by = local_to_utc_s(day, float(rng.uniform(1020, 1290)), tz_name)
    for s, e, _d in curfew_windows:
        if s <= leave + 3600 and e > leave - 12 * 3600:
            leave = max(leave, e + float(rng.uniform(900, 3600)))
        if leave < s <= home_by + 5400:
            home_by = min(home_by, s - float(rng.uniform(1200, 5400)))
    return DayBounds(leave, home_by)


def plan_default_day(it: Itinerary, person: Person, rng: random.Random, bounds: DayBounds) -> None:
    """Append a default day: out to 1–3 regular places between ``bounds``, then home."""
    if rng.random() < 0.1 or bounds.home_by_s - bounds.leave_s < 3 * 3600:
        return  # a day at home
    n_stops = min(rng.choices((1, 2, 3), weights=(0.55, 0.33, 0.12))[0], len(person.places))
    stops = rng.sample(person.places, n_stops)
    nodes = [person.home, *stops, person.home]
    paths, speeds = [], []
    for a, b in itertools.pairwise(nodes):
        path = pick_route(rng, a, b)
        paths.append(path)
        speeds.append(travel_speed(rng, path_length([a, *path])))
    travel_s = sum(path_length([a, *p]) / v for a, p, v in zip(nodes, paths, speeds, strict=False))
    spare_s = bounds.home_by_s - bounds.leave_s - travel_s - 600.0
    if spare_s < 1800.0 * n_stops:
        return
    weights = [rng.gammavariate(2.0, 1.0) for _ in range(n_stops)]
    dwell_s = [w / sum(weights) * spare_s for w in weights]
    it.stay_until(max(it.now_s, bounds.leave_s))
    for k, (path, speed) in enumerate(zip(paths, speeds, strict=False)):
        end = jittered(rng, path[-1])
        it.go([*path[:-1], end], speed)
        if k < n_stops:
            it.stay_until(it.now_s + float(dwell_s[k]))


class Trajectories:
    """All trails in flat arrays; :meth:`sample` interpolates many (person, time) pairs at once."""

    def __init__(self, itineraries: list[Itinerary], origin_s: float) -> None:
        counts = np.array([len(it.t) for it in itineraries])
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.t_s = np.concatenate([np.asarray(it.t, float) for it in itineraries])
        self.x_m = np.concatenate([np.asarray(it.x, float) for it in itineraries])
        self.y_m = np.concatenate([np.asarray(it.y, float) for it in itineraries])
        self.indoor = np.concatenate([np.asarray(it.indoor, bool) for it in itineraries])
        self.person = np.repeat(np.arange(len(itineraries)), counts)
        self.origin_s = origin_s
        span = float(self.t_s.max() - origin_s) + 10.0
        self._scale = 10.0 ** np.ceil(np.log10(span))
        self._key = self.person * self._scale + (self.t_s - origin_s)
        if np.any(np.diff(self._key) < 0):
            raise ScheduleError("trail knots are not in time order")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def pieces(self, person: int) -> tuple[np.ndarray, ...]:
        """Return one person's pieces ``(t0, t1, x0, y0, x1, y1, indoor)``."""
        a, b = self.offsets[person], self.offsets[person + 1]
        t, x, y = self.t_s[a:b], self.x_m[a:b], self.y_m[a:b]
        return t[:-1], t[1:], x[:-1], y[:-1], x[1:], y[1:], self.indoor[a : b - 1]

    @cached_property
    def _all_pieces(self) -> tuple[np.ndarray, ...]:
        last = np.zeros(len(self.t_s), bool)
        last[self.offsets[1:] - 1] = True
        i = np.flatnonzero(~last)
        j = i + 1
        return (
            self.person[i],
            self.t_s[i],
            self.t_s[j],
            self.x_m[i],
            self.y_m[i],
            self.x_m[j],
            self.y_m[j],
            self.indoor[i],
        )

    def all_pieces(self) -> tuple[np.ndarray, ...]:
        """Return every piece of every person: ``(person, t0, t1, x0, y0, x1, y1, indoor)``."""
        return self._all_pieces

    def sample(
        self, person: np.ndarray, t_s: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return true ``(x_m, y_m, vx_mps, vy_mps, indoor)`` of ``person`` at ``t_s``."""
        person = np.asarray(person)
        t_s = np.asarray(t_s, float)
        key = person * self._scale + (t_s - self.origin_s)
        k = np.searchsorted(self._key, key, side="right") - 1
        last = self.offsets[person + 1] - 1
        k = np.clip(k, self.offsets[person], last - 1)
        t0, t1 = self.t_s[k], self.t_s[k + 1]
        dt = np.maximum(t1 - t0, 1e-9)
        vx = (self.x_m[k + 1] - self.x_m[k]) / dt
        vy = (self.y_m[k + 1] - self.y_m[k]) / dt
        u = np.clip(t_s - t0, 0.0, t1 - t0)
        moving = t1 > t0
        x = self.x_m[k] + np.where(moving, vx * u, 0.0)
        y = self.y_m[k] + np.where(moving, vy * u, 0.0)
        return x, y, vx, vy, self.indoor[k]
