"""Shared fixtures: one real Kafka broker for the whole test session, and unique names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from em_service.devstack import kafka as devstack
from em_service.settings import Settings, get_settings
from tests.helpers import unique_name


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of the session broker: reuse one answering on the configured port, else start one.

    A broker this fixture starts keeps its state in a session temp dir and is stopped at the end;
    one it merely reused is left alone. Jars come from (and stay in) the configured cache dir.
    """
    settings = get_settings().model_copy(
        update={"state_dir": tmp_path_factory.mktemp("devstack-state")}
    )
    info = devstack.up(settings)
    try:
        yield settings
    finally:
        if info.started:
            devstack.down(settings)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_settings: Settings) -> str:
    """Bootstrap servers (``127.0.0.1:<kafka_port>``) of the session broker."""
    return f"127.0.0.1:{kafka_settings.kafka_port}"


@pytest.fixture
def unique_topic_prefix() -> str:
    """A uuid-suffixed prefix so that each test's topics and groups are its own."""
    return unique_name("test")
