"""LiveMatcher, pure: fixes (in order, late, re-delivered) near open scenes → exactly one alert
per (scene, offender, confidence level)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from em_service.scenes.alerting import scene_alert_id
from em_service.scenes.config import SceneSettings
from em_service.scenes.live import LiveMatcher, LiveState, dump_live_state, load_live_state
from tests.scenes.helpers import W0, W1, readings, scene_msg, stand, walk

H = timedelta(hours=1)
MIN = timedelta(minutes=1)
NOW = W1 + 6 * H  # the scene was reported after its window; fixes from it arrive late
SETTINGS = SceneSettings()


def _matcher(*scenes) -> LiveMatcher:
    live = LiveMatcher(SETTINGS, crs="EPSG:27700", late_after_s=300.0)
    for scene in scenes or [scene_msg("sc-live")]:
        assert live.upsert(scene, now=NOW)
    return live


def _feed(live: LiveMatcher, fixes, state: LiveState | None = None, offender: str = "off-1"):
    """Feed fixes one by one (round-tripping the state as a table would); return state, alerts
    and the index of the fix that raised each alert."""
    state = state or LiveState()
    out = []
    for i, fix in enumerate(fixes):
        state, alerts = live.on_fix(offender, fix, load_live_state(dump_live_state(state)), now=NOW)
        out += [(i, a) for a in alerts]
    return state, out


def test_a_late_burst_near_an_open_scene_makes_exactly_one_alert() -> None:
    live = _matcher()
    # Live fixes first (now, at home 4 km away), then the device's store-and-forward burst
    # from inside the window: walks in, stands 30 m from the scene for 20 min, walks off.
    current = readings("tag-1", stand(NOW - 10 * MIN, 10, 4000.0, 0.0))
    burst = readings(
        "tag-1",
        walk(W0 + 3 * H, (1500.0, 0.0), (30.0, 0.0), 60.0, 15)
        + stand(W0 + 3 * H + 15 * MIN, 20, 30.0, 0.0)
        + walk(W0 + 3 * H + 36 * MIN, (30.0, 0.0), (1500.0, 0.0), 60.0, 15),
    )
    state, before = _feed(live, current)
    assert before == []
    state, got = _feed(live, burst, state)
    assert len(got) == 1
    _i, alert = got[0]
    scene = scene_msg("sc-live")
    assert alert.type == "scene_proximity" and alert.severity == "high"
    assert alert.details["confidence"] == "at_scene" and alert.details["origin"] == "live"
    assert alert.alert_id == scene_alert_id("off-1", "at_scene", scene)  # same id as the archive
    assert alert.late and alert.scene_id == "sc-live" and alert.device_id == "tag-1"
    assert alert.details["fixes_inside"] >= 2 and alert.details["dwell_s"] >= 300
    # The track is done (nothing stronger to alert): only its level is kept.
    assert state.tracks["sc-live"].points == [] and len(dump_live_state(state)) < 200

    # The broker re-delivers the whole burst: nothing new.
    _state, again = _feed(live, burst, state)
    assert again == []


def test_walking_past_alerts_passed_by_once_the_trail_has_left() -> None:
    live = _matcher()
    pts = walk(W0 + 2 * H, (-1320.0, 30.0), (1080.0, 30.0), 90.0, 11)
    state, got = _feed(live, readings("tag-1", pts))
    # Fixes 5 and 6 straddle the scene; fix 6 is still within radius + near margin (124 m),
    # so the level settles at fix 7 (360 m away).
    assert [(i, a.details["confidence"]) for i, a in got] == [(7, "passed_by")]
    assert got[0][1].details["closest_source"] == "segment"
    assert state.tracks["sc-live"].level == 2


def test_passed_by_then_back_to_stay_upgrades_to_at_scene() -> None:
    live = _matcher()
    fixes = readings(
        "tag-1",
        walk(W0 + 2 * H, (-1320.0, 30.0), (1080.0, 30.0), 90.0, 11)
        + walk(W0 + 3 * H, (1080.0, 0.0), (20.0, 0.0), 60.0, 10)
        + stand(W0 + 3 * H + 10 * MIN, 15, 20.0, 0.0),
    )
    _state, got = _feed(live, fixes)
    levels = [a.details["confidence"] for _, a in got]
    assert levels == ["passed_by", "at_scene"]
    assert got[1][1].details["previous_confidence"] == "passed_by"
    assert len({a.alert_id for _, a in got}) == 2


def test_fixes_far_from_every_open_scene_leave_the_state_alone() -> None:
    live = _matcher()
    state = LiveState()
    for fix in readings("tag-1", stand(W0 + H, 30, 9000.0, 9000.0)):
        new, alerts = live.on_fix("off-1", fix, state, now=NOW)
        assert new is state and alerts == []


def test_fixes_outside_the_window_and_pad_are_ignored() -> None:
    live = _matcher()
    state, got = _feed(live, readings("tag-1", stand(W1 + 3 * H, 30, 10.0, 0.0)))
    assert got == [] and state.tracks == {}


@pytest.mark.parametrize(
    ("days_ago", "held"),
    [(1, True), (13.9, True), (14.1, False)],
)
def test_only_open_scenes_are_held(days_ago: float, held: bool) -> None:
    live = LiveMatcher(SETTINGS)
    scene = scene_msg("sc-old", start=W0, end=W1)
    now = W1 + timedelta(days=days_ago)
    assert live.upsert(scene, now=now) is held
    assert len(live) == int(held)
    assert live.prune(now + timedelta(days=15)) == int(held)
    assert len(live) == 0


def test_without_a_rule_clock_yet_no_scene_is_closed() -> None:
    """A replay's rule clock is its event time: before the first event nothing is judged."""
    live = LiveMatcher(SETTINGS)
    scene = scene_msg("sc-old", start=W0, end=W1)
    assert live.upsert(scene, now=None) and live.prune(None) == 0
    assert live.prune(W1 + timedelta(days=14.1)) == 1 and len(live) == 0


