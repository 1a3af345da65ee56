"""Where a simulation goes: JSON Lines files, or Kafka topics (paced by delivery time).

Files in ``--out DIR``:

``readings.jsonl``
    every reading (GPS, alcohol, device event) in *delivery* order, exactly the bytes sent to the
    readings topic (key = ``device_id``);
``conditions.jsonl`` / ``conditions.json``
    one ``Conditions`` per person (the ``.json`` array is what ``em-service conditions load`` reads);
``scenes.jsonl``
    the reported crime scenes;
``victim_readings.jsonl``
    protected victims' own fixes (the victim topic, key = the victim's device), by time;
``truth.jsonl``
    the ground truth (:mod:`simulator.truth`);
``manifest.json``
    the configuration and the counts (no wall-clock values, so runs compare byte for byte).

To Kafka: conditions first (key = ``offender_id``, compacted topic), victims' fixes (if the
``victim_readings`` topic is given: a replay's victim positions are known before the people's
fixes that meet them), then readings (key =
``device_id``) and scenes (key = ``scene_id``, at their ``reported_at`` or the end of the run)
merged by delivery time, paced by :class:`~simulator.clock.Pacer`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from em_service.contracts.codec import encode
from simulator.clock import Pacer
from simulator.encode import delivered_s, reading_keys, reading_lines
from simulator.engine import paused_gc
from simulator.truth import encode_lines

if TYPE_CHECKING:
    from em_service.settings import Settings
    from simulator.engine import Simulation

BATCH = 50_000
#: What the ground truth promises, for an evaluator: alert types listed under ``complete`` have a
#: record for every alert the service should raise (any other alert of those types is false);
#: ``optional`` types may appear in the truth as optional records; ``not_covered`` types are
#: context the truth does not list (ignore them when scoring).
TRUTH_COVERAGE = {
    "complete": [
        "exclusion_breach",
        "exclusion_breach_ended",
        "inclusion_breach",
        "inclusion_breach_ended",
        "curfew_breach",
        "curfew_breach_ended",
        "device_silent",
        "device_silent_ended",
        "curfew_unverified",
        "curfew_unverified_ended",
        "strap_tamper",
        "battery_low",
        "alcohol_detected",
        "alcohol_suspect_interferent",
        "alcohol_tamper",
        "alcohol_missed_readings",
        "device_fault",
        "scene_proximity",
        "attendance_kept",
        "attendance_late",
        "attendance_missed",
        "attendance_unverified",
        "location_failure",
        "location_failure_ended",
        "victim_proximity",
        "victim_proximity_ended",
    ],
    "optional": ["strap_restored"],
    "not_covered": ["charging_started", "charging_stopped"],
}
Tick = Callable[[int], None]


def batches(
    sim: Simulation, *, keys: bool = True
) -> Iterator[tuple[list[bytes], list[bytes], np.ndarray]]:
    """Yield ``(keys, values, delivered_s)`` of the readings in delivery order, in batches.

    Without ``keys`` the first item is an empty list.
    """
    kind, index = sim.delivery_order()
    for a in range(0, len(kind), BATCH):
        k, i = kind[a : a + BATCH], index[a : a + BATCH]
        key_list = reading_keys(sim, k, i) if keys else []
        yield key_list, reading_lines(sim, k, i), delivered_s(sim, k, i)


def manifest(sim: Simulation, counts: dict | None = None) -> dict:
    """Return the configuration and counts of ``sim`` (JSON-friendly, deterministic)."""
    from simulator.summary import summary

    c = sim.config
    return {
        "config": {
            "persons": c.persons,
            "start": c.start.isoformat().replace("+00:00", "Z"),
            "days": c.days,
            "seed": c.seed,
            "gps_interval_s": c.gps_interval_s,
            "alcohol_interval_s": c.alcohol_interval_s,
            "centre_lat": c.centre_lat,
            "centre_lon": c.centre_lon,
            "half_size_m": c.half_size_m,
            "scenarios": c.scenarios,
            "noise": dataclasses.asdict(c.noise),
            "silence_buffer_s": c.silence_buffer_s,
            "timezone": c.timezone,
        },
        "summary": counts if counts is not None else summary(sim),
        "truth_coverage": TRUTH_COVERAGE,
        "files": [
            "readings.jsonl",
            "conditions.jsonl",
            "conditions.json",
            "scenes.jsonl",
            "victim_readings.jsonl",
            "truth.jsonl",
        ],
    }


def write_truth(sim: Simulation, path: Path) -> None:
    """Write the ground truth as JSON Lines to ``path``."""
    path.write_bytes(encode_lines(sim.truth))


def write_files(
    sim: Simulation, out: Path, tick: Tick | None = None, counts: dict | None = None
) -> None:
    """Write every file of ``sim`` into directory ``out`` (created if needed)."""
    with paused_gc():
        _write_files(sim, out, tick, counts)


def _write_files(sim: Simulation, out: Path, tick: Tick | None, counts: dict | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "readings.jsonl").open("wb") as fh:
        for _keys, values, _t in batches(sim, keys=False):
            fh.write(b"\n".join(values))
            fh.write(b"\n")
            if tick:
                tick(len(values))
    conds = [encode(c) for c in sim.conditions]
    (out / "conditions.jsonl").write_bytes(b"".join(c + b"\n" for c in conds))
    (out / "conditions.json").write_bytes(b"[\n" + b",\n".join(conds) + b"\n]\n")
    (out / "scenes.jsonl").write_bytes(b"".join(encode(s) + b"\n" for s in sim.scenes))
    victims = b"".join(encode(r) + b"\n" for r in sim.victim_readings)
    (out / "victim_readings.jsonl").write_bytes(victims)
    write_truth(sim, out / "truth.jsonl")
    text = json.dumps(manifest(sim, counts), indent=2, sort_keys=True, ensure_ascii=False)
    (out / "manifest.json").write_text(text + "\n", encoding="utf-8")


async def _ensure_topics(
    bootstrap: str, topics: dict[str, str], partitions: int, settings: Settings | None
) -> None:
    from aiokafka.admin import NewTopic

    from em_service import kafka_io

    admin = kafka_io.admin(bootstrap, settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                partitions,
                1,
                topic_configs={"cleanup.policy": "compact"} if role == "conditions" else {},
            )
            for role, name in topics.items()
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            await _wait_for_leaders(admin, [t.name for t in missing])
    finally:
        await admin.close()


async def _wait_for_leaders(admin, names: list[str], timeout_s: float = 15.0) -> None:
    """Poll until every partition of the new topics has a leader (or the deadline passes)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(names)
        ready = all(
            not d["error_code"]
            and d["partitions"]
            and all(p["leader"] >= 0 for p in d["partitions"])
            for d in described
        )
        if ready:
            return
        await asyncio.sleep(0.2)


