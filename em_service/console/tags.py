"""Admin page: assign and unassign a person's tags, with the date and time it takes effect.

Which tag a person wears is part of their conditions (``device_ids``), so an assignment is a new
version of the conditions with the new tag list, effective (``updated_at``) from the local date
and time given, saved through the API's own path
(:func:`em_service.api.offenders.publish_conditions`: the one check, publication, storage and
the ``conditions.put`` audit entry) and audited as ``tag.assign`` / ``tag.unassign`` too. The
worker applies versions by event time: readings of a tag count as the person's only while the
version of their time lists it (``ConditionsRegistry.offender_for``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi import status as http
from fastapi.responses import RedirectResponse, Response

from em_service.api import offenders as offenders_api
from em_service.api.offenders import OffenderId
from em_service.api.schemas import IDENT_PATTERN
from em_service.console import scene_view as V
from em_service.console.web import LONDON, PREFIX, ConsoleAdmin, check_csrf, now, render
from em_service.store import audit
from em_service.store.models import Offender

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)
_Text = Annotated[str, Form(max_length=100)]
MAX_TAGS = 8


@dataclass
class Change:
    """A checked tag change: the new tag list and when it takes effect (UTC)."""

    device_ids: list[str]
    at: datetime


def plan(
    action: str,
    device_id: str,
    current: list[str],
    last_change: datetime | None,
    day: str,
    clock: str,
    offset: str,
    now: datetime,
) -> Change:
    """Check a tag change against the person's current tags; raise :class:`V.BadField`.

    The time may not be in the future (after ``now``): the conditions topic keeps one version
    per person once compacted, so a change waiting for its time could be lost on a restart.
    """
    device_id = device_id.strip()
    if not re.fullmatch(IDENT_PATTERN, device_id) or len(device_id) > 64:
        raise V.BadField("device_id", "Enter the tag id: letters, digits, dot, dash, underscore")
    at = V.local_time("date", day, clock, offset, LONDON)
    if last_change is not None and at < last_change:
        raise V.BadField(
            "date",
            "Choose a time on or after the last change of these conditions "
            f"({last_change.astimezone(LONDON):%d %b %Y %H:%M} UK time)",
        )
    if at > now:
        raise V.BadField(
            "date",
            "Choose a time no later than now: a change takes effect when it is published "
            f"({now.astimezone(LONDON):%d %b %Y %H:%M} UK time)",
        )
    if action == "assign":
        if device_id in current:
            raise V.BadField("device_id", f"{device_id} is already assigned to this person")
        if len(current) >= MAX_TAGS:
            raise V.BadField("device_id", f"A person has at most {MAX_TAGS} tags")
        return Change([*current, device_id], at)
    if device_id not in current:
        raise V.BadField("device_id", f"{device_id} is not assigned to this person")
    if current == [device_id]:
        raise V.BadField(
            "device_id",
            "This is the person's only tag: assign the new tag first, then unassign this one",
        )
    return Change([d for d in current if d != device_id], at)


def _page(
    request: Request,
    offender_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: list[tuple[str, str]] | None = None,
    code: int = 200,
) -> Response:
    with request.app.state.store.read() as session:
        person = session.get(Offender, offender_id)
        if person is None or not person.conditions_json:
            raise HTTPException(
                http.HTTP_404_NOT_FOUND, "No such person: enrol them with their conditions first"
            )
        doc = json.loads(person.conditions_json)
        history, _ = audit.list_entries(session, offender_id=offender_id, limit=200)
        session.expunge_all()
    changes = [
        (e, json.loads(e.detail_json or "{}"))
        for e in history
        if e.action in ("tag.assign", "tag.unassign")
    ]
    t = now(request).astimezone(LONDON)
    return render(
        request,
        "admin_tags.html",
        {
            "title": f"Tags of {offender_id}",
            "offender_id": offender_id,
            "device_ids": doc.get("device_ids", []),
            "last_change": _last_change(doc),
            "changes": changes,
            "v": values or {"date": t.strftime("%Y-%m-%d"), "time": t.strftime("%H:%M")},
            "errors": errors or [],
            "by_field": dict(reversed(errors or [])),
        },
        status_code=code,
    )


def _last_change(doc: dict) -> datetime | None:
    text = doc.get("updated_at") or doc.get("valid_from")
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@router.get("/people/{offender_id}/tags")
def tags_page(request: Request, caller: ConsoleAdmin, offender_id: OffenderId) -> Response:
    return _page(request, offender_id)


@router.post("/people/{offender_id}/tags")
async def tags_change(
    request: Request,
    caller: ConsoleAdmin,
    offender_id: OffenderId,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[Literal["assign", "unassign"], Form()] = "assign",
    device_id: _Text = "",
    date: _Text = "",
    time: _Text = "",
    offset: _Text = "",
) -> Response:
    check_csrf(request, csrf_token)
    values = {"action": action, "device_id": device_id, "date": date, "time": time}
    values["offset"] = offset
    with request.app.state.store.read() as session:
        person = session.get(Offender, offender_id)
        doc = json.loads(person.conditions_json) if person and person.conditions_json else None
    if doc is None:
        raise HTTPException(http.HTTP_404_NOT_FOUND, "No such person")
    bad = http.HTTP_422_UNPROCESSABLE_CONTENT
    try:
        change = plan(
            action,
            device_id,
            doc["device_ids"],
            _last_change(doc),
            date,
            time,
            offset,
            now(request),
        )
    except V.BadField as exc:
        return _page(request, offender_id, values=values, errors=[(exc.field, str(exc))], code=bad)
    doc = {**doc, "device_ids": change.device_ids, "updated_at": change.at.isoformat()}
    settings = request.app.state.settings
    try:  # the API's own path: the one check, published, stored, audited
        done = await offenders_api.publish_conditions(
            request.app,
            caller,
            request.app.state.store,
            settings,
            offender_id,
            json.dumps(doc).encode(),
        )
    except HTTPException as exc:
        message = str(exc.detail)
        if exc.status_code == http.HTTP_409_CONFLICT:
            message = f"{device_id.strip()} is worn by someone else: unassign it there first"
        return _page(
            request,
            offender_id,
            values=values,
            errors=[("device_id", message)],
            code=exc.status_code,
        )
    with request.app.state.store.write() as session:
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action=f"tag.{action}",
            offender_id=offender_id,
            purpose=f"tag {action}",
            detail={
                "device_id": device_id.strip(),
                "from" if action == "assign" else "until": change.at.isoformat(),
                "version": done.version,
                "via": "console",
            },
        )
    return RedirectResponse(
        f"{PREFIX}/admin/people/{offender_id}/tags?done={action}",
        status_code=http.HTTP_303_SEE_OTHER,
    )
