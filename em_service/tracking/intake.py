"""Intake of raw messages from ``em.readings``: a typed reading, or a dead letter with a reason.

Pure logic (no Kafka): the tracker calls :func:`triage` for every record; dead letters go out with its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from em_service.clock import age_limit
from em_service.contracts import DeadLetter, Reading
from em_service.contracts.codec import Rejected, dead_letter, decode_reading
from em_service.limits import original_keep_bytes
from em_service.settings import Settings


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from (for the dead letter)."""

    topic: str
    partition: int | None
    offset: int | None
    key: bytes | None


def triage(
    raw: bytes | None,
    source: Source,
    settings: Settings,
    now: datetime,
    *,
    watermark: datetime | None = None,
) -> Reading | DeadLetter:
    """Return the typed reading in ``raw``, or the dead letter that explains why it is not one
    (an oversize original cut to ``EM_MAX_MESSAGE_BYTES``).

    ``now`` is the wall clock; ``watermark`` the stream's event time so far (the age check's
    clock in a replay: :func:`~em_service.clock.age_limit`).
    """
    if raw is None:
        raw, rejected = b"", Rejected("invalid_json", "empty message (null value)")
    else:
        age_now, max_age_s = age_limit(settings, now, watermark)
        try:
            return decode_reading(
                raw,
                now=now,
                max_bytes=settings.max_message_bytes,
                max_future_s=settings.max_future_skew_s,
                max_age_s=max_age_s,
                age_now=age_now,
            )
        except Rejected as exc:
            rejected = exc
    return dead_letter(
        raw,
        rejected,
        topic=source.topic,
        partition=source.partition,
        offset=source.offset,
        key=source.key,
        now=now,
        keep_bytes=original_keep_bytes(settings),
    )
