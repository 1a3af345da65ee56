"""Message size limits, set together and checked when the worker starts.

One setting, ``EM_KAFKA_MAX_MESSAGE_BYTES``, is the largest record batch anything of the service
sends or accepts: every producer's ``max_request_size`` (aiokafka refuses a record whose batch
could exceed it), the devstack broker's ``message.max.bytes`` and the ``max.message.bytes`` of
every topic the service creates. Both Kafka limits count a whole batch (61-byte header and all).

``EM_MAX_MESSAGE_BYTES`` (the largest reading the worker decodes) must fit whole in a dead letter
under that limit: a dead letter keeps at most ``EM_MAX_MESSAGE_BYTES`` of its original (base64),
so every encoded dead letter stays below the producer limit. :func:`dead_letter_capacity`
computes how much fits; :func:`check_settings` and :func:`check_topics` refuse what does not.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from typing import get_args

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from em_service import kafka_io
from em_service.contracts.codec import DETAIL_MAX_CHARS, KEY_MAX_BYTES, encode
from em_service.contracts.dlq import DeadLetter, DlqReason
from em_service.settings import Settings

#: Record batch v2 header (base offset … record count), bytes.
BATCH_HEADER_BYTES = 61
#: A record's fixed overhead at most (aiokafka's bound): length, attributes, timestamp and
#: offset deltas as varints.
RECORD_OVERHEAD_MAX_BYTES = 21
#: Kafka topic names have at most 249 characters (ASCII).
TOPIC_NAME_MAX = 249


class LimitsError(RuntimeError):
    """The size limits contradict each other: the worker must not start."""


def _varint_bytes(n: int) -> int:
    """Bytes of ``n`` as a Kafka zig-zag varint (record lengths are small and non-negative)."""
    zigzag, size = n << 1, 1
    while zigzag >= 0x80:
        zigzag >>= 7
        size += 1
    return size


def batch_bytes_bound(key_len: int | None, value_len: int | None) -> int:
    """Upper bound of the batch of one record without headers (aiokafka's own estimate)."""
    key = 1 if key_len is None else _varint_bytes(key_len) + key_len
    value = 1 if value_len is None else _varint_bytes(value_len) + value_len
    return BATCH_HEADER_BYTES + RECORD_OVERHEAD_MAX_BYTES + key + value + 1  # + header count


def largest_value(limit: int, key_len: int | None) -> int:
    """Return the largest value a producer with ``max_request_size=limit`` sends with this key."""
    room = limit - batch_bytes_bound(key_len, 0) + 1  # value length 0 took one varint byte
    value = room - _varint_bytes(room)
    while batch_bytes_bound(key_len, value + 1) <= limit:  # the varint may have been smaller
        value += 1
    return max(value, 0)


@cache
def envelope_bytes_max() -> int:
    """Return the most bytes a dead letter takes besides its base64 original.

    Computed by encoding the worst letter: the longest reason, detail and key at their caps in
    characters that JSON escapes (6 bytes each), the longest topic name, the largest numbers,
    and a time with a non-UTC offset.
    """
    worst = DeadLetter(
        reason=max(get_args(DlqReason), key=len),
        detail="\x00" * DETAIL_MAX_CHARS,
        source_topic="x" * TOPIC_NAME_MAX,
        source_partition=-(2**31),
        source_offset=-(2**63),
        key="\x00" * KEY_MAX_BYTES,  # a key is cut to KEY_MAX_BYTES, hence at most that many chars
        original_b64="",
        original_size=-(2**63),
        rejected_at=datetime(
            9999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(-timedelta(hours=23, minutes=59))
        ),
        original_sha256="0" * 64,
        truncated=False,
    )
    return len(encode(worst))


@cache
def dead_letter_capacity(kafka_max_message_bytes: int) -> int:
    """Return the most original bytes a dead letter carries under that producer limit."""
    value_max = largest_value(kafka_max_message_bytes, KEY_MAX_BYTES)
    b64_max = value_max - envelope_bytes_max()
    return max(b64_max // 4 * 3, 0)


def original_keep_bytes(settings: Settings) -> int:
    """Return how much of an original a dead letter keeps: ``EM_MAX_MESSAGE_BYTES``, never more
    than fits (:func:`check_settings` makes the two agree before the worker starts)."""
    return min(settings.max_message_bytes, dead_letter_capacity(settings.kafka_max_message_bytes))


def check_settings(settings: Settings) -> None:
    """Raise :class:`LimitsError` unless every accepted reading fits whole in a dead letter."""
    capacity = dead_letter_capacity(settings.kafka_max_message_bytes)
    if settings.max_message_bytes > capacity:
        raise LimitsError(
            f"EM_MAX_MESSAGE_BYTES={settings.max_message_bytes} is larger than a dead letter can "
            f"carry under EM_KAFKA_MAX_MESSAGE_BYTES={settings.kafka_max_message_bytes} (at most "
            f"{capacity} original bytes: base64 plus the letter's fields): lower "
            "EM_MAX_MESSAGE_BYTES or raise EM_KAFKA_MAX_MESSAGE_BYTES (and the topics' "
            "max.message.bytes with it)"
        )


async def topic_limits(
    bootstrap: str, topics: list[str], settings: Settings | None = None
) -> dict[str, int]:
    """Return each topic's ``max.message.bytes`` (its own or the broker's default)."""
    admin = kafka_io.admin(bootstrap, settings)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
    finally:
        await admin.close()
    limits: dict[str, int] = {}
    for response in responses:
        for code, message, _type, name, entries in response.resources:
            if code:
                raise LimitsError(f"cannot read the configuration of topic {name}: {message}")
            configs = {entry[0]: entry[1] for entry in entries}
            limits[name] = int(configs["max.message.bytes"])
    return limits


async def check_topics(settings: Settings, topics: list[str]) -> None:
    """Raise :class:`LimitsError` if a topic refuses batches the producers may send it."""
    limit = settings.kafka_max_message_bytes
    found = await topic_limits(settings.kafka_bootstrap, topics, settings)
    short = {topic: size for topic, size in sorted(found.items()) if size < limit}
    if short:
        listed = ", ".join(f"{topic} ({size})" for topic, size in short.items())
        raise LimitsError(
            f"EM_KAFKA_MAX_MESSAGE_BYTES={limit} (the producers' max_request_size) is larger than "
            f"what these topics accept (max.message.bytes): {listed}; raise the topics' "
            "max.message.bytes (or the broker's message.max.bytes) or lower "
            "EM_KAFKA_MAX_MESSAGE_BYTES"
        )


def output_topics(settings: Settings) -> list[str]:
    """Return the topics the worker writes: alerts, dead letters (of readings and of victim
    readings), device states."""
    return [
        settings.topic_alerts,
        settings.topic_dlq,
        settings.topic_victim_dlq,
        settings.state_changelog_topic(),
    ]
