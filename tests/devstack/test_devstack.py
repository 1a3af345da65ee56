"""Real tests of the local Kafka devstack: start, reuse, produce/consume, transactions, stop."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from em_service.devstack import kafka as devstack
from em_service.settings import Settings
from tests.helpers import unique_name, wait_for


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


async def _consume(bootstrap: str, topic: str, want: int, **kwargs: object) -> list[bytes]:
    """Read ``want`` values from ``topic`` from the start, failing after 30 s."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique_name("g"),
        auto_offset_reset="earliest",
        **kwargs,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(values) < want:
                batches = await consumer.getmany(timeout_ms=500)
                values += [msg.value for msgs in batches.values() for msg in msgs]
    finally:
        await consumer.stop()
    return values


def test_server_properties_fit_a_single_node(tmp_path: Path) -> None:
    props = devstack.server_properties(
        Settings(kafka_port=1234, kafka_controller_port=1235), tmp_path
    )
    lines = set(props.splitlines())
    assert "listeners=PLAINTEXT://127.0.0.1:1234,CONTROLLER://127.0.0.1:1235" in lines
    assert "transaction.state.log.min.isr=1" in lines
    assert "transaction.state.log.replication.factor=1" in lines
    assert "offsets.topic.replication.factor=1" in lines
    assert f"log.dirs={tmp_path}" in lines
    assert "message.max.bytes=1048576" in lines  # the producers' max_request_size


def test_broker_and_topics_follow_the_kafka_message_limit(tmp_path: Path) -> None:
    settings = Settings(kafka_max_message_bytes=2_000_000)
    lines = set(devstack.server_properties(settings, tmp_path).splitlines())
    assert "message.max.bytes=2000000" in lines
    for topic in devstack.service_topics(settings):
        assert topic.topic_configs["max.message.bytes"] == "2000000", topic.name


@pytest.mark.kafka
def test_status_answers(kafka_settings: Settings, kafka_bootstrap: str) -> None:
    info = devstack.status(kafka_settings)
    assert info.answering
    assert info.bootstrap == kafka_bootstrap


@pytest.mark.kafka
def test_up_again_reuses_the_session_broker(kafka_settings: Settings) -> None:
    before = devstack.status(kafka_settings)
    info = devstack.up(kafka_settings)
    assert info.answering and not info.started
    assert info.pid == before.pid  # same process (None if the broker is not ours)


@pytest.mark.kafka
def test_jars_are_cached(kafka_settings: Settings) -> None:
    libs = devstack.fetch_jars(kafka_settings)  # no Maven run: the marker is there
    assert (libs / devstack.JARS_MARKER).exists()
    assert (libs / f"kafka_2.13-{kafka_settings.kafka_version}.jar").exists()


@pytest.mark.kafka
async def test_produce_consume_roundtrip(kafka_bootstrap: str, unique_topic_prefix: str) -> None:
    topic = f"{unique_topic_prefix}.roundtrip"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k")
    finally:
        await producer.stop()
    assert await _consume(kafka_bootstrap, topic, 3) == [b"m0", b"m1", b"m2"]