def test_late_is_judged_by_the_rule_clock_and_detected_at_is_the_wall_clock() -> None:
    live = _matcher()
    wall = NOW + timedelta(days=5 * 365)  # a replay running years after its data
    fixes = readings("tag-1", stand(W0 + H, 15, 20.0, 0.0))
    state, got = LiveState(), []
    for fix in fixes:
        state, alerts = live.on_fix("off-1", fix, state, now=wall, stream_now=fix.ts)
        got += alerts
    (alert,) = got
    assert alert.details["confidence"] == "at_scene" and alert.detected_at == wall
    assert not alert.late


def test_a_withdrawn_scene_drops_its_tracks() -> None:
    live = _matcher()
    fixes = readings("tag-1", stand(W0 + H, 2, 300.0, 0.0))
    state, _ = _feed(live, fixes)
    assert "sc-live" in state.tracks
    live.remove("sc-live")
    state, got = live.on_fix("off-1", fixes[-1], state, now=NOW)
    assert state.tracks == {} and got == []


def test_low_precision_scenes_are_not_held_for_live_alerts() -> None:
    live = LiveMatcher(SETTINGS)
    assert not live.upsert(scene_msg("sc-month", low_precision=True), now=NOW)


def test_a_late_burst_passing_by_is_found_even_after_newer_fixes_nearby() -> None:
    """Fixes from later in the window came first (700 m away); then the device's burst from
    earlier drives past the scene (11.7 m/s, fixes 90 s apart: the fix before the scene is
    600 m away, the one after 450 m)."""
    live = _matcher()
    state, _ = _feed(live, readings("tag-1", stand(W0 + 5 * H, 10, 700.0, 0.0)))
    burst = readings("tag-1", walk(W0 + 2 * H, (-2700.0, 30.0), (2550.0, 30.0), 90.0, 6))
    _state, got = _feed(live, burst, state)
    assert [a.details["confidence"] for _, a in got] == ["passed_by"]
