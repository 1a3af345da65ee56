"""Scenario geometry, checked in British National Grid from what was *published*.

The simulator works in its own local metric frame; these tests re-project true positions and the
published GeoJSON / scene coordinates with pyproj (EPSG:27700) and check the facts the ground truth
promises: near-misses never inside and >= 15 m out, breaches inside for exactly their episode,
passed-by with no fix inside the radius but a crossing segment.
"""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from simulator import Simulation
from tests.simulator.conftest import script_of, truth_of

BNG = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:27700", always_xy=True)


def _bng(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    x, y = BNG.transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x), np.asarray(y)


def _true_bng(sim: Simulation, person: int, t_s: np.ndarray):
    x, y, *_ = sim.trajectories.sample(np.full(len(t_s), person), t_s)
    lon, lat = sim.frame.to_lonlat(x, y, rounded=False)
    return _bng(lon, lat)


def _zone_bng(sim: Simulation, person: int, zone_id: str) -> shapely.Geometry:
    """The zone as published in the person's conditions, in BNG metres."""
    cond = sim.conditions[person]
    feature = next(f for f in cond.zones if f.properties.zone_id == zone_id)
    g = feature.geometry
    if type(g).__name__ == "PointGeometry":
        x, y = _bng(*g.coordinates[:2])
        return shapely.Point(float(x), float(y)).buffer(feature.properties.radius_m, quad_segs=256)
    ring = np.asarray(g.coordinates[0])
    x, y = _bng(ring[:, 0], ring[:, 1])
    return shapely.Polygon(np.column_stack([x, y]))


def test_near_miss_stays_outside_by_15_m(sim: Simulation) -> None:
    script = script_of(sim, "near_miss")
    (rec,) = truth_of(sim, "near_miss", expect="no_alert")
    person = script.person.index
    zone = _zone_bng(sim, person, rec.zone_id)
    t = np.arange(rec.occurred_from.timestamp(), rec.occurred_to.timestamp(), 1.0)
    x, y = _true_bng(sim, person, t)
    d = shapely.distance(shapely.points(x, y), zone)
    assert d.min() >= 15.0 - 0.1
    assert d.min() <= 40.0  # it really was a near miss
    assert rec.details["min_true_distance_m"] >= 15.0
    whole = np.arange(sim.config.start_s, sim.end_s, 5.0)
    x, y = _true_bng(sim, person, whole)
    assert not shapely.contains_xy(zone, x, y).any()
    assert not [r for r in sim.truth if r.zone_id == rec.zone_id and r.expect == "alert"]


@pytest.mark.parametrize("kind", ["exclusion_brief", "exclusion_long", "late_burst"])
def test_breach_inside_exactly_for_its_episode(sim: Simulation, kind: str) -> None:
    (rec,) = truth_of(sim, kind, "exclusion_breach")
    script = script_of(sim, kind)
    person = script.person.index
    zone = _zone_bng(sim, person, rec.zone_id)
    a, b = rec.episode_start.timestamp(), rec.episode_end.timestamp()
    inside_t = np.arange(a + 0.5, b - 0.5, 1.0)
    x, y = _true_bng(sim, person, inside_t)
    assert shapely.contains_xy(zone, x, y).all()
    x, y = _true_bng(sim, person, np.array([a - 1.5, b + 1.5]))
    assert not shapely.contains_xy(zone, x, y).any()
    assert b - a >= script.facts["dwell_s"]
    (ended,) = truth_of(sim, kind, "exclusion_breach_ended")
    assert ended.ref_truth_id == rec.truth_id and ended.occurred_at == rec.episode_end
    assert rec.late is (kind == "late_burst")


