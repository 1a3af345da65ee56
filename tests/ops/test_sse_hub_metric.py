"""The SSE hub says when it last read the alert outbox (SseHubBehind watches it)."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import REGISTRY

from em_service.api.alert_stream import AlertEventHub
from em_service.store import Store, migrate


async def test_hub_poll_sets_last_poll_time(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'em.db'}")
    migrate.upgrade(store)
    hub = AlertEventHub(store, poll_interval_s=0.05)
    before = time.time()
    try:
        await hub.wait_beyond(0, timeout_s=0.3)
        value = REGISTRY.get_sample_value("em_sse_hub_last_poll_timestamp_seconds")
        assert value is not None and before <= value <= time.time()
    finally:
        await hub.stop()
        store.dispose()
