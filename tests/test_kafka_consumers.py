"""Every Kafka consumer of the service reads committed records only: it is built by
``kafka_io.consumer``, which fixes the isolation level (an aborted transaction's records —
a zombie worker's half-commit — must never become alerts, states or scenes). Every client
(consumer, producer, admin) is built by ``kafka_io`` and so carries the connection security
(``EM_KAFKA_SECURITY_PROTOCOL``, SASL, TLS)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from em_service import kafka_io
from em_service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("em_service", "bench", "simulator", "scripts")
FACTORY = ROOT / "em_service" / "kafka_io.py"


def test_no_consumer_is_built_outside_the_factory() -> None:
    built = re.compile(r"AIOKafkaConsumer\s*\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in SOURCES
        for path in sorted((ROOT / top).rglob("*.py"))
        if path != FACTORY
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if built.search(line)
    ]
    assert offenders == [], "build consumers with kafka_io.consumer (reads committed only)"
    assert built.search(FACTORY.read_text())  # the scan looks for the right thing


async def test_the_factory_reads_committed_and_cannot_be_told_otherwise() -> None:
    consumer = kafka_io.consumer("t", bootstrap="127.0.0.1:1", group_id="g")
    assert consumer._isolation_level == "read_committed"
    assert consumer._enable_auto_commit is False  # offsets are committed after the work
    with pytest.raises(TypeError, match="read committed"):
        kafka_io.consumer(bootstrap="127.0.0.1:1", isolation_level="read_uncommitted")


def test_the_service_builds_producers_only_with_the_size_limit_factory() -> None:
    # Every producer of em_service and the simulator sends at most EM_KAFKA_MAX_MESSAGE_BYTES
    # (em_service.limits), with the connection security.
    built = re.compile(r"AIOKafkaProducer\s*\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in ("em_service", "simulator")
        for path in sorted((ROOT / top).rglob("*.py"))
        if path != FACTORY
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if built.search(line)
    ]
    assert offenders == [], "build producers with kafka_io.producer (the size limit is fixed)"


async def test_the_producer_factory_fixes_the_size_limit() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", kafka_max_message_bytes=2_000_000)
    producer = kafka_io.producer(settings, transactional_id="t")
    assert producer._max_request_size == 2_000_000
    with pytest.raises(TypeError, match="EM_KAFKA_MAX_MESSAGE_BYTES"):
        kafka_io.producer(settings, max_request_size=5)


def test_admin_clients_are_built_only_by_the_factory() -> None:
    # Topic creation, descriptions and health probes also log in (SASL) and verify TLS.
    built = re.compile(r"AIOKafkaAdminClient\s*\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for top in ("em_service", "simulator")
        for path in sorted((ROOT / top).rglob("*.py"))
        if path != FACTORY
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if built.search(line)
    ]
    assert offenders == [], "build admin clients with kafka_io.admin (connection security)"
    assert built.search(FACTORY.read_text())


def _secure(tmp_path: Path) -> Settings:
    password = tmp_path / "worker.password"
    password.write_text("s3cret-from-file\n")
    return Settings(
        kafka_bootstrap="127.0.0.1:1",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="worker",
        kafka_sasl_password_file=password,
        kafka_ssl_check_hostname=False,
    )


async def test_every_factory_applies_the_security_settings(tmp_path: Path) -> None:
    settings = _secure(tmp_path)
    clients = [
        kafka_io.consumer("t", bootstrap="127.0.0.1:1", settings=settings)._client,
        kafka_io.producer(settings).client,
        kafka_io.admin("127.0.0.1:1", settings)._client,
    ]
    for client in clients:
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "worker"
        assert client._sasl_plain_password == "s3cret-from-file"
        assert client._ssl_context is not None
        assert client._ssl_context.check_hostname is False
    with pytest.raises(TypeError, match="EM_KAFKA_SECURITY_PROTOCOL"):
        kafka_io.consumer(bootstrap="127.0.0.1:1", security_protocol="PLAINTEXT")
    with pytest.raises(TypeError, match="EM_KAFKA_SECURITY_PROTOCOL"):
        kafka_io.producer(settings, sasl_plain_password="other")


def test_the_default_is_plaintext_without_credentials() -> None:
    assert kafka_io.security_options(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_unreadable_security_files_are_named(tmp_path: Path) -> None:
    settings = _secure(tmp_path)
    missing = settings.model_copy(update={"kafka_sasl_password_file": tmp_path / "nope"})
    with pytest.raises(kafka_io.KafkaSecurityError, match=r"EM_KAFKA_SASL_PASSWORD_FILE .*nope"):
        kafka_io.security_options(missing)
    no_ca = settings.model_copy(update={"kafka_ssl_cafile": tmp_path / "ca.pem"})
    with pytest.raises(kafka_io.KafkaSecurityError, match=r"EM_KAFKA_SSL_CAFILE .*no such file"):
        kafka_io.security_options(no_ca)
    (tmp_path / "bad.pem").write_text("not a certificate")
    bad_ca = settings.model_copy(update={"kafka_ssl_cafile": tmp_path / "bad.pem"})
    with pytest.raises(kafka_io.KafkaSecurityError, match="cannot be used"):
        kafka_io.security_options(bad_ca)
