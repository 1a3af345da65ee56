"""A person's page (status, conditions, curfew week grid, alert history, trail) and the trail
export. Officers see only their caseload (anyone else: the 404 page). Every location shown is
audited in the same transaction as its read; the trail asks for a purpose, as the API does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from fastapi import APIRouter, Form, Path, Query, Request, status
from fastapi.responses import Response

from em_service.api.deps import not_found
from em_service.api.schemas import IDENT_PATTERN
from em_service.console import person as P
from em_service.console import queries
from em_service.console.web import LONDON, PREFIX, ConsoleOfficer, ago, check_csrf, now, render
from em_service.contracts import Conditions
from em_service.store import alerts, audit, offenders, trail
from em_service.store.models import Offender
from em_service.store.tokens import Caller
from em_service.text import TextError, clean_text
from geofences import ConditionsError, compile_conditions

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PersonId = Annotated[str, Path(min_length=1, max_length=64, pattern=IDENT_PATTERN)]
LocalText = Annotated[str, Form(max_length=40)]
Purpose = Annotated[str, Form(max_length=200)]
_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


@dataclass
class TrailRequest:
    """The trail form: a local-time window and a purpose (errors say what to fix)."""

    start: str
    end: str
    purpose: str
    t0: datetime | None = None
    t1: datetime | None = None
    error: str | None = None


def _parse_local(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.strip(), _LOCAL_FORMAT).replace(tzinfo=LONDON).astimezone(UTC)
    except ValueError:
        return None


def trail_request(start: str, end: str, purpose: str) -> TrailRequest:
    """Validate the trail form: times, at most 48 h, a purpose of 3+ characters."""
    try:
        cleaned, problem = clean_text(purpose, what="purpose", min_length=3), None
    except TextError as exc:
        cleaned, problem = purpose.strip(), str(exc)
    r = TrailRequest(start, end, cleaned)
    r.t0, r.t1 = _parse_local(start), _parse_local(end)
    if r.t0 is None or r.t1 is None:
        r.error = "Enter the start and end as a date and time"
    elif r.t1 <= r.t0:
        r.error = "The end must be after the start"
    elif r.t1 - r.t0 > P.TRAIL_MAX:
        r.error = "Choose a window of at most 48 hours"
    elif problem is not None:
        r.error = (
            "Enter why you are viewing this trail (for example a crime reference)"
            if len(r.purpose) < 3
            else f"Check the purpose: {problem}"
        )
    return r


def _require_caseload(caller: Caller, offender_id: str, session) -> Offender:
    person = session.get(Offender, offender_id)
    if not caller.sees(offender_id) or person is None:
        raise not_found("person")
    return person


def _conditions(person: Offender) -> Conditions | None:
    if not person.conditions_json:
        return None
    return msgspec.json.decode(person.conditions_json, type=Conditions)


def _page(
    request: Request,
    caller: Caller,
    offender_id: str,
    week: date | None,
    req: TrailRequest | None,
    code: int = 200,
) -> Response:
    t = now(request)
    settings = request.app.state.settings
    with request.app.state.store.write() as session:
        person = _require_caseload(caller, offender_id, session)
        conditions = _conditions(person)
        state = offenders.state(session, offender_id=offender_id)
        fix = queries.last_fix(session, offender_id)
        strap = queries.latest_of(session, offender_id, ["strap_tamper", "strap_restored"])
        charging = queries.latest_of(session, offender_id, ["charging_started", "charging_stopped"])
        history = queries.history(session, offender_id)
        steps = {a.alert_id: alerts.transitions(session, a.alert_id) for a in history}
        if fix is not None:
            audit.append(
                session,
                actor=caller.name,
                role=caller.role,
                action="status.location.read",
                offender_id=offender_id,
                time_from=fix.ts,
                time_to=fix.ts,
                purpose="status check",
                detail={"via": "console"},
            )
        fixes, trail_alerts = [], []
        if req is not None and req.error is None:
            fixes = trail.offender_trail(session, offender_id=offender_id, t0=req.t0, t1=req.t1)
            audit.append(  # exactly as GET /api/v1/offenders/{id}/trail
                session,
                actor=caller.name,
                role=caller.role,
                action="trail.read",
                offender_id=offender_id,
                time_from=req.t0,
                time_to=req.t1,
                purpose=req.purpose,
                detail={"fixes": len(fixes)},
            )
            trail_alerts = [
                {
                    "alert_id": a.alert_id,
                    "type": queries.label(a.type),
                    "t": a.occurred_at.isoformat(),
                    "lat": a.lat,
                    "lon": a.lon,
                }
                for a in queries.alerts_between(session, offender_id, req.t0, req.t1)
            ]
        session.expunge_all()

    tz = ZoneInfo(conditions.timezone) if conditions else LONDON
    monday = P.monday_of(week or t.astimezone(tz).date())
    map_data: dict[str, Any] = {"zones": [], "curfews": []}
    zones, curfews, grid = [], [], []
    compiled, problem = None, None
    if conditions is not None:
        try:
            compiled = compile_conditions(
                msgspec.to_builtins(conditions), crs=settings.projected_crs
            )
        except ConditionsError as exc:  # stored, but not usable by the rules: say so, draw none
            problem = str(exc)
    if conditions is not None and compiled is not None:
        map_data["zones"] = msgspec.to_builtins(conditions.zones)
        map_data["curfews"] = msgspec.to_builtins(conditions.curfews)
        grid = P.week_grid(compiled, conditions, monday, tz)
        last = (fix.lon, fix.lat, fix.accuracy_m) if fix else None
        curfews = P.curfew_status(compiled, conditions, t, tz, last)
        if fix is not None:
            zones = P.zone_status(compiled, conditions, fix.ts, fix.lon, fix.lat, fix.accuracy_m)
    if fix is not None:
        map_data["last_fix"] = {
            "lat": fix.lat,
            "lon": fix.lon,
            "acc": fix.accuracy_m,
            "t": fix.ts.isoformat(),
        }
    points = P.trail_points(fixes)
    if req is not None and req.error is None:
        map_data["trail"] = points
        map_data["trail_alerts"] = trail_alerts
    if req is None:
        end = t.astimezone(LONDON).replace(second=0, microsecond=0)
        req = TrailRequest(
            (end - timedelta(hours=24)).strftime(_LOCAL_FORMAT), end.strftime(_LOCAL_FORMAT), ""
        )
        shown = False
    else:
        shown = req.error is None
    return render(
        request,
        "person.html",
        {
            "title": f"Person {offender_id}",
            "pid": offender_id,
            "state": state,
            "fix": fix,
            "heard_ago": ago(fix.ts if fix else None, t),
            "strap": strap,
            "charging": charging,
            "conditions": conditions,
            "zones": zones,
            "curfews": curfews,
            "grid": grid,
            "monday": monday,
            "prev_week": (monday - timedelta(days=7)).isoformat(),
            "next_week": (monday + timedelta(days=7)).isoformat(),
            "tz": tz.key,
            "history": history,
            "steps": steps,
            "map_json": json.dumps(map_data),
            "req": req,
            "trail_shown": shown,
            "fix_count": len(fixes),
            "gaps": P.gap_counts(points),
            "problem": problem,
        },
        status_code=code,
    )


@router.get("/people/{offender_id}")
def person_page(
    request: Request,
    caller: ConsoleOfficer,
    offender_id: PersonId,
    week: Annotated[date | None, Query(description="Any day of the week to show")] = None,
) -> Response:
    return _page(request, caller, offender_id, week, None)


@router.post("/people/{offender_id}/trail")
def person_trail(
    request: Request,
    caller: ConsoleOfficer,
    offender_id: PersonId,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    start: LocalText = "",
    end: LocalText = "",
    purpose: Purpose = "",
    week: Annotated[date | None, Form()] = None,
) -> Response:
    check_csrf(request, csrf_token)
    req = trail_request(start, end, purpose)
    code = status.HTTP_200_OK if req.error is None else status.HTTP_422_UNPROCESSABLE_CONTENT
    return _page(request, caller, offender_id, week, req, code)


@router.post("/people/{offender_id}/trail/export")
def export_trail(
    request: Request,
    caller: ConsoleOfficer,
    offender_id: PersonId,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    start: LocalText = "",
    end: LocalText = "",
    purpose: Purpose = "",
    format: Annotated[Literal["csv", "geojson"], Form()] = "csv",
) -> Response:
    check_csrf(request, csrf_token)
    req = trail_request(start, end, purpose)
    if req.error is not None:
        return _page(request, caller, offender_id, None, req, status.HTTP_422_UNPROCESSABLE_CONTENT)
    with request.app.state.store.write() as session:
        _require_caseload(caller, offender_id, session)
        fixes = trail.offender_trail(session, offender_id=offender_id, t0=req.t0, t1=req.t1)
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="trail.export",
            offender_id=offender_id,
            time_from=req.t0,
            time_to=req.t1,
            purpose=req.purpose,
            detail={"fixes": len(fixes), "format": format},
        )
    stamp = f"{req.t0:%Y%m%dT%H%M}Z-{req.t1:%Y%m%dT%H%M}Z"
    if format == "csv":
        body, media, ext = P.export_csv(offender_id, fixes), "text/csv", "csv"
    else:
        body, media, ext = P.export_geojson(offender_id, fixes), "application/geo+json", "geojson"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="trail-{offender_id}-{stamp}.{ext}"'
        },
    )
