"""The multi-person batch engine (geofences.index.ZoneIndex)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import geofences.index
from geofences import (
    CLEAR,
    DEFINITE,
    INACTIVE,
    UNUSABLE,
    CompiledConditions,
    ConditionsError,
    Observation,
    ZoneIndex,
    compile_conditions,
)
from geofences.schedule import parse_schedule
from tests.geofences.helpers import (
    ORIGIN,
    circle_feature,
    conditions_xy,
    polygon_feature,
    square,
    utc,
    zone,
)

X0, Y0 = ORIGIN
NIGHT = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "19:00", "end": "07:00"}
]


def test_each_fix_is_checked_only_against_its_owners_zones() -> None:
    a = conditions_xy(zone("a1", "exclusion", circle=(X0, Y0, 100.0)), offender_id="A")
    b = conditions_xy(
        zone("b1", "exclusion", circle=(X0 + 5000, Y0, 100.0)),
        zone("b2", "inclusion", square(X0 + 5000, Y0, 3000)),
        offender_id="B",
    )
    index = ZoneIndex([a, b])
    owner = index.owner_indices(["A", "A", "B", "B"])
    x = [X0 + 5000, X0, X0, X0 + 5000]
    res = index.evaluate(owner, np.zeros(4), x=x, y=[Y0] * 4, accuracy_m=[10.0] * 4)
    assert res.offsets.tolist() == [0, 1, 2, 4, 6]
    assert list(res.zone_ids()) == ["a1", "a1", "b1", "b2", "b1", "b2"]
    assert res.fix.tolist() == [0, 1, 2, 2, 3, 3]
    # A in B's zone → clear; A at home zone → definite; B far outside its inclusion square.
    assert res.verdict.tolist() == [CLEAR, DEFINITE, CLEAR, DEFINITE, DEFINITE, CLEAR]


def test_owners_with_different_numbers_of_zones() -> None:
    rng = np.random.default_rng(3)
    people = []
    for p in range(7):
        zones = [
            zone(f"p{p}z{k}", "exclusion", circle=(X0 + 300 * k, Y0 + 500 * p, 120.0))
            for k in range(p % 4)  # 0, 1, 2 or 3 zones
        ]
        people.append(conditions_xy(*zones, offender_id=f"p{p}"))
    index = ZoneIndex(people)
    n = 500
    owner = rng.integers(0, 7, n)
    x = X0 + rng.uniform(-200, 1100, n)
    y = Y0 + 500 * owner + rng.uniform(-200, 200, n)
    acc = rng.uniform(3, 60, n)
    res = index.evaluate(owner, np.zeros(n), x=x, y=y, accuracy_m=acc)
    assert np.diff(res.offsets).tolist() == [p % 4 for p in owner]
    for i in range(n):
        scalar = people[owner[i]].evaluate_fix(0.0, x=x[i], y=y[i], accuracy_m=acc[i])
        assert res.zone_verdicts(i) == scalar


def _mixed_people() -> list[CompiledConditions]:
    """Return twenty people, each with circles (one scheduled), a polygon with ``valid_to``, an
    inclusion polygon and a curfew with a grace and an exception.
    """
    people = []
    for p in range(20):
        cx, cy = X0 + 3000 * p, Y0
        ring = square(cx + 400, cy, 250).exterior.coords[:]
        people.append(
            compile_conditions(
                {
                    "offender_id": f"p{p}",
                    "zones": [
                        circle_feature("victim", cx, cy, 150.0),
                        circle_feature(
                            "school",
                            cx - 400,
                            cy,
                            200.0,
                            schedule=[{"days": ["mon", "fri"], "start": "08:00", "end": "16:00"}],
                        ),
                        polygon_feature("area", ring, valid_to="2026-06-03T00:00:00Z"),
                        polygon_feature(
                            "county", square(cx, cy, 1500).exterior.coords[:], kind="inclusion"
                        ),
                    ],
                    "curfews": [
                        {
                            "curfew_id": "home",
                            "geometry": circle_feature("h", cx, cy + 600, 1.0)["geometry"],
                            "radius_m": 40.0,
                            "windows": NIGHT,
                            "grace_s": 600,
                            "exceptions": [{"date": "2026-06-02", "cancelled": True}],
                        }
                    ],
                }
            )
        )
    return people


def test_batch_equals_scalar_with_schedules_validity_curfews_and_lonlat() -> None:
    rng = np.random.default_rng(11)
    people = _mixed_people()
    index = ZoneIndex({f"key{p}": c for p, c in enumerate(people)})
    n = 3000
    owner = rng.integers(0, 20, n)
    ts = utc(2026, 6, 1) + rng.uniform(0, 4 * 86400, n)  # Monday to Thursday, crosses valid_to
    x = X0 + 3000 * owner + rng.uniform(-1800, 1800, n)
    y = Y0 + rng.uniform(-1800, 1800, n)
    acc = np.where(rng.random(n) < 0.05, 150.0, rng.uniform(2, 90, n))
    lon, lat = index.projector.to_lonlat(x, y)
    res = index.evaluate(owner, ts, lon=lon, lat=lat, accuracy_m=acc)
    codes = np.bincount(res.verdict, minlength=5)
    assert codes.min() > 0  # every verdict occurs
    for i in range(n):
        scalar = people[owner[i]].evaluate_fix(ts[i], lon=lon[i], lat=lat[i], accuracy_m=acc[i])
        batch = res.zone_verdicts(i)
        assert [v.code for v in batch] == [v.code for v in scalar]
        for b, s in zip(batch, scalar, strict=True):
            assert (b.depth_m is None) == (s.depth_m is None)
            if b.depth_m is not None:
                assert b.depth_m == pytest.approx(s.depth_m, abs=1e-6)
            assert b.active_until_s == s.active_until_s


def test_schedule_horizon_is_rebuilt_for_far_times() -> None:
    night = parse_schedule(NIGHT)
    cc = conditions_xy(zone("c", "curfew", circle=(X0, Y0, 50.0), schedule=night))
    index = ZoneIndex([cc])
    for t, expected in [
        (utc(2026, 1, 5, 20), DEFINITE),
        (utc(2027, 10, 31, 6, 30), DEFINITE),  # 06:30 GMT on the autumn night
        (utc(2027, 10, 31, 7, 30), INACTIVE),
        (utc(2026, 1, 5, 12), INACTIVE),
    ]:
        res = index.evaluate([0], [t], x=[X0 + 500], y=[Y0], accuracy_m=[10.0])
        assert res.verdict[0] == expected


def test_until_is_window_end_and_observation_round_trips() -> None:
    night = parse_schedule(NIGHT)
    cc = conditions_xy(
        zone("c", "curfew", circle=(X0, Y0, 50.0), schedule=night),
        zone("z", "exclusion", circle=(X0, Y0, 50.0)),
    )
    t = utc(2026, 1, 5, 20)
    res = ZoneIndex([cc]).evaluate([0], [t], x=[X0 + 500], y=[Y0], accuracy_m=[10.0])
    assert res.active_until_s.tolist() == [utc(2026, 1, 6, 7), math.inf]
    assert res.observation(0) == Observation(t, DEFINITE, pytest.approx(450.0), utc(2026, 1, 6, 7))
    assert res.observation(1) == Observation(t, CLEAR, None, None)


def test_nan_coordinates_are_unusable_and_empty_batches_work() -> None:
    index = ZoneIndex([conditions_xy(zone("z", "exclusion", circle=(X0, Y0, 50.0)))])
    res = index.evaluate([0, 0], [0.0, 0.0], x=[math.nan, X0], y=[Y0, Y0], accuracy_m=[5.0, 5.0])
    assert res.verdict.tolist() == [UNUSABLE, DEFINITE]
    empty = index.evaluate([], [], x=[], y=[], accuracy_m=[])
    assert len(empty) == 0 and empty.offsets.tolist() == [0]


def test_bad_inputs() -> None:
    a = conditions_xy(zone("z", "exclusion", circle=(X0, Y0, 50.0)))
    b = conditions_xy(zone("z", "exclusion", circle=(X0, Y0, 50.0)), max_accuracy_m=50)
    with pytest.raises(ConditionsError, match="different settings"):
        ZoneIndex({"a": a, "b": b})
    index = ZoneIndex({"a": a})
    with pytest.raises(KeyError):
        index.owner_indices(["nobody"])
    with pytest.raises(ValueError, match="same length"):
        index.evaluate([0], [0.0, 1.0], x=[X0], y=[Y0], accuracy_m=[5.0])
    with pytest.raises(ValueError, match="owner indices"):
        index.evaluate([-1], [0.0], x=[X0], y=[Y0], accuracy_m=[5.0])
    with pytest.raises(ValueError, match="finite"):
        index.evaluate([0], [math.nan], x=[X0], y=[Y0], accuracy_m=[5.0])
    with pytest.raises(ValueError, match="give x and y"):
        index.evaluate([0], [0.0], accuracy_m=[5.0])
    assert index.zones_of(0)[0].zone_id == "z"


def test_a_batch_spanning_years_is_evaluated_in_slices() -> None:
    night = parse_schedule(NIGHT)
    cc = conditions_xy(
        zone("c", "curfew", circle=(X0, Y0, 50.0), schedule=night),
        zone("z", "exclusion", circle=(X0, Y0, 50.0)),
    )
    index = ZoneIndex([cc])
    ts = np.array(
        [utc(2026, 1, 5, 20), utc(2026, 1, 5, 12), utc(2029, 7, 1, 23), utc(2029, 7, 1, 12)]
    )
    res = index.evaluate(np.zeros(4, int), ts, x=[X0 + 500] * 4, y=[Y0] * 4, accuracy_m=[10.0] * 4)
    assert res.verdict.tolist() == [
        DEFINITE,
        CLEAR,
        INACTIVE,
        CLEAR,
        DEFINITE,
        CLEAR,
        INACTIVE,
        CLEAR,
    ]
    assert res.active_until_s[4] == utc(2029, 7, 2, 6)
    assert index._horizon[1] - index._horizon[0] < 40 * 86400


def _mixed_batch(n: int, seed: int) -> tuple[ZoneIndex, dict]:
    """The mixed people and seven with 0-3 circles (so owners have 0 to 5 zones), and fixes."""
    rng = np.random.default_rng(seed)
    few = [
        conditions_xy(
            *[
                zone(f"f{p}z{k}", "exclusion", circle=(X0 + 300 * k, Y0 - 5000, 120.0))
                for k in range(p % 4)
            ],
            offender_id=f"few{p}",
        )
        for p in range(7)
    ]
    index = ZoneIndex(_mixed_people() + few)
    owner = rng.integers(0, 27, n)
    x = np.where(owner < 20, X0 + 3000 * owner, X0 + 500) + rng.uniform(-1800, 1800, n)
    y = np.where(owner < 20, Y0, Y0 - 5000) + rng.uniform(-1800, 1800, n)
    ts = utc(2026, 6, 1) + rng.uniform(0, 4 * 86400, n)
    acc = np.where(rng.random(n) < 0.05, 150.0, rng.uniform(2, 90, n))
    return index, {"owner": owner, "ts_s": ts, "x": x, "y": y, "accuracy_m": acc}


@pytest.mark.parametrize("with_depth", [True, False])
def test_one_pass_and_slot_by_slot_evaluation_agree(monkeypatch, with_depth: bool) -> None:
    index, fixes = _mixed_batch(3000, seed=5)
    one_pass = index.evaluate(**fixes, with_depth=with_depth)
    assert len(one_pass) <= geofences.index._ONE_PASS_ROWS  # a stream's batch: one pass
    monkeypatch.setattr(geofences.index, "_ONE_PASS_ROWS", 0)  # as for a large batch
    by_slot = index.evaluate(**fixes, with_depth=with_depth)
    for name in ("offsets", "fix", "entry", "verdict", "depth_m", "active_until_s"):
        np.testing.assert_array_equal(getattr(one_pass, name), getattr(by_slot, name))
    assert np.bincount(one_pass.verdict, minlength=5).min() > 0  # every verdict occurs


@pytest.mark.parametrize("with_depth", [True, False])
def test_all_zone_verdicts_are_the_zone_verdicts_of_every_fix(with_depth: bool) -> None:
    index, fixes = _mixed_batch(2000, seed=6)
    res = index.evaluate(**fixes, with_depth=with_depth)
    every = res.all_zone_verdicts()
    assert len(every) == 2000
    for i, verdicts in enumerate(every):
        assert verdicts == res.zone_verdicts(i)
    # A row without a depth of a zone without a schedule is one shared (frozen) instance.
    rows = [v for verdicts in every for v in verdicts]
    shared: dict[tuple[int, int], object] = {}
    for e, v in zip(res.entry.tolist(), rows, strict=True):
        if v.depth_m is None and index.zones[e].schedule is None:
            assert shared.setdefault((e, v.code), v) is v
    assert len(shared) > 20
    assert ZoneIndex([]).evaluate([], [], x=[], y=[], accuracy_m=[]).all_zone_verdicts() == []
