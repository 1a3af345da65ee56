"""Victim proximity as a pure rule (and through the engine, no broker): verdicts, approach and
parting, the victim's fix age, a near miss, late person fixes, the DST change, pauses,
conditions changes, and what an alert may say."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import Alert, GpsReading
from em_service.contracts.codec import encode
from em_service.rules import victims
from em_service.rules.tiers import tier
from em_service.rules.victims import VictimFix, VictimPositions, verdict
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine, dump_state, load_state
from em_service.tracking.intake import Source, triage_victim
from geofences import verdicts as V
from geofences.projection import get_projector
from tests.trails import ORIGIN_X, ORIGIN_Y, fix

T0 = datetime(2026, 11, 16, 10, tzinfo=UTC)
MIN = timedelta(minutes=1)
RADIUS = 200.0
VICTIM = (ORIGIN_X + 3000.0, ORIGIN_Y)  # where the victim stays


def conditions(radius: float = RADIUS, **extra: object) -> dict:
    return {
        "offender_id": "off-1",
        "device_ids": ["tag-1"],
        "victims": [{"protection_id": "vp-1", "victim_device_id": "vdev-1", "radius_m": radius}],
        **extra,
    }


def engine(doc: dict | None = None, **settings: object) -> Engine:
    registry = ConditionsRegistry()
    registry.apply("off-1", json.dumps(doc or conditions()).encode())
    return Engine(registry, Settings(**settings))


def victim_stays(eng: Engine, t0: datetime, minutes: int, where=VICTIM, acc: float = 8.0) -> None:
    for k in range(minutes):
        eng.positions.put("vdev-1", VictimFix((t0 + k * MIN).timestamp(), *where, acc))


def person_at(distances: list[float], t0: datetime = T0, acc: float = 8.0) -> list[GpsReading]:
    """A fix a minute, each ``d`` metres south-west of the victim."""
    return [
        fix("tag-1", t0 + k * MIN, VICTIM[0] - 0.6 * d, VICTIM[1] - 0.8 * d, acc)
        for k, d in enumerate(distances)
    ]


def run(eng: Engine, readings: list[GpsReading], tick_to: datetime | None = None) -> list[Alert]:
    state, alerts = DeviceState(), []
    for r in readings:
        state = load_state(dump_state(state))  # the state survives the changelog
        alerts += eng.on_reading(state, r, now=r.ts).alerts
    if tick_to is not None:
        alerts += eng.on_tick(state, "tag-1", now=tick_to, detected_at=tick_to)
    return [a for a in alerts if a.type.startswith("victim")]


APPROACH = [1000, 800, 600, 400, 250, 150, 100, 80, 80, 90, 150, 300, 500, 700, 900, 1000]


# --- the verdict ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d", "acc", "expected"),
    [
        (100.0, 20.0, V.DEFINITE),
        (180.0, 20.0, V.DEFINITE),  # d + a == radius: every place either could be is within
        (181.0, 20.0, V.POSSIBLE),
        (220.0, 20.0, V.POSSIBLE),
        (221.0, 20.0, V.CLEAR),
        (300.0, 20.0, V.CLEAR),  # a near miss at 1.5 x the radius
    ],
)
def test_the_verdict_counts_both_accuracies(d: float, acc: float, expected: int) -> None:
    assert verdict(d, acc, RADIUS) == expected


def test_positions_give_the_victims_fix_of_the_persons_time() -> None:
    table = VictimPositions()
    for t in (100.0, 160.0, 220.0):
        table.put("v", VictimFix(t, t, 0.0, 5.0))
    table.put("v", VictimFix(130.0, 130.0, 0.0, 5.0))  # late: kept in order
    table.put("v", VictimFix(160.0, 999.0, 0.0, 5.0))  # a second fix at one time is ignored
    assert table.at("v", 159.0, 60.0).ts_s == 130.0
    assert table.at("v", 160.0, 60.0).x == 160.0
    assert table.at("v", 300.0, 60.0) is None  # the newest is 80 s older: too old
    assert table.at("v", 99.0, 60.0) is None  # nothing before
    assert table.at("w", 160.0, 60.0) is None
    assert table.prune(160.0) == 2 and table.at("v", 159.0, 60.0) is None
    assert table.prune(1e9) == 2 and len(table) == 0


# --- through the engine ----------------------------------------------------------------------


def test_an_approach_opens_one_critical_episode_and_parting_ends_it() -> None:
    eng = engine()
    victim_stays(eng, T0 - 5 * MIN, 30)
    alerts = run(eng, person_at(APPROACH), tick_to=T0 + 30 * MIN)
    assert [a.type for a in alerts] == ["victim_proximity", "victim_proximity_ended"]
    opened, ended = alerts
    assert tier(opened.type) == "critical" and opened.severity == "high"
    # The run's first evidence fix is the 150 m one at minute 5 (250 m - 16 m of accuracy is
    # beyond the radius); the episode ends at the first of three clear fixes (300 m, minute 11).
    assert opened.occurred_at == opened.episode_start == T0 + 5 * MIN
    assert ended.occurred_at == ended.episode_end == T0 + 11 * MIN
    assert ended.ref_alert_id == opened.alert_id and ended.severity == "info"
    assert opened.details["closest_m"] == 80.0  # the three fixes that opened it: 150, 100, 80 m
    assert ended.details["closest_m"] == 80.0 and ended.details["duration_s"] == 360.0
    assert opened.details["protection_id"] == "vp-1" and opened.details["radius_m"] == RADIUS


def test_an_alert_names_the_persons_fix_only() -> None:
    eng = engine()
    victim_stays(eng, T0 - 5 * MIN, 30)
    readings = person_at(APPROACH)
    alerts = run(eng, readings)
    opened = alerts[0]
    person = {(r.lat, r.lon) for r in readings}
    assert (opened.location.lat, opened.location.lon) in person
    text = encode(opened).decode()
    assert "vdev-1" not in text  # the victim's device is not named either
    vlon, vlat = get_projector().to_lonlat(*VICTIM)
    for coord in (f"{float(vlat):.5f}", f"{float(vlon):.5f}"):
        assert coord not in text


def test_a_near_miss_at_one_and_a_half_radius_raises_nothing() -> None:
    eng = engine()
    victim_stays(eng, T0 - 5 * MIN, 40, acc=15.0)
    assert run(eng, person_at([1.5 * RADIUS] * 30, acc=25.0), tick_to=T0 + 40 * MIN) == []


def test_a_victim_fix_older_than_the_limit_is_not_used() -> None:
    eng = engine(victim_fix_max_age_s=120.0)
    eng.positions.put("vdev-1", VictimFix((T0 - 3 * MIN).timestamp(), *VICTIM, 8.0))
    assert run(eng, person_at([50.0] * 10)) == []  # the only victim fix is 3+ min old
    eng = engine(victim_fix_max_age_s=600.0)
    eng.positions.put("vdev-1", VictimFix((T0 - 3 * MIN).timestamp(), *VICTIM, 8.0))
    assert [a.type for a in run(eng, person_at([50.0] * 10))] == ["victim_proximity"]


def test_a_victim_walking_to_a_person_who_stays_is_noticed_at_the_persons_next_fixes() -> None:
    eng = engine()
    # The victim walks towards the person standing 1 km south-west of VICTIM, 60 m a minute.
    for k in range(20):
        x, y = VICTIM[0] - 0.6 * 60.0 * k, VICTIM[1] - 0.8 * 60.0 * k
        eng.positions.put(
            "vdev-1", VictimFix((T0 + k * MIN - 30 * MIN / 60).timestamp(), x, y, 8.0)
        )
    alerts = run(eng, person_at([1000.0] * 20))
    assert [a.type for a in alerts] == ["victim_proximity"]
    # Each person fix meets the victim's fix 30 s before it: 1000 - 60 k metres apart, within
    # 200 m (give or take 16 m of accuracy) from k = 14; the next two fixes open the episode.
    assert alerts[0].episode_start == T0 + 14 * MIN


def test_late_person_fixes_are_compared_with_the_victims_fix_of_their_time() -> None:
    eng = engine()
    victim_stays(eng, T0 - 5 * MIN, 40)
    readings = person_at(APPROACH)
    # Minutes 4..8 arrive last (a store-and-forward burst), after the person has left.
    order = readings[:4] + readings[9:] + readings[4:9]
    alerts = run(eng, order)
    assert [a.type for a in alerts] == ["victim_proximity"]
    assert alerts[0].late and alerts[0].episode_start == T0 + 5 * MIN
    # The same set of fixes in order gives the same alert id (deterministic episodes).
    in_order = run(engine_with_victim(), readings)
    assert in_order[0].alert_id == alerts[0].alert_id and not in_order[0].late


def engine_with_victim() -> Engine:
    eng = engine()
    victim_stays(eng, T0 - 5 * MIN, 40)
    return eng


def test_local_times_follow_the_dst_change() -> None:
    eng = engine()
    before = datetime(2026, 10, 25, 0, 50, tzinfo=UTC)  # 01:50 BST, clocks go back at 01:00 UTC
    victim_stays(eng, before - 5 * MIN, 60)
    alerts = run(eng, person_at(APPROACH, t0=before), tick_to=before + 40 * MIN)
    opened, ended = alerts
    assert opened.details["occurred_at_local"] == "2026-10-25T01:55:00+01:00"
    assert ended.details["ended_at_local"] == "2026-10-25T01:01:00+00:00"
    assert ended.details["duration_s"] == 360.0  # true elapsed time, not wall-clock difference


def test_a_pause_ends_the_episode_and_a_changed_order_retires_it() -> None:
    eng = engine()
    victim_stays(eng, T0 - 5 * MIN, 60)
    state = DeviceState()
    for r in person_at([50.0] * 10):
        eng.on_reading(state, r, now=r.ts)
    assert victims.is_open(state.victims.episodes["vp-1"])
    later = T0 + 20 * MIN
    eng.registry.apply(
        "off-1",
        json.dumps({**conditions(), "victims": [], "updated_at": later.isoformat()}).encode(),
    )
    alerts = eng.on_reading(state, fix("tag-1", later, *VICTIM), now=later).alerts
    assert [(a.type, a.details["reason"]) for a in alerts] == [
        ("victim_proximity_ended", "conditions_changed")
    ]
    assert state.victims is None  # the protection is gone: no state, no cost per fix
    eng = engine()
    victim_stays(eng, T0 - 5 * MIN, 60)
    state = DeviceState()
    for r in person_at([50.0] * 10):
        eng.on_reading(state, r, now=r.ts)
    paused = {
        "status": "suspended",
        "reason": "custody",
        "from": (T0 + 15 * MIN).isoformat(),
        "approved_by": "Simulated sergeant",
    }
    eng.registry.apply(
        "off-1",
        json.dumps(
            {**conditions(), "monitoring": paused, "updated_at": (T0 + 15 * MIN).isoformat()}
        ).encode(),
    )
    alerts = eng.on_reading(state, fix("tag-1", later, *VICTIM), now=later).alerts
    assert [(a.type, a.details["reason"]) for a in alerts] == [
        ("victim_proximity_ended", "monitoring_suspended")
    ]


def test_a_tag_moved_to_someone_else_leaves_the_victim_state_behind() -> None:
    """The tag goes to another person: nothing of the first wearer's protection (episode,
    radius) carries over, and nothing is ended under the new wearer's name."""
    eng = engine()
    victim_stays(eng, T0 - 5 * MIN, 60)
    state = DeviceState()
    for r in person_at([50.0] * 10):
        eng.on_reading(state, r, now=r.ts)
    assert victims.is_open(state.victims.episodes["vp-1"])
    later = T0 + 20 * MIN
    moved = {"updated_at": later.isoformat()}
    eng.registry.apply(
        "off-1", json.dumps({**conditions(), "device_ids": ["tag-9"], **moved}).encode()
    )
    eng.registry.apply(
        "off-2", json.dumps({"offender_id": "off-2", "device_ids": ["tag-1"], **moved}).encode()
    )
    alerts = eng.on_reading(state, fix("tag-1", later, *VICTIM), now=later).alerts
    assert state.offender_id == "off-2" and state.victims is None
    assert [a for a in alerts if a.type.startswith("victim")] == []


