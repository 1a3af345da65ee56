"""Tag behaviour apart from position: battery and charging, device events, gaps and outages.

Battery: drains 2–3.5 %/h; charged most evenings at home (21:00–22:30 local, +40 %/h to 100 %);
on about one evening in twelve the person forgets. Crossing 15 % sends ``battery_low`` and the person
charges 0.5–2 h later (so a tag never goes flat). Charging sends ``charging_started`` and
``charging_stopped``.

Signal imperfections per GPS tag (all avoided inside scripted *clean* intervals):

* no-fix gaps (2–8 min) while indoors: nothing is recorded;
* short cellular outages (2–9 min) and rare long ones (15–45 min): fixes and events are recorded
  and buffered, then uploaded in a burst when the tag reconnects. An outage ends on a fix instant:
  that *live* fix is sent first, the backlog (oldest first) right after — so delivery order
  differs from event order across the batch boundary;
* silences (scripted only): the tag records and sends nothing (shielded, or broken).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from simulator.intervals import overlaps
from simulator.localtime import local_to_utc_s

LOW_PCT = 15.0
CHARGE_PCT_PER_H = 40.0
FORGET_CHARGE = 0.08


@dataclass(slots=True)
class DevicePlan:
    """Everything about one GPS tag except its position (epoch seconds throughout)."""

    battery_t_s: list[float] = field(default_factory=list)
    battery_pct: list[float] = field(default_factory=list)
    events: list[tuple[float, str, str | None]] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)
    nofix: list[tuple[float, float]] = field(default_factory=list)
    heartbeats_in: list[tuple[float, float]] = field(default_factory=list)  # events kept
    silences: list[tuple[float, float]] = field(default_factory=list)
    clean: list[tuple[float, float]] = field(default_factory=list)


def plan_battery(
    plan: DevicePlan,
    rng: np.random.Generator,
    dates: list[date],
    tz_name: str,
    *,
    low_at_s: float | None = None,
) -> None:
    """Fill the battery timeline and battery/charging events of ``plan``.

    With ``low_at_s`` (a scripted ``battery_low``), the tag starts full, is not charged before,
    and drains at the rate that crosses 15 % exactly then.
    """
    t = local_to_utc_s(dates[0], 0.0, tz_name)
    end = local_to_utc_s(dates[-1], 1439.0, tz_name)
    level = 100.0 if low_at_s else float(rng.uniform(50, 100))
    rate_h = float(rng.uniform(2.0, 3.5))
    if low_at_s is not None:
        rate_h = (level - LOW_PCT) / ((low_at_s - t) / 3600.0)
    charges = []
    for d in dates:
        c = local_to_utc_s(d, float(rng.uniform(1260, 1350)), tz_name)
        skip = rng.random() < FORGET_CHARGE or (low_at_s is not None and c < low_at_s)
        if not skip:
            charges.append(c)
    plan.battery_t_s.append(t)
    plan.battery_pct.append(level)
    pending = sorted(charges)
    while t < end:
        nxt = pending[0] if pending else end
        if level > LOW_PCT and level - rate_h * (nxt - t) / 3600.0 <= LOW_PCT:
            t_low = t + (level - LOW_PCT) / rate_h * 3600.0
            if low_at_s is not None and abs(t_low - low_at_s) < 1.0:
                t_low = low_at_s
            plan.events.append((round(t_low), "battery_low", f"battery {LOW_PCT:.0f}%"))
            soon = t_low + float(rng.uniform(1800, 7200))
            pending = sorted([p for p in pending if p > soon] + [soon])
            nxt = pending[0]
        level = max(0.0, level - rate_h * (nxt - t) / 3600.0)
        t = nxt
        plan.battery_t_s.append(t)
        plan.battery_pct.append(level)
        if not pending:
            break
        pending.pop(0)
        full_s = (100.0 - level) / CHARGE_PCT_PER_H * 3600.0
        plan.events.append((round(t), "charging_started", None))
        t, level = t + full_s, 100.0
        plan.events.append((round(t), "charging_stopped", "full"))
        plan.battery_t_s.append(t)
        plan.battery_pct.append(level)
        pending = [p for p in pending if p > t + 3600.0]


def snap_to_fix(t_s: float, start_s: float, phase_s: float, interval_s: float) -> float:
    """Return the first fix instant of the tag at or after ``t_s``."""
    k = np.ceil((t_s - start_s - phase_s) / interval_s)
    return start_s + phase_s + max(k, 0) * interval_s


def plan_random_gaps(
    plan: DevicePlan,
    rng: np.random.Generator,
    *,
    start_s: float,
    end_s: float,
    phase_s: float,
    interval_s: float,
    outages_per_day: float,
    long_outages_per_day: float,
    nofix_per_day: float,
) -> None:
    """Add random outages and no-fix gaps that keep clear of scripted intervals and each other."""
    days = (end_s - start_s) / 86400.0
    taken = list(plan.clean) + list(plan.silences) + list(plan.outages)
    kinds = (
        ("outage", outages_per_day, (120, 540)),
        ("outage", long_outages_per_day, (900, 2700)),
        ("nofix", nofix_per_day, (120, 480)),
    )
    for kind, rate, (lo, hi) in kinds:
        for _ in range(rng.poisson(rate * days)):
            t0 = float(rng.uniform(start_s, end_s))
            t1 = t0 + float(rng.uniform(lo, hi))
            if kind == "outage":
                t1 = snap_to_fix(t1, start_s, phase_s, interval_s)
            if t1 > end_s or overlaps(t0, t1, taken, 1200.0):
                continue
            taken.append((t0, t1))
            (plan.outages if kind == "outage" else plan.nofix).append((t0, t1))