@pytest.mark.kafka
async def test_transactional_producer_commits(
    kafka_bootstrap: str, unique_topic_prefix: str
) -> None:
    topic = f"{unique_topic_prefix}.tx"
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("tx")
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        await producer.send(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-1")
            await producer.send(topic, b"committed-2")
    finally:
        await producer.stop()
    values = await _consume(kafka_bootstrap, topic, 2, isolation_level="read_committed")
    assert values == [b"committed-1", b"committed-2"]


@pytest.mark.kafka
async def test_ensure_topics_creates_compacted_conditions_and_changelog(
    kafka_bootstrap: str, unique_topic_prefix: str
) -> None:
    names = {
        f"topic_{kind}": f"{unique_topic_prefix}.{kind}"
        for kind in ("readings", "alerts", "scenes", "conditions", "dlq", "victim_readings")
    }
    names["topic_victim_dlq"] = f"{unique_topic_prefix}.victim_dlq"
    settings = Settings(**names, topic_partitions=3, app_id=f"{unique_topic_prefix}-app")
    names["changelog"] = settings.state_changelog_topic()

    created = await devstack.ensure_topics_async(settings, kafka_bootstrap)
    assert sorted(created) == sorted(names.values())
    assert await devstack.ensure_topics_async(settings, kafka_bootstrap) == []  # idempotent

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(names.values()))
        assert {t["topic"]: len(t["partitions"]) for t in described} == dict.fromkeys(
            names.values(), 3
        )
        policies = {
            settings.topic_conditions: "compact",
            settings.state_changelog_topic(): "compact",
            settings.topic_scenes: "compact,delete",  # open scenes: newest version, open_days
        }
        for topic, policy in policies.items():
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            [(_code, _msg, _type, _name, entries)] = response.resources
            configs = {entry[0]: entry[1] for entry in entries}
            assert configs["cleanup.policy"] == policy, topic
            assert int(configs["max.message.bytes"]) == settings.kafka_max_message_bytes
            if topic == settings.topic_scenes:
                assert int(configs["retention.ms"]) == (14 + 1) * 86_400_000
        for topic in (settings.topic_victim_readings, settings.topic_victim_dlq):
            # Victims' fixes (and letters holding them) are deleted after an hour.
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)]
            )
            [(_code, _msg, _type, _name, entries)] = response.resources
            configs = {entry[0]: entry[1] for entry in entries}
            assert configs["cleanup.policy"] == "delete", topic
            assert configs["retention.ms"] == "3600000", topic
            assert int(configs["segment.ms"]) == 900_000, topic
    finally:
        await admin.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_up_down_of_a_second_broker(kafka_settings: Settings, tmp_path: Path) -> None:
    port, cport = _free_ports(2)
    settings = kafka_settings.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "kafka_port": port,
            "kafka_controller_port": cport,
            "kafka_heap": "-Xmx384m -Xms64m",
        }
    )
    first = devstack.up(settings)
    try:
        assert first.started and first.managed and first.pid is not None
        assert first.bootstrap == f"127.0.0.1:{port}"

        again = devstack.up(settings)
        assert not again.started and again.pid == first.pid

        info = devstack.status(settings)
        assert info.answering and info.pid == first.pid
        assert info.version == settings.kafka_version
        assert info.log_file.exists() and "Kafka" in info.log_file.read_text()

        # another state dir on the same port reuses the broker but does not own it
        other = settings.model_copy(update={"state_dir": tmp_path / "other"})
        foreign = devstack.up(other)
        assert foreign.answering and not foreign.managed and foreign.pid is None
        assert devstack.down(other) is False
        assert devstack.status(settings).answering
    finally:
        assert devstack.down(settings)
    assert not _pid_running(first.pid)
    assert not (settings.resolved_state_dir() / "kafka" / "kafka.pid").exists()
    after = devstack.status(settings)
    assert not after.answering and after.pid is None
    assert devstack.down(settings) is False  # idempotent

    # a stale pid file naming a live non-Kafka process is ignored; the formatted storage restarts
    pid_file = settings.resolved_state_dir() / "kafka" / "kafka.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    restarted = devstack.up(settings)
    try:
        assert restarted.started and restarted.pid not in (first.pid, os.getpid())
    finally:
        devstack.down(settings)
    wait_for(lambda: not devstack.status(settings).answering, timeout_s=10, what="port closed")


@pytest.mark.kafka
def test_up_fails_clearly_when_the_jvm_cannot_start(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    port, cport = _free_ports(2)
    settings = kafka_settings.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "kafka_port": port,
            "kafka_controller_port": cport,
            "kafka_heap": "-Xmx1k",
        }
    )
    with pytest.raises(devstack.DevstackError, match="heap"):
        devstack.up(settings, timeout_s=30)
    assert not devstack.status(settings).answering


def test_cluster_ids_never_look_like_options() -> None:
    ids = {devstack._cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
