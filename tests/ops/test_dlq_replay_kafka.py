"""``em-service dlq show|replay`` on the real broker with the real worker: a tag nobody was
enrolled with is dead-lettered; after its conditions are loaded, ``replay`` re-drives it once
and the worker raises its alert once; a second replay re-drives nothing; other reasons stay.
``--victims``: victims' letters are shown without their position and re-driven to their topic."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from em_service import kafka_io
from em_service.contracts.codec import encode
from em_service.deadletters import REASONS
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from tests.service_env import ServiceEnv, wait_until
from tests.store.factories import conditions

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _cli(env: ServiceEnv, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "em_service.cli", *args],
        env={**os.environ, **env.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _read(env: ServiceEnv, topic: str, want: int, timeout_s: float = 3) -> list:
    return asyncio.run(
        kafka_io.read_since(env.bootstrap, topic, None, want=want, timeout_s=timeout_s)
    )


def test_replay_redrives_unknown_device_letters_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env["EM_DLQ_UNKNOWN_DEVICES"] = "true"
    ensure_topics(env.settings, kafka_bootstrap)
    s = env.settings
    now = datetime.now(UTC)
    tamper = {
        "type": "event",
        "device_id": "tag-new",
        "ts": now.isoformat(),
        "event": "strap_tamper",
    }
    messages = [(b"tag-new", json.dumps(tamper).encode()), (b"tag-x", b"{not json")]
    try:
        env.start("worker", log_name="worker")
        asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_readings, messages))
        env.wait_until(lambda: len(_read(env, s.topic_dlq, 2, 1)) >= 2, 90, "two dead letters")

        shown = _cli(env, "dlq", "show")
        rows = {line.split()[0]: line.split()[1:] for line in shown.splitlines()[1:3]}
        assert rows == {"invalid_json": ["1", "1"], "unknown_device": ["1", "1"]}, shown
        assert "strap_tamper" in shown and "key=tag-new" in shown
        assert "would re-drive 1 " in _cli(
            env, "dlq", "replay", "--reason", "unknown_device", "--dry-run"
        )

        # The fix: tag-new is enrolled. Then re-drive.
        asyncio.run(
            kafka_io.send_all(
                kafka_bootstrap,
                s.topic_conditions,
                [(b"off-new", encode(conditions("off-new", ["tag-new"])))],
            )
        )
        env.wait_until(
            lambda: total(scrape(env.metrics_url), "em_conditions_applied_total") >= 1,
            30,
            "the worker to apply the conditions",
        )
        assert "re-drove 1 dead letters with reason unknown_device" in _cli(
            env, "dlq", "replay", "--reason", "unknown_device"
        )
        alerts = env.wait_until(
            lambda: _read(env, s.topic_alerts, 1, 1), 60, "the re-driven reading's alert"
        )
        assert "re-drove 0 dead letters" in _cli(env, "dlq", "replay", "--reason", "unknown_device")
        after = _cli(env, "dlq", "show", "--reason", "unknown_device")
        env.wait_until(
            lambda: total(scrape(env.metrics_url), "em_readings_consumed_total") >= 1,
            30,
            "the worker to count the re-driven reading",
        )
        readings = _read(env, s.topic_readings, 4)
        alerts = _read(env, s.topic_alerts, 2)
        letters = _read(env, s.topic_dlq, 3)
    finally:
        env.stop_all()
    assert sorted((r.key, r.value) for r in readings) == sorted([*messages, messages[0]]), (
        "re-driven once, as sent"
    )
    decoded = [json.loads(a.value) for a in alerts]
    assert [(a["offender_id"], a["type"]) for a in decoded] == [("off-new", "strap_tamper")]
    assert len(letters) == 2, "the re-driven reading was not dead-lettered again"
    rows = {line.split()[0]: line.split()[1:] for line in after.splitlines()[1:3]}
    assert rows == {"invalid_json": ["1", "1"], "unknown_device": ["1", "0"]}, after


def _committed_letters(env: ServiceEnv, reason: str) -> int:
    from aiokafka import AIOKafkaConsumer

    from em_service.deadletters import replay_group

    async def read() -> int:
        tps = await kafka_io.partitions(env.bootstrap, env.settings.topic_dlq)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=env.bootstrap,
            group_id=replay_group(env.settings, reason),
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            return sum([(await consumer.committed(tp)) or 0 for tp in tps])
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_a_replay_killed_midway_and_run_again_redrives_each_letter_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """kill -9 during a replay (one letter per transaction), then replay again: every dead
    letter is on the readings topic exactly once more, none twice, none lost."""
    n = 1000
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    env.env["EM_DLQ_UNKNOWN_DEVICES"] = "true"
    ensure_topics(env.settings, kafka_bootstrap)
    s = env.settings
    start = datetime.now(UTC)
    originals = []
    for i in range(n):
        body = {"type": "event", "device_id": "tag-u", "ts": start.isoformat(),
                "event": "battery_low", "seq": i}  # fmt: skip
        originals.append((b"tag-u", json.dumps(body).encode()))
    try:
        worker = env.start("worker", log_name="worker")
        asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_readings, originals))
        env.wait_until(
            lambda: total(scrape(env.metrics_url), "em_readings_rejected_total") >= n,
            90,
            "every reading dead-lettered",
        )
        env.stop(worker)  # nothing re-fails while we replay
        replay = ["dlq", "replay", "--reason", "unknown_device", "--batch", "1"]
        first = subprocess.Popen(
            [sys.executable, "-m", "em_service.cli", *replay],
            env={**os.environ, **env.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _committed_letters(env, "unknown_device") > 0, 60, what="a commit")
        finally:
            first.kill()
            first.wait(10)
        partial = len(_read(env, s.topic_readings, 2 * n, 3)) - n
        out = _cli(env, "dlq", "replay", "--reason", "unknown_device")
        readings = _read(env, s.topic_readings, 2 * n + 1, 5)
    finally:
        env.stop_all()
    print(f"first replay killed after {partial} of {n}; the second re-drove the rest: {out}")
    assert 0 < partial < n, "the first replay was interrupted midway"
    assert f"re-drove {n - partial} dead letters" in out
    seqs = Counter(json.loads(r.value)["seq"] for r in readings)
    assert seqs == Counter({i: 2 for i in range(n)}), "each letter re-driven exactly once"


def test_victim_letters_show_without_position_and_replay_to_the_victim_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """A worker whose clock tolerance is too tight dead-letters a victim's fix
    ``future_timestamp``; ``dlq show --victims`` lists the letters by reason with no coordinate;
    after the tolerance is fixed, ``dlq replay --victims`` re-sends that fix once to the victim
    topic and the worker takes it."""
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    ensure_topics(env.settings, kafka_bootstrap)
    s = env.settings
    ahead = (datetime.now(UTC) + timedelta(seconds=120)).isoformat()
    coords = {"vic-1": ("51.501234", "-0.141234"), "vic-2": ("51.512345", "-0.123456"),
              "vic-3": ("10.987654", "88.765432")}  # fmt: skip

    def gps(device: str, ts: str) -> bytes:
        lat, lon = coords[device]
        return (
            f'{{"type":"gps","device_id":"{device}","ts":"{ts}",'
            f'"lat":{lat},"lon":{lon},"accuracy_m":5}}'
        ).encode()

    now = datetime.now(UTC).isoformat()
    messages = [
        (b"vic-1", gps("vic-1", ahead)),  # future_timestamp (tolerance 1 s)
        (b"vic-x", gps("vic-2", now)),  # wrong_key
        (b"vic-3", gps("vic-3", now)),  # unprojectable: outside EPSG:27700
    ]
    try:
        env.env["EM_MAX_FUTURE_SKEW_S"] = "1"
        worker = env.start("worker", log_name="worker")
        asyncio.run(kafka_io.send_all(kafka_bootstrap, s.topic_victim_readings, messages))
        env.wait_until(
            lambda: len(_read(env, s.topic_victim_dlq, 3, 1)) >= 3, 90, "three victim letters"
        )
        env.stop(worker)
        env.procs.remove(worker)

        shown = _cli(env, "dlq", "show", "--victims")
        readings_shown = _cli(env, "dlq", "show")
        assert "would re-drive 1 " in _cli(
            env, "dlq", "replay", "--victims", "--reason", "future_timestamp", "--dry-run"
        )
        # The fix: the worker's tolerance back to its default. Then re-drive.
        del env.env["EM_MAX_FUTURE_SKEW_S"]
        env.start("worker", log_name="worker-fixed")
        out = _cli(env, "dlq", "replay", "--victims", "--reason", "future_timestamp")
        env.wait_until(
            lambda: total(scrape(env.metrics_url), "em_victim_fixes_total") >= 1,
            60,
            "the worker to take the re-driven victim fix",
        )
        rejected = {
            dict(labels)["reason"]: value
            for (name, labels), value in scrape(env.metrics_url).items()
            if name == "em_victim_readings_rejected_total"
        }
        again = _cli(env, "dlq", "replay", "--victims", "--reason", "future_timestamp")
        after = _cli(env, "dlq", "show", "--victims")
        victims = _read(env, s.topic_victim_readings, 5)
        readings = _read(env, s.topic_readings, 1, 1)
    finally:
        env.stop_all()
    assert "redacted" in shown.splitlines()[0], shown
    rows = {line.split()[0]: line.split()[1:] for line in shown.splitlines()[2:5]}
    assert rows == {
        "future_timestamp": ["1", "1"],
        "unprojectable": ["1", "1"],
        "wrong_key": ["1", "1"],
    }, shown
    assert shown.count("<redacted: a victim's position>") == 3, shown
    for lat, lon in coords.values():
        assert lat not in shown and lon not in shown, shown
    assert "key=vic-1" in shown
    assert "future_timestamp" not in readings_shown, "victims' letters are not the readings'"
    assert (
        f"re-drove 1 dead letters with reason future_timestamp to {s.topic_victim_readings}" in out
    )
    assert "re-drove 0 dead letters" in again
    after_rows = {line.split()[0]: line.split()[1:] for line in after.splitlines()[2:5]}
    assert after_rows["future_timestamp"] == ["1", "0"], after
    assert sorted((r.key, r.value) for r in victims) == sorted([*messages, messages[0]]), (
        "re-driven once, with its key and bytes, to the victim topic"
    )
    assert readings == [], "nothing of a victim's on the readings topic"
    # Every reason is exported at 0 from the start (VictimReadingsRejected sees a first one).
    assert rejected == dict.fromkeys(REASONS, 0.0), rejected
