"""``em-service demo``: local Kafka, the worker, a handful of good and bad readings, a report.

Stage 1 of the demo (the rule engine, archiver, API and simulator join it in later releases).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

from em_service import devstack, kafka_io, procs
from em_service.scrape import scrape, total
from em_service.settings import Settings, get_settings

METRICS = "em_readings_consumed_total", "em_readings_rejected_total"


def sample_readings(now: datetime) -> tuple[list[bytes], list[tuple[bytes, str]]]:
    """Return valid readings, and invalid ones with the reason each must be dead-lettered for."""
    ts = lambda minutes: (now - timedelta(minutes=minutes)).isoformat()  # noqa: E731
    valid = [
        {
            "type": "gps",
            "device_id": "demo-tag-1",
            "ts": ts(3),
            "lat": 51.4543,
            "lon": -0.9781,
            "accuracy_m": 8.0,
            "seq": 1,
        },
        {
            "type": "gps",
            "device_id": "demo-tag-1",
            "ts": ts(2),
            "lat": 51.4546,
            "lon": -0.9775,
            "accuracy_m": 12.0,
            "seq": 2,
        },
        {
            "type": "alcohol",
            "device_id": "demo-scram-1",
            "ts": ts(2),
            "tac_g_dl": 0.0,
            "skin_temp_c": 33.1,
            "ir_value": 1180.0,
        },
        {"type": "event", "device_id": "demo-tag-1", "ts": ts(1), "event": "battery_low"},
    ]
    invalid = [
        (b'{"type": "gps", "device_id": "demo-tag-1", "lat": ', "invalid_json"),
        (json.dumps({**valid[0], "lat": 95.0}).encode(), "schema_violation"),
        (
            json.dumps({**valid[0], "ts": (now + timedelta(days=2)).isoformat()}).encode(),
            "future_timestamp",
        ),
        (
            json.dumps({"type": "wifi", "device_id": "demo-tag-1", "ts": ts(1)}).encode(),
            "unknown_type",
        ),
    ]
    return [json.dumps(v).encode() for v in valid], invalid


def _wait_metrics(url: str, deadline_s: float) -> dict:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return scrape(url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run(settings: Settings) -> int:
    """Run the demo; return the exit code (0 when every reading went where it should)."""
    state = settings.resolved_state_dir()
    print("1/4 Kafka (devstack up)…")
    info = devstack.up(settings)
    devstack.ensure_topics(settings)
    print(f"    {info.note} at {info.bootstrap}")
    print("2/4 worker…")
    pid = procs.spawn("worker", ["worker"], state)
    url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"
    before = _wait_metrics(url, 60)
    print(f"    worker pid {pid}, metrics at {url}")

    valid, invalid = sample_readings(datetime.now(UTC))
    print(
        f"3/4 sending {len(valid)} valid and {len(invalid)} invalid readings to {settings.topic_readings}…"
    )
    bootstrap = settings.kafka_bootstrap
    mark = asyncio.run(kafka_io.end_offsets(bootstrap, settings.topic_dlq))
    messages = [(b"demo-tag-1", raw) for raw in valid + [raw for raw, _ in invalid]]
    asyncio.run(kafka_io.send_all(bootstrap, settings.topic_readings, messages))

    print("4/4 waiting for the worker…")
    consumed_before, rejected_before = (total(before, m) for m in METRICS)
    deadline = time.monotonic() + 90
    consumed = rejected = 0.0
    while time.monotonic() < deadline:
        now = scrape(url)
        consumed = total(now, METRICS[0]) - consumed_before
        rejected = total(now, METRICS[1]) - rejected_before
        if consumed >= len(valid) and rejected >= len(invalid):
            break
        time.sleep(0.5)
    records = asyncio.run(
        kafka_io.read_since(bootstrap, settings.topic_dlq, mark, want=len(invalid), timeout_s=30)
    )
    letters = [json.loads(r.value) for r in records]
    print(f"\n    consumed by the worker: {consumed:.0f} of {len(valid)} valid readings")
    print(f"    dead-lettered:          {rejected:.0f} of {len(invalid)} invalid readings")
    for letter in letters:
        print(f"      - {letter['reason']:<17} {letter['detail'][:70]}")
    ok = consumed >= len(valid) and sorted(x["reason"] for x in letters) == sorted(
        r for _, r in invalid
    )
    print("\n    The rule engine is a placeholder in this release: no alerts are raised yet.")
    print(f"\nMetrics:  {url}")
    print(f"Logs:     {state}/worker.log, {info.log_file}")
    print("Stop all: em-service demo --stop")
    return 0 if ok else 1


def stop(settings: Settings) -> int:
    """Stop the worker and the devstack Kafka."""
    state = settings.resolved_state_dir()
    print("worker stopped" if procs.stop("worker", state) else "no demo worker was running")
    print("Kafka stopped" if devstack.down(settings) else "no devstack Kafka was running")
    return 0


def main(*, stop_all: bool = False) -> int:
    """Entry of ``em-service demo``."""
    settings = get_settings()
    return stop(settings) if stop_all else run(settings)
