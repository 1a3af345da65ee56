"""Alert store: materialise alerts from ``em.alerts`` and walk them through their lifecycle.

Lifecycle: ``open → acknowledged → closed`` (closing straight from open is allowed; a note is
required to close). A critical alert left ``open`` too long is escalated
(:mod:`em_service.store.escalation`): an ``escalated`` event, its status unchanged. Each step is an :class:`AlertTransition` (who, role, when, note), an
:class:`AlertEvent` in the outbox (for SSE and webhooks) and an audit entry.

``alert_id`` is the primary key, so a re-delivered alert inserts nothing. An ``…_ended`` alert
attaches to the alert it names in ``ref_alert_id`` (``episode_end``, ``ended_alert_id``); if
that alert is unknown the ended alert is kept as a row of its own (never dropped) and attached
when its alert arrives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from em_service.clock import wall_now
from em_service.contracts import Alert
from em_service.store import audit
from em_service.store.models import (
    AlertEvent,
    AlertRow,
    AlertTransition,
    confirmed_of,
    suppressed_of,
)
from em_service.store.offenders import ensure_offender
from em_service.store.tokens import Caller
from em_service.store.types import insert_ignore

AlertStatus = Literal["open", "acknowledged", "closed"]
STATUSES: tuple[AlertStatus, ...] = ("open", "acknowledged", "closed")
#: Allowed lifecycle steps: from → to.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "closed"}),
    "acknowledged": frozenset({"closed"}),
    "closed": frozenset(),
}


class TransitionRefused(ValueError):
    """A lifecycle step that is not allowed from the alert's current status."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying one alert message did: the outbox kind, or None if it was a duplicate."""

    alert_id: str
    kind: Literal["created", "ended", "orphan_ended"] | None


#: Key of the PostgreSQL advisory lock that puts outbox ids in commit order (see _event).
OUTBOX_LOCK_KEY = 0x656D_0B0C


def lock_outbox(session: Session) -> None:
    """Take the outbox lock for the rest of the transaction (PostgreSQL; SQLite has one writer).

    Readers (SSE, webhooks) follow the outbox by id and never look back, so ids must become
    visible in id order. A sequence does not promise that: two transactions may commit in the
    other order than they drew their ids. Every writer draws its event ids while holding this
    transaction-level lock, which is released only at commit or rollback; so whoever draws a
    larger id commits after every smaller one is committed or gone.
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK_KEY})


def _event(
    session: Session, row: AlertRow, kind: str, at: datetime, *, level: int | None = None
) -> None:
    lock_outbox(session)  # before the flush that draws the id
    session.add(
        AlertEvent(
            alert_id=row.alert_id, offender_id=row.offender_id, kind=kind, at=at, level=level
        )
    )


def _attach_end(session: Session, parent: AlertRow, ended: Alert, now: datetime) -> bool:
    if parent.ended_alert_id == ended.alert_id:
        return False
    parent.ended_alert_id = ended.alert_id
    parent.episode_end = ended.episode_end or ended.occurred_at
    _event(session, parent, "ended", now)
    return True


def _row_values(alert: Alert, now: datetime) -> dict:
    loc = alert.location
    return {
        "alert_id": alert.alert_id,
        "type": alert.type,
        "severity": alert.severity,
        "offender_id": alert.offender_id,
        "device_id": alert.device_id,
        "occurred_at": alert.occurred_at,
        "detected_at": alert.detected_at,
        "lat": loc.lat if loc else None,
        "lon": loc.lon if loc else None,
        "accuracy_m": loc.accuracy_m if loc else None,
        "zone_id": alert.zone_id,
        "curfew_id": alert.curfew_id,
        "scene_id": alert.scene_id,
        "episode_start": alert.episode_start,
        "episode_end": alert.episode_end,
        "ref_alert_id": alert.ref_alert_id,
        "late": alert.late,
        "details_json": json.dumps(alert.details, sort_keys=True, default=str),
        "confirmed": confirmed_of(alert.details, alert.severity),
        "suppressed": suppressed_of(alert.details),
        "status": "open",
        "status_changed_at": now,
        "received_at": now,
    }


def apply_alert(session: Session, alert: Alert, *, now: datetime | None = None) -> Applied:
    """Materialise one alert message (idempotent); return what it did."""
    now = now or wall_now()
    if alert.type.endswith("_ended") and alert.ref_alert_id:
        parent = session.get(AlertRow, alert.ref_alert_id)
        if parent is not None:
            changed = _attach_end(session, parent, alert, now)
            return Applied(alert.alert_id, "ended" if changed else None)
    table = AlertRow.__table__
    values = _row_values(alert, now)
    # Types are bound through the ORM column types (aware UTC datetimes).
    result = session.execute(insert_ignore(table, session.bind.dialect.name).values(**values))
    if result.rowcount != 1:
        return Applied(alert.alert_id, None)
    ensure_offender(session, alert.offender_id, now=now)
    row = session.get(AlertRow, alert.alert_id)
    _event(session, row, "created", now)
    if alert.type.endswith("_ended"):
        return Applied(alert.alert_id, "orphan_ended")
    # An ended message that arrived before this alert: attach it now.
    for orphan in session.scalars(select(AlertRow).where(AlertRow.ref_alert_id == row.alert_id)):
        row.ended_alert_id = orphan.alert_id
        row.episode_end = orphan.episode_end or orphan.occurred_at
        _event(session, row, "ended", now)
    return Applied(alert.alert_id, "created")


def get(session: Session, alert_id: str, *, caller: Caller | None = None) -> AlertRow | None:
    """Return the alert, or None if unknown or not on the caller's caseload."""
    row = session.get(AlertRow, alert_id)
    if row is None or (caller is not None and not caller.sees(row.offender_id)):
        return None
    return row


