"""Scripted scenarios mixed into the cohort, each with the ground truth it should produce.

Each scenario kind is a builder ``(Ctx) -> Script`` in this package; one scripted person per
instance (the scene-no-one-visited needs none). Times are chosen in local time and converted
(DST-aware). See :data:`KINDS` for the list and what each needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from simulator.scenarios import curfew, orders, scenes, tags, victims, zones
from simulator.scenarios.base import Ctx, ScenarioSkipped, Script


@dataclass(frozen=True, slots=True)
class Kind:
    """A scenario kind: its builder, what its person needs, and a one-line description."""

    build: Callable[[Ctx], Script]
    needs: frozenset[str]
    person: bool = True

    @property
    def help(self) -> str:
        """First line of the builder's docstring."""
        return (self.build.__doc__ or "").strip().splitlines()[0]


def _k(build: Callable[[Ctx], Script], *needs: str, person: bool = True) -> Kind:
    return Kind(build, frozenset(needs), person)


#: Every scenario kind, in the order instances are assigned to people.
KINDS: dict[str, Kind] = {
    "exclusion_brief": _k(zones.exclusion_brief),
    "exclusion_long": _k(zones.exclusion_long),
    "near_miss": _k(zones.near_miss),
    "inclusion_breach": _k(zones.inclusion_breach, "inclusion"),
    "late_burst": _k(zones.late_burst),
    "curfew_late_return": _k(curfew.curfew_late_return, "curfew"),
    "curfew_early_leave": _k(curfew.curfew_early_leave, "curfew"),
    "curfew_silent": _k(curfew.curfew_silent, "curfew"),
    "device_silent": _k(curfew.device_silent),
    "strap_tamper": _k(tags.strap_tamper),
    "battery_low": _k(tags.battery_low),
    "drinking": _k(tags.drinking, "alcohol"),
    "interferent": _k(tags.interferent, "alcohol"),
    "alcohol_tamper": _k(tags.alcohol_tamper, "alcohol"),
    "scene_at": _k(scenes.scene_at),
    "scene_passed_by": _k(scenes.scene_passed_by),
    "scene_outside_window": _k(scenes.scene_outside_window),
    "scene_not_visited": _k(scenes.scene_not_visited, person=False),
    "attendance_kept": _k(orders.attendance_kept),
    "attendance_late": _k(orders.attendance_late),
    "attendance_missed": _k(orders.attendance_missed),
    "attendance_unverified": _k(orders.attendance_unverified),
    "custody": _k(orders.custody),
    "gps_broken": _k(orders.gps_broken),
    "hospital_suspended": _k(zones.hospital_suspended),
    "victim_approach": _k(victims.victim_approach),
    "victim_near_miss": _k(victims.victim_near_miss),
}


def parse(spec: str) -> dict[str, int]:
    """Return kind → count for ``all``, ``none`` or ``kind[=n],kind[=n]…``.

    >>> parse("near_miss=2,drinking")
    {'near_miss': 2, 'drinking': 1}
    >>> parse("all=3")["scene_at"]
    3
    """
    spec = spec.strip()
    if spec in ("", "none"):
        return {}
    if spec == "all":
        return dict.fromkeys(KINDS, 1)
    out: dict[str, int] = {}
    for part in spec.split(","):
        name, _, count = part.strip().partition("=")
        if name != "all" and name not in KINDS:
            raise ValueError(f"unknown scenario {name!r}; known: all, {', '.join(KINDS)}")
        try:
            n = int(count) if count else 1
        except ValueError:
            raise ValueError(f"scenario count must be a whole number: {part!r}") from None
        if n < 0:
            raise ValueError(f"scenario count must not be negative: {part!r}")
        for kind in KINDS if name == "all" else (name,):
            out[kind] = out.get(kind, 0) + n
    return out


@dataclass(frozen=True, slots=True)
class Instance:
    """One scenario instance: kind, its number among its kind, its id, its person (or None)."""

    kind: str
    number: int
    scenario_id: str
    person: int | None


def assign(counts: dict[str, int], persons: int) -> list[Instance]:
    """Return instances in a fixed order, one scripted person each (person 0, 1, …)."""
    out, next_person, n = [], 0, 0
    for kind in KINDS:
        for k in range(counts.get(kind, 0)):
            n += 1
            person = None
            if KINDS[kind].person:
                person, next_person = next_person, next_person + 1
            out.append(Instance(kind, k, f"s{n:03d}-{kind}", person))
    if next_person > persons:
        raise ValueError(
            f"the scenarios need {next_person} scripted people but --persons is {persons}"
        )
    return out


__all__ = ["KINDS", "Ctx", "Instance", "ScenarioSkipped", "Script", "assign", "parse"]
