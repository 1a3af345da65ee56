"""GPS fixes from true trails: timing, accuracy, errors, outliers, gaps and delivery.

Error model (documented contract with the evaluator): the device reports ``accuracy_m`` and the
reported position is the true one plus a 2-D Gaussian error with ``sigma = accuracy_m / 2`` per
axis, so the error is within ``accuracy_m`` for 1 − e⁻² ≈ 86.5 % of fixes and within
``2 * accuracy_m`` for 99.97 %. Reported accuracy is log-normal: median 5 m outdoors (3–25 m),
14 m indoors (6–50 m; "indoor degradation"); in scripted clean intervals outdoor accuracy is at most
10 m. Multipath outliers (rate ``Noise.outlier_rate``, never in clean intervals) are displaced a
further 60–250 m in a random direction while still reporting the normal accuracy — the device does
not know. Fixes fall on a per-tag grid ``start + phase + k * interval`` (whole seconds).

Delivery: normally 1–4 s after the fix; fixes recorded during a cellular outage are delivered
after the live fix that ends the outage, 4.5 s + 1 ms per second of age later (oldest first).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from simulator.geo import COORD_DECIMALS, LocalFrame
from simulator.intervals import IntervalSet, PiecewiseSeries
from simulator.movement import Trajectories

OUTDOOR_ACC = (5.0, 0.35, 3.0, 25.0)  # median m, log sigma, min m, max m
INDOOR_ACC = (14.0, 0.45, 6.0, 50.0)
CLEAN_MAX_ACC_M = 10.0
OUTLIER_M = (60.0, 250.0)
LATENCY_S = (1.0, 4.0)
BURST_LAG_S = 4.5
MOVING_MPS = 0.5


@dataclass(frozen=True, slots=True)
class NoiseSets:
    """Per-device intervals for all GPS tags (device index = person index)."""

    outages: IntervalSet
    nofix: IntervalSet
    silences: IntervalSet
    clean: IntervalSet


@dataclass(slots=True)
class GpsFixes:
    """Recorded fixes, one row each (arrays of equal length)."""

    dev: np.ndarray
    ts_s: np.ndarray
    true_x_m: np.ndarray
    true_y_m: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    accuracy_m: np.ndarray
    speed_mps: np.ndarray
    heading_deg: np.ndarray
    battery_pct: np.ndarray
    indoor: np.ndarray
    outlier: np.ndarray
    buffered: np.ndarray
    delivered_s: np.ndarray

    def __len__(self) -> int:
        return len(self.ts_s)

    @classmethod
    def concat(cls, parts: list[GpsFixes]) -> GpsFixes:
        """Return all ``parts`` as one table."""
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def fix_grid(
    dev: np.ndarray, phase_s: np.ndarray, start_s: float, end_s: float, interval_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(dev, ts_s)`` of every scheduled fix of each tag in ``[start_s, end_s)``."""
    first = start_s + phase_s
    n = np.maximum(np.floor((end_s - 1e-6 - first) / interval_s).astype(np.int64) + 1, 0)
    d = np.repeat(dev, n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    ts = np.floor(np.repeat(first, n) + k * interval_s).astype(np.int64)
    return d, ts


def deliver(
    dev: np.ndarray, ts_s: np.ndarray, outages: IntervalSet, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(delivered_s, buffered)``: when each reading reaches the broker."""
    delivered = ts_s + rng.uniform(*LATENCY_S, size=len(ts_s))
    k = outages.lookup(dev, ts_s)
    buffered = k >= 0
    kb = k[buffered]
    age = ts_s[buffered] - outages.t0_s[kb]
    delivered[buffered] = outages.t1_s[kb] + BURST_LAG_S + 0.001 * age
    return delivered, buffered


def _accuracy(rng: np.random.Generator, indoor: np.ndarray, clean: np.ndarray) -> np.ndarray:
    n = len(indoor)
    out_med, out_sig, out_lo, out_hi = OUTDOOR_ACC
    in_med, in_sig, in_lo, in_hi = INDOOR_ACC
    z = rng.standard_normal(n)
    acc = np.where(
        indoor,
        np.clip(in_med * np.exp(in_sig * z), in_lo, in_hi),
        np.clip(out_med * np.exp(out_sig * z), out_lo, out_hi),
    )
    acc = np.where(clean & ~indoor, np.minimum(acc, CLEAN_MAX_ACC_M), acc)
    return np.round(acc, 1)


def generate_fixes(
    dev: np.ndarray,
    phase_s: np.ndarray,
    *,
    start_s: float,
    end_s: float,
    interval_s: float,
    outlier_rate: float,
    traj: Trajectories,
    noise: NoiseSets,
    battery: PiecewiseSeries,
    frame: LocalFrame,
    rng: np.random.Generator,
) -> GpsFixes:
    """Return the fixes recorded by the tags ``dev`` (person indices) in ``[start_s, end_s)``."""
    d, ts = fix_grid(dev, phase_s, start_s, end_s, interval_s)
    tsf = ts.astype(float)
    keep = ~noise.silences.contains(d, tsf)
    d, ts, tsf = d[keep], ts[keep], tsf[keep]
    tx, ty, vx, vy, indoor = traj.sample(d, tsf)
    keep = ~(indoor & noise.nofix.contains(d, tsf))
    d, ts, tsf, tx, ty, vx, vy, indoor = (a[keep] for a in (d, ts, tsf, tx, ty, vx, vy, indoor))
    n = len(ts)
    clean = noise.clean.contains(d, tsf)
    acc = _accuracy(rng, indoor, clean)
    ex, ey = rng.standard_normal((2, n)) * (acc / 2.0)
    outlier = (rng.random(n) < outlier_rate) & ~clean
    jump = rng.uniform(*OUTLIER_M, size=n)
    ang = rng.uniform(0, 2 * np.pi, size=n)
    x = tx + ex + np.where(outlier, jump * np.cos(ang), 0.0)
    y = ty + ey + np.where(outlier, jump * np.sin(ang), 0.0)
    lon, lat = frame.to_lonlat(x, y)
    speed = np.hypot(vx, vy)
    moving = speed > MOVING_MPS
    spd = np.where(
        moving, speed + 0.15 * rng.standard_normal(n), np.abs(0.1 * rng.standard_normal(n))
    )
    spd = np.round(np.clip(spd, 0.0, 150.0), 1)
    hdg = np.round((np.degrees(np.arctan2(vx, vy)) + 3.0 * rng.standard_normal(n)) % 360.0, 1)
    hdg = np.where(moving, np.where(hdg >= 360.0, 0.0, hdg), np.nan)
    bat = np.round(battery.at(d, tsf), 0)
    delivered, buffered = deliver(d, tsf, noise.outages, rng)
    return GpsFixes(
        dev=d.astype(np.int32),
        ts_s=ts,
        true_x_m=tx,
        true_y_m=ty,
        x_m=x,
        y_m=y,
        lon=np.round(lon, COORD_DECIMALS),
        lat=np.round(lat, COORD_DECIMALS),
        accuracy_m=acc,
        speed_mps=spd,
        heading_deg=hdg,
        battery_pct=bat,
        indoor=indoor,
        outlier=outlier,
        buffered=buffered,
        delivered_s=delivered,
    )
