"""One processing-error path for every consumer (worker, archiver, scenes).

An exception while handling one record must not stop a consumer (the same record would stop it
again after every restart): the consumer undoes that record's effects, dead-letters it with
reason ``processing_error`` (:func:`processing_error` gives the reason and detail), counts it in
``em_records_failed_total{consumer,reason}`` and goes on. ``EM_FAIL_FAST=true`` re-raises
instead, for debugging. Errors of the infrastructure (:func:`is_transient`: database or broker
unreachable) are not the record's fault: the consumer retries them, never dead-letters.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Literal

from prometheus_client import Counter

from em_service.contracts import DeadLetter
from em_service.contracts.codec import Rejected, dead_letter, encode
from em_service.limits import original_keep_bytes
from em_service.settings import Settings

log = logging.getLogger(__name__)

ConsumerName = Literal["worker", "archiver", "scenes"]

RECORDS_FAILED = Counter(
    "em_records_failed_total",
    "Records a consumer could not process and skipped (dead-lettered or, for the archiver's "
    "unprojectable fixes, left out of the archive)",
    ["consumer", "reason"],
)
_MAX_DETAIL = 1000


def processing_error(exc: BaseException) -> Rejected:
    """Return the dead-letter reason and detail (exception type and message) of ``exc``."""
    detail = f"{type(exc).__name__}: {exc}"
    if len(detail) > _MAX_DETAIL:
        detail = detail[: _MAX_DETAIL - 1] + "…"
    return Rejected("processing_error", detail)


def record_failed(consumer: ConsumerName, where: str, exc: BaseException) -> Rejected:
    """Log and count a record that failed with ``exc``; return its dead-letter reason."""
    RECORDS_FAILED.labels(consumer, "processing_error").inc()
    log.error("%s: processing %s failed; dead-lettered", consumer, where, exc_info=exc)
    return processing_error(exc)


def letter_for(
    record: Any, rejected: Rejected, settings: Settings, now: datetime | None = None
) -> DeadLetter:
    """Return the dead letter of a consumed Kafka ``record`` (its topic, partition, offset, key),
    its original cut to what a dead letter carries (:func:`~em_service.limits.original_keep_bytes`).
    """
    return dead_letter(
        record.value or b"",
        rejected,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        now=now,
        keep_bytes=original_keep_bytes(settings),
    )


async def send_letters(producer: Any, topic: str, letters: list[DeadLetter]) -> None:
    """Send ``letters`` to the dead-letter ``topic`` and wait until all are acknowledged."""
    futures = [
        await producer.send(topic, encode(d), key=None if d.key is None else d.key.encode())
        for d in letters
    ]
    await asyncio.gather(*futures)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the infrastructure's fault (retry the batch), not the record's."""
    from aiokafka.errors import KafkaError
    from sqlalchemy import exc as sa_exc

    transient = (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.DisconnectionError,
        sa_exc.TimeoutError,
        KafkaError,
        ConnectionError,
        TimeoutError,
    )
    return isinstance(exc, transient)
