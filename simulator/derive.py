"""Derive the ground truth from true trails and delivered readings (see :mod:`simulator.truth`).

* Zones: exact true inside intervals (outside, for inclusion zones) of every zone, intersected with
  its schedule → ``exclusion_breach``/``inclusion_breach`` at the entry, ``…_ended`` at the exit.
* Curfews: true time outside the address circle during each window → ``curfew_breach`` at the
  start of that time (the window start for a late return), ``curfew_breach_ended`` at its end (the
  return home, or the window end after an early leave).
* Silence: a GPS tag from which nothing *arrives* for longer than ``gps_interval_s +
  silence_buffer_s`` → ``device_silent`` (``curfew_unverified`` if the threshold is passed during a
  curfew window), ``…_ended`` when contact is restored (timing ``processing``).
* Device events: ``strap_tamper`` (high), ``battery_low`` (medium), ``strap_restored`` (optional);
  charging events are context, not alerts, and are not listed.
* Alcohol: ``alcohol_detected`` at the first of two consecutive readings >= 0.020 g/dL of each
  drinking episode; ``alcohol_suspect_interferent`` (and ``no_alert`` for ``alcohol_detected``)
  for an interferent; ``alcohol_tamper`` at the first reading after the bracelet comes off.
* Scenes: every person whose true trail enters a scene's radius inside its window → a ``match``
  (``at_scene`` when the dwell is >= 5 min, else ``passed_by``); near things are ``optional``.

``late`` is expected when the first fix at or after the true instant reached the broker more than
60 s after it was taken (a store-and-forward burst).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.alcohol import THRESHOLD_G_DL
from simulator.conditions import curfew_circle
from simulator.geo import Shape, inside_fraction, merge_intervals
from simulator.localtime import iso_utc, weekly_windows_utc, zone
from simulator.scenes import AT_SCENE_DWELL_S, proximity
from simulator.truth import TruthRecord, finalise, record

if TYPE_CHECKING:
    from simulator.engine import Simulation

LATE_AFTER_S = 60.0
BORDER_M = 25.0
SCENE_PAD_S = 3600.0


def derive_truth(sim: Simulation) -> list[TruthRecord]:
    """Return every ground-truth record of ``sim``, sorted, with ids."""
    records = (
        zone_truth(sim)
        + curfew_truth(sim)
        + silence_truth(sim)
        + event_truth(sim)
        + alcohol_truth(sim)
        + scene_truth(sim)
    )
    for script in sim.scripts:
        if script.truth is not None:
            records += script.truth(sim, script)
    return finalise(records)


def _label(sim: Simulation, person: int, a: float, b: float) -> tuple[str, str | None]:
    """Return the scenario (kind, id) whose scripted intervals overlap ``[a, b]``."""
    for s in sim.scripts:
        if s.person is None or s.person.index != person:
            continue
        spans = s.clean + s.silences + s.outages
        if any(x <= b and y >= a for x, y in spans):
            return s.kind, s.scenario_id
    return "background", None


def _fix_key(dev, ts) -> np.ndarray:
    return np.asarray(dev, np.int64) * 10**10 + np.asarray(ts, np.int64)


def first_fix_delay_s(sim: Simulation, person: int, t_s: float) -> float | None:
    """Return delivery delay of the person's first fix at or after ``t_s`` (None if none)."""
    f = sim.fixes
    key = _fix_key(f.dev, f.ts_s)
    k = int(np.searchsorted(key, _fix_key(person, np.ceil(t_s))))
    if k >= len(f) or f.dev[k] != person:
        return None
    return float(f.delivered_s[k] - f.ts_s[k])