async def send_kafka(
    sim: Simulation,
    bootstrap: str,
    *,
    topics: dict[str, str],
    pacer: Pacer,
    partitions: int = 4,
    tick: Tick | None = None,
    max_request_size: int = 1_048_576,
    settings: Settings | None = None,
) -> dict[str, int]:
    """Send conditions, then readings and scenes by delivery time; return counts per topic.

    ``topics`` maps ``readings``, ``conditions`` and ``scenes`` (and optionally
    ``victim_readings``) to topic names; the connection security is that of ``settings``
    (default: the process settings).
    """
    from em_service import kafka_io
    from em_service.settings import get_settings

    await _ensure_topics(bootstrap, topics, partitions, settings)
    # EM_KAFKA_MAX_MESSAGE_BYTES: larger records are refused when sent.
    limit = (settings or get_settings()).model_copy(
        update={"kafka_max_message_bytes": max_request_size}
    )
    producer = kafka_io.producer(
        limit,
        bootstrap=bootstrap,
        linger_ms=20,
        max_batch_size=min(262_144, max_request_size),
        enable_idempotence=False,
    )
    await producer.start()
    counts = {"conditions": 0, "readings": 0, "scenes": 0}
    try:
        futures = [
            await producer.send(topics["conditions"], encode(c), key=c.offender_id.encode())
            for c in sim.conditions
        ]
        await producer.flush()
        for fut in futures:
            await fut
        counts["conditions"] = len(futures)
        if "victim_readings" in topics and sim.victim_readings:
            futures = [
                await producer.send(topics["victim_readings"], encode(r), key=r.device_id.encode())
                for r in sim.victim_readings
            ]
            await producer.flush()
            for fut in futures:
                await fut
            counts["victim_readings"] = len(futures)
        scenes = sorted(
            (min(max(s.reported_s, sim.config.start_s), sim.end_s), s.scene_id, encode(s.message()))
            for s in sim.scene_specs
        )
        for keys, values, when in batches(sim):
            futures = []
            for key, value, t in zip(keys, values, when.tolist(), strict=True):
                while scenes and scenes[0][0] <= t:
                    _t, sid, body = scenes.pop(0)
                    futures.append(await producer.send(topics["scenes"], body, key=sid.encode()))
                    counts["scenes"] += 1
                await pacer.wait(t)
                futures.append(await producer.send(topics["readings"], value, key=key))
            for fut in futures:
                await fut
            counts["readings"] += len(values)
            if tick:
                tick(len(values))
        for _t, sid, body in scenes:
            await pacer.wait(_t)
            await (await producer.send(topics["scenes"], body, key=sid.encode()))
            counts["scenes"] += 1
        await producer.flush()
    finally:
        await producer.stop()
    return counts
