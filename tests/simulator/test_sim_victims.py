"""Victim scenarios: the victim's own fixes, the protection in the conditions, and the truth."""

from __future__ import annotations

import math

import numpy as np

from simulator import Simulation
from simulator.output import write_files
from tests.simulator.conftest import script_of


def _conditions_of(sim: Simulation, offender_id: str):
    return next(c for c in sim.conditions if c.offender_id == offender_id)


def test_victims_report_on_their_own_and_are_protected_in_the_conditions(
    sim: Simulation, tmp_path
) -> None:
    for kind in ("victim_approach", "victim_near_miss"):
        script = script_of(sim, kind)
        [protection] = _conditions_of(sim, script.person.offender_id).victims
        device = protection.victim_device_id
        mine = [r for r in sim.victim_readings if r.device_id == device]
        assert len(mine) == len(script.victim_readings) > 60  # a fix a minute, hours of them
        gaps = np.diff([r.ts.timestamp() for r in mine])
        assert gaps.min() == gaps.max() == 60.0
    write_files(sim, tmp_path)
    readings = (tmp_path / "readings.jsonl").read_bytes()
    assert b'"vd-' not in readings  # never on the tags' readings topic
    victims = (tmp_path / "victim_readings.jsonl").read_bytes().splitlines()
    assert len(victims) == len(sim.victim_readings)


def test_the_truth_follows_the_true_distance(sim: Simulation) -> None:
    approach = script_of(sim, "victim_approach")
    records = [r for r in sim.truth if r.scenario_id == approach.scenario_id]
    assert [r.type for r in records] == ["victim_proximity", "victim_proximity_ended"]
    radius = approach.facts["radius_m"]
    assert records[0].details["min_true_distance_m"] <= 0.5 * radius + 1.0
    assert records[1].ref_truth_id == records[0].truth_id
    near = script_of(sim, "victim_near_miss")
    [quiet] = [r for r in sim.truth if r.scenario_id == near.scenario_id]
    assert quiet.expect == "no_alert" and quiet.type == "victim_proximity"
    # Walking past at 1.5 x the radius (a straight walk on the near side; jitter of the way home
    # only): never nearer than that, give or take a metre.
    assert math.isclose(
        quiet.details["min_true_distance_m"], 1.5 * quiet.details["radius_m"], abs_tol=1.5
    )
