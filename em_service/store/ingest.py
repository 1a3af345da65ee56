"""From raw Kafka values to one write transaction: decode, sort by kind, write (no Kafka here).

The archiver feeds it consumer records; the bench feeds it bytes. Readings go through
``codec.decode_reading`` — the one gate — and invalid ones are skipped (the worker dead-letters
them). Alerts are decoded against their contract; conditions pass the worker's own check
(``conditions.validate.check``), so the store holds the version the worker has in force and
records the versions it refuses.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from sqlalchemy.orm import Session

from em_service.clock import age_limit, wall_now
from em_service.conditions.validate import InvalidConditions, check, version_id
from em_service.contracts import AlcoholReading, Alert, Conditions, GpsReading, Reading
from em_service.contracts.codec import Rejected, decode_reading
from em_service.contracts.types import AwareDatetime, Ident
from em_service.settings import Settings
from em_service.store import alerts, offenders, trail
from em_service.text import without_coordinates

log = logging.getLogger(__name__)
_alert_decoder = msgspec.json.Decoder(Alert)


class _Stamp(msgspec.Struct):
    """What a rejected document may still tell: its ``updated_at``."""

    updated_at: AwareDatetime | None = None


_stamp_decoder = msgspec.json.Decoder(_Stamp)


def _updated_at(raw: bytes) -> datetime | None:
    try:
        return _stamp_decoder.decode(raw).updated_at
    except (msgspec.MsgspecError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ConditionsRecord:
    """One conditions-topic record: valid conditions, a tombstone (None), or a rejection."""

    offender_id: str
    conditions: Conditions | None
    published: datetime
    version: str | None = None
    position: offenders.Position | None = None
    rejected: offenders.RejectedConditions | None = None


@dataclass
class Batch:
    """Decoded records of one poll, in topic order, ready for :func:`write`."""

    gps: list[GpsReading] = field(default_factory=list)
    alcohol: list[AlcoholReading] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    conditions: list[ConditionsRecord] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add_reading(
        self,
        raw: bytes | None,
        settings: Settings,
        now: datetime,
        *,
        watermark: datetime | None = None,
    ) -> Reading | None:
        """Decode one readings-topic value, keep GPS fixes and alcohol readings; return the
        reading (None if invalid).

        ``now`` is the wall clock; ``watermark`` the newest event time of the partition so far
        (the age check's clock in a replay, see :func:`~em_service.clock.age_limit`).
        """
        age_now, max_age_s = age_limit(settings, now, watermark)
        try:
            if raw is None:
                raise Rejected("invalid_json", "null value")
            reading = decode_reading(
                raw,
                now=now,
                max_bytes=settings.max_message_bytes,
                max_future_s=settings.max_future_skew_s,
                max_age_s=max_age_s,
                age_now=age_now,
            )
        except Rejected:
            self.outcomes["readings", "invalid"] += 1
            return None
        if isinstance(reading, GpsReading):
            self.gps.append(reading)
        elif isinstance(reading, AlcoholReading):
            self.alcohol.append(reading)
        else:
            self.outcomes["readings", "not_archived"] += 1
        return reading

    def add_alert(self, raw: bytes | None) -> None:
        """Decode one alerts-topic value."""
        try:
            self.alerts.append(_alert_decoder.decode(raw or b""))
        except msgspec.MsgspecError as exc:
            log.error("invalid alert skipped: %s", exc)
            self.outcomes["alerts", "invalid"] += 1

    def add_conditions(
        self,
        key: bytes | None,
        raw: bytes | None,
        published: datetime,
        *,
        crs: str,
        position: tuple[int, int] | None = None,
    ) -> None:
        """Check one conditions-topic record as the worker does (a null value is a tombstone).

        A record the worker refuses becomes a rejection of its key's offender; one without a
        usable key (the worker ignores it too) is counted and logged. ``position`` is the
        record's (partition, offset).
        """
        place = offenders.Position(*position, published) if position else None
        try:
            offender_id = msgspec.convert(key.decode() if key else None, Ident)
        except (msgspec.MsgspecError, UnicodeDecodeError):
            log.error("conditions record without a valid key (offender_id) skipped: %r", key)
            self.outcomes["conditions", "invalid"] += 1
            return
        if raw is None:
            self.conditions.append(ConditionsRecord(offender_id, None, published, None, place))
            return
        try:
            checked = check(raw, crs=crs, key=offender_id)
        except InvalidConditions as exc:
            log.error(
                "conditions for %s rejected (as by the worker): %s",
                offender_id,
                without_coordinates(str(exc)),
            )
            rejected = offenders.RejectedConditions(
                version_id(raw), _updated_at(raw), published, str(exc)
            )
            self.conditions.append(
                ConditionsRecord(offender_id, None, published, None, place, rejected)
            )
            return
        self.conditions.append(
            ConditionsRecord(offender_id, checked.conditions, published, version_id(raw), place)
        )

    @property
    def empty(self) -> bool:
        return not (self.gps or self.alcohol or self.alerts or self.conditions)


def write(
    session: Session, batch: Batch, *, crs: str, now: datetime | None = None
) -> Counter[tuple[str, str]]:
    """Write ``batch`` in the session's transaction; return outcome counts per (topic, outcome).

    Conditions are applied before alerts (so a new offender exists first), alerts in order.
    """
    now = now or wall_now()
    out: Counter[tuple[str, str]] = Counter(batch.outcomes)
    # New people first and in one order: two archivers creating the same offenders in
    # different orders deadlocked on PostgreSQL (each waiting on the other's unique insert).
    for oid, created in sorted(_new_people(batch, now).items()):
        offenders.ensure_offender(session, oid, now=created)
    for rec in batch.conditions:
        oid, pos = rec.offender_id, rec.position
        if pos is not None and offenders.superseded(session, oid, pos):
            out["conditions", "superseded"] += 1  # the API stored it, or a newer one, already
        elif rec.rejected is not None:
            offenders.reject_conditions(
                session, offender_id=oid, rejected=rec.rejected, position=pos
            )
            out["conditions", "rejected"] += 1
        elif rec.conditions is None:
            offenders.remove_conditions(
                session, offender_id=oid, changed_at=rec.published, position=pos
            )
            out["conditions", "stored"] += 1
        else:
            offenders.put_conditions(
                session,
                conditions=rec.conditions,
                changed_at=rec.conditions.updated_at or rec.published,
                version=rec.version,
                position=pos,
            )
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


def _new_people(batch: Batch, now: datetime) -> dict[str, datetime]:
    """Offender id → creation time, for each person the batch may create (as the records
    themselves would: conditions at their change time, alerts at ``now``; tombstones none)."""
    people: dict[str, datetime] = {}
    for rec in batch.conditions:
        if rec.rejected is not None:
            people.setdefault(rec.offender_id, rec.rejected.rejected_at)
        elif rec.conditions is not None:
            people.setdefault(rec.offender_id, rec.conditions.updated_at or rec.published)
    for alert in batch.alerts:
        people.setdefault(alert.offender_id, now)
    return people
