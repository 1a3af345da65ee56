"""Zone and curfew truth: exact true inside/outside intervals of every trail."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from simulator.derive.common import LATE_AFTER_S, first_fix_delay_s, scenario_label
from simulator.geo import Shape, inside_fraction, merge_intervals, segment_point_distance
from simulator.localtime import iso_utc, weekly_windows_utc, zone
from simulator.truth import TruthRecord, record

if TYPE_CHECKING:
    from simulator.engine import Simulation


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
        "scenario_id": sid,
        "offender_id": p.offender_id,
        "device_id": p.gps_device_id,
        **ident,
    }
    optional = b - a < 2 * interval or a <= start
    out = [
        record(
            "alert",
            type_,
            scenario,
            at_s=a,
            from_s=a - interval - 60.0,
            to_s=a + 2 * interval + 60.0,
            episode=(a, b if b < end else None),
            severity=severity,
            late=late,
            optional=optional,
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
                "alert",
                f"{type_}_ended",
                scenario,
                at_s=b,
                from_s=b - interval - 60.0,
                to_s=b + 2 * interval + 60.0,
                episode=(a, b),
                late=bool(delay_b and delay_b > LATE_AFTER_S),
                optional=optional,
                ref_truth_id=key,
                details=dict(details),
                **common,
            )
        )
    return out


def _pieces_in_run(sim: Simulation) -> tuple[np.ndarray, ...]:
    person, t0, t1, x0, y0, x1, y1, _indoor = sim.trajectories.all_pieces()
    m = (t1 > sim.config.start_s) & (t0 < sim.end_s)
    return tuple(v[m] for v in (person, t0, t1, x0, y0, x1, y1))


def _near(sim: Simulation, owner: np.ndarray, cx, cy, reach_m) -> np.ndarray:
    """Return, per (owner person, point, reach), whether the owner's trail comes that close."""
    person, _t0, _t1, x0, y0, x1, y1 = _pieces_in_run(sim)
    lo = np.searchsorted(person, owner, side="left")
    counts = np.searchsorted(person, owner, side="right") - lo
    pair = np.repeat(np.arange(len(owner)), counts)
    row = (
        np.repeat(lo, counts)
        + np.arange(counts.sum())
        - np.repeat(np.cumsum(counts) - counts, counts)
    )
    d, _u = segment_point_distance(x0[row], y0[row], x1[row], y1[row], cx[pair], cy[pair])
    near = np.zeros(len(owner), bool)
    near[pair[d <= np.asarray(reach_m)[pair]]] = True
    return near


def zone_truth(sim: Simulation) -> list[TruthRecord]:
    """Return the expected zone breaches (exact true entry and exit instants).

    Exclusion zones that no piece of the owner's trail comes near (bounding circle) are skipped.
    """
    start, end = sim.config.start_s, sim.end_s
    tz = sim.config.timezone
    items = [(p, z) for p, zones in sim.zones.items() for z in zones]
    owner = np.array([p for p, _z in items], np.int64)
    cx = np.array([z.shape.centre[0] for _p, z in items])
    cy = np.array([z.shape.centre[1] for _p, z in items])
    reach = np.array([z.shape.bounding_radius_m for _p, z in items])
    near = _near(sim, owner, cx, cy, reach) if items else np.zeros(0, bool)
    out = []
    for (person, z), close in zip(items, near, strict=True):
        if z.kind == "exclusion" and not close:
            continue
        a, b = inside_intervals(sim, person, z.shape)
        if z.kind == "inclusion":
            a, b = complement(a, b, start, end)
        windows = weekly_windows_utc(z.schedule, start, end, tz) if z.schedule else []
        wa = np.array([w[0] for w in windows]) if z.schedule else np.array([start])
        wb = np.array([w[1] for w in windows]) if z.schedule else np.array([end])
        wa, wb = np.maximum(wa, start), np.minimum(wb, end)
        for x, y, _j in intersect(a, b, wa, wb):
            scenario, sid = "background", None
            if z.scenario_id or z.kind == "inclusion":
                scenario, sid = scenario_label(sim, person, x, y)
            out += _episode_records(
                sim,
                person,
                f"{z.kind}_breach",
                scenario,
                sid,
                x,
                y,
                ident={"zone_id": z.zone_id},
                details={"scheduled": bool(z.schedule)},
            )
    return out


def _local(ts_s: float, tz_name: str) -> str:

    return datetime.fromtimestamp(ts_s, zone(tz_name)).strftime("%Y-%m-%d %H:%M %Z")


def _curfew_suspects(sim: Simulation) -> set[int]:
    """Return the people with a piece of trail outside their address during a curfew window."""
    person, t0, t1, x0, y0, x1, y1 = _pieces_in_run(sim)
    n = len(sim.persons)
    cx, cy, r = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for i, c in sim.curfew_circles.items():
        cx[i], cy[i], r[i] = c.cx_m, c.cy_m, c.r_m
    far = (
        np.maximum(
            np.hypot(x0 - cx[person], y0 - cy[person]), np.hypot(x1 - cx[person], y1 - cy[person])
        )
        > r[person]
    )
    rows = [(i, s, e) for i, ws in sim.curfew_windows.items() for s, e, _d in ws]
    if not rows:
        return set()
    wp, ws, we = (np.array(v) for v in zip(*sorted(rows), strict=True))
    origin = min(float(ws.min()), float(t0.min())) - 1.0
    wkey = wp * 1e10 + (we - origin)
    order = np.argsort(wkey)
    wp, ws, wkey = wp[order], ws[order], wkey[order]
    k = np.searchsorted(wkey, person * 1e10 + (t0 - origin), side="right")
    kc = np.minimum(k, len(wkey) - 1)
    overlap = (k < len(wkey)) & (wp[kc] == person) & (ws[kc] < t1)
    return set(np.unique(person[far & overlap]).tolist())


def curfew_truth(sim: Simulation) -> list[TruthRecord]:
    """Return the expected curfew breaches: away from home during a window."""
    start, end = sim.config.start_s, sim.end_s
    tz = sim.config.timezone
    out = []
    suspects = _curfew_suspects(sim)
    for person, windows in sim.curfew_windows.items():
        if person not in suspects:
            continue
        p = sim.persons[person]
        assert p.curfew is not None
        circle = sim.curfew_circles[person]
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
            scenario, sid = scenario_label(sim, person, x, y)
            details = {
                "subtype": subtype,
                "window_start": iso_utc(w0),
                "window_end": iso_utc(w1),
                "window_local": f"{_local(w0, tz)} → {_local(w1, tz)}",
                "window_hours": round((w1 - w0) / 3600.0, 3),
            }
            out += _episode_records(
                sim,
                person,
                "curfew_breach",
                scenario,
                sid,
                max(x, start),
                y,
                ident={"curfew_id": p.curfew.curfew_id},
                details=details,
            )
    return out
