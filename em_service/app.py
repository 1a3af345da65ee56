"""The Faust application: built by a factory so settings (topics, broker, ids) apply per process."""

from __future__ import annotations

import faust

from em_service.settings import Settings
from em_service.tracking import agents as tracking_agents


def build_app(settings: Settings) -> faust.App:
    """Return a configured Faust app with every domain's agents registered."""
    state = settings.resolved_state_dir() / "faust"
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        datadir=str(state),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        web_enabled=False,
        autodiscover=False,
        store=settings.table_store,
        processing_guarantee=settings.processing_guarantee,
        producer_acks=-1,
        producer_linger_ms=2,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 5,
        consumer_auto_offset_reset="earliest",
    )
    tracking_agents.register(app, settings)
    return app
