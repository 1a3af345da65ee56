"""A small paced run to the real broker: every message arrives, keyed, in delivery order per device."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from em_service import kafka_io
from em_service.contracts import Conditions, Scene
from em_service.contracts.codec import decode_reading
from simulator.cli import main

pytestmark = pytest.mark.kafka


def _read(bootstrap: str, topic: str, want: int) -> list:
    return asyncio.run(kafka_io.read_since(bootstrap, topic, None, want=want, timeout_s=30.0))


def test_simulate_to_kafka(kafka_bootstrap: str, unique_topic_prefix: str, tmp_path: Path) -> None:
    topics = {k: f"{unique_topic_prefix}.{k}" for k in ("readings", "conditions", "scenes")}
    out = tmp_path / "sim"
    began = time.monotonic()
    code = main(
        [
            "--persons", "3", "--start", "2026-11-16T09:30:00Z", "--days", "0.25",
            "--scenarios", "late_burst", "--scenes-per-day", "8", "--seed", "2",
            "--speed", "x7200", "--kafka", "--bootstrap", kafka_bootstrap, "--out", str(out),
            "--topic-readings", topics["readings"], "--topic-conditions", topics["conditions"],
            "--topic-scenes", topics["scenes"], "--no-progress",
        ]
    )  # fmt: skip
    elapsed = time.monotonic() - began
    assert code == 0
    assert elapsed >= 0.8 * 6 * 3600 / 7200  # paced: 6 simulated hours at x7200 ≈ 3 s
    lines = (out / "readings.jsonl").read_bytes().splitlines()
    records = _read(kafka_bootstrap, topics["readings"], len(lines))
    assert len(records) == len(lines)
    by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        reading = decode_reading(r.value, now=datetime(2026, 11, 17, tzinfo=UTC))
        assert r.key == reading.device_id.encode()
        by_key[r.key].append(r.value)
    expected: dict[bytes, list[bytes]] = defaultdict(list)
    for line in lines:
        expected[json.loads(line)["device_id"].encode()].append(line)
    assert by_key == expected  # per device, the topic holds the file's delivery order
    # ...which for the scripted tag (person 0) is not event order: a store-and-forward burst
    stamps = [json.loads(v)["ts"] for v in by_key[b"tag-00000"]]
    assert stamps != sorted(stamps)

    conditions = _read(kafka_bootstrap, topics["conditions"], 3)
    assert sorted(r.key for r in conditions) == [b"off-00000", b"off-00001", b"off-00002"]
    for r in conditions:
        assert msgspec.json.decode(r.value, type=Conditions).offender_id.encode() == r.key
    scene_lines = (out / "scenes.jsonl").read_bytes().splitlines()
    scenes = _read(kafka_bootstrap, topics["scenes"], len(scene_lines))
    assert sorted(r.value for r in scenes) == sorted(scene_lines)
    for r in scenes:
        assert msgspec.json.decode(r.value, type=Scene).scene_id.encode() == r.key
