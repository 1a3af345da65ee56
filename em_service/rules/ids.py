"""Deterministic alert ids: the same evidence always yields the same id.

An id is derived from (offender, rule, subject, episode start), where subject is the zone, curfew,
scene or device the alert is about. Re-processing the same readings after a crash or a rebalance
therefore produces the same id, and every consumer can de-duplicate on it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


def alert_id(offender_id: str, rule: str, subject: str, episode_start: datetime) -> str:
    """Return ``al-`` + 24 hex digits of SHA-256 over the identifying fields."""
    start = episode_start.astimezone(UTC).isoformat(timespec="microseconds")
    digest = hashlib.sha256(f"{offender_id}\x1f{rule}\x1f{subject}\x1f{start}".encode()).hexdigest()
    return f"al-{digest[:24]}"
