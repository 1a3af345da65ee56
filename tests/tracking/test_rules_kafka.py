"""The streaming rules end to end on the real broker: one day of scripted readings for several
offenders goes through the real worker; exactly the scripted alerts come out, once each.

Also the crash test: kill -9 the worker mid-stream, restart it, and the set of alert ids equals
that of an uninterrupted run.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from em_service import kafka_io
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from tests.service_env import ServiceEnv
from tests.tracking.scenarios import Scenario, build

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EXPECTED = Counter(
    {
        ("off-ex", "exclusion_breach", "z-ex"): 1,
        ("off-ex", "exclusion_breach_ended", "z-ex"): 1,
        ("off-dst", "curfew_breach", "c-off-dst"): 1,
        ("off-dst", "curfew_breach_ended", "c-off-dst"): 1,
        ("off-gapc", "curfew_unverified", "c-off-gapc"): 1,
        ("off-gapc", "curfew_unverified_ended", "c-off-gapc"): 1,
        ("off-sil", "device_silent", None): 1,
        ("off-sil", "device_silent_ended", None): 1,
        ("off-tam", "strap_tamper", None): 1,
        ("off-sf", "device_silent", None): 1,
        ("off-sf", "device_silent_ended", None): 1,
        ("off-sf", "exclusion_breach", "z-sf"): 1,
        ("off-sf", "exclusion_breach_ended", "z-sf"): 1,
        ("off-chg", "exclusion_breach", "z-chg-a"): 1,
        ("off-chg", "exclusion_breach_ended", "z-chg-a"): 1,
        ("off-chg", "exclusion_breach", "z-chg-b"): 1,
        ("off-chg", "exclusion_breach_ended", "z-chg-b"): 1,
        ("off-alc", "alcohol_detected", None): 1,
        ("off-scn", "device_silent", None): 1,
        ("off-scn", "device_silent_ended", None): 1,
    }
)


def _env(bootstrap: str, path: Path, partitions: int = 1) -> ServiceEnv:
    env = ServiceEnv(bootstrap, path)
    env.env.update(
        EM_TOPIC_PARTITIONS=str(partitions),
        EM_RULE_CLOCK="event",
        EM_TICK_INTERVAL_S="1",
        EM_MAX_PAST_AGE_S=str(3 * 365 * 86400),
        EM_SCENES_OPEN_DAYS="3650",
    )
    env.settings = env.settings.model_copy(update={"topic_partitions": partitions})
    ensure_topics(env.settings, bootstrap)
    return env


def _publish_context(env: ServiceEnv, scenario: Scenario) -> None:
    """Conditions and open scenes go first: the worker loads both before any reading."""
    s = env.settings
    asyncio.run(kafka_io.send_all(env.bootstrap, s.topic_conditions, scenario.conditions))
    asyncio.run(kafka_io.send_all(env.bootstrap, s.topic_scenes, scenario.scenes))


def _publish_readings(env: ServiceEnv, readings: list) -> None:
    asyncio.run(kafka_io.send_all(env.bootstrap, env.settings.topic_readings, readings))


def _alerts(env: ServiceEnv, want: int, timeout_s: float = 60) -> list[dict]:
    records = asyncio.run(
        kafka_io.read_since(
            env.bootstrap, env.settings.topic_alerts, None, want=want, timeout_s=timeout_s
        )
    )
    return [json.loads(r.value) for r in records]


def _consumed(env: ServiceEnv) -> float:
    return total(scrape(env.metrics_url), "em_readings_consumed_total")


def _run_to_end(env: ServiceEnv, n: int) -> list[dict]:
    env.wait_until(lambda: _consumed(env) >= n, 180, "the worker to consume every reading")
    want = sum(EXPECTED.values())
    env.wait_until(lambda: len(_alerts(env, want + 1, timeout_s=2)) >= want + 1, 60, "every alert")
    return _alerts(env, want + 50, timeout_s=5)  # and nothing more arrives


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return build()


@pytest.fixture(scope="module")
def uninterrupted(kafka_bootstrap: str, scenario: Scenario, tmp_path_factory) -> list[dict]:
    env = _env(kafka_bootstrap, tmp_path_factory.mktemp("rules"))
    try:
        _publish_context(env, scenario)
        env.start("worker", log_name="worker")
        _publish_readings(env, scenario.readings)
        return _run_to_end(env, len(scenario.readings))
    finally:
        env.stop_all()


def _subject(alert: dict) -> str | None:
    return alert.get("zone_id") or alert.get("curfew_id") or alert.get("scene_id")


def _by_key(alerts: list[dict]) -> dict:
    return {(a["offender_id"], a["type"], _subject(a)): a for a in alerts}


def test_exactly_the_scripted_alerts_once_each(uninterrupted: list[dict]) -> None:
    got = Counter(
        (a["offender_id"], a["type"], _subject(a))
        for a in uninterrupted
        if a["type"] != "scene_proximity"
    )
    assert got == EXPECTED
    assert len({a["alert_id"] for a in uninterrupted}) == len(uninterrupted)


def test_breach_and_end_are_linked(uninterrupted: list[dict]) -> None:
    alerts = _by_key(uninterrupted)
    breach = alerts[("off-ex", "exclusion_breach", "z-ex")]
    ended = alerts[("off-ex", "exclusion_breach_ended", "z-ex")]
    assert ended["ref_alert_id"] == breach["alert_id"]
    assert breach["severity"] == "high" and breach["occurred_at"] == "2026-10-24T13:16:00Z"
    assert ended["details"]["duration_s"] == 28 * 60


def test_late_return_on_the_dst_night_has_local_times(uninterrupted: list[dict]) -> None:
    breach = _by_key(uninterrupted)[("off-dst", "curfew_breach", "c-off-dst")]
    assert breach["details"]["pattern"] == "late_return"
    assert breach["details"]["window_start_local"] == "2026-10-24T19:00:00+01:00"
    assert breach["details"]["window_end_local"] == "2026-10-25T07:00:00+00:00"
    assert breach["occurred_at"] == "2026-10-24T18:00:00Z"


def test_silence_during_curfew_is_high(uninterrupted: list[dict]) -> None:
    alert = _by_key(uninterrupted)[("off-gapc", "curfew_unverified", "c-off-gapc")]
    assert alert["severity"] == "high" and alert["episode_start"] == "2026-10-24T19:59:00Z"


def test_store_and_forward_breach_is_late_with_true_time(uninterrupted: list[dict]) -> None:
    breach = _by_key(uninterrupted)[("off-sf", "exclusion_breach", "z-sf")]
    assert breach["late"] is True
    assert breach["occurred_at"] == "2026-10-24T13:16:00Z"


def test_late_burst_near_an_open_scene_is_matched_at_scene(uninterrupted: list[dict]) -> None:
    near = [a for a in uninterrupted if a["type"] == "scene_proximity"]
    levels = [a["details"]["confidence"] for a in near]
    assert {a["offender_id"] for a in near} == {"off-scn"}
    assert "at_scene" in levels and len(levels) == len(set(levels)), levels
    assert all(a["late"] and a["scene_id"] == "sc-burglary-1" for a in near)


def test_conditions_change_applies_by_event_time(uninterrupted: list[dict]) -> None:
    chg = [
        a
        for a in uninterrupted
        if a["offender_id"] == "off-chg" and a["type"] == "exclusion_breach"
    ]
    assert sorted((a["zone_id"], a["occurred_at"][11:16]) for a in chg) == [
        ("z-chg-a", "13:12"),
        ("z-chg-b", "17:12"),
    ]  # the 16:00 visit to A came after the change


def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    kafka_bootstrap: str, scenario: Scenario, uninterrupted: list[dict], tmp_path: Path
) -> None:
    env = _env(kafka_bootstrap, tmp_path)
    try:
        _publish_context(env, scenario)
        worker = env.start("worker", log_name="worker")
        _publish_readings(env, scenario.readings)
        half = len(scenario.readings) // 2
        env.wait_until(lambda: _consumed(env) >= half, 180, "half the stream")
        env.stop(worker, sig=signal.SIGKILL)
        env.procs.remove(worker)
        env.start("worker", log_name="worker2")
        expected = {a["alert_id"] for a in uninterrupted}
        # The first worker may have committed most alerts already: wait for all of them.
        env.wait_until(lambda: _committed_ids(env) >= expected, 180, "every alert after restart")
        after = _committed_ids(env, timeout_s=5)
    finally:
        env.stop_all()
    assert after == expected
    assert max(Counter(_committed_id_list(env)).values()) == 1  # no alert committed twice


def _committed_ids(env: ServiceEnv, timeout_s: float = 2) -> set[str]:
    return set(_committed_id_list(env, timeout_s))


def _committed_id_list(env: ServiceEnv, timeout_s: float = 2) -> list[str]:
    records = asyncio.run(
        kafka_io.read_since(
            env.bootstrap,
            env.settings.topic_alerts,
            None,
            want=10_000,
            timeout_s=timeout_s,
        )
    )
    return [json.loads(r.value)["alert_id"] for r in records]
