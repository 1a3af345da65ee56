"""The spatio-temporal index answers "who was within R m of P between t0 and t1" exactly."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from em_service.store import Store, trail
from em_service.store.projection import project
from em_service.store.spatial_index import CELL_M, cell_of, cells_near, fixes_near
from tests.store.factories import T0, gps

CRS = "EPSG:27700"


@settings(max_examples=200, deadline=None)
@given(
    x=st.floats(-1e6, 2e6),
    y=st.floats(-1e6, 2e6),
    r=st.floats(1.0, 3000.0),
    angle=st.floats(0, 2 * math.pi),
    frac=st.floats(0, 1),
)
def test_every_point_in_the_circle_is_in_a_listed_cell(x, y, r, angle, frac) -> None:
    px, py = x + frac * r * math.cos(angle), y + frac * r * math.sin(angle)
    assert int(cell_of(px, py)) in set(cells_near(x, y, r))


@pytest.mark.parametrize(("r", "most"), [(5.0, 4), (100.0, 4), (250.0, 9), (1000.0, 81)])
def test_few_cells_for_scene_sized_circles(r: float, most: int) -> None:
    assert len(cells_near(1000.0 * CELL_M + 7.0, 2000.0 * CELL_M + 11.0, r)) <= most


@pytest.fixture
def random_trails(store: Store) -> list:
    """300 fixes of 5 devices scattered over ~3 km around the town centre, over 5 hours."""
    rng = random.Random(7)
    readings = [
        gps(
            device_id=f"tag-{rng.randrange(5)}",
            ts=T0 + timedelta(seconds=rng.randrange(5 * 3600)),
            lon=-0.97 + rng.uniform(-0.02, 0.02),
            lat=51.45 + rng.uniform(-0.015, 0.015),
            seq=i,
        )
        for i in range(300)
    ]
    with store.write() as s:
        trail.insert_fixes(s, readings=readings, crs=CRS)
    return readings


@pytest.mark.parametrize("radius_m", [5.0, 100.0, 250.0, 600.0, 2500.0])
@pytest.mark.parametrize("hours", [(0, 5), (1, 2), (4.5, 4.6)])
def test_fixes_near_equals_brute_force(store: Store, random_trails, radius_m, hours) -> None:
    cx, cy = (float(v) for v in project(-0.97, 51.45, CRS))
    t0, t1 = T0 + timedelta(hours=hours[0]), T0 + timedelta(hours=hours[1])
    xs, ys = project([r.lon for r in random_trails], [r.lat for r in random_trails], CRS)
    expected: dict[str, dict[int, float]] = {}
    for r, x, y in zip(random_trails, xs, ys, strict=True):
        if t0 <= r.ts <= t1 and math.hypot(x - cx, y - cy) <= radius_m:
            expected.setdefault(r.device_id, {})[r.seq] = math.hypot(x - cx, y - cy)
    with store.read() as s:
        found = fixes_near(s, cx, cy, radius_m, t0, t1)
    assert {d: set(fs.seq.tolist()) for d, fs in found.items()} == {
        d: set(seqs) for d, seqs in expected.items()
    }
    for fs in found.values():
        assert fs.ts_ms.tolist() == sorted(fs.ts_ms.tolist())
        assert (fs.distance_m <= radius_m).all()
        assert len(fs.ts_ms) == len(fs.seq) == len(fs.distance_m)
    for d, fs in found.items():
        want = [expected[d][q] for q in fs.seq.tolist()]
        assert fs.distance_m.tolist() == pytest.approx(want, abs=1e-6)


def test_time_bounds_are_inclusive(store: Store) -> None:
    with store.write() as s:
        trail.insert_fixes(s, readings=[gps(ts=T0), gps(ts=T0 + timedelta(minutes=10))], crs=CRS)
    x, y = (float(v) for v in project(-0.97, 51.45, CRS))
    with store.read() as s:
        both = fixes_near(s, x, y, 10.0, T0, T0 + timedelta(minutes=10))
        first = fixes_near(
            s, x, y, 10.0, T0, T0 + timedelta(minutes=10) - timedelta(milliseconds=1)
        )
    assert len(both["tag-1"].ts_ms) == 2 and len(first["tag-1"].ts_ms) == 1


@pytest.mark.parametrize("radius_m", [0.0, -5.0, 60_000.0])
def test_radius_out_of_range_is_refused(store: Store, radius_m: float) -> None:
    with store.read() as s, pytest.raises(ValueError, match="radius_m"):
        fixes_near(s, 0.0, 0.0, radius_m, T0, T0)


def test_cells_are_vectorised() -> None:
    cells = cell_of(np.array([0.0, 249.9, 250.0, -0.1]), np.array([0.0, 0.0, 0.0, 0.0]))
    assert cells[0] == cells[1] != cells[2] and cells[3] != cells[0]
