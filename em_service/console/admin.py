"""Admin pages: everyone's conditions, and the conditions editor (zones drawn on the map or
uploaded as GeoJSON, the document edited as JSON, the current version and the draft side by
side). Admins only, like ``PUT /api/v1/offenders/{id}/conditions``; a draft is checked by the one
validation (``conditions.validate.check``) and saved through the API's own path
(:func:`em_service.api.offenders.publish_conditions`: checked, published, stored, audited)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio
import msgspec
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi import status as http
from fastapi.responses import RedirectResponse, Response

from em_service.api import offenders as offenders_api
from em_service.api.offenders import OffenderId
from em_service.api.schemas import IDENT_PATTERN
from em_service.conditions.validate import MAX_CONDITIONS_BYTES, InvalidConditions, check
from em_service.console import person as P
from em_service.console.web import LONDON, PREFIX, ConsoleAdmin, check_csrf, now, render
from em_service.store import offenders
from em_service.store.models import Offender

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)
_NEAR = re.compile(r"near lon (-?[\d.]+), lat (-?[\d.]+)")
_ITEM = re.compile(
    r"^(?:invalid conditions: )?(?:conditions contract: )?(?:zone )?([A-Za-z0-9_.:-]+): "
)


def problem_place(message: str) -> dict[str, Any]:
    """Return where a validation message points: the zone or curfew id, and a lon/lat."""
    out: dict[str, Any] = {"message": message}
    if m := _ITEM.match(message):
        out["item"] = m.group(1)
    if m := _NEAR.search(message):
        out["lon"], out["lat"] = float(m.group(1)), float(m.group(2))
    return out


_AT = re.compile(r"\$\.(zones|curfews)\[(\d+)\]")


def shapes_of(draft: dict | None, problem: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return the draft's zones and curfews as a list, the one a problem is about (by id, or by
    its ``$.zones[i]`` path) carrying the message, so it is shown next to that shape."""
    out: list[dict[str, Any]] = []
    for kind in ("zones", "curfews"):
        items = draft.get(kind) if isinstance(draft, dict) else None
        for i, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            props = item.get("properties") if kind == "zones" else item
            props = props if isinstance(props, dict) else {}
            ident = str(props.get("zone_id" if kind == "zones" else "curfew_id") or f"#{i + 1}")
            out.append(
                {
                    "kind": "Zone" if kind == "zones" else "Curfew",
                    "id": ident,
                    "anchor": f"shape-{kind}-{i}",
                    "name": str(props.get("name") or ""),
                    "detail": str(props.get("kind") or ""),
                    "path": (kind, i),
                }
            )
    if problem:
        at = _AT.search(problem["message"])
        for shape in out:
            if shape["id"] == problem.get("item") or (at and shape["path"] == (at[1], int(at[2]))):
                shape["error"] = problem["message"]
                problem["anchor"] = shape["anchor"]
                break
    return out


def _doc_of(person: Offender | None) -> dict | None:
    return json.loads(person.conditions_json) if person and person.conditions_json else None


@router.get("/people")
def people(request: Request, caller: ConsoleAdmin) -> Response:
    with request.app.state.store.read() as session:
        states, total = offenders.list_offenders(session, only=None, limit=500, offset=0)
    return render(
        request,
        "admin_people.html",
        {"title": "People and conditions", "states": states, "total": total},
    )


@router.get("/enrol")
def enrol(request: Request, caller: ConsoleAdmin, offender_id: str = "") -> Response:
    """Open the conditions editor of a new person (enrolled when their conditions are saved)."""
    if not re.fullmatch(IDENT_PATTERN, offender_id) or len(offender_id) > 64:
        raise HTTPException(
            http.HTTP_400_BAD_REQUEST,
            "Enter the person's id: 1 to 64 letters, digits, dot, dash, underscore or colon.",
        )
    return RedirectResponse(
        f"{PREFIX}/admin/people/{offender_id}/conditions", status_code=http.HTTP_303_SEE_OTHER
    )


