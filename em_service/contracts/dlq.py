"""Dead letters on ``em.readings.dlq``: the original bytes and a machine-readable reason."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

from em_service.contracts.types import AwareDatetime

#: Why a reading was rejected. ``detail`` says exactly what was wrong.
DlqReason = Literal[
    "oversize",
    "invalid_json",
    "unknown_type",
    "schema_violation",
    "future_timestamp",
    "stale_timestamp",
    "unknown_device",
    "wrong_key",
    "unprojectable",
    "processing_error",
]


class DeadLetter(Struct, forbid_unknown_fields=True):
    """A rejected reading; ``original_b64`` holds the exact bytes as received (base64)."""

    reason: DlqReason
    detail: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    key: str | None
    original_b64: str
    original_size: int
    rejected_at: AwareDatetime
