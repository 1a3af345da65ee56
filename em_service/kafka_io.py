"""Small aiokafka helpers: the client factories, and send, mark, read from a mark.

Every Kafka client of the service is built here: :func:`consumer`, :func:`producer` and
:func:`admin` add the connection security (``EM_KAFKA_SECURITY_PROTOCOL``, SASL, TLS: see
:func:`security_options`). Every consumer reads committed records only: the worker and the
scenes consumer write in Kafka transactions, and a record of an aborted transaction (a zombie
worker's half-commit) must never become an alert, a state or a scene.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.helpers import create_ssl_context

if TYPE_CHECKING:
    from em_service.settings import Settings

#: Options that only :func:`security_options` may set.
SECURITY_KEYS = frozenset(
    [
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "ssl_context",
    ]
)


class KafkaSecurityError(ValueError):
    """The Kafka security settings name a file that cannot be read or used."""


def security_options(settings: Settings | None = None) -> dict[str, Any]:
    """Return the aiokafka options of the connection security of ``settings`` (default: the
    process settings, from the environment): protocol, SASL login and TLS context.

    Raises :class:`KafkaSecurityError` with a clear message when a password, CA, certificate or
    key file cannot be read (the combination itself is checked when the settings are read).
    """
    if settings is None:
        from em_service.settings import get_settings

        settings = get_settings()
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = _password(settings)
    if protocol.endswith("SSL"):
        options["ssl_context"] = _ssl_context(settings)
    return options


def _password(settings: Settings) -> str:
    if settings.kafka_sasl_password is not None:
        return settings.kafka_sasl_password.get_secret_value()
    path = settings.kafka_sasl_password_file
    try:
        lines = path.expanduser().read_text().splitlines()  # type: ignore[union-attr]
    except OSError as exc:
        raise KafkaSecurityError(f"EM_KAFKA_SASL_PASSWORD_FILE {path}: {exc.strerror}") from None
    if not lines or not lines[0].strip():
        raise KafkaSecurityError(f"EM_KAFKA_SASL_PASSWORD_FILE {path} is empty")
    return lines[0].strip()


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    files = {
        "EM_KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "EM_KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "EM_KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    for name, path in files.items():
        if path is not None and not path.expanduser().is_file():
            raise KafkaSecurityError(f"{name} {path}: no such file")
    cafile, certfile, keyfile = (p.expanduser() if p else None for p in files.values())
    try:
        context = create_ssl_context(
            cafile=str(cafile) if cafile else None,
            certfile=str(certfile) if certfile else None,
            keyfile=str(keyfile) if keyfile else None,
        )
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(f"EM_KAFKA_SSL_* files cannot be used: {exc}") from None
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def _secured(options: dict[str, Any], settings: Settings | None) -> dict[str, Any]:
    overridden = SECURITY_KEYS & options.keys()
    if overridden:
        raise TypeError(f"{sorted(overridden)}: set by EM_KAFKA_SECURITY_PROTOCOL and co.")
    return {**options, **security_options(settings)}


def consumer(
    *topics: str, bootstrap: str, settings: Settings | None = None, **options: Any
) -> AIOKafkaConsumer:
    """Return an ``AIOKafkaConsumer`` that reads committed records only (not started), with
    the connection security of ``settings`` (default: the process settings).

    Offsets are committed by hand unless ``enable_auto_commit`` says otherwise; the isolation
    level cannot be changed.
    """
    if "isolation_level" in options:
        raise TypeError("consumers always read committed records (isolation_level is fixed)")
    options.setdefault("enable_auto_commit", False)
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        **_secured(options, settings),
    )


def producer(
    settings: Settings, *, bootstrap: str | None = None, **options: Any
) -> AIOKafkaProducer:
    """Return an ``AIOKafkaProducer`` of the service (not started): acks=all, idempotent,
    ``max_request_size`` = ``EM_KAFKA_MAX_MESSAGE_BYTES`` (fixed: the limits are set together,
    see :mod:`em_service.limits`) and the connection security of ``settings``."""
    if "max_request_size" in options:
        raise TypeError("max_request_size is EM_KAFKA_MAX_MESSAGE_BYTES (em_service.limits)")
    options.setdefault("acks", "all")
    options.setdefault("enable_idempotence", True)
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap or settings.kafka_bootstrap,
        max_request_size=settings.kafka_max_message_bytes,
        **_secured(options, settings),
    )


def admin(bootstrap: str, settings: Settings | None = None, **options: Any) -> AIOKafkaAdminClient:
    """Return an ``AIOKafkaAdminClient`` (not started) with the connection security of
    ``settings`` (default: the process settings)."""
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap, **_secured(options, settings))


async def partitions(
    bootstrap: str, topic: str, settings: Settings | None = None
) -> list[TopicPartition]:
    """Return the partitions of ``topic`` (empty if it does not exist)."""
    client = admin(bootstrap, settings)
    await client.start()
    try:
        (desc,) = await client.describe_topics([topic])
    finally:
        await client.close()
    if desc["error_code"]:
        return []
    return [TopicPartition(topic, p["partition"]) for p in desc["partitions"]]


async def end_offsets(
    bootstrap: str, topic: str, settings: Settings | None = None
) -> dict[TopicPartition, int]:
    """Return the current end offset of every partition of ``topic`` (a mark to read from)."""
    tps = await partitions(bootstrap, topic, settings)
    if not tps:
        return {}
    reader = consumer(bootstrap=bootstrap, settings=settings)
    await reader.start()
    try:
        return await reader.end_offsets(tps)
    finally:
        await reader.stop()


async def read_since(
    bootstrap: str,
    topic: str,
    mark: dict[TopicPartition, int] | None,
    *,
    want: int,
    timeout_s: float,
    settings: Settings | None = None,
) -> list[ConsumerRecord]:
    """Return the committed records of ``topic`` after ``mark`` (or from the start) until
    ``want`` or timeout."""
    tps = list(mark) if mark else await partitions(bootstrap, topic, settings)
    reader = consumer(bootstrap=bootstrap, settings=settings)
    await reader.start()
    records: list[ConsumerRecord] = []
    try:
        reader.assign(tps)
        for tp in tps:
            if mark:
                reader.seek(tp, mark[tp])
            else:
                await reader.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout_s
        while len(records) < want and time.monotonic() < deadline:
            batch = await reader.getmany(timeout_ms=200)
            records += [m for msgs in batch.values() for m in msgs]
    finally:
        await reader.stop()
    return records


async def send_all(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    *,
    max_request_size: int = 1_048_576,
    settings: Settings | None = None,
) -> int:
    """Send ``(key, value)`` pairs with acks=all and wait for all of them; return the count.

    A record larger than ``max_request_size`` (``EM_KAFKA_MAX_MESSAGE_BYTES``) raises
    ``MessageSizeTooLargeError`` before anything is sent.
    """
    sender = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        max_request_size=max_request_size,
        **security_options(settings),
    )
    await sender.start()
    try:
        futures = [await sender.send(topic, value, key=key) for key, value in messages]
        for fut in futures:
            await fut
    finally:
        await sender.stop()
    return len(futures)


async def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, settings: Settings | None = None
) -> list[str]:
    """Create the missing topics among ``names`` (replication 1); return those created."""
    client = admin(bootstrap, settings)
    await client.start()
    try:
        existing = set(await client.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            await client.create_topics([NewTopic(n, partitions, 1) for n in missing])
        return missing
    finally:
        await client.close()


def rewind(consumer: AIOKafkaConsumer, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
    """Seek back to the first record of a failed batch, on the partitions still held (a
    rebalance during the write may have moved some: their new owner reads them from the
    committed offset; seeking one no longer assigned raised and stopped the archiver)."""
    held = consumer.assignment()
    for tp, msgs in records.items():
        if msgs and tp in held:
            consumer.seek(tp, msgs[0].offset)