def read(session: Session, alert_id: str, *, caller: Caller) -> AlertRow | None:
    """Return the alert as :func:`get` does for ``caller``; if it has a location, record that
    location read in the audit log (``alert.location.read``) — the API and the console alike."""
    row = get(session, alert_id, caller=caller)
    if row is not None and row.lat is not None:
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="alert.location.read",
            offender_id=row.offender_id,
            time_from=row.occurred_at,
            time_to=row.occurred_at,
            purpose="alert handling",
            detail={"alert_id": alert_id},
        )
    return row


def transitions(session: Session, alert_id: str) -> list[AlertTransition]:
    """Return the alert's lifecycle steps, oldest first."""
    return list(
        session.scalars(
            select(AlertTransition)
            .where(AlertTransition.alert_id == alert_id)
            .order_by(AlertTransition.id)
        )
    )


def transition(
    session: Session,
    *,
    alert_id: str,
    to: AlertStatus,
    caller: Caller,
    note: str | None,
    now: datetime | None = None,
) -> AlertRow | None:
    """Move the alert to ``to`` on behalf of ``caller``; None if unknown to them.

    Raises :class:`TransitionRefused` when the step is not allowed (e.g. already closed).
    """
    now = now or wall_now()
    row = get(session, alert_id, caller=caller)
    if row is None:
        return None
    if to not in TRANSITIONS[row.status]:
        raise TransitionRefused(f"alert {alert_id} is {row.status}; it cannot become {to}")
    if to == "closed" and not (note and note.strip()):
        raise TransitionRefused("closing an alert needs a note")
    session.add(
        AlertTransition(
            alert_id=alert_id,
            from_status=row.status,
            to_status=to,
            actor=caller.name,
            role=caller.role,
            at=now,
            note=note,
        )
    )
    audit.append(
        session,
        actor=caller.name,
        role=caller.role,
        action=f"alert.{'acknowledge' if to == 'acknowledged' else 'close'}",
        offender_id=row.offender_id,
        detail={"alert_id": alert_id, "from": row.status, "to": to},
        at=now,
    )
    row.status, row.status_changed_at = to, now
    _event(session, row, to, now)
    session.flush()
    return row


def list_alerts(
    session: Session,
    *,
    only: frozenset[str] | None,
    status: str | None = None,
    type: str | None = None,
    severity: str | None = None,
    offender_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AlertRow], int]:
    """Return one page of alerts (newest ``occurred_at`` first) and the total matching.

    ``only`` restricts to these offenders (an officer's caseload); None means all.
    """
    conds = []
    if only is not None:
        conds.append(AlertRow.offender_id.in_(sorted(only)))
    if status:
        conds.append(AlertRow.status == status)
    if type:
        conds.append(AlertRow.type == type)
    if severity:
        conds.append(AlertRow.severity == severity)
    if offender_id:
        conds.append(AlertRow.offender_id == offender_id)
    if since:
        conds.append(AlertRow.occurred_at >= since)
    if until:
        conds.append(AlertRow.occurred_at < until)
    total = session.scalar(select(func.count()).select_from(AlertRow).where(*conds)) or 0
    rows = session.scalars(
        select(AlertRow)
        .where(*conds)
        .order_by(AlertRow.occurred_at.desc(), AlertRow.alert_id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def last_event_id(session: Session) -> int:
    """Return the newest outbox event id (0 when there is none)."""
    return session.scalar(select(func.max(AlertEvent.id))) or 0


def events_after(
    session: Session,
    *,
    after: int,
    only: frozenset[str] | None,
    limit: int = 200,
    kinds: frozenset[str] | None = None,
) -> list[tuple[AlertEvent, AlertRow]]:
    """Return up to ``limit`` outbox events after id ``after`` with their alerts, in order
    (only of these offenders and of these ``kinds``, if given)."""
    stmt = (
        select(AlertEvent, AlertRow)
        .join(AlertRow, AlertRow.alert_id == AlertEvent.alert_id)
        .where(AlertEvent.id > after)
        .order_by(AlertEvent.id)
        .limit(limit)
    )
    if only is not None:
        stmt = stmt.where(AlertEvent.offender_id.in_(sorted(only)))
    if kinds:
        stmt = stmt.where(AlertEvent.kind.in_(sorted(kinds)))
    return [(e, a) for e, a in session.execute(stmt).tuples()]
