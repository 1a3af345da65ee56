"""Benchmark the geofences verdict engine: batch, scalar, and the bare ``contains_xy`` ceiling.

Scenario: ``--people`` people (default 1,000) around Greater Manchester, five zones each — an
exclusion circle (victim's address), a scheduled exclusion circle (school hours on weekdays), an
exclusion star polygon, an exclusion polygon with a hole, and a large inclusion polygon (a
"county", 300 vertices) — and ``--fixes-per-person`` fixes each (default 1,000: one million) from
a wandering trail at 60 s intervals, with lognormal accuracies (median 10 m, a few unusable).
Fixes reach the batch engine interleaved by time, as from a stream; the ceiling gets them already
grouped by person and does only ``shapely.contains_xy`` (no accuracy discs, schedules or depth).

Run ``python bench/geofences_bench.py [--quick]``; the last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
import shapely

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from geofences import ZoneIndex, compile_conditions
from geofences.projection import get_projector

T = TypeVar("T")
CENTRE_XY = (383_000.0, 398_000.0)  # Manchester, British National Grid metres
T0 = datetime(2026, 6, 1, tzinfo=UTC).timestamp()  # a Monday


def _ring(cx: float, cy: float, radius: float, n: int, rng: np.random.Generator) -> np.ndarray:
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rr = radius * rng.uniform(0.65, 1.0, n)
    ring = np.column_stack([cx + rr * np.cos(ang), cy + rr * np.sin(ang)])
    return np.vstack([ring, ring[:1]])


def _lonlat(ring: np.ndarray) -> list[list[float]]:
    lon, lat = get_projector().to_lonlat(ring[:, 0], ring[:, 1])
    return np.column_stack([lon, lat]).round(7).tolist()


def _point_feature(zone_id: str, xy: np.ndarray, radius_m: float, **props: object) -> dict:
    lon, lat = get_projector().to_lonlat(xy[0], xy[1])
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [float(lon), float(lat)]},
        "properties": {"zone_id": zone_id, "kind": "exclusion", "radius_m": radius_m, **props},
    }


def make_people(n_people: int, rng: np.random.Generator) -> tuple[list[dict], np.ndarray]:
    """Return (conditions dicts, home xy) for ``n_people`` people with five zones each."""
    homes = np.asarray(CENTRE_XY) + rng.uniform(-20_000, 20_000, (n_people, 2))
    people = []
    school = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "16:00"}]
    for p, home in enumerate(homes):
        near = home + rng.normal(0, 2_500, (4, 2))
        star = _ring(*near[2], rng.uniform(300, 1_500), int(rng.integers(10, 40)), rng)
        shell = _ring(*near[3], 1_200, 24, rng)
        hole = _ring(*near[3], 300, 12, rng)[::-1]
        county = _ring(*(home + rng.normal(0, 3_000, 2)), 22_000, 300, rng)
        people.append(
            {
                "offender_id": f"p{p}",
                "device_ids": [f"d{p}"],
                "zones": [
                    _point_feature(f"p{p}-victim", near[0], float(rng.uniform(100, 500))),
                    _point_feature(
                        f"p{p}-school", near[1], float(rng.uniform(200, 800)), schedule=school
                    ),
                    {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [_lonlat(star)]},
                        "properties": {"zone_id": f"p{p}-area", "kind": "exclusion"},
                    },
                    {
                        "type": "Feature",
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [_lonlat(shell), _lonlat(hole)],
                        },
                        "properties": {"zone_id": f"p{p}-estate", "kind": "exclusion"},
                    },
                    {
                        "type": "Feature",
                        "geometry": {"type": "Polygon", "coordinates": [_lonlat(county)]},
                        "properties": {"zone_id": f"p{p}-county", "kind": "inclusion"},
                    },
                ],
            }
        )
    return people, homes


def make_fixes(
    homes: np.ndarray, per_person: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Return stream-ordered fixes: owner, ts_s, x, y, accuracy_m (a wandering trail per person)."""
    n_people = len(homes)
    steps = rng.normal(0, 150, (n_people, per_person, 2))
    # An AR(1) wander around home (stationary spread ~4 km), cheap to build vectorised.
    pos = np.empty_like(steps)
    pos[:, 0] = rng.normal(0, 4_000, (n_people, 2))
    phi = 0.995
    for i in range(1, per_person):
        pos[:, i] = phi * pos[:, i - 1] + steps[:, i] * math.sqrt(1 - phi**2) * 4_000 / 150
    xy = homes[:, None, :] + pos
    ts = T0 + 60.0 * np.arange(per_person)[None, :] + rng.uniform(0, 60, (n_people, 1))
    owner = np.repeat(np.arange(n_people), per_person)
    acc = np.exp(rng.normal(math.log(10), 0.6, n_people * per_person))
    order = np.argsort(ts.ravel(), kind="stable")
    return {
        "owner": owner[order],
        "ts_s": ts.ravel()[order],
        "x": xy[..., 0].ravel()[order],
        "y": xy[..., 1].ravel()[order],
        "accuracy_m": acc[order],
    }


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Return (seconds, result) of one call."""
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="200 people × 500 fixes (well under a minute)"
    )
    parser.add_argument("--people", type=int, default=1_000)
    parser.add_argument("--fixes-per-person", type=int, default=1_000)
    parser.add_argument("--scalar-fixes", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quick:
        args.people, args.fixes_per_person, args.scalar_fixes = 200, 500, 5_000
    rng = np.random.default_rng(args.seed)

    t = time.perf_counter()
    people, homes = make_people(args.people, rng)
    fixes = make_fixes(homes, args.fixes_per_person, rng)
    n = len(fixes["ts_s"])
    t_gen = time.perf_counter() - t

    t = time.perf_counter()
    compiled = [compile_conditions(c) for c in people]
    index = ZoneIndex(compiled)
    t_compile = time.perf_counter() - t
    n_zones = len(index.zones)

    def batch():
        return index.evaluate(
            fixes["owner"],
            fixes["ts_s"],
            x=fixes["x"],
            y=fixes["y"],
            accuracy_m=fixes["accuracy_m"],
        )

    proj = get_projector()
    lon, lat = proj.to_lonlat(fixes["x"], fixes["y"])

    def batch_lonlat():
        return index.evaluate(
            fixes["owner"], fixes["ts_s"], lon=lon, lat=lat, accuracy_m=fixes["accuracy_m"]
        )

    # Ceiling: bare contains_xy, fixes grouped by person (grouping not timed), same zones
    # (circles as their 64-segment polygons).
    order = np.argsort(fixes["owner"], kind="stable")
    gx, gy = fixes["x"][order], fixes["y"][order]
    bounds = np.searchsorted(fixes["owner"][order], np.arange(args.people + 1))
    geoms = [[z.geometry for z in c.zones] for c in compiled]
    for g in geoms:
        shapely.prepare(g)

    def ceiling() -> int:
        hits = 0
        for p in range(args.people):
            sx, sy = gx[bounds[p] : bounds[p + 1]], gy[bounds[p] : bounds[p + 1]]
            for g in geoms[p]:
                hits += int(np.count_nonzero(shapely.contains_xy(g, sx, sy)))
        return hits

    # Interleave the repeats so that a busy machine slows both alike; keep the best of each.
    t_batch = t_lonlat = t_ceiling = math.inf
    for _ in range(args.repeats):
        t, res = timed(batch)
        t_batch = min(t_batch, t)
        t_ceiling = min(t_ceiling, timed(ceiling)[0])
        t_lonlat = min(t_lonlat, timed(batch_lonlat)[0])

    # Scalar path: one fix at a time through CompiledConditions.evaluate_fix.
    ns = min(args.scalar_fixes, n)
    owners = fixes["owner"][:ns]
    t = time.perf_counter()
    for i in range(ns):
        compiled[owners[i]].evaluate_fix(
            fixes["ts_s"][i], x=fixes["x"][i], y=fixes["y"][i], accuracy_m=fixes["accuracy_m"][i]
        )
    t_scalar = time.perf_counter() - t

    counts = np.bincount(res.verdict, minlength=5)
    names = ("clear", "possible", "definite", "unusable", "inactive")
    summary = {
        "batch_fixes_per_s": round(n / t_batch),
        "scalar_fixes_per_s": round(ns / t_scalar),
        "ceiling_fixes_per_s": round(n / t_ceiling),
        "batch_vs_ceiling": round(t_ceiling / t_batch, 3),
    }
    print(
        f"geofences bench: {args.people} people × {n_zones // max(args.people, 1)} zones "
        f"= {n_zones} zones, {n:,} fixes ({len(res):,} fix×zone rows)"
    )
    print(f"  setup: generate {t_gen:.2f} s, compile+index {t_compile:.2f} s")
    print(f"  batch (x/y metres)   {t_batch:8.3f} s  {n / t_batch:12,.0f} fixes/s")
    print(
        f"  batch (lon/lat)      {t_lonlat:8.3f} s  {n / t_lonlat:12,.0f} fixes/s  (+ projection)"
    )
    print(f"  scalar ({ns:,} fixes) {t_scalar:8.3f} s  {ns / t_scalar:12,.0f} fixes/s")
    print(f"  ceiling contains_xy  {t_ceiling:8.3f} s  {n / t_ceiling:12,.0f} fixes/s")
    print(f"  batch / ceiling      {t_ceiling / t_batch:8.1%}")
    print("  verdict rows: " + ", ".join(f"{k} {c:,}" for k, c in zip(names, counts, strict=True)))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