def inside_intervals(sim: Simulation, person: int, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Return the merged true intervals during which ``person`` is inside ``shape``."""
    t0, t1, x0, y0, x1, y1, _indoor = sim.trajectories.pieces(person)
    u_in, u_out = inside_fraction(shape, x0, y0, x1, y1)
    a, b = t0 + u_in * (t1 - t0), t0 + u_out * (t1 - t0)
    keep = b - a > 1e-6
    return merge_intervals(a[keep], b[keep])


def complement(a: np.ndarray, b: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the parts of ``[lo, hi]`` not covered by the sorted disjoint intervals."""
    starts = np.concatenate([[lo], b])
    ends = np.concatenate([a, [hi]])
    starts, ends = np.clip(starts, lo, hi), np.clip(ends, lo, hi)
    keep = ends - starts > 1e-6
    return starts[keep], ends[keep]


def intersect(a, b, wa, wb) -> list[tuple[float, float, int]]:
    """Return ``(start, end, window index)`` of each overlap of intervals with windows."""
    out = []
    for j, (s, e) in enumerate(zip(wa, wb, strict=True)):
        lo, hi = np.maximum(a, s), np.minimum(b, e)
        for x, y in zip(lo[hi > lo], hi[hi > lo], strict=True):
            out.append((float(x), float(y), j))
    return out


def _episode_records(
    sim, person, type_, scenario, sid, a, b, *, ident: dict, details: dict, severity="high"
) -> list[TruthRecord]:
    interval = sim.config.gps_interval_s
    start, end = sim.config.start_s, sim.end_s
    key = f"{person}:{type_}:{ident}:{a}"
    delay = first_fix_delay_s(sim, person, a)
    late = delay is not None and delay > LATE_AFTER_S
    p = sim.persons[person]
    common = {
        "scenario_id": sid, "offender_id": p.offender_id, "device_id": p.gps_device_id, **ident,
    }
    optional = b - a < 2 * interval or a <= start
    out = [
        record(
            "alert", type_, scenario, at_s=a, from_s=a - interval - 60.0,
            to_s=a + 2 * interval + 60.0, episode=(a, b if b < end else None), severity=severity,
            late=late, optional=optional,
            details={
                **details,
                "_key": key,
                "detect_fix_delay_s": round(delay, 1) if delay is not None else None,
            },
            **common,
        )
    ]
    if b < end:
        delay_b = first_fix_delay_s(sim, person, b)
        out.append(
            record(
                "alert", f"{type_}_ended", scenario, at_s=b, from_s=b - interval - 60.0,
                to_s=b + 2 * interval + 60.0, episode=(a, b), late=bool(delay_b and delay_b > LATE_AFTER_S),
                optional=optional, ref_truth_id=key, details=dict(details), **common,
            )
        )
    return out


def zone_truth(sim: Simulation) -> list[TruthRecord]:
    """Return the expected zone breaches (exact true entry and exit instants)."""
    start, end = sim.config.start_s, sim.end_s
    tz = sim.config.timezone
    out = []
    for person, zones in sim.zones.items():
        for z in zones:
            a, b = inside_intervals(sim, person, z.shape)
            if z.kind == "inclusion":
                a, b = complement(a, b, start, end)
            if z.schedule:
                windows = weekly_windows_utc(z.schedule, start, end, tz)
                wa = np.array([w[0] for w in windows])
                wb = np.array([w[1] for w in windows])
            else:
                wa, wb = np.array([start]), np.array([end])
            wa, wb = np.maximum(wa, start), np.minimum(wb, end)
            for x, y, _j in intersect(a, b, wa, wb):
                scenario, sid = ("background", None)
                if z.scenario_id:
                    scenario, sid = _label(sim, person, x, y)
                elif z.kind == "inclusion":
                    scenario, sid = _label(sim, person, x, y)
                out += _episode_records(
                    sim, person, f"{z.kind}_breach", scenario, sid, x, y,
                    ident={"zone_id": z.zone_id}, details={"scheduled": bool(z.schedule)},
                )
    return out


def _local(ts_s: float, tz_name: str) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts_s, zone(tz_name)).strftime("%Y-%m-%d %H:%M %Z")


def curfew_truth(sim: Simulation) -> list[TruthRecord]:
    """Return the expected curfew breaches: away from home during a window."""
    start, end = sim.config.start_s, sim.end_s
    tz = sim.config.timezone
    out = []
    for person, windows in sim.curfew_windows.items():
        p = sim.persons[person]
        assert p.curfew is not None
        _point, circle = curfew_circle(sim.frame, p)
        a, b = inside_intervals(sim, person, circle)
        away_a, away_b = complement(a, b, start - 2 * 86400.0, end + 2 * 86400.0)
        wa = np.array([w[0] for w in windows])
        wb = np.array([w[1] for w in windows])
        for x, y, j in intersect(away_a, away_b, wa, wb):
            if y <= start or x >= end:
                continue
            w0, w1 = float(wa[j]), float(wb[j])
            at_start, at_end = abs(x - w0) < 1e-6, abs(y - w1) < 1e-6
            subtype = {
                (True, True): "away_whole_window",
                (True, False): "late_return",
                (False, True): "early_leave",
            }.get((at_start, at_end), "away_during_curfew")
            scenario, sid = _label(sim, person, x, y)
            details = {
                "subtype": subtype,
                "window_start": iso_utc(w0),
                "window_end": iso_utc(w1),
                "window_local": f"{_local(w0, tz)} → {_local(w1, tz)}",
                "window_hours": round((w1 - w0) / 3600.0, 3),
            }
            out += _episode_records(
                sim, person, "curfew_breach", scenario, sid, max(x, start), y,
                ident={"curfew_id": p.curfew.curfew_id}, details=details,
            )
    return out


def _in_window(sim: Simulation, person: int, t: float) -> bool:
    return any(s <= t < e for s, e, _d in sim.curfew_windows.get(person, []))


