"""Scripted trips: timed legs out and back, with the speeds fixed when the script is written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator.cohort import XY
from simulator.movement import DRIVE_MPS, WALK_MPS, Itinerary, Rng, jittered, path_length

DROP_BEFORE_M = 150.0


@dataclass(frozen=True, slots=True)
class Leg:
    """Travel along ``path`` at ``speed_mps``."""

    path: tuple[XY, ...]
    speed_mps: float

    def duration_s(self, start: XY) -> float:
        """Return the travel time from ``start``."""
        return path_length([start, *self.path]) / self.speed_mps


def legs_to(rng: Rng, a: XY, b: XY, *, walk_under_m: float = 900.0) -> list[Leg]:
    """Return legs from ``a`` to ``b``: walk if short, else drive to 150 m before and walk in."""
    length = float(np.hypot(b[0] - a[0], b[1] - a[1]))
    walk = Leg((b,), float(rng.uniform(*WALK_MPS)))
    if length < walk_under_m:
        return [walk]
    f = (length - DROP_BEFORE_M) / length
    drop = (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
    return [Leg((drop,), float(rng.uniform(*DRIVE_MPS))), walk]


def legs_back(legs: list[Leg], home: XY) -> list[Leg]:
    """Return the same legs in reverse, ending at ``home``."""
    points = [p for leg in legs for p in leg.path]
    stops = [*points[:-1][::-1], home]
    return [Leg((p,), leg.speed_mps) for p, leg in zip(stops, legs[::-1], strict=True)]


def duration_s(legs: list[Leg], start: XY) -> float:
    """Return the total travel time of ``legs`` from ``start``."""
    total, here = 0.0, start
    for leg in legs:
        total += leg.duration_s(here)
        here = leg.path[-1]
    return total


def run_legs(it: Itinerary, legs: list[Leg], *, depart_s: float | None = None) -> float:
    """Travel ``legs`` (leaving at ``depart_s`` or now); return the arrival time."""
    for k, leg in enumerate(legs):
        it.go(list(leg.path), leg.speed_mps, depart_s=depart_s if k == 0 else None)
    return it.now_s


def out_and_back(
    home: XY,
    depart_s: float,
    out: list[Leg],
    dwell_s: float,
    *,
    dwell_indoor: bool = True,
) -> Callable[[Itinerary, Rng], None]:
    """Return a day plan: leave home at ``depart_s``, go, stay ``dwell_s``, come back home."""

    def plan(it: Itinerary, rng: Rng) -> None:
        back = legs_back(out, jittered(rng, home))
        run_legs(it, out, depart_s=depart_s)
        it.stay_until(it.now_s + dwell_s, indoor=dwell_indoor)
        run_legs(it, back)

    return plan


def path_of(start: XY, legs: list[Leg]) -> list[XY]:
    """Return the polyline of ``legs`` from ``start``."""
    return [start, *(p for leg in legs for p in leg.path)]
