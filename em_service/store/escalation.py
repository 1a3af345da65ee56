"""Escalation: a critical alert nobody acknowledged in time is escalated, once per level.

Level 1 when an alert of the ``critical`` tier (:mod:`em_service.rules.tiers`) is still
``open`` ``after_s`` after it reached the store (``received_at``: when the centre could first
see it); level 2 at twice that. Suppressed alerts (``details.suppressed``, an approved absence)
never escalate. Each escalation is an ``escalated`` outbox event (SSE, webhooks, the duty
channel) carrying its level, and an audit entry.

Exactly once, with any number of escalating processes and across restarts: the state lives in
the alert row, and a level is raised by a compare-and-set ``UPDATE … SET escalation_level = n
WHERE escalation_level = n - 1 AND status = 'open'``. Only the transaction that changes the row
writes the event; a concurrent one waits for the row lock and then matches nothing (PostgreSQL
re-checks the WHERE on the new row version; SQLite has one writer). An acknowledgement racing
the escalation is serialised by the same row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from em_service.rules.tiers import TIER_OF
from em_service.store import Store, audit
from em_service.store.alerts import _event
from em_service.store.models import AlertRow

CRITICAL_TYPES = tuple(sorted(t for t, v in TIER_OF.items() if v == "critical"))
LEVELS = (1, 2)
ACTOR = "escalation"
ROLE = "system"


@dataclass(frozen=True, slots=True)
class Escalated:
    """One escalation raised: the alert, its offender and the level."""

    alert_id: str
    offender_id: str
    level: int


def due(store: Store, *, now: datetime, after_s: float, limit: int = 500) -> list[tuple[str, int]]:
    """Return (alert id, level) of escalations due at ``now``, oldest alert first."""
    out: list[tuple[str, int]] = []
    with store.read() as session:
        for level in LEVELS:
            cutoff = now - timedelta(seconds=after_s * level)
            rows = session.execute(
                select(AlertRow.alert_id)
                .where(
                    AlertRow.status == "open",
                    AlertRow.type.in_(CRITICAL_TYPES),
                    AlertRow.escalation_level < level,
                    AlertRow.received_at <= cutoff,
                    ~AlertRow.suppressed,
                )
                .order_by(AlertRow.received_at, AlertRow.alert_id)
                .limit(limit)
            )
            out += [(alert_id, level) for (alert_id,) in rows]
    return sorted(out, key=lambda p: p[1])  # every level 1 before any level 2


class _Lost(Exception):
    """The compare-and-set matched nothing: someone else escalated (or acknowledged) first."""


def escalate_one(store: Store, alert_id: str, level: int, *, now: datetime) -> Escalated | None:
    """Raise ``level`` on the alert in its own transaction; None if it is not (or no longer) due.

    Lock order as in a lifecycle transition: audit head, alert row, outbox.
    """
    try:
        with store.write() as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                return None
            audit.append(
                session,
                actor=ACTOR,
                role=ROLE,
                action="alert.escalate",
                offender_id=row.offender_id,
                detail={"alert_id": alert_id, "level": level},
                at=now,
            )
            changed = session.execute(
                update(AlertRow)
                .where(
                    AlertRow.alert_id == alert_id,
                    AlertRow.escalation_level == level - 1,
                    AlertRow.status == "open",
                )
                .values(escalation_level=level, escalated_at=now)
                .execution_options(preserve_rowcount=True, synchronize_session=False)
            ).rowcount
            if changed != 1:
                raise _Lost  # roll back the audit entry too
            session.refresh(row)
            _event(session, row, "escalated", now, level=level)
            return Escalated(alert_id, row.offender_id, level)
    except _Lost:
        return None


def run(store: Store, *, now: datetime, after_s: float) -> list[Escalated]:
    """Raise every escalation due at ``now``; return those this call raised."""
    raised = []
    for alert_id, level in due(store, now=now, after_s=after_s):
        done = escalate_one(store, alert_id, level, now=now)
        if done is not None:
            raised.append(done)
    return raised
