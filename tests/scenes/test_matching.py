"""The confidence rule on trails built for the purpose (pure: no database, no broker)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from em_service.scenes.matching import (
    RANK,
    Exclusion,
    Match,
    MatchConfig,
    match_scene,
    match_trail,
)
from tests.scenes.helpers import W0, W1, geom, stand, trail, walk

CFG = MatchConfig()
H = timedelta(hours=1)
MIN = timedelta(minutes=1)


def test_stood_30_m_away_for_20_minutes_in_the_window_is_at_scene() -> None:
    m = match_trail(geom(), trail(stand(W0 + 3 * H, 20, 30.0, 0.0)), CFG)
    assert isinstance(m, Match)
    assert m.confidence == "at_scene"
    assert m.in_window
    assert m.closest_m == pytest.approx(22.0)  # 30 m less 8 m accuracy
    assert m.dwell_s == pytest.approx(20 * 60, abs=1)
    assert m.fixes_inside == 21
    assert m.worst_accuracy_m == 8.0
    assert all(f.inside and f.in_window for f in m.fixes)
    assert len(m.segments) == 20  # every interpolated minute counted towards the dwell


def test_walked_past_between_two_fixes_90_s_apart_is_passed_by() -> None:
    # Walking at ~2.7 m/s on a line 30 m from the scene; fixes 90 s apart straddle it, both
    # more than 100 m (less accuracy) away.
    pts = walk(W0 + 2 * H, (-1320.0, 30.0), (1080.0, 30.0), 90.0, 11)
    d = [np.hypot(dx, dy) - 8.0 for _, dx, dy in pts]
    assert min(d) > 100.0  # no fix inside the radius
    m = match_trail(geom(), trail(pts), CFG)
    assert isinstance(m, Match)
    assert m.confidence == "passed_by"
    assert m.closest_source == "segment"
    assert m.fixes_inside == 0
    assert m.closest_m == pytest.approx(22.0, abs=0.5)
    (seg,) = m.segments
    assert seg.end_ts_s - seg.start_ts_s == 90.0
    assert {f.ts_s for f in m.fixes} == {seg.start_ts_s, seg.end_ts_s}
    assert not any(f.inside for f in m.fixes)


@pytest.mark.parametrize(
    ("label", "points", "expected", "in_window"),
    [
        ("stood 20 min at 30 m", stand(W0 + H, 20, 30, 0), "at_scene", True),
        ("stood 20 min at 90 m", stand(W0 + H, 20, 90, 0), "at_scene", True),
        ("two fixes inside, 1 min", stand(W0 + H, 1, 30, 0), "passed_by", True),
        ("one fix inside", stand(W0 + H, 0, 30, 0), "passed_by", True),
        ("stood 20 min at 130 m", stand(W0 + H, 20, 130, 0), "near_scene", True),
        ("stood 20 min at 200 m", stand(W0 + H, 20, 200, 0), None, False),
        ("at 30 m, 30 min before the window", stand(W0 - 50 * MIN, 20, 30, 0), "near_scene", False),
        ("at 30 m, 30 min after the window", stand(W1 + 10 * MIN, 20, 30, 0), "near_scene", False),
        ("at 30 m, 2 h before the window", stand(W0 - 2 * H - 20 * MIN, 20, 30, 0), None, False),
        ("at 30 m, 2 h after the window", stand(W1 + 2 * H, 20, 30, 0), None, False),
        ("at 30 m, 10-min fixes", stand(W0 + H, 20, 30, 0, every_s=600), "at_scene", True),
    ],
)
def test_confidence_table(label: str, points, expected: str | None, in_window: bool) -> None:
    m = match_trail(geom(), trail(points), CFG, exclusions=False)
    got = m.confidence if isinstance(m, Match) else None
    assert got == expected, label
    if isinstance(m, Match):
        assert m.in_window is in_window


def test_inside_the_radius_but_outside_the_window_and_pad_is_not_matched() -> None:
    late = stand(W1 + CFG.time_pad_s * timedelta(seconds=1) + 5 * MIN, 30, 10.0, 0.0)
    assert not isinstance(match_trail(geom(), trail(late), CFG), Match)


def test_inaccurate_fixes_never_place_anyone() -> None:
    pts = stand(W0 + H, 20, 50.0, 0.0)
    assert match_trail(geom(), trail(pts, acc=300.0), CFG) is None
    assert match_trail(geom(), trail(pts, acc=90.0), CFG).confidence == "at_scene"


def test_continuously_elsewhere_is_excluded_with_evidence() -> None:
    # Near the scene in the hour before the window (found by the search), then 3 km away for
    # the whole window, one fix a minute.
    before = walk(W0 - 70 * MIN, (300.0, 0.0), (3000.0, 0.0), 60.0, 15)
    away = stand(before[-1][0] + MIN, (W1 - before[-1][0]).total_seconds() / 60 + 5, 3000, 0)
    ex = match_trail(geom(), trail(before + away), CFG)
    assert isinstance(ex, Exclusion)
    assert ex.device_ids == ("tag-1",)
    assert ex.covered_from_s <= W0.timestamp() and ex.covered_to_s >= W1.timestamp()
    assert ex.max_gap_s == 60.0
    assert ex.fixes_in_window == 12 * 60 + 1
    assert ex.min_distance_m > 2900
    assert ex.min_detour_margin_m > 0
    assert len(ex.fixes) >= ex.fixes_in_window
    assert not any(f.inside for f in ex.fixes)


@pytest.mark.parametrize(
    ("label", "points"),
    [
        (
            "a 20-minute gap in the window",
            stand(W0 - 5 * MIN, 300, 3000, 0) + stand(W0 + 320 * MIN, 500, 3000, 0),
        ),
        ("fixes stop before the window ends", stand(W0 - 5 * MIN, 600, 3000, 0)),
        ("400 m away: a detour was possible between fixes", stand(W0 - 5 * MIN, 730, 400, 0)),
    ],
)
def test_no_alibi_without_full_coverage_out_of_reach(label: str, points) -> None:
    assert match_trail(geom(), trail(points), CFG) is None, label


def test_match_scene_sorts_matches_and_lists_the_undecided() -> None:
    trails = [
        trail(stand(W0 + H, 0, 30, 0), offender_id="off-passed"),
        trail(stand(W0 + H, 20, 30, 0), offender_id="off-at"),
        trail(stand(W0 + H, 20, 130, 0), offender_id="off-near"),
        trail(stand(W0 - 5 * MIN, 730, 3000, 0), offender_id="off-away"),
        trail(stand(W0 + H, 5, 1000, 0), offender_id="off-unknown"),
    ]
    result = match_scene(geom(), trails, CFG)
    assert [m.offender_id for m in result.matches] == ["off-at", "off-passed", "off-near"]
    assert [e.offender_id for e in result.exclusions] == ["off-away"]
    assert result.undecided == ["off-unknown"]
    assert RANK["at_scene"] > RANK["passed_by"] > RANK["near_scene"] > RANK["excluded"]


@pytest.mark.parametrize("shift_h", [-1000, 0, 37])
@pytest.mark.parametrize("dx", [-5000.0, 0.0, 12_345.0])
def test_rule_is_invariant_under_translation_in_space(shift_h: int, dx: float) -> None:
    """Moving the scene and every fix together changes nothing (only relative metres count)."""
    import dataclasses

    g = geom()
    tr = trail(stand(W0 + H, 20, 30, 0))
    moved = dataclasses.replace(tr, x_m=tr.x_m + dx)
    g2 = dataclasses.replace(g, x_m=g.x_m + dx)
    a, b = match_trail(g, tr, CFG), match_trail(g2, moved, CFG)
    assert (a.confidence, a.closest_m, a.dwell_s) == (b.confidence, b.closest_m, b.dwell_s)
