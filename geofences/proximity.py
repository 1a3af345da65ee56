"""Closest approach of a trail to a point, for crime-scene matching. Vectorised with numpy.

The trail is arrays of fix times (epoch seconds), projected ``x``/``y`` metres (project WGS84
with :meth:`geofences.projection.Projector.to_xy` first) and accuracies. Two estimates:

* per fix: ``max(0, distance - accuracy_m)`` — how close the accuracy disc comes;
* per segment between consecutive fixes, by straight-line interpolation, when the gap is at most
  ``max_gap_s`` and the implied speed at most ``max_speed_mps``: the closest point of the segment,
  less the accuracy interpolated along it, floored at 0.

Dwell is the time the (interpolated) trail spends with its disc within ``radius_m`` of the point,
counted over usable segments only (an isolated fix contributes no time). Interpolation assumes a
straight path at constant speed: it is a plausible estimate, not evidence of the route taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Approach:
    """Result of :func:`closest_approach`.

    Attributes
    ----------
    distance_m
        Closest approach, metres (accuracy discounted, floored at 0); ``inf`` if no fix is in the
        time window.
    ts_s
        Time of the closest approach (epoch seconds); NaN if none.
    source
        ``"fix"`` or ``"segment"``: which estimate gave the minimum.
    index
        The fix index, or for a segment the index of its earlier fix (indices are positions in
        the input arrays, whatever their order).
    dwell_s
        Seconds the trail's disc was within ``radius_m`` of the point.
    fix_distance_m
        ``float64[n]`` per-fix distance (accuracy discounted); ``inf`` outside the window.
    fixes_used
        Indices of fixes in the time window.
    segments_used
        ``int64[k, 2]``: the (earlier, later) fix indices of each segment interpolated (gap and
        speed plausible, overlapping the window).
    """

    distance_m: float
    ts_s: float
    source: str
    index: int
    dwell_s: float
    fix_distance_m: np.ndarray
    fixes_used: np.ndarray
    segments_used: np.ndarray


def closest_approach(
    ts_s: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    accuracy_m: np.ndarray,
    point_xy: tuple[float, float],
    *,
    radius_m: float = 100.0,
    t0_s: float = -np.inf,
    t1_s: float = np.inf,
    max_gap_s: float = 600.0,
    max_speed_mps: float = 50.0,
) -> Approach:
    """Return the closest approach of a trail to ``point_xy`` within ``[t0_s, t1_s]``.

    Parameters
    ----------
    ts_s, x, y, accuracy_m
        The trail: times (epoch seconds, any order; sorted here), projected metres, accuracy
        metres (NaN counts as 0).
    point_xy
        The point, projected metres.
    radius_m
        Radius for the dwell time, metres.
    t0_s, t1_s
        Time window (e.g. the crime window); segments are clipped to it.
    max_gap_s
        Interpolate only between fixes at most this far apart (default 10 min).
    max_speed_mps
        … and only if the implied speed is at most this (default 50 m/s, 180 km/h).

    Examples
    --------
    >>> a = closest_approach([0, 90], [-100.0, 100.0], [10.0, 10.0], [5.0, 5.0], (0.0, 0.0))
    >>> round(a.distance_m, 1), a.ts_s, a.source
    (5.0, 45.0, 'segment')
    """
    ts = np.asarray(ts_s, dtype=np.float64)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    dx = np.asarray(x, dtype=np.float64)[order] - point_xy[0]
    dy = np.asarray(y, dtype=np.float64)[order] - point_xy[1]
    acc = np.nan_to_num(np.asarray(accuracy_m, dtype=np.float64)[order], nan=0.0)
    n = len(ts)

    in_window = (ts >= t0_s) & (ts <= t1_s)
    fix_d = np.where(in_window, np.maximum(np.hypot(dx, dy) - acc, 0.0), np.inf)

    # Segments i → i+1.
    dt = np.diff(ts)
    sx, sy = np.diff(dx), np.diff(dy)
    length = np.hypot(sx, sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(dt > 0, length / dt, np.inf)
        u_lo = np.clip((t0_s - ts[:-1]) / dt, 0.0, 1.0)
        u_hi = np.clip((t1_s - ts[:-1]) / dt, 0.0, 1.0)
    ok = (dt > 0) & (dt <= max_gap_s) & (speed <= max_speed_mps) & (u_hi > u_lo)
    seg = np.flatnonzero(ok)
    ax, ay, bx, by = dx[seg], dy[seg], sx[seg], sy[seg]
    acc_a, acc_d = acc[seg], np.diff(acc)[seg]
    lo, hi = u_lo[seg], u_hi[seg]
    len2 = bx * bx + by * by
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(len2 > 0, -(ax * bx + ay * by) / len2, 0.0)
    u = np.clip(u, lo, hi)
    seg_d = np.maximum(np.hypot(ax + u * bx, ay + u * by) - (acc_a + u * acc_d), 0.0)

    # Dwell: per segment, the u-interval where |A + uB| <= radius + mean accuracy.
    reach = radius_m + acc_a + 0.5 * acc_d
    qa, qb, qc = len2, 2 * (ax * bx + ay * by), ax * ax + ay * ay - reach * reach
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = qb * qb - 4 * qa * qc
        root = np.sqrt(np.maximum(disc, 0.0))
        r1 = np.where(qa > 0, (-qb - root) / (2 * qa), -np.inf)
        r2 = np.where(qa > 0, (-qb + root) / (2 * qa), np.inf)
    inside = np.where(qa > 0, disc >= 0, qc <= 0)  # a zero-length segment: stationary
    span = np.where(inside, np.clip(np.minimum(r2, hi) - np.maximum(r1, lo), 0.0, None), 0.0)
    dwell = float(np.sum(span * dt[seg]))

    best_fix = int(np.argmin(fix_d)) if n else -1
    best_seg = int(np.argmin(seg_d)) if len(seg) else -1
    d_fix = fix_d[best_fix] if n else np.inf
    d_seg = seg_d[best_seg] if len(seg) else np.inf
    if not np.isfinite(min(d_fix, d_seg)):
        distance, when, source, index = np.inf, np.nan, "fix", -1
    elif d_seg < d_fix:
        i = int(seg[best_seg])
        distance, when, source, index = d_seg, ts[i] + u[best_seg] * dt[i], "segment", order[i]
    else:
        distance, when, source, index = d_fix, ts[best_fix], "fix", order[best_fix]
    unsort = np.empty(n, dtype=np.int64)
    unsort[order] = np.arange(n)
    return Approach(
        distance_m=float(distance),
        ts_s=float(when),
        source=source,
        index=int(index),
        dwell_s=dwell,
        fix_distance_m=fix_d[unsort],
        fixes_used=np.sort(order[in_window]),
        segments_used=np.column_stack([order[seg], order[seg + 1]]).astype(np.int64),
    )
