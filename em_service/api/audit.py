"""``/api/v1/audit`` (admin): read the audit log and verify its hash chain."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from em_service.api.deps import Admin, StoreDep
from em_service.api.errors import responses
from em_service.api.schemas import (
    IDENT_PATTERN,
    AuditOut,
    AuditPage,
    AuditVerifyOut,
    PageLimit,
    PageOffset,
    UtcTime,
)
from em_service.store import audit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=AuditPage,
    summary="Audit entries, newest first (reading them is itself audited)",
    responses=responses(401, 403, 422),
)
def list_audit(
    caller: Admin,
    store: StoreDep,
    actor: Annotated[str | None, Query(max_length=100)] = None,
    action: Annotated[str | None, Query(max_length=40)] = None,
    offender_id: Annotated[str | None, Query(max_length=64, pattern=IDENT_PATTERN)] = None,
    since: UtcTime | None = None,
    until: UtcTime | None = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> AuditPage:
    with store.write() as session:
        entries, total = audit.list_entries(
            session,
            actor=actor,
            action=action,
            offender_id=offender_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        items = [
            AuditOut(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                role=e.role,
                action=e.action,
                offender_id=e.offender_id,
                time_from=e.time_from,
                time_to=e.time_to,
                purpose=e.purpose,
                detail=json.loads(e.detail_json),
                hash=e.hash,
            )
            for e in entries
        ]
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="audit.read",
            offender_id=offender_id,
            detail={"returned": len(items)},
        )
    return AuditPage(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/verify",
    response_model=AuditVerifyOut,
    summary="Recompute the hash chain; ok is false if any entry was edited or removed",
    responses=responses(401, 403),
)
def verify_audit(caller: Admin, store: StoreDep) -> AuditVerifyOut:
    with store.read() as session:
        result = audit.verify(session)
    return AuditVerifyOut(ok=result.ok, checked=result.checked, problems=result.problems)
