"""Dead letters on ``em.readings.dlq``: the original bytes and a machine-readable reason."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

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


#: Hex SHA-256 of the whole original message.
Sha256Hex = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256")]


class DeadLetter(Struct, forbid_unknown_fields=True):
    """A rejected reading; ``original_b64`` holds the bytes as received (base64).

    An original longer than ``EM_MAX_MESSAGE_BYTES`` keeps only its first that many bytes
    (``truncated``); ``original_size`` and ``original_sha256`` always describe the whole of it.
    Letters written before these two fields existed decode with ``None`` and ``False``.
    """

    reason: DlqReason
    detail: str
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    key: str | None
    original_b64: str
    original_size: int
    rejected_at: AwareDatetime
    original_sha256: Sha256Hex | None = None
    truncated: bool = False
