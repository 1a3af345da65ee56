"""``em-service worker``: run the Faust app on the configured broker, with ``/metrics``."""

from __future__ import annotations

import asyncio
import logging

import faust

from em_service import kafka_io, metrics
from em_service.app import build_app
from em_service.devstack import ensure_topics
from em_service.settings import Settings
from em_service.tracking.agents import ticks_topic_name

log = logging.getLogger(__name__)


def run(settings: Settings, loglevel: str = "INFO") -> None:
    """Start the worker and block until it stops (SIGTERM / Ctrl-C)."""
    created = ensure_topics(settings)
    created += asyncio.run(
        kafka_io.create_topics(
            settings.kafka_bootstrap, [ticks_topic_name(settings)], settings.topic_partitions
        )
    )
    if created:
        log.info("created topics: %s", ", ".join(created))
    metrics.serve(settings.worker_metrics_port, settings.worker_metrics_host)
    app = build_app(settings)

    @app.task
    async def _mark_up() -> None:
        metrics.WORKER_UP.set(1)

    worker = faust.Worker(app, loglevel=loglevel, quiet=True, override_logging=True)
    worker.execute_from_commandline()