def test_inclusion_breach_outside_for_its_episode(sim: Simulation) -> None:
    (rec,) = truth_of(sim, "inclusion_breach", "inclusion_breach")
    person = script_of(sim, "inclusion_breach").person.index
    zone = _zone_bng(sim, person, rec.zone_id)
    a, b = rec.episode_start.timestamp(), rec.episode_end.timestamp()
    x, y = _true_bng(sim, person, np.arange(a + 0.5, b - 0.5, 2.0))
    assert not shapely.contains_xy(zone, x, y).any()
    assert b - a >= script_of(sim, "inclusion_breach").facts["dwell_s"]


def test_passed_by_has_no_fix_inside_but_a_crossing_segment(sim: Simulation) -> None:
    script = script_of(sim, "scene_passed_by")
    scene = next(s for s in sim.scenes if s.scene_id == script.scenes[0].scene_id)
    (rec,) = truth_of(sim, "scene_passed_by", expect="match")
    assert rec.match_class == "passed_by" and rec.details["verified"]
    f = sim.fixes
    m = (
        (f.dev == script.person.index)
        & (f.ts_s >= scene.window_start.timestamp())
        & (f.ts_s <= scene.window_end.timestamp())
    )
    x, y = _bng(f.lon[m], f.lat[m])
    ts = f.ts_s[m]
    cx, cy = _bng(scene.lon, scene.lat)
    centre = shapely.Point(float(cx), float(cy))
    d = shapely.distance(shapely.points(x, y), centre)
    assert d.min() > scene.radius_m
    segments = shapely.linestrings(
        np.stack([np.column_stack([x[:-1], y[:-1]]), np.column_stack([x[1:], y[1:]])], axis=1)
    )
    close = shapely.distance(segments, centre) <= scene.radius_m
    gaps = np.diff(ts)
    assert np.any(close & (gaps <= 90))


def test_at_scene_dwells_inside_the_radius(sim: Simulation) -> None:
    script = script_of(sim, "scene_at")
    (rec,) = truth_of(sim, "scene_at", expect="match")
    assert rec.match_class == "at_scene"
    assert rec.details["dwell_s"] >= 20 * 60
    assert 20.0 <= rec.details["closest_approach_m"] <= 45.0
    scene = script.scenes[0]
    assert (
        scene.window_s[0]
        < rec.episode_start.timestamp()
        < rec.episode_end.timestamp()
        < scene.window_s[1]
    )


def test_outside_window_and_not_visited_scenes_have_no_one(sim: Simulation) -> None:
    (out,) = truth_of(sim, "scene_outside_window", expect="no_match")
    assert out.details["closest_approach_m"] > 100.0
    (nobody,) = truth_of(sim, "scene_not_visited", expect="no_match")
    assert nobody.offender_id is None
    assert nobody.details["min_true_distance_m_anyone"] > 1000.0
    scene_ids = {out.scene_id, nobody.scene_id}
    assert not [r for r in sim.truth if r.scene_id in scene_ids and r.expect == "match"]


def test_background_people_never_enter_their_exclusion_zones(sim: Simulation) -> None:
    scripted = {s.person.index for s in sim.scripts if s.person is not None}
    f = sim.fixes
    for person, zones in sim.zones.items():
        m = f.dev == person
        for z in zones:
            if z.kind != "exclusion" or z.scenario_id:
                continue
            assert not z.shape.contains(f.true_x_m[m], f.true_y_m[m]).any(), z.zone_id
    background = [r for r in sim.truth if r.type.endswith("_breach") and r.scenario == "background"]
    assert background == []
    assert {r.offender_id for r in sim.truth if r.type == "exclusion_breach"} <= {
        sim.persons[i].offender_id for i in scripted
    }


def test_background_people_keep_their_curfews(sim: Simulation) -> None:
    f = sim.fixes
    for person, windows in sim.curfew_windows.items():
        if sim.persons[person].scenario:
            continue
        circle = sim.curfew_circles[person]
        m = f.dev == person
        t = f.ts_s[m]
        in_window = np.zeros(len(t), bool)
        for s, e, _d in windows:
            in_window |= (t >= s) & (t < e)
        assert circle.contains(f.true_x_m[m][in_window], f.true_y_m[m][in_window]).all()