def silence_truth(sim: Simulation) -> list[TruthRecord]:
    """Return expected silence alerts from the delivery times of each GPS tag."""
    c = sim.config
    threshold = c.gps_interval_s + c.silence_buffer_s
    f, e = sim.fixes, sim.events
    dev = np.concatenate([f.dev, e.dev]).astype(np.int64)
    got = np.concatenate([f.delivered_s, e.delivered_s])
    order = np.lexsort((got, dev))
    dev, got = dev[order], got[order]
    same = dev[1:] == dev[:-1]
    gap = np.diff(got)
    hits = np.flatnonzero(same & (gap > threshold))
    out = []
    for k in hits:
        person, last, back = int(dev[k]), float(got[k]), float(got[k + 1])
        out += _silence(sim, person, last, back, threshold)
    ends = np.flatnonzero(np.append(~same, True))
    for k in ends:
        person, last = int(dev[k]), float(got[k])
        if sim.end_s - last > threshold:
            out += _silence(sim, person, last, None, threshold)
    return out


def _silence(sim, person, last, back, threshold) -> list[TruthRecord]:
    p = sim.persons[person]
    interval = sim.config.gps_interval_s
    detect = last + threshold
    type_ = "curfew_unverified" if _in_window(sim, person, detect) else "device_silent"
    scenario, sid = _label(sim, person, last, back if back is not None else sim.end_s)
    key = f"{person}:silence:{last}"
    common = {"scenario_id": sid, "offender_id": p.offender_id, "device_id": p.gps_device_id}
    if type_ == "curfew_unverified" and p.curfew is not None:
        common["curfew_id"] = p.curfew.curfew_id
    details = {
        "last_contact_at": iso_utc(last),
        "threshold_s": threshold,
        "silent_at": iso_utc(detect),
        "restored_at": iso_utc(back) if back is not None else None,
        "_key": key,
    }
    out = [
        record(
            "alert", type_, scenario, at_s=last, from_s=last - interval - 60.0,
            to_s=detect + interval + 120.0, episode=(last, back),
            severity="high" if type_ == "curfew_unverified" else None, timing="processing",
            details=details, **common,
        )
    ]
    if back is not None:
        out.append(
            record(
                "alert", f"{type_}_ended", scenario, at_s=back, from_s=back - 60.0,
                to_s=back + interval + 120.0, episode=(last, back), timing="processing",
                ref_truth_id=key, details={"threshold_s": threshold}, **common,
            )
        )
    if type_ == "device_silent":
        for ws, _we, _d in sim.curfew_windows.get(person, []):
            if detect < ws < (back if back is not None else sim.end_s):
                out.append(
                    record(
                        "alert", "curfew_unverified", scenario, at_s=ws, from_s=ws - 60.0,
                        to_s=ws + interval + 120.0, severity="high", timing="processing",
                        optional=True, details={"note": "silence ran into a curfew window"},
                        curfew_id=p.curfew.curfew_id if p.curfew else None, **common,
                    )
                )
    return out


EVENT_ALERTS = {"strap_tamper": ("high", False), "strap_restored": (None, True),
                "battery_low": ("medium", False)}


def event_truth(sim: Simulation) -> list[TruthRecord]:
    """Return the expected device-event alerts (one per event, at its timestamp)."""
    e = sim.events
    out = []
    for k in range(len(e)):
        kind = e.kind[k]
        if kind not in EVENT_ALERTS:
            continue
        severity, optional = EVENT_ALERTS[kind]
        person, ts = int(e.dev[k]), float(e.ts_s[k])
        p = sim.persons[person]
        scenario, sid = "background", None
        for s in sim.scripts:
            if s.person is p and (
                any(t == ts for t, _k, _d in s.events) or s.battery_low_at_s == ts
            ):
                scenario, sid = s.kind, s.scenario_id
        out.append(
            record(
                "alert", kind, scenario, at_s=ts, from_s=ts - 1.0, to_s=ts + 1.0,
                severity=severity, optional=optional,
                late=bool(e.delivered_s[k] - ts > LATE_AFTER_S), scenario_id=sid,
                offender_id=p.offender_id, device_id=p.gps_device_id,
                details={"detail": e.detail[k]} if e.detail[k] else {},
            )
        )
    return out


def _scripted(sim, person: int, attr: str, item) -> tuple[str, str | None]:
    for s in sim.scripts:
        if s.person is not None and s.person.index == person and item in getattr(s, attr):
            return s.kind, s.scenario_id
    return "background", None


