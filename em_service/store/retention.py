"""Retention: delete trail rows (fixes, alcohol readings) older than a cutoff, in small batches.

Age is event time (``ts_ms``). Alerts and the audit log are kept. Each run is audited with its
counts. Batches keep every write transaction short, so the archiver and the API never wait long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from em_service.clock import wall_now
from em_service.store import audit
from em_service.store.db import Store
from em_service.store.models import AlcoholSample, Fix
from em_service.store.types import to_ms

BATCH_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """How many rows a retention run deleted, and the cutoff it used."""

    cutoff: datetime
    fixes_deleted: int
    alcohol_deleted: int


def _purge(store: Store, model: type[Fix] | type[AlcoholSample], cutoff_ms: int) -> int:
    deleted = 0
    while True:
        with store.write() as session:
            ids = select(model.id).where(model.ts_ms < cutoff_ms).limit(BATCH_ROWS)
            n = session.execute(delete(model).where(model.id.in_(ids))).rowcount
        deleted += n
        if n < BATCH_ROWS:
            return deleted


def purge_trail(
    store: Store,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    actor: str = "retention",
) -> RetentionReport:
    """Delete fixes and alcohol readings with event time before ``now - older_than``."""
    if older_than <= timedelta(0):
        raise ValueError("older_than must be positive")
    cutoff = (now or wall_now()) - older_than
    cutoff_ms = to_ms(cutoff)
    report = RetentionReport(
        cutoff=cutoff,
        fixes_deleted=_purge(store, Fix, cutoff_ms),
        alcohol_deleted=_purge(store, AlcoholSample, cutoff_ms),
    )
    with store.write() as session:
        audit.append(
            session,
            actor=actor,
            role="system",
            action="retention.purge",
            time_to=cutoff,
            detail={
                "fixes_deleted": report.fixes_deleted,
                "alcohol_deleted": report.alcohol_deleted,
            },
        )
    return report
