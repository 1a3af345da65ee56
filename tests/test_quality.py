"""Alert quality: unit tests of the scoring, and a simulated day through the real worker.

The quality test replays a small deterministic cohort (every scenario, fixed seed) through the
real worker and archiver on the real broker (``EM_RULE_CLOCK=event``; the archiver matches crime
scenes against its archive) and asserts that every scripted alert of the rules the service
implements was raised, and that no near-miss script raised one.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import numpy as np
import pytest

from em_service.contracts import Alert
from em_service.devstack import ensure_topics
from em_service.evaluate import StreamClock, Truth, render, score
from em_service.evaluate import main as evaluate_main
from em_service.replay import replay
from simulator import SimConfig, simulate
from simulator.scenarios import parse
from tests.service_env import ServiceEnv, free_port

T0 = datetime(2026, 11, 16, 10, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def truth(tid: str, type_: str = "exclusion_breach", *, expect: str = "alert", **kw) -> Truth:
    kw.setdefault("offender_id", "off-1")
    kw.setdefault("zone_id", "z-1" if "breach" in type_ else None)
    mid = kw.pop("m", 0.0)
    kw.setdefault("occurred_at", at(mid) if expect == "alert" else None)
    kw.setdefault("occurred_from", at(mid - 2))
    kw.setdefault("occurred_to", at(mid + 3))
    return Truth(truth_id=tid, expect=expect, type=type_, **kw)


def alert(aid: str, type_: str = "exclusion_breach", m: float = 0.0, **kw) -> Alert:
    kw.setdefault("offender_id", "off-1")
    kw.setdefault("zone_id", "z-1" if "breach" in type_ else None)
    kw.setdefault("detected_at", at(m + 2))
    return Alert(alert_id=f"alert-{aid}", type=type_, severity="high", occurred_at=at(m), **kw)


# --- scoring ---------------------------------------------------------------------------------


def test_a_match_is_a_true_positive_with_its_delay() -> None:
    report = score([truth("gt-1")], [alert("a", m=1)], person_days=1)
    rule = report.rules["exclusion_breach"]
    assert (rule.expected, rule.true_positives, rule.missed, rule.false_alerts) == (1, 1, 0, 0)
    assert rule.delays_s == [120.0] and report.recall == 1.0


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"m": 4}, "after the window"),
        ({"m": -2.5}, "before the window"),
        ({"offender_id": "off-2"}, "another offender"),
        ({"zone_id": "z-2"}, "another zone"),
        ({"type_": "inclusion_breach"}, "another rule"),
    ],
)
def test_an_alert_must_agree_on_every_key(change: dict, why: str) -> None:
    report = score([truth("gt-1")], [alert("a", **change)])
    assert report.total("true_positives") == 0, why
    assert report.rules["exclusion_breach"].missed == 1
    assert report.total("false_alerts") == 1
    assert {f.kind for f in report.findings} == {"missed", "unexpected"}


def test_a_second_alert_for_one_episode_is_a_duplicate() -> None:
    report = score([truth("gt-1")], [alert("a", m=0), alert("b", m=1)])
    assert report.total("true_positives") == 1
    assert [f.kind for f in report.findings] == ["duplicate"]


def test_the_same_alert_twice_counts_once() -> None:
    report = score([truth("gt-1")], [alert("a"), alert("a")])
    assert report.total("false_alerts") == 0 and report.total("true_positives") == 1


def test_two_episodes_close_together_are_matched_by_nearest_time() -> None:
    records = [truth("gt-1", m=0), truth("gt-2", m=2)]
    report = score(records, [alert("late", m=2.5), alert("early", m=0.5)])
    assert report.total("true_positives") == 2 and not report.findings


def test_optional_records_are_neither_missed_nor_false() -> None:
    records = [truth("gt-1", optional=True), truth("gt-2", "strap_restored", optional=True, m=60)]
    assert score(records, [alert("a")]).findings == []
    report = score(records, [])
    assert report.total("missed") == 0 and report.recall is None


def test_an_alert_in_a_near_miss_window_is_false() -> None:
    near = truth("gt-9", expect="no_alert", m=30, scenario="near_miss")
    report = score([near], [alert("a", m=31), alert("b", "exclusion_breach_ended", m=32)])
    assert report.total("false_alerts") == 2
    assert {f.kind for f in report.findings} == {"near_miss"}
    assert report.near_miss_records == 1 and report.near_miss_false == 1


def test_victim_proximity_is_scored_by_offender_and_its_near_miss_window() -> None:
    approach = truth("gt-1", "victim_proximity", m=0, scenario="victim_approach")
    ended = truth("gt-2", "victim_proximity_ended", m=12, scenario="victim_approach")
    near = truth(
        "gt-3",
        "victim_proximity",
        expect="no_alert",
        m=60,
        offender_id="off-2",
        scenario="victim_near_miss",
    )
    alerts = [alert("a", "victim_proximity", m=1), alert("b", "victim_proximity_ended", m=13)]
    report = score([approach, ended, near], alerts)
    assert report.recall == 1.0 and report.total("false_alerts") == 0
    passing = alert("c", "victim_proximity", m=61, offender_id="off-2")
    report = score([approach, ended, near], [*alerts, passing])
    assert report.near_miss_false == 1 and report.rules["victim_proximity"].false_alerts == 1
    assert [f.scenario for f in report.findings] == ["victim_near_miss"]


def test_an_alert_for_a_scene_no_one_visited_is_false_at_any_time() -> None:
    nobody = truth("gt-5", "scene_proximity", expect="no_match", offender_id=None, scene_id="sc-1")
    visit = alert("s", "scene_proximity", m=600, scene_id="sc-1", offender_id="off-7")
    report = score([nobody], [visit])
    assert [f.kind for f in report.findings] == ["near_miss"]


def test_a_stronger_scene_match_is_an_upgrade_not_a_duplicate() -> None:
    record = truth("gt-1", "scene_proximity", expect="match", scene_id="sc-1", m=10)
    near = alert("n", "scene_proximity", m=9, scene_id="sc-1")
    at = alert("a", "scene_proximity", m=11, scene_id="sc-1")
    report = score([record], [near, at])
    rule = report.rules["scene_proximity"]
    assert (rule.true_positives, rule.upgrades, rule.false_alerts) == (1, 1, 0)


def test_a_rule_the_service_never_raised_is_all_misses() -> None:
    scene = truth("gt-2", "scene_proximity", expect="match", scene_id="sc-1")
    records = [truth("gt-1"), scene, truth("gt-3", "device_silent", m=60)]
    report = score(records, [alert("a")])
    assert report.recall == pytest.approx(1 / 3)
    for rule in ("scene_proximity", "device_silent"):
        assert (report.rules[rule].expected, report.rules[rule].missed) == (1, 1)
    assert report.never_raised == {"device_silent": 1, "scene_proximity": 1}
    assert {(f.kind, f.ref) for f in report.findings} == {("missed", "gt-2"), ("missed", "gt-3")}
    assert "never raised: scene_proximity" in render(report)
    assert "recall 33.3 % (1/3)" in render(report)
    assert score(records, [alert("a")], complete=[]).recall == pytest.approx(1 / 3)


def test_evaluate_counts_a_rule_never_raised_as_missed(tmp_path: Path, capsys) -> None:
    scene = truth("gt-2", "scene_proximity", expect="match", scene_id="sc-1")
    (tmp_path / "truth.jsonl").write_bytes(
        b"".join(msgspec.json.encode(r) + b"\n" for r in (truth("gt-1"), scene))
    )
    (tmp_path / "alerts.jsonl").write_bytes(msgspec.json.encode(alert("a-000001")) + b"\n")
    argv = ["--ground-truth", str(tmp_path / "truth.jsonl"), "--alerts"]
    assert evaluate_main([*argv, str(tmp_path / "alerts.jsonl"), "--json"]) == 1
    out = capsys.readouterr().out
    assert "recall 50.0 % (1/2)" in out and '"recall": 0.5' in out


def test_alerts_of_types_the_truth_does_not_list_are_not_scored() -> None:
    report = score([], [alert("c", "charging_started")], person_days=2)
    assert report.unscored_alerts == {"charging_started": 1} and report.total("false_alerts") == 0


def test_false_alerts_per_person_month() -> None:
    alerts = [alert(str(k), m=100 * k) for k in range(3)]
    report = score([], alerts, person_days=90)
    assert report.per_person_month() == pytest.approx(1.0)


def test_late_and_severity_disagreements_are_counted_not_failed() -> None:
    report = score([truth("gt-1", late=True, severity="medium")], [alert("a")])
    rule = report.rules["exclusion_breach"]
    assert (rule.true_positives, rule.late_mismatch, rule.severity_mismatch) == (1, 1, 1)


def _detected(wall_s: float, origin: str | None = None) -> Alert:
    details = {"origin": origin} if origin else {}
    return alert("x", detected_at=datetime.fromtimestamp(wall_s, UTC), details=details)


def test_stream_clock_maps_wall_time_to_the_reading_being_taken_in() -> None:
    delivered = np.arange(100, dtype=np.float64) * 60 + T0.timestamp()
    clock = StreamClock([(1000.0, 0.0), (1010.0, 40.0), (1020.0, 90.0)], delivered)
    assert clock(_detected(1005.0)) == T0 + timedelta(minutes=20)
    assert clock(_detected(1015.0)) == T0 + timedelta(minutes=65)
    assert clock(_detected(2000.0)) == T0 + timedelta(minutes=90)
    assert clock(_detected(900.0)) == T0
    assert clock.resolution_s == 45 * 60


def test_stream_clock_round_trips_through_a_file(tmp_path: Path) -> None:
    delivered = np.arange(10, dtype=np.float64) + T0.timestamp()
    clock = StreamClock([(1.0, 0.0), (2.0, 5.0)], delivered, sent=[(1.0, 0.0), (2.0, 9.0)])
    clock.save(tmp_path / "clock.npz")
    again = StreamClock.load(tmp_path / "clock.npz")
    assert again.samples == clock.samples and again.sent == clock.sent
    assert np.array_equal(again.delivered_s, delivered)


def test_archive_matches_follow_the_replay_not_the_worker() -> None:
    delivered = np.arange(100, dtype=np.float64) * 60 + T0.timestamp()
    clock = StreamClock(
        [(1000.0, 0.0), (1010.0, 10.0)], delivered, sent=[(1000.0, 0.0), (1010.0, 90.0)]
    )
    assert clock(_detected(1010.0, "retro")) == T0 + timedelta(minutes=90)
    assert clock(_detected(1010.0, "live")) == T0 + timedelta(minutes=10)
    fast = StreamClock(clock.samples, delivered)  # a fast replay: no clock for archive matches
    assert fast(_detected(1010.0, "retro")) is None


# --- a simulated day through the real worker ---------------------------------------------------

#: The alert types the service implements: each must be in the scenario set, and never missed.
IMPLEMENTED = (
    "exclusion_breach",
    "exclusion_breach_ended",
    "inclusion_breach",
    "inclusion_breach_ended",
    "curfew_breach",
    "curfew_breach_ended",
    "curfew_unverified",
    "curfew_unverified_ended",
    "device_silent",
    "device_silent_ended",
    "alcohol_detected",
    "alcohol_suspect_interferent",
    "alcohol_tamper",
    "strap_tamper",
    "battery_low",
    "scene_proximity",
    "attendance_kept",
    "attendance_late",
    "attendance_missed",
    "attendance_unverified",
    "location_failure",
    "location_failure_ended",
    "victim_proximity",
    "victim_proximity_ended",
)
QUALITY = SimConfig(persons=26, days=1.0, seed=7, scenarios=parse("all"))


#: Service wall clocks the simulated day is replayed at: the machine's, and years after the
#: data, past every window judged against "now" (scenes open 14 days, readings refused as absurd
#: after 400 days, trail retention 365 days): the replay must not depend on the date it runs.
CLOCKS = {"today": None, "in 2031": datetime(2031, 6, 1, tzinfo=UTC)}


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("clock", list(CLOCKS))
def test_quality_of_a_simulated_day(kafka_bootstrap: str, tmp_path: Path, clock: str) -> None:
    sim = simulate(QUALITY)
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    fixed = CLOCKS[clock]
    offset_s = (fixed - datetime.now(UTC)).total_seconds() if fixed else 0.0
    env.env.update(
        EM_TOPIC_PARTITIONS="1",
        EM_RULE_CLOCK="event",
        EM_TICK_INTERVAL_S="1",
        EM_SCENES_REMATCH_DELAY_S="1",  # within the replay's settling time (3 s)
        EM_ARCHIVER_METRICS_PORT=str(free_port()),
        EM_WALL_CLOCK_OFFSET_S=str(offset_s),
    )
    settings = env.settings.model_copy(
        update={"topic_partitions": 1, "wall_clock_offset_s": offset_s}
    )
    ensure_topics(settings, kafka_bootstrap)
    try:
        env.start("worker", log_name="worker")
        env.start("archiver", log_name="archiver")
        env.wait_until(lambda: _up(env.metrics_url), 60, "the worker's metrics")
        run = asyncio.run(replay(sim, settings, metrics_url=env.metrics_url, timeout_s=240))
    finally:
        env.stop_all()
    truth_records = [msgspec.convert(r, Truth, from_attributes=True) for r in sim.truth]
    person_days = QUALITY.persons * QUALITY.days
    report = score(truth_records, run.alerts, person_days=person_days, stream_time=run.clock)
    print(render(report))
    for rule in IMPLEMENTED:
        assert rule in report.rules, f"{rule}: the service raised none\n{render(report)}"
        scores = report.rules[rule]
        assert scores.expected > 0, f"the scenario set has no {rule}"
        assert scores.missed == 0, f"missed {rule}:\n{render(report)}"
    assert report.recall == 1.0, render(report)
    assert report.near_miss_records >= 3 and report.near_miss_false == 0, render(report)
    victim_near = [r for r in truth_records if r.scenario == "victim_near_miss"]
    assert len(victim_near) == 1 and victim_near[0].expect == "no_alert"  # scored just above
    assert report.total("false_alerts") == 0, render(report)
    # The hospital visit under an approved suspension: recorded, suppressed, as the truth says.
    suppressed = [a for a in run.alerts if "suppressed" in a.details]
    assert {a.type for a in suppressed} == {"exclusion_breach", "exclusion_breach_ended"}
    assert report.rules["exclusion_breach"].severity_mismatch == 0, render(report)
    if fixed:  # the services ran at the clock given (their alerts say when they detected them)
        assert all(0 <= (a.detected_at - fixed).total_seconds() < 3600 for a in run.alerts)


def _up(url: str) -> bool:
    from em_service.replay import processed

    processed(url)
    return True
