"""The simulated people: identifiers, homes and regular places in the area, tag phases.

Homes are uniform in the area (1 km from its edge); each person has 2–4 regular places (work,
shops, friends) 300 m–5 km from home. No names or addresses: only ids and coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely

from simulator.config import SimConfig

XY = tuple[float, float]

#: Curfew windows offered to the background cohort: (days, start, end), local time.
ALL_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHOOL_NIGHTS = ("sun", "mon", "tue", "wed", "thu")
CURFEW_TIMES = (("19:00", "07:00"), ("21:00", "06:00"), ("20:00", "07:00"), ("19:00", "06:00"))
CURFEW_RADII_M = (50.0, 75.0, 100.0)


@dataclass(frozen=True, slots=True)
class CurfewSpec:
    """A home curfew: weekly windows ``(days, start, end)`` and the address radius, metres."""

    curfew_id: str
    windows: tuple[tuple[tuple[str, ...], str, str], ...]
    radius_m: float


@dataclass(slots=True)
class Person:
    """One simulated person. Positions are local metres ``(x_m, y_m)``."""

    index: int
    offender_id: str
    gps_device_id: str
    home: XY
    places: list[XY]
    gps_phase_s: int
    alcohol_phase_s: int
    alcohol_device_id: str | None = None
    curfew: CurfewSpec | None = None
    inclusion: bool = False
    n_zones: int = 1
    scenario: str | None = None
    routes: list[list[XY]] = field(default_factory=list)

    @property
    def device_ids(self) -> list[str]:
        """The device ids this person wears (GPS tag first)."""
        ids = [self.gps_device_id]
        if self.alcohol_device_id:
            ids.append(self.alcohol_device_id)
        return ids


def route_variants(a: XY, b: XY) -> list[list[XY]]:
    """Return the candidate paths from ``a`` to ``b``: straight, and two L-shaped "street" paths."""
    return [[a, b], [a, (b[0], a[1]), b], [a, (a[0], b[1]), b]]


def normal_routes(home: XY, places: list[XY]) -> list[list[XY]]:
    """Return every candidate path between home and places (each pair once, any direction)."""
    nodes = [home, *places]
    out = []
    for i in range(len(nodes)):
        for j in range(i + 1, len(nodes)):
            out += route_variants(nodes[i], nodes[j])
    return out


def routes_geometry(paths: list[list[XY]]) -> shapely.Geometry:
    """Return the paths as one shapely MultiLineString (local metres)."""
    return shapely.MultiLineString([np.asarray(p, float) for p in paths])


def choose_curfew(rng: np.random.Generator, index: int, *, all_week: bool) -> CurfewSpec:
    """Return a random home curfew; ``all_week`` forces a window every night."""
    start, end = CURFEW_TIMES[rng.integers(len(CURFEW_TIMES))]
    days = ALL_WEEK if all_week or rng.random() < 0.7 else SCHOOL_NIGHTS
    radius = CURFEW_RADII_M[rng.integers(len(CURFEW_RADII_M))]
    return CurfewSpec(f"c-{index:05d}", ((days, start, end),), float(radius))


def build_cohort(
    config: SimConfig, rng: np.random.Generator, needs: dict[int, set[str]]
) -> list[Person]:
    """Return ``config.persons`` people.

    ``needs`` maps the index of each scripted person to what their scenario requires
    (``curfew`` every night, ``alcohol``, ``inclusion``); scripted people get nothing else at random
    that could interfere (no inclusion zone unless required).
    """
    n = config.persons
    h = config.half_size_m
    inner = h - 1000.0
    homes = rng.uniform(-inner, inner, size=(n, 2))
    n_places = rng.integers(2, 5, size=n)
    gps_phase = rng.integers(0, max(1, int(config.gps_interval_s)), size=n)
    alc_phase = rng.integers(0, int(config.alcohol_interval_s), size=n)
    curfew_draw = rng.random(n)
    alcohol_draw = rng.random(n)
    inclusion_draw = rng.random(n)
    n_zones = rng.integers(1, 6, size=n)
    dist = np.clip(rng.lognormal(np.log(1500.0), 0.6, size=(n, 4)), 300.0, 5000.0)
    angle = rng.uniform(0, 2 * np.pi, size=(n, 4))
    px = np.clip(homes[:, :1] + dist * np.cos(angle), -h + 300, h - 300)
    py = np.clip(homes[:, 1:] + dist * np.sin(angle), -h + 300, h - 300)
    people = []
    for i in range(n):
        need = needs.get(i, set())
        home = (float(homes[i, 0]), float(homes[i, 1]))
        places = [(float(px[i, k]), float(py[i, k])) for k in range(n_places[i])]
        person = Person(
            index=i,
            offender_id=f"off-{i:05d}",
            gps_device_id=f"tag-{i:05d}",
            home=home,
            places=places,
            gps_phase_s=int(gps_phase[i]),
            alcohol_phase_s=int(alc_phase[i]),
            n_zones=int(n_zones[i]),
        )
        if "curfew" in need or curfew_draw[i] < config.curfew_fraction:
            person.curfew = choose_curfew(rng, i, all_week="curfew" in need)
        if "alcohol" in need or alcohol_draw[i] < config.alcohol_fraction:
            person.alcohol_device_id = f"scram-{i:05d}"
        person.inclusion = "inclusion" in need or (
            i not in needs and inclusion_draw[i] < config.inclusion_fraction
        )
        person.routes = normal_routes(home, places)
        people.append(person)
    return people
