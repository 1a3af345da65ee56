"""End to end over the wire: the real worker on the real broker consumes good readings and
dead-letters bad ones with the right reasons (nothing lost, no crash)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from em_service import kafka_io
from em_service.clock import wall_now
from em_service.devstack import ensure_topics
from em_service.scrape import scrape, total
from tests.service_env import ServiceEnv

pytestmark = pytest.mark.kafka


def _gps(ts: datetime, **extra: object) -> dict:
    return {
        "type": "gps",
        "device_id": "tag-it-1",
        "ts": ts.isoformat(),
        "lat": 51.45,
        "lon": -0.97,
        "accuracy_m": 9.0,
        **extra,
    }


def test_worker_consumes_valid_and_dead_letters_invalid(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = ServiceEnv(kafka_bootstrap, tmp_path)
    ensure_topics(env.settings, kafka_bootstrap)
    now = wall_now()
    valid = [
        _gps(now - timedelta(seconds=30), seq=1),
        {
            "type": "alcohol",
            "device_id": "scram-it-1",
            "ts": now.isoformat(),
            "tac_g_dl": 0.0,
            "skin_temp_c": 33.0,
            "ir_value": 1100.0,
        },
        {"type": "event", "device_id": "tag-it-1", "ts": now.isoformat(), "event": "strap_tamper"},
    ]
    invalid = [
        (b"{oops", "invalid_json"),
        (json.dumps(_gps(now, lat=123.0)).encode(), "schema_violation"),
        (json.dumps({**_gps(now), "lat": "north"}).encode(), "schema_violation"),
        (json.dumps(_gps(now + timedelta(hours=3))).encode(), "future_timestamp"),
        (json.dumps({"type": "bluetooth", "device_id": "x"}).encode(), "unknown_type"),
        (b'{"type":"gps","pad":"' + b"x" * 20_000 + b'"}', "oversize"),
    ]
    messages = [(v["device_id"].encode(), json.dumps(v).encode()) for v in valid]
    messages += [(b"tag-it-1", raw) for raw, _ in invalid]
    wrong_key = json.dumps(_gps(now)).encode()
    messages.append((b"tag-other", wrong_key))
    invalid.append((wrong_key, "wrong_key"))
    worker = env.start("worker", log_name="worker")
    try:
        asyncio.run(kafka_io.send_all(kafka_bootstrap, env.settings.topic_readings, messages))
        samples = env.wait_until(
            lambda: (
                (s := scrape(env.metrics_url))
                and total(s, "em_readings_consumed_total") >= len(valid)
                and total(s, "em_readings_rejected_total") >= len(invalid)
                and s
            ),
            timeout_s=90,
            what="the worker to consume every reading",
        )
        letters = asyncio.run(
            kafka_io.read_since(
                kafka_bootstrap, env.settings.topic_dlq, None, want=len(invalid), timeout_s=30
            )
        )
        assert worker.poll() is None, env.log("worker")
    finally:
        env.stop_all()
    assert total(samples, "em_readings_consumed_total", type="gps") == 2  # one had a wrong key
    assert total(samples, "em_readings_consumed_total", type="alcohol") == 1
    assert total(samples, "em_readings_consumed_total", type="event") == 1
    assert total(samples, "em_readings_rejected_total") == len(invalid)
    decoded = [json.loads(r.value) for r in letters]
    assert sorted(d["reason"] for d in decoded) == sorted(reason for _, reason in invalid)
    keep = env.settings.max_message_bytes  # an oversize original keeps its first bytes
    originals = {base64.b64decode(d["original_b64"]) for d in decoded}
    assert originals == {raw[:keep] for raw, _ in invalid}, "dead letters keep the original bytes"
    assert {d["original_sha256"] for d in decoded} == {
        hashlib.sha256(raw).hexdigest() for raw, _ in invalid
    }
    assert [d["truncated"] for d in decoded].count(True) == 1
    assert sorted(r.key for r in letters) == [b"tag-it-1"] * (len(invalid) - 1) + [b"tag-other"]
