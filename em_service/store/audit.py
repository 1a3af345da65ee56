"""Append-only, hash-chained audit log: who did or read what, about whom, when and why.

Each entry's ``hash`` is SHA-256 over the previous entry's hash and the entry's own fields in a
canonical JSON form; ``seq`` is gapless (1, 2, 3, …) and ``audit_head`` names the last entry.
:func:`verify` recomputes the chain, so an edited row, a deleted row (a gap or a broken link)
or a truncated tail (head ahead of the log) is reported. Appends lock ``audit_head``
(``SELECT … FOR UPDATE``; SQLite's write transaction already serialises), so concurrent writers
cannot fork the chain. The database refuses UPDATE and DELETE on the log (migration triggers).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from em_service.clock import wall_now
from em_service.store.models import AuditEntry, AuditHead
from em_service.store.types import iso

GENESIS = "0" * 64


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """Return the chain hash of an entry with ``fields`` following ``prev_hash``."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _fields(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": iso(e.at),
        "actor": e.actor,
        "role": e.role,
        "action": e.action,
        "offender_id": e.offender_id,
        "time_from": iso(e.time_from),
        "time_to": iso(e.time_to),
        "purpose": e.purpose,
        "detail": e.detail_json,
    }


def append(
    session: Session,
    *,
    actor: str,
    role: str,
    action: str,
    offender_id: str | None = None,
    time_from: datetime | None = None,
    time_to: datetime | None = None,
    purpose: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry in the session's (write) transaction and return it."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    entry = AuditEntry(
        seq=head.seq + 1,
        at=(at or wall_now()).astimezone(UTC),
        actor=actor,
        role=role,
        action=action,
        offender_id=offender_id,
        time_from=time_from,
        time_to=time_to,
        purpose=purpose,
        detail_json=json.dumps(detail or {}, sort_keys=True, separators=(",", ":")),
        prev_hash=head.hash,
    )
    entry.hash = entry_hash(head.hash, _fields(entry))
    session.add(entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.flush()
    return entry


@dataclass
class Verification:
    """Result of :func:`verify`: ``ok`` and, if not, what is wrong where."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _entries(session: Session, batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def verify(session: Session, *, max_problems: int = 100) -> Verification:
    """Recompute the whole chain and compare it with the stored hashes and the head."""
    result = Verification()
    prev_hash, expected_seq = GENESIS, 1
    for e in _entries(session):
        result.checked += 1
        if e.seq != expected_seq:
            result.problems.append(f"entries {expected_seq}..{e.seq - 1} are missing")
        if e.prev_hash != prev_hash:
            result.problems.append(f"entry {e.seq}: prev_hash does not match entry before it")
        if entry_hash(e.prev_hash, _fields(e)) != e.hash:
            result.problems.append(f"entry {e.seq}: contents do not match its hash (edited)")
        prev_hash, expected_seq = e.hash, e.seq + 1
        if len(result.problems) >= max_problems:
            return result
    head = session.get(AuditHead, 1)
    if head is None:
        result.problems.append("audit_head is missing")
    elif head.seq != expected_seq - 1 or head.hash != prev_hash:
        result.problems.append(
            f"head names entry {head.seq} but the log ends at {expected_seq - 1} (truncated?)"
        )
    return result


def list_entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    offender_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Return one page of entries (newest first) matching the filters, and the total."""
    conds = []
    if actor:
        conds.append(AuditEntry.actor == actor)
    if action:
        conds.append(AuditEntry.action == action)
    if offender_id:
        conds.append(AuditEntry.offender_id == offender_id)
    if since:
        conds.append(AuditEntry.at >= since)
    if until:
        conds.append(AuditEntry.at < until)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conds)) or 0
    rows = session.scalars(
        select(AuditEntry).where(*conds).order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total
