"""From raw Kafka values to one write transaction: decode, sort by kind, write (no Kafka here).

The archiver feeds it consumer records; the bench feeds it bytes. Readings go through
``codec.decode_reading`` — the one gate — and invalid ones are skipped (the worker dead-letters
them). Alerts and conditions are decoded against their contracts.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
from sqlalchemy.orm import Session

from em_service.contracts import AlcoholReading, Alert, Conditions, GpsReading
from em_service.contracts.codec import Rejected, decode_reading
from em_service.settings import Settings
from em_service.store import alerts, offenders, trail

log = logging.getLogger(__name__)
_alert_decoder = msgspec.json.Decoder(Alert)
_conditions_decoder = msgspec.json.Decoder(Conditions)


@dataclass
class Batch:
    """Decoded records of one poll, in topic order, ready for :func:`write`."""

    gps: list[GpsReading] = field(default_factory=list)
    alcohol: list[AlcoholReading] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    #: (offender_id, conditions or None for a tombstone, when it was published)
    conditions: list[tuple[str, Conditions | None, datetime]] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add_reading(self, raw: bytes | None, settings: Settings, now: datetime) -> None:
        """Decode one readings-topic value; keep GPS fixes and alcohol readings."""
        try:
            if raw is None:
                raise Rejected("invalid_json", "null value")
            reading = decode_reading(
                raw,
                now=now,
                max_bytes=settings.max_message_bytes,
                max_future_s=settings.max_future_skew_s,
                max_age_s=settings.max_past_age_s,
            )
        except Rejected:
            self.outcomes["readings", "invalid"] += 1
            return
        if isinstance(reading, GpsReading):
            self.gps.append(reading)
        elif isinstance(reading, AlcoholReading):
            self.alcohol.append(reading)
        else:
            self.outcomes["readings", "not_archived"] += 1

    def add_alert(self, raw: bytes | None) -> None:
        """Decode one alerts-topic value."""
        try:
            self.alerts.append(_alert_decoder.decode(raw or b""))
        except msgspec.MsgspecError as exc:
            log.error("invalid alert skipped: %s", exc)
            self.outcomes["alerts", "invalid"] += 1

    def add_conditions(self, key: bytes | None, raw: bytes | None, published: datetime) -> None:
        """Decode one conditions-topic record (a null value is a tombstone for its key)."""
        if raw is None:
            if key:
                self.conditions.append((key.decode(), None, published))
            return
        try:
            conditions = _conditions_decoder.decode(raw)
        except (msgspec.MsgspecError, ValueError) as exc:
            log.error("invalid conditions skipped: %s", exc)
            self.outcomes["conditions", "invalid"] += 1
            return
        self.conditions.append((conditions.offender_id, conditions, published))

    @property
    def empty(self) -> bool:
        return not (self.gps or self.alcohol or self.alerts or self.conditions)


def write(
    session: Session, batch: Batch, *, crs: str, now: datetime | None = None
) -> Counter[tuple[str, str]]:
    """Write ``batch`` in the session's transaction; return outcome counts per (topic, outcome).

    Conditions are applied before alerts (so a new offender exists first), alerts in order.
    """
    now = now or datetime.now(UTC)
    out: Counter[tuple[str, str]] = Counter(batch.outcomes)
    for offender_id, conditions, published in batch.conditions:
        if conditions is None:
            offenders.remove_conditions(session, offender_id=offender_id, changed_at=published)
        else:
            changed_at = conditions.updated_at or published
            offenders.put_conditions(session, conditions=conditions, changed_at=changed_at)
        out["conditions", "stored"] += 1
    offered = trail.insert_fixes(session, readings=batch.gps, crs=crs)
    out["readings", "fixes_offered"] += offered
    if offered < len(batch.gps):
        out["readings", "unprojectable"] += len(batch.gps) - offered  # never archived
    out["readings", "alcohol_offered"] += trail.insert_alcohol(session, readings=batch.alcohol)
    for alert in batch.alerts:
        applied = alerts.apply_alert(session, alert, now=now)
        out["alerts", applied.kind or "duplicate"] += 1
    return out