def test_people_without_a_protection_keep_no_victim_state() -> None:
    registry = ConditionsRegistry()
    registry.apply("off-1", json.dumps({"offender_id": "off-1", "device_ids": ["tag-1"]}).encode())
    eng = Engine(registry, Settings())
    victim_stays(eng, T0 - 5 * MIN, 30)
    state = DeviceState()
    for r in person_at([0.0] * 10):
        eng.on_reading(state, r, now=r.ts)
    assert state.victims is None and eng.positions.reads == 0


# --- intake of the victim topic ----------------------------------------------------------------


def _triage(raw: bytes, key: bytes = b"vdev-1"):
    source = Source("em.victim_readings", 0, 7, key)
    return triage_victim(raw, source, Settings(), T0, get_projector())


def test_a_victim_fix_is_projected_and_bad_ones_are_dead_lettered() -> None:
    good = encode(fix("vdev-1", T0, *VICTIM))
    device, got = _triage(good)
    assert device == "vdev-1" and got.ts_s == T0.timestamp()
    assert math.dist((got.x, got.y), VICTIM) < 0.01
    event = b'{"type":"event","device_id":"vdev-1","ts":"2026-11-16T10:00:00Z","event":"heartbeat"}'
    far = msgspec.json.encode(
        {
            "type": "gps",
            "device_id": "vdev-1",
            "ts": "2026-11-16T10:00:00Z",
            "lat": 0,
            "lon": 88,
            "accuracy_m": 5,
        }
    )
    cases = [
        (b"not json", b"vdev-1", "invalid_json"),
        (event, b"vdev-1", "unknown_type"),
        (good, b"someone-else", "wrong_key"),
        (far, b"vdev-1", "unprojectable"),
    ]
    for raw, key, reason in cases:
        letter = _triage(raw, key)
        assert letter.reason == reason, (raw, letter)
        assert letter.source_topic == "em.victim_readings" and letter.source_offset == 7


def test_a_victim_record_whose_handling_raises_is_a_processing_error_letter() -> None:
    from em_service.tracking.victims import victim_item

    class Broken:
        crs = "EPSG:27700"

        def to_xy_checked(self, lon, lat):
            raise RuntimeError("projection broke")

    class Rec:
        topic, partition, offset, key = "em.victim_readings", 1, 9, b"vdev-1"
        value = encode(fix("vdev-1", T0, *VICTIM))

    letter = victim_item(Rec(), Settings(), T0, Broken(), report=True)
    assert letter.reason == "processing_error" and "projection broke" in letter.detail
    assert (letter.source_partition, letter.source_offset) == (1, 9)
    with pytest.raises(RuntimeError):
        victim_item(Rec(), Settings(fail_fast=True), T0, Broken(), report=True)
