"""The worker's lag and freshness metrics on the real broker: a backlog shows as lag in records
and seconds, per partition, then drains to zero; commits are timed per partition; enrolled and
recently heard devices are counted once partitions are warm."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from em_service import kafka_io
from em_service.contracts.codec import encode
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from tests.service_env import ServiceEnv
from tests.store.factories import conditions

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
N = 20_000


def _readings(start: datetime) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(N):
        device = ("tag-a", "tag-b")[i % 2]
        ts = start + timedelta(seconds=i * 0.1)
        body = {"type": "gps", "device_id": device, "ts": ts.isoformat(), "lat": 51.45,
                "lon": -0.97, "accuracy_m": 9.0, "seq": i}  # fmt: skip
        out.append((device.encode(), json.dumps(body).encode()))
    return out


def test_backlog_lag_drains_and_freshness_is_reported(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env.update(EM_TOPIC_PARTITIONS="2", EM_BATCH_MAX="10", EM_HEARD_WINDOW_S="8")
    env.settings = env.settings.model_copy(update={"topic_partitions": 2})
    ensure_topics(env.settings, kafka_bootstrap)
    s = env.settings
    people = [
        (b"off-1", encode(conditions("off-1", ["tag-a", "tag-b"]))),
        (b"off-2", encode(conditions("off-2", ["tag-c"]))),
    ]
    asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_conditions, people))
    began = time.time()
    start = datetime.now(UTC) - timedelta(hours=2)
    asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_readings, _readings(start)))
    produced = time.time()
    seen: dict[str, float] = {}

    def lag(samples: dict, name: str) -> dict[str, float]:
        return {
            dict(labels)["partition"]: v
            for (n, labels), v in samples.items()
            if n == name and dict(labels).get("consumer") == "worker"
        }

    def behind() -> bool:
        samples = scrape(env.metrics_url)
        records = lag(samples, "em_consumer_lag_records")
        seconds = lag(samples, "em_consumer_lag_seconds")
        if records and max(records.values()) > 0:
            seen["records"] = max(seen.get("records", 0), max(records.values()))
            seen["seconds"] = max(seen.get("seconds", 0), max(seconds.values()))
            seen["oldest"] = max(
                seen.get("oldest", 0),
                total(samples, "em_oldest_unprocessed_reading_age_seconds"),
            )
        return seen.get("seconds", 0) > 0

    try:
        env.start("worker", log_name="worker")
        env.wait_until(behind, 60, "the worker to report its backlog", interval_s=0.05)
        observed = time.time()

        def drained():
            samples = scrape(env.metrics_url)
            done = total(samples, "em_readings_consumed_total") >= N
            records = lag(samples, "em_consumer_lag_records")
            return done and set(records) == {"0", "1"} and not any(records.values()) and samples

        samples = env.wait_until(drained, 120, "the backlog to drain")

        def heard_one():
            # Only tag-a keeps reporting; the backlog's tag-b falls out of the 8 s window.
            body = {"type": "gps", "device_id": "tag-a", "ts": datetime.now(UTC).isoformat(),
                    "lat": 51.45, "lon": -0.97, "accuracy_m": 9.0}  # fmt: skip
            asyncio.run(
                kafka_io.send_all(
                    kafka_bootstrap, s.topic_readings, [(b"tag-a", json.dumps(body).encode())]
                )
            )
            x = scrape(env.metrics_url)
            counts = total(x, "em_devices_enrolled"), total(x, "em_devices_heard_recently")
            return counts == (3, 1) and x

        after = env.wait_until(heard_one, 60, "enrolled and heard devices counted", interval_s=1)
    finally:
        env.stop_all()
    print(f"backlog seen: {seen}, production took {produced - began:.1f} s")
    assert 0 < seen["records"] <= N
    # The backlog was produced before the worker started: its age is at most the time since
    # production began (plus the 1 s observation interval).
    assert 0 < seen["seconds"] <= observed - began + 1
    assert seen["oldest"] > 0
    assert set(lag(samples, "em_consumer_lag_seconds").values()) == {0.0}
    assert total(samples, "em_oldest_unprocessed_reading_age_seconds") == 0
    commits = {
        dict(labels)["partition"]: v
        for (n, labels), v in samples.items()
        if n == "em_partition_last_commit_timestamp_seconds"
    }
    assert set(commits) == {"0", "1"}
    assert all(produced <= t <= time.time() for t in commits.values())
    assert total(after, "em_devices_enrolled") == 3  # both partitions owned for the window
    assert total(after, "em_devices_heard_recently") == 1  # tag-c never sent, tag-b stopped
