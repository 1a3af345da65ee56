"""Closest approach of a trail to a point (geofences.proximity)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geofences import closest_approach
from tests.geofences.helpers import PROPS, noisy


def test_walking_past_between_two_fixes_is_found_by_interpolation() -> None:
    # 90 s apart, 120 m apart (1.3 m/s), passing 20 m from the point halfway.
    a = closest_approach([0.0, 90.0], [-60.0, 60.0], [20.0, 20.0], [5.0, 5.0], (0.0, 0.0))
    assert a.source == "segment" and a.index == 0
    assert a.distance_m == pytest.approx(15.0)
    assert a.ts_s == pytest.approx(45.0)
    assert a.segments_used.tolist() == [[0, 1]]
    assert a.fix_distance_m.tolist() == pytest.approx([math.hypot(60, 20) - 5] * 2)


@pytest.mark.parametrize(
    ("t1", "x1", "reason"),
    [(900.0, 60.0, "gap over 10 min"), (1.0, 60.0, "120 m in 1 s")],
)
def test_no_interpolation_across_long_gaps_or_implausible_speed(t1, x1, reason) -> None:
    a = closest_approach([0.0, t1], [-60.0, x1], [20.0, 20.0], [5.0, 5.0], (0.0, 0.0))
    assert a.source == "fix", reason
    assert len(a.segments_used) == 0 and a.dwell_s == 0
    assert a.distance_m == pytest.approx(math.hypot(60, 20) - 5)


def test_stationary_tag_30_m_away_for_20_minutes_dwells_20_minutes() -> None:
    rng = np.random.default_rng(1)
    ts = np.arange(0, 1201, 60.0)
    acc = rng.uniform(5, 15, len(ts))
    x, y = noisy(rng, np.full(len(ts), 30.0), np.zeros(len(ts)), acc)
    a = closest_approach(ts, x, y, acc, (0.0, 0.0), radius_m=50.0)
    assert a.dwell_s == pytest.approx(1200.0)
    assert a.distance_m < 30
    far = closest_approach(ts, x + 1000, y, acc, (0.0, 0.0), radius_m=50.0)
    assert far.dwell_s == 0 and far.distance_m > 900


def test_dwell_counts_only_the_time_within_the_radius() -> None:
    # Straight line at 1 m/s through the point: within 100 m (accuracy 0) for 200 s.
    ts = np.arange(0.0, 1001.0, 50.0)
    a = closest_approach(ts, ts - 500.0, np.zeros(len(ts)), np.zeros(len(ts)), (0.0, 0.0))
    assert a.dwell_s == pytest.approx(200.0)
    assert a.distance_m == 0 and a.ts_s == 500


def test_time_window_clips_fixes_and_segments() -> None:
    ts = np.arange(0.0, 1001.0, 50.0)
    x = ts - 500.0
    a = closest_approach(ts, x, np.zeros(len(ts)), np.zeros(len(ts)), (0.0, 0.0), t0_s=0, t1_s=420)
    assert a.distance_m == pytest.approx(80.0) and a.ts_s == pytest.approx(420.0)
    assert a.source == "segment"
    assert a.dwell_s == pytest.approx(20.0)  # 400..420 s
    assert a.fixes_used.tolist() == list(range(9))


def test_unsorted_input_and_indices_refer_to_the_input() -> None:
    ts = np.array([90.0, 0.0, 400.0])
    x = np.array([60.0, -60.0, 500.0])
    a = closest_approach(ts, x, [20.0, 20.0, 20.0], [5.0, 5.0, 5.0], (0.0, 0.0))
    assert a.source == "segment" and a.index == 1
    assert a.segments_used.tolist() == [[1, 0], [0, 2]]  # input indices of both legs


def test_empty_and_out_of_window_trails() -> None:
    a = closest_approach([], [], [], [], (0.0, 0.0))
    assert a.distance_m == math.inf and math.isnan(a.ts_s) and a.index == -1
    b = closest_approach([0.0], [1.0], [1.0], [1.0], (0.0, 0.0), t0_s=10, t1_s=20)
    assert b.distance_m == math.inf and len(b.fixes_used) == 0


@PROPS
@given(
    n=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    px=st.floats(-500, 500),
    py=st.floats(-500, 500),
)
def test_segment_estimate_never_worse_than_the_fixes(n, seed, px, py) -> None:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.uniform(1, 400, n))
    x, y = np.cumsum(rng.normal(0, 100, (2, n)), axis=1)
    acc = rng.uniform(0, 50, n)
    a = closest_approach(ts, x, y, acc, (px, py), radius_m=80.0)
    assert 0 <= a.distance_m <= a.fix_distance_m.min() + 1e-9
    assert 0 <= a.dwell_s <= ts[-1] - ts[0] + 1e-9
    assert ts[0] <= a.ts_s <= ts[-1]