def _grids(request: Request, draft: str, current: dict | None) -> dict[str, Any]:
    """The curfew week grids (local time) of the current version and of a valid draft, for the
    week of today (the console's clock)."""
    crs = request.app.state.settings.projected_crs
    today = now(request).astimezone(LONDON).date()
    monday = today - timedelta(days=today.weekday())
    out: dict[str, Any] = {"monday": monday}
    for name, raw in (("draft", draft), ("current", json.dumps(current) if current else None)):
        if raw is None:
            continue
        try:
            checked = check(raw.encode(), crs=crs)
        except InvalidConditions:
            continue
        zone = ZoneInfo(checked.conditions.timezone)
        out[name] = P.week_grid(checked.compiled, checked.conditions, monday, zone)
    return out


def _editor(
    request: Request,
    offender_id: str,
    draft: str,
    *,
    error: str | None = None,
    valid: bool = False,
    code: int = 200,
) -> Response:
    with request.app.state.store.read() as session:
        person = session.get(Offender, offender_id)  # None: a person being enrolled
        current = _doc_of(person)
        version = person.conditions_version if person is not None else None
        enrolled = person is not None
    try:
        draft_doc = json.loads(draft)
    except ValueError:
        draft_doc = None
    problem = problem_place(error) if error else None
    shapes = shapes_of(draft_doc if isinstance(draft_doc, dict) else None, problem)
    maps = {
        "current": current or {},
        "draft": draft_doc if isinstance(draft_doc, dict) else {},
        "problem": problem,
    }
    return render(
        request,
        "admin_conditions.html",
        {
            "title": f"Conditions of {offender_id}",
            "offender_id": offender_id,
            "current_json": json.dumps(current, indent=2, sort_keys=True) if current else "",
            "draft": draft,
            "error": error,
            "valid": valid,
            "version": version,
            "enrolled": enrolled,
            "maps_json": json.dumps(maps),
            "shapes": shapes,
            "problem": problem,
            "max_bytes": MAX_CONDITIONS_BYTES,
            "grids": _grids(request, draft, current) if valid else None,
        },
        status_code=code,
    )


@router.get("/people/{offender_id}/conditions")
def conditions_page(request: Request, caller: ConsoleAdmin, offender_id: OffenderId) -> Response:
    with request.app.state.store.read() as session:
        current = _doc_of(session.get(Offender, offender_id))
    skeleton = {"offender_id": offender_id, "device_ids": [], "zones": [], "curfews": []}
    draft = {k: v for k, v in (current or skeleton).items() if k not in ("updated_at",)}
    return _editor(request, offender_id, json.dumps(draft, indent=2, sort_keys=True))


@router.post("/people/{offender_id}/conditions")
async def conditions_save(
    request: Request,
    caller: ConsoleAdmin,
    offender_id: OffenderId,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    conditions: Annotated[str, Form(max_length=MAX_CONDITIONS_BYTES)] = "",
    action: Annotated[str, Form(max_length=20)] = "save",
) -> Response:
    check_csrf(request, csrf_token)
    settings = request.app.state.settings
    raw = conditions.encode()
    if action == "check":
        try:
            await anyio.to_thread.run_sync(
                lambda: check(raw, crs=settings.projected_crs, key=offender_id)
            )
        except InvalidConditions as exc:
            return _editor(request, offender_id, conditions, error=str(exc), code=422)
        return _editor(request, offender_id, conditions, valid=True)
    try:  # the API's own path: the same check, then published, stored and audited
        done = await offenders_api.publish_conditions(
            request.app, caller, request.app.state.store, settings, offender_id, raw
        )
    except HTTPException as exc:
        return _editor(
            request, offender_id, conditions, error=str(exc.detail), code=exc.status_code
        )
    except msgspec.MsgspecError as exc:  # pragma: no cover - check() refuses these first
        return _editor(request, offender_id, conditions, error=str(exc), code=422)
    return RedirectResponse(
        f"{PREFIX}/admin/people/{offender_id}/conditions?saved={done.version}",
        status_code=http.HTTP_303_SEE_OTHER,
    )
