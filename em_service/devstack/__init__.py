"""Local development stack: a single-node Apache Kafka from Maven Central jars, no Docker."""

from em_service.devstack.cli import main
from em_service.devstack.kafka import (
    BrokerInfo,
    DevstackError,
    down,
    ensure_topics,
    ensure_topics_async,
    fetch_jars,
    status,
    up,
)

__all__ = [
    "BrokerInfo",
    "DevstackError",
    "down",
    "ensure_topics",
    "ensure_topics_async",
    "fetch_jars",
    "main",
    "status",
    "up",
]
