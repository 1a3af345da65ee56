"""Decoding and encoding on the hot path (msgspec: typed structs straight from bytes).

``decode_reading`` is the single gate for ``em.readings``: it returns a typed reading or raises
:class:`Rejected` with a machine-readable reason (see ``DlqReason``) and a human detail.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from em_service.clock import wall_now
from em_service.contracts.dlq import DeadLetter, DlqReason
from em_service.contracts.readings import Reading

_reading_decoder = msgspec.json.Decoder(Reading)
_encoder = msgspec.json.Encoder()
_READING_TYPES = frozenset({"gps", "alcohol", "event"})
#: A dead letter's ``detail`` keeps at most this many characters.
DETAIL_MAX_CHARS = 1000
#: A dead letter (its ``key`` field and its Kafka key) keeps at most this many key bytes.
KEY_MAX_BYTES = 256


class Rejected(ValueError):
    """A message that fails its contract; ``reason`` is a ``DlqReason``."""

    def __init__(self, reason: DlqReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: DlqReason = reason
        self.detail = detail


def _reject_decode(raw: bytes, exc: msgspec.MsgspecError) -> Rejected:
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return Rejected("invalid_json", str(exc))
    message = str(exc)
    if message.endswith("at `$.type`"):
        # Distinguish "a JSON object of a type we do not know" from other violations.
        try:
            kind = msgspec.json.decode(raw).get("type")
        except msgspec.MsgspecError:  # pragma: no cover - raw already parsed once
            kind = None
        if kind not in _READING_TYPES:
            return Rejected("unknown_type", f"unknown reading type {kind!r}: {message}")
    return Rejected("schema_violation", message)


def decode_reading(
    raw: bytes,
    *,
    now: datetime | None = None,
    max_bytes: int = 16_384,
    max_future_s: float = 300.0,
    max_age_s: float = 400 * 86400.0,
    age_now: datetime | None = None,
) -> Reading:
    """Return the typed reading in ``raw``, with ``ts`` in UTC, or raise :class:`Rejected`.

    Checks, in order: size, JSON, contract (types, ranges, required fields, known ``type``),
    then plausibility of the timestamp: future skew against ``now``, absurd age against
    ``age_now`` (default ``now``; a replay passes its stream clock).
    """
    if len(raw) > max_bytes:
        raise Rejected("oversize", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        reading = _reading_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise _reject_decode(raw, exc) from None
    ts = reading.ts
    now = now or wall_now()
    if ts - now > timedelta(seconds=max_future_s):
        raise Rejected(
            "future_timestamp", f"ts {ts.isoformat()} is more than {max_future_s:.0f} s ahead"
        )
    if ((age_now or now) - ts).total_seconds() > max_age_s:
        raise Rejected("stale_timestamp", f"ts {ts.isoformat()} is older than {max_age_s:.0f} s")
    if ts.utcoffset() != timedelta(0) or ts.tzinfo is not UTC:
        reading = msgspec.structs.replace(reading, ts=ts.astimezone(UTC))
    return reading


def encode(obj: Any) -> bytes:
    """Return compact JSON bytes for a contract struct (or any msgspec-encodable value)."""
    return _encoder.encode(obj)


def dead_letter(
    raw: bytes,
    rejected: Rejected,
    *,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    now: datetime | None = None,
    keep_bytes: int | None = None,
) -> DeadLetter:
    """Return the dead letter for ``raw``: the original bytes (base64), the reason, the source.

    An original longer than ``keep_bytes`` keeps only its first ``keep_bytes`` bytes
    (``truncated``); size and SHA-256 are those of the whole. The detail keeps at most
    ``DETAIL_MAX_CHARS`` characters and the key its first ``KEY_MAX_BYTES`` bytes, so that the
    letter's size is bounded (see :mod:`em_service.limits`).
    """
    truncated = keep_bytes is not None and len(raw) > keep_bytes
    kept = raw[:keep_bytes] if truncated else raw
    detail = rejected.detail
    if len(detail) > DETAIL_MAX_CHARS:
        detail = detail[: DETAIL_MAX_CHARS - 1] + "…"
    return DeadLetter(
        reason=rejected.reason,
        detail=detail,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        key=dead_letter_key(key).decode("utf-8", "replace") if key is not None else None,
        original_b64=base64.b64encode(kept).decode("ascii"),
        original_size=len(raw),
        rejected_at=now or wall_now(),
        original_sha256=hashlib.sha256(raw).hexdigest(),
        truncated=truncated,
    )


def dead_letter_key(key: bytes) -> bytes:
    """Return the key a dead letter keeps (its Kafka key too): the first ``KEY_MAX_BYTES``."""
    return key[:KEY_MAX_BYTES]
