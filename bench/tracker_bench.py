"""Tracker micro-benchmark (no broker): µs per reading through ``Tracker.process``.

1,000 offenders with 5 zones and a curfew each (as in ``pipeline_bench``), GPS fixes in batches
of ``batch_max`` (each then taken for a commit), with and without an open scene (live matching then projects every fix), and with a victim
protection for everyone (each victim 1 km from home, a fix a minute: every fix looks the victim up
and measures the distance). Prints one JSON object: ``{"no_scene_us": …, "open_scene_us": …,
"victims_us": …}`` (best of ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pipeline_bench import OFFENDERS, conditions, readings
from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts.scenes import Scene
from em_service.rules.victims import VictimFix
from em_service.scenes.config import SceneSettings
from em_service.scenes.live import LiveMatcher
from em_service.settings import Settings
from em_service.tracking.tracker import PartitionWork, Tracker
from tests.trails import ORIGIN_X, ORIGIN_Y


class _Rec:
    __slots__ = ("key", "offset", "partition", "topic", "value")

    def __init__(self, offset: int, key: bytes, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = (
            "readings",
            0,
            offset,
            key,
            value,
        )


def _with_victim(raw: bytes, i: int) -> bytes:
    doc = json.loads(raw)
    doc["victims"] = [{"protection_id": f"vp-{i}", "victim_device_id": f"vd-{i}", "radius_m": 200}]
    return json.dumps(doc).encode()


def run(n: int, *, scene: bool, batch: int = 250, victims: bool = False) -> float:
    """Return µs per reading for ``n`` fixes (a fresh tracker: device states start empty)."""
    registry = ConditionsRegistry()
    for i, (key, raw) in enumerate(conditions()):
        registry.apply(key.decode(), _with_victim(raw, i) if victims else raw)
    live = LiveMatcher(SceneSettings())
    now = datetime.now(UTC)
    if scene:
        live.upsert(
            Scene(
                scene_id="far",
                crime_reference="CR/far",
                crime_type="burglary_dwelling",
                lat=55.0,
                lon=-3.0,
                window_start=now - timedelta(days=1),
                window_end=now,
                reported_at=now,
                radius_m=100.0,
            ),
            now=now,
        )
    tracker = Tracker(registry, Settings(batch_max=batch), live)
    recs = [_Rec(i, k, v) for i, (k, v) in enumerate(readings(n))]
    if victims:
        minutes = -(-n // OFFENDERS) + 2
        for i in range(OFFENDERS):
            hx, hy = ORIGIN_X + (i % 32) * 2000.0, ORIGIN_Y + (i // 32) * 2000.0
            for m in range(minutes):
                t = (now - timedelta(minutes=minutes - m)).timestamp()
                tracker.engine.positions.put(f"vd-{i}", VictimFix(t, hx + 1000.0, hy, 10.0))
    work = PartitionWork(0)
    began = time.perf_counter()
    for i in range(0, n, batch):
        tracker.process([(work, r) for r in recs[i : i + batch]], now)
        work.take()  # a commit after each batch (states serialised for the changelog)
    return (time.perf_counter() - began) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out = {}
    cases = (("no_scene_us", False, False), ("open_scene_us", True, False))
    cases += (("victims_us", False, True),)
    for name, scene, victims in cases:
        out[name] = round(
            min(run(args.readings, scene=scene, victims=victims) for _ in range(args.repeat)), 2
        )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
