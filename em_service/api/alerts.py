"""``/api/v1/alerts``: list, read, acknowledge, close (officers, own caseload only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from em_service.api import alert_stream
from em_service.api.deps import Officer, StoreDep, not_found, visible
from em_service.api.errors import responses
from em_service.api.schemas import (
    IDENT_PATTERN,
    AcknowledgeIn,
    AlertDetail,
    AlertPage,
    AlertStatusName,
    AlertTypeName,
    CloseIn,
    PageLimit,
    PageOffset,
    SeverityName,
    UtcTime,
)
from em_service.api.views import alert_detail, alert_summary
from em_service.clock import wall_now
from em_service.store import Store, alerts
from em_service.store.tokens import Caller

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
AlertId = Annotated[str, Path(min_length=8, max_length=80, description="Alert id")]


@router.get(
    "",
    response_model=AlertPage,
    summary="List alerts on your caseload, newest first",
    responses=responses(401, 403, 422),
)
def list_alerts(
    caller: Officer,
    store: StoreDep,
    status_: Annotated[AlertStatusName | None, Query(alias="status")] = None,
    type_: Annotated[AlertTypeName | None, Query(alias="type")] = None,
    severity: SeverityName | None = None,
    offender_id: Annotated[str | None, Query(max_length=64, pattern=IDENT_PATTERN)] = None,
    since: Annotated[UtcTime | None, Query(description="occurred_at ≥ since")] = None,
    until: Annotated[UtcTime | None, Query(description="occurred_at < until")] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> AlertPage:
    with store.read() as session:
        rows, total = alerts.list_alerts(
            session,
            only=visible(caller),
            status=status_,
            type=type_,
            severity=severity,
            offender_id=offender_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        items = [alert_summary(r) for r in rows]
    return AlertPage(items=items, total=total, limit=limit, offset=offset)


# Declared before /{alert_id} so that "stream" is not taken for an id.
router.add_api_route(
    "/stream",
    alert_stream.stream_alerts,
    methods=["GET"],
    response_class=alert_stream.EventSourceResponse,
    summary="Server-Sent Events of new and changed alerts (resume with Last-Event-ID)",
    responses=responses(401, 403, 422),
)


@router.get(
    "/{alert_id}",
    response_model=AlertDetail,
    summary="One alert with its location and history (the location read is audited)",
    responses=responses(401, 403, 404, 422),
)
def get_alert(caller: Officer, store: StoreDep, alert_id: AlertId) -> AlertDetail:
    with store.write() as session:
        row = alerts.read(session, alert_id, caller=caller)  # audits a location read
        if row is None:
            raise not_found("alert")
        return alert_detail(row, alerts.transitions(session, alert_id))


def _transition(
    request: Request,
    store: Store,
    caller: Caller,
    alert_id: str,
    to: alerts.AlertStatus,
    note: str | None,
) -> AlertDetail:
    try:
        with store.write() as session:
            row = alerts.transition(
                session, alert_id=alert_id, to=to, caller=caller, note=note, now=wall_now()
            )
            if row is None:
                raise not_found("alert")
            out = alert_detail(row, alerts.transitions(session, alert_id))
    except alerts.TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    alert_stream.hub(request.app).poke()
    return out


@router.post(
    "/{alert_id}/acknowledge",
    response_model=AlertDetail,
    summary="Acknowledge an open alert",
    responses=responses(400, 401, 403, 404, 409, 422),
)
def acknowledge(
    request: Request,
    caller: Officer,
    store: StoreDep,
    alert_id: AlertId,
    body: AcknowledgeIn | None = None,
) -> AlertDetail:
    return _transition(
        request, store, caller, alert_id, "acknowledged", body.note if body else None
    )


@router.post(
    "/{alert_id}/close",
    response_model=AlertDetail,
    summary="Close an alert (a note saying what was done is required)",
    responses=responses(400, 401, 403, 404, 409, 422),
)
def close(
    request: Request, caller: Officer, store: StoreDep, alert_id: AlertId, body: CloseIn
) -> AlertDetail:
    return _transition(request, store, caller, alert_id, "closed", body.note)
