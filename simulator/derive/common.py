"""Helpers shared by the ground-truth derivations: labels, lateness, curfew windows."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from simulator.engine import Simulation

#: A fix delivered more than this after it was taken makes an alert ``late``.
LATE_AFTER_S = 60.0


def scenario_label(sim: Simulation, person: int, a: float, b: float) -> tuple[str, str | None]:
    """Return the scenario (kind, id) whose scripted intervals overlap ``[a, b]``."""
    for s in sim.scripts:
        if s.person is None or s.person.index != person:
            continue
        spans = s.clean + s.silences + s.outages
        if any(x <= b and y >= a for x, y in spans):
            return s.kind, s.scenario_id
    return "background", None


def first_fix_delay_s(sim: Simulation, person: int, t_s: float) -> float | None:
    """Return delivery delay of the person's first fix at or after ``t_s`` (None if none)."""
    f = sim.fixes
    k = int(np.searchsorted(sim.fix_key, person * 10**10 + int(np.ceil(t_s))))
    if k >= len(f) or f.dev[k] != person:
        return None
    return float(f.delivered_s[k] - f.ts_s[k])


def in_curfew_window(sim: Simulation, person: int, t: float) -> bool:
    """Return whether one of the person's curfew windows covers ``t``."""
    return any(s <= t < e for s, e, _d in sim.curfew_windows.get(person, []))


def suspended(sim: Simulation, person: int, t: float) -> bool:
    """Return whether a scripted monitoring suspension (or end) of ``person`` covers ``t``."""
    for s in sim.scripts:
        m = s.monitoring
        if m is None or s.person is None or s.person.index != person:
            continue
        lo = datetime.fromisoformat(m["from"]).timestamp() if m.get("from") else -math.inf
        hi = datetime.fromisoformat(m["until"]).timestamp() if m.get("until") else math.inf
        if lo <= t < hi:
            return True
    return False
