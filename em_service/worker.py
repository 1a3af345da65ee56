"""``em-service worker``: run the tracking loop on the configured broker, with ``/metrics``,
``/healthz`` and ``/readyz`` (broker, group, conditions, scenes, state restored)."""

from __future__ import annotations

import asyncio
import logging
import signal

from em_service import health, logs
from em_service.devstack import ensure_topics
from em_service.limits import check_settings, check_topics, output_topics
from em_service.settings import Settings
from em_service.tracking.loop import TrackingLoop

log = logging.getLogger(__name__)


def run(settings: Settings, loglevel: str = "INFO") -> None:
    """Start the worker and block until it stops (SIGTERM / SIGINT: commit, then leave).

    Raises :class:`~em_service.limits.LimitsError` before consuming anything if the message
    size limits contradict each other or a topic the worker writes.
    """
    logs.configure(settings, loglevel)
    check_settings(settings)  # before anything touches Kafka
    loop = TrackingLoop(settings)
    health.serve(settings.worker_metrics_port, settings.worker_metrics_host, loop.readiness)
    created = ensure_topics(settings)
    if created:
        log.info("created topics: %s", ", ".join(created))
    asyncio.run(check_topics(settings, output_topics(settings)))
    asyncio.run(_main(loop))


async def _main(loop: TrackingLoop) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, loop.stop)
    await loop.run()
    log.info("worker stopped")
