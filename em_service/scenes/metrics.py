"""Prometheus metrics of scene matching (names: ``em_`` prefix, units in names)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SCENES_RECEIVED = Counter("em_scenes_received_total", "Scenes taken from the scenes topic")
SCENES_INVALID = Counter(
    "em_scenes_invalid_total", "Scene records that failed the contract", ["consumer"]
)
SCENE_SEARCH_SECONDS = Histogram(
    "em_scene_search_seconds",
    "Retrospective search of one scene, archive query and matching",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SCENE_MATCHES = Counter(
    "em_scene_matches_total", "New or upgraded scene matches stored", ["confidence"]
)
SCENE_ALERTS_SENT = Counter(
    "em_scene_alerts_sent_total", "scene_proximity alerts the archiver sent to the alerts topic"
)
SCENE_ERRORS = Counter(
    "em_scene_consumer_errors_total", "Scene consumer batches that failed (retried, not skipped)"
)
LIVE_OPEN_SCENES = Gauge("em_live_open_scenes", "Open scenes held for live matching")
