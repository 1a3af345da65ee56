"""The alert queue (officers' home page), one alert's page, and the lifecycle actions."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import RedirectResponse, Response

from em_service.api import alert_stream
from em_service.api.deps import not_found, visible
from em_service.api.schemas import IDENT_PATTERN, AlertTypeName
from em_service.console import queries
from em_service.console.web import (
    PREFIX,
    ConsoleOfficer,
    check_csrf,
    now,
    render,
    safe_back,
)
from em_service.contracts import ALERT_TYPES
from em_service.store import alerts
from em_service.store.tokens import Caller
from em_service.text import TextError, clean_text

router = APIRouter(prefix=PREFIX, include_in_schema=False)
AlertId = Annotated[str, Path(min_length=8, max_length=80)]
WITHIN = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
WITHIN |= {"30d": timedelta(days=30)}
Within = Literal["1h", "24h", "7d", "30d", "all"]
Note = Annotated[str, Form(max_length=2000)]
Csrf = Annotated[str, Form(max_length=200)]


@router.get("/")
def alert_queue(
    request: Request,
    caller: ConsoleOfficer,
    person: Annotated[str | None, Query(max_length=64, pattern=IDENT_PATTERN)] = None,
    type: Annotated[AlertTypeName | None, Query()] = None,
    severity: queries.Tier | None = None,
    status_: Annotated[Literal["open", "acknowledged"] | None, Query(alias="status")] = None,
    within: Within = "all",
    done: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    t = now(request)
    f = queries.QueueFilter(
        person=person or None,
        type=type,
        tier=severity,
        status=status_,
        since=t - WITHIN[within] if within in WITHIN else None,
    )
    with request.app.state.store.read() as session:
        head = alerts.last_event_id(session)
        rows, total, unacknowledged = queries.queue(session, only=visible(caller), f=f)
    filters = {
        "person": person or "",
        "type": type or "",
        "severity": severity or "",
        "status": status_ or "",
        "since": f.since.isoformat() if f.since else "",
    }
    return render(
        request,
        "queue.html",
        {
            "title": "Alert queue",
            "rows": rows,
            "total": total,
            "limit": queries.QUEUE_LIMIT,
            "unacknowledged": unacknowledged,
            "head": head,
            "filters": filters,
            "filters_json": json.dumps(filters),
            "tiers_json": json.dumps(queries.tier_types()),
            "people": sorted(caller.caseload),
            "types": [a for a in ALERT_TYPES if not a.endswith("_ended")],
            "tiers": queries.TIERS,
            "within": within,
            "back": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            "done": done,
        },
    )


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, caller: ConsoleOfficer, alert_id: AlertId) -> Response:
    with request.app.state.store.write() as session:
        row = alerts.read(session, alert_id, caller=caller)  # audits a location read
        if row is None:
            raise not_found("alert")
        steps = alerts.transitions(session, alert_id)
        session.expunge_all()
    place = None
    if row.lat is not None:
        place = {"lat": row.lat, "lon": row.lon, "accuracy_m": row.accuracy_m}
    return render(
        request,
        "alert.html",
        {
            "title": f"{queries.label(row.type)} — {row.offender_id}",
            "a": row,
            "steps": steps,
            "details": json.loads(row.details_json or "{}"),
            "place_json": json.dumps(place),
            "tamper": row.type in queries.TAMPER_TYPES,
        },
    )


def _move(request: Request, caller: Caller, alert_id: str, to: str, note: str | None) -> None:
    t = now(request)
    try:
        with request.app.state.store.write() as session:
            row = alerts.transition(
                session, alert_id=alert_id, to=to, caller=caller, note=note or None, now=t
            )
            if row is None:
                raise not_found("alert")
    except alerts.TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


def _done(back: str, message: str) -> RedirectResponse:
    sep = "&" if "?" in back else "?"
    target = back if "done=" in back else f"{back}{sep}done={message}"
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


@router.post("/alerts/acknowledge")
async def acknowledge_many(
    request: Request,
    caller: ConsoleOfficer,
    csrf_token: Csrf = "",
    alert_id: Annotated[list[str] | None, Form(max_length=500)] = None,
    back: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    ids = alert_id or []
    if not ids:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Select at least one alert.")
    for one in ids:
        await anyio.to_thread.run_sync(_move, request, caller, one, "acknowledged", None)
    alert_stream.hub(request.app).poke()
    return _done(safe_back(back), f"acknowledged-{len(ids)}")


def _note(note: str, *, required: bool) -> str:
    """The note as stored: normalised like every free text (em_service.text), else 400."""
    try:
        return clean_text(
            note, what="note", min_length=int(required), max_length=2000, multiline=True
        )
    except TextError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"Check the note: {exc}") from None


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(
    request: Request,
    caller: ConsoleOfficer,
    alert_id: AlertId,
    csrf_token: Csrf = "",
    note: Note = "",
    back: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    note = _note(note, required=False)
    await anyio.to_thread.run_sync(_move, request, caller, alert_id, "acknowledged", note)
    alert_stream.hub(request.app).poke()
    return _done(safe_back(back, f"{PREFIX}/alerts/{alert_id}"), "acknowledged-1")


@router.post("/alerts/{alert_id}/close")
async def close(
    request: Request,
    caller: ConsoleOfficer,
    alert_id: AlertId,
    csrf_token: Csrf = "",
    note: Note = "",
) -> Response:
    check_csrf(request, csrf_token)
    if not note.strip():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "Enter a note saying what was done to close this alert."
        )
    note = _note(note, required=True)
    await anyio.to_thread.run_sync(_move, request, caller, alert_id, "closed", note)
    alert_stream.hub(request.app).poke()
    return _done(f"{PREFIX}/alerts/{alert_id}", "closed")