def alcohol_truth(sim: Simulation) -> list[TruthRecord]:
    """Return expected alcohol alerts (and explicit no-alerts for interferents)."""
    a = sim.alcohol
    interval = sim.config.alcohol_interval_s
    out = []
    for person, plan in sim.alcohol_plans.items():
        p = sim.persons[person]
        m = a.dev == person
        ts, tac = a.ts_s[m].astype(float), a.tac_g_dl[m]
        common = {"offender_id": p.offender_id, "device_id": p.alcohol_device_id}
        for drink in plan.drinks:
            up, down = drink.crossing_s()
            over = tac >= THRESHOLD_G_DL
            pair = np.flatnonzero(over[:-1] & over[1:] & (ts[:-1] >= drink.start_s) & (ts[:-1] <= drink.end_s))
            scenario, sid = _scripted(sim, person, "drinks", drink)
            details = {
                "peak_g_dl": round(drink.peak_g_dl, 4),
                "rise_g_dl_per_h": round(drink.rise_g_dl_h, 4),
                "elimination_g_dl_per_h": round(drink.elim_g_dl_h, 4),
                "true_crossing_up": iso_utc(up),
                "true_crossing_down": iso_utc(down),
            }
            if pair.size == 0:
                if ts.size and up < ts[-1]:
                    out.append(record("alert", "alcohol_detected", scenario, at_s=up,
                                      from_s=up - interval, to_s=down + interval, optional=True,
                                      scenario_id=sid, details=details, **common))
                continue
            k = int(pair[0])
            out.append(
                record(
                    "alert", "alcohol_detected", scenario, at_s=ts[k],
                    from_s=min(up, ts[k]) - 60.0, to_s=ts[k + 1] + 60.0, episode=(up, down),
                    scenario_id=sid, details=details, **common,
                )
            )
        for at_s, peak in plan.interferents:
            scenario, sid = _scripted(sim, person, "interferents", (at_s, peak))
            details = {"peak_g_dl": round(peak, 4)}
            out.append(record("alert", "alcohol_suspect_interferent", scenario, at_s=at_s,
                              from_s=at_s - 60.0, to_s=at_s + interval + 60.0, scenario_id=sid,
                              details=details, **common))
            out.append(record("no_alert", "alcohol_detected", scenario, from_s=at_s - interval,
                              to_s=at_s + 2 * interval + 60.0, scenario_id=sid,
                              details={**details, "rule": "a jump is not a drink"}, **common))
        for off, on in plan.removals:
            scenario, sid = _scripted(sim, person, "removals", (off, on))
            after = ts[ts >= off]
            if not after.size:
                continue
            first = float(after[0])
            out.append(record("alert", "alcohol_tamper", scenario, at_s=first, from_s=off - 60.0,
                              to_s=first + interval + 60.0, episode=(off, on), scenario_id=sid,
                              details={"removed_at": iso_utc(off), "refitted_at": iso_utc(on)},
                              **common))
    return out


def scene_truth(sim: Simulation) -> list[TruthRecord]:
    """Return matches for everyone whose true trail entered a scene's radius in its window."""
    interval = sim.config.gps_interval_s
    scripted = {sc.scene_id: s.person for s in sim.scripts for sc in s.scenes}
    out = []
    for sc in sim.scene_specs:
        ws, we = sc.window_s
        exact = proximity(sim.trajectories, sc.centre, sc.radius_m, ws, we)
        padded = proximity(sim.trajectories, sc.centre, sc.radius_m, ws - SCENE_PAD_S, we + SCENE_PAD_S)
        owner = scripted.get(sc.scene_id)
        near = np.flatnonzero(padded.min_distance_m <= sc.radius_m + 50.0)
        for i in near:
            p = sim.persons[int(i)]
            if owner is not None and owner.index == p.index:
                continue
            inside = exact.min_distance_m[i] <= sc.radius_m
            border = exact.min_distance_m[i] > sc.radius_m - BORDER_M
            src = exact if inside else padded
            dwell = float(src.dwell_s[i])
            klass = "at_scene" if dwell >= AT_SCENE_DWELL_S else ("passed_by" if dwell > 0 else "near_scene")
            first = float(src.first_in_s[i]) if np.isfinite(src.first_in_s[i]) else float(src.closest_s[i])
            last = float(src.last_in_s[i]) if np.isfinite(src.last_in_s[i]) else float(src.closest_s[i])
            label = sc.scenario if owner is not None else "background"
            out.append(
                record(
                    "match", "scene_proximity", label if owner is None else "incidental",
                    at_s=float(src.closest_s[i]), from_s=first - interval - 60.0,
                    to_s=last + interval + 60.0, episode=(first, last), match_class=klass,
                    optional=bool(not inside or border), scene_id=sc.scene_id,
                    offender_id=p.offender_id, device_id=p.gps_device_id,
                    details={
                        "closest_approach_m": round(float(src.min_distance_m[i]), 2),
                        "dwell_s": round(dwell, 1),
                        "in_window": bool(inside),
                        "radius_m": sc.radius_m,
                    },
                )
            )
    return out
