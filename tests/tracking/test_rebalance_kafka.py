"""Scale-out and failover on the real broker: a second worker joins mid-stream (partitions and
their device states move to it), then the first is killed with SIGKILL (the second fences it,
restores its states and resumes from its committed offsets). Every alert of an uninterrupted run
is committed exactly once — none lost, none twice, no episode restarted."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from em_service.scrape import scrape, total
from tests.service_env import ServiceEnv, free_port
from tests.tracking.scenarios import Scenario, build
from tests.tracking.test_rules_kafka import (
    EXPECTED,
    _committed_id_list,
    _env,
    _publish_context,
    _publish_readings,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 4


def _consumed(*urls: str) -> float:
    got = 0.0
    for url in urls:
        try:
            got += total(scrape(url), "em_readings_consumed_total")
        except OSError:  # a killed worker answers no more
            continue
    return got


def _assigned(env: ServiceEnv, log_name: str) -> bool:
    return "device states restored" in env.log(log_name)


def test_scale_out_then_failover_commits_every_alert_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    scenario: Scenario = build()
    n = len(scenario.readings)
    thirds = [scenario.readings[: n // 3], scenario.readings[n // 3 : 2 * n // 3]]
    thirds.append(scenario.readings[2 * n // 3 :])
    want = sum(EXPECTED.values())

    (tmp_path / "ref").mkdir()
    (tmp_path / "moved").mkdir()
    ref = _env(kafka_bootstrap, tmp_path / "ref", partitions=PARTITIONS)
    try:
        _publish_context(ref, scenario)
        ref.start("worker", log_name="worker")
        _publish_readings(ref, scenario.readings)
        ref.wait_until(lambda: _consumed(ref.metrics_url) >= n, 180, "the reference run")
        ref.wait_until(lambda: len(_committed_id_list(ref)) >= want, 60, "reference alerts")
        expected = Counter(_committed_id_list(ref, timeout_s=5))
    finally:
        ref.stop_all()

    env = _env(kafka_bootstrap, tmp_path / "moved", partitions=PARTITIONS)
    env.env["EM_SESSION_TIMEOUT_S"] = "6"
    url_a = env.metrics_url
    try:
        _publish_context(env, scenario)
        worker_a = env.start("worker", log_name="worker-a")
        _publish_readings(env, thirds[0])
        env.wait_until(lambda: _consumed(url_a) >= len(thirds[0]), 120, "A to read a third")

        env.env["EM_WORKER_METRICS_PORT"] = str(port_b := free_port())
        url_b = f"http://127.0.0.1:{port_b}/metrics"
        env.start("worker", log_name="worker-b")
        env.wait_until(lambda: _assigned(env, "worker-b"), 120, "B to take partitions")
        _publish_readings(env, thirds[1])
        env.wait_until(
            lambda: _consumed(url_a, url_b) >= len(thirds[0]) + len(thirds[1]) // 2,
            120,
            "both to read half the second third",
        )
        env.stop(worker_a, sig=signal.SIGKILL)  # mid-stream: A may hold an open transaction
        env.procs.remove(worker_a)
        _publish_readings(env, thirds[2])
        env.wait_until(lambda: set(_committed_id_list(env)) >= set(expected), 180, "every alert")
        got = Counter(_committed_id_list(env, timeout_s=5))
        log_b = env.log("worker-b")
    finally:
        env.stop_all()

    assert len(expected) == sum(expected.values()) >= want
    assert got == expected, (got - expected, expected - got)
    assert log_b.count("device states restored") > PARTITIONS // 2  # B took over A's share
