"""Admin page: the schedules of a person's conditions as a week grid form (no JavaScript needed).

Each curfew and each scheduled zone is a table of the seven days, each day with its windows
(local start and end; an end at or before the start runs into the next day) and one empty row
to add a window; clearing both times removes one. Curfews also take one-off exceptions (a
local date with other times, or cancelled), and the conditions their validity dates. The form
becomes a draft of the stored document, checked by the one validation
(``conditions.validate.check``: the rules compute the windows DST-correct from it) and saved
through the API's own path (:func:`em_service.api.offenders.publish_conditions`). Errors are
shown next to the field, or the curfew or zone, that caused them, and in the error summary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import anyio
from fastapi import APIRouter, HTTPException, Request
from fastapi import status as http
from fastapi.responses import RedirectResponse, Response

from em_service.api import offenders as offenders_api
from em_service.api.offenders import OffenderId
from em_service.conditions.validate import InvalidConditions, check
from em_service.console import person as P
from em_service.console import scene_view as V
from em_service.console.admin import problem_place
from em_service.console.web import LONDON, PREFIX, ConsoleAdmin, check_csrf, now, render
from em_service.store.models import Offender

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                            "Saturday", "Sunday"), strict=True))  # fmt: skip
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MAX_SLOTS = 6
_AT = re.compile(r"\$\.(curfews|zones)\[(\d+)\]")
MAX_EXCEPTIONS = 60


@dataclass
class Subject:
    """A curfew (``c``) or zone (``z``) of the form: its windows per day, exceptions (curfews)."""

    kind: str
    index: int
    item_id: str
    name: str
    days: dict[str, list[tuple[str, str]]]
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    always: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}{self.index}"


@dataclass
class Form:
    """The whole form: subjects and the validity dates (local date and time strings)."""

    subjects: list[Subject]
    valid: dict[str, str]


def grid_of(windows: list[dict[str, Any]] | None) -> dict[str, list[tuple[str, str]]]:
    """Return the windows starting on each day, from contract weekly windows."""
    out: dict[str, list[tuple[str, str]]] = {d: [] for d in DAYS}
    for w in windows or []:
        for d in w["days"]:
            out[d].append((w["start"], w["end"]))
    for d in DAYS:
        out[d].sort()
    return out


def windows_of(grid: Mapping[str, list[tuple[str, str]]]) -> list[dict[str, Any]]:
    """Return contract weekly windows (days grouped by identical times) from a day grid."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for d in DAYS:
        for pair in grid.get(d, []):
            if d not in grouped.setdefault(pair, []):
                grouped[pair].append(d)
    return [{"days": days, "start": s, "end": e} for (s, e), days in sorted(grouped.items())]


def _local_parts(text: str | None) -> tuple[str, str]:
    if not text:
        return "", ""
    t = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(LONDON)
    return t.strftime("%Y-%m-%d"), t.strftime("%H:%M")


def form_of(doc: dict[str, Any]) -> Form:
    """Return the form of a conditions document."""
    subjects = [
        Subject(
            "c",
            i,
            c["curfew_id"],
            c["curfew_id"],
            grid_of(c.get("windows")),
            [
                {
                    "date": x["date"],
                    "cancelled": bool(x.get("cancelled")),
                    "start": x.get("start") or "",
                    "end": x.get("end") or "",
                }
                for x in c.get("exceptions") or []
            ],
        )
        for i, c in enumerate(doc.get("curfews") or [])
    ]
    for i, z in enumerate(doc.get("zones") or []):
        p = z["properties"]
        schedule = p.get("schedule")
        subjects.append(
            Subject("z", i, p["zone_id"], p.get("name") or p["zone_id"], grid_of(schedule))
        )
        subjects[-1].always = schedule is None
    valid = {}
    for k in ("valid_from", "valid_to"):
        valid[f"{k}_date"], valid[f"{k}_time"] = _local_parts(doc.get(k))
    return Form(subjects, valid)


def read_form(doc: dict[str, Any], posted: Mapping[str, str]) -> tuple[Form, list]:
    """Read the posted grid into a :class:`Form` (the strings as typed) and its field errors
    ``[(field id, message)]``: times not HH:MM, a start without an end, a bad date."""
    form, errors = form_of(doc), []
    for s in form.subjects:
        for d in DAYS:
            pairs = []
            for j in range(MAX_SLOTS):
                a = posted.get(f"{s.key}-{d}-{j}-start", "").strip()
                b = posted.get(f"{s.key}-{d}-{j}-end", "").strip()
                if not a and not b:
                    continue
                for part, value in (("start", a), ("end", b)):
                    if not HHMM.match(value):
                        errors.append(
                            (
                                f"{s.key}-{d}-{len(pairs)}-{part}",
                                f"{s.item_id}, {DAY_NAMES[d]}: enter the {part} as HH:MM "
                                "(24-hour), or clear both times to remove the window",
                            )
                        )
                pairs.append((a, b))
            s.days[d] = pairs
        s.always = s.kind == "z" and posted.get(f"{s.key}-always") == "yes"
        if s.kind == "c":
            s.exceptions = []
            for k in range(MAX_EXCEPTIONS):
                x = {
                    p: posted.get(f"{s.key}-x{k}-{p}", "").strip() for p in ("date", "start", "end")
                }
                cancelled = posted.get(f"{s.key}-x{k}-cancelled") == "yes"
                if not any(x.values()) and not cancelled:
                    continue
                row = len(s.exceptions)
                x["cancelled"] = cancelled
                s.exceptions.append(x)
                try:
                    date.fromisoformat(x["date"])
                except ValueError:
                    errors.append(
                        (f"{s.key}-x{row}-date", f"{s.item_id}: enter the exception's date")
                    )
                if not cancelled:
                    for part in ("start", "end"):
                        if not HHMM.match(x[part]):
                            errors.append(
                                (
                                    f"{s.key}-x{row}-{part}",
                                    f"{s.item_id}, exception: enter the {part} as HH:MM, "
                                    "or tick cancelled",
                                )
                            )
    for k in ("valid_from", "valid_to"):
        form.valid[f"{k}_date"] = posted.get(f"{k}_date", "").strip()
        form.valid[f"{k}_time"] = posted.get(f"{k}_time", "").strip()
    return form, errors


def draft_of(doc: dict[str, Any], form: Form) -> tuple[dict[str, Any], list]:
    """Return the conditions document the form describes and the validity dates' errors."""
    out = json.loads(json.dumps(doc))
    out.pop("updated_at", None)
    errors: list[tuple[str, str]] = []
    for s in form.subjects:
        windows = windows_of(s.days)
        if s.kind == "c":
            if not windows:
                errors.append((s.key, f"Curfew {s.item_id}: enter at least one window"))
            c = out["curfews"][s.index]
            c["windows"] = windows
            c["exceptions"] = [
                {"date": x["date"], "cancelled": True}
                if x["cancelled"]
                else {"date": x["date"], "start": x["start"], "end": x["end"]}
                for x in s.exceptions
            ]
        else:
            props = out["zones"][s.index]["properties"]
            props["schedule"] = None if s.always or not windows else windows
            if props["schedule"] is None:
                props.pop("schedule")
    for k in ("valid_from", "valid_to"):
        day, clock = form.valid[f"{k}_date"], form.valid[f"{k}_time"]
        if not day and not clock:
            out.pop(k, None)
            continue
        try:
            out[k] = V.local_time(f"{k}_date", day, clock or "00:00").isoformat()
        except V.BadField as exc:
            errors.append((exc.field, str(exc)))
    return out, errors


def subject_error(form: Form, message: str) -> tuple[str, str]:
    """Return (field id, message) of a check's message: the curfew's or zone's table when the
    message names one, else the summary of the form."""
    item = problem_place(message).get("item")
    at = _AT.search(message)
    for s in form.subjects:
        if s.item_id == item or (at and (at[1][0], int(at[2])) == (s.kind, s.index)):
            return s.key, message
    if "valid_to" in message:
        return "valid_to_date", message
    return "schedule-form", message


# --- Routes ---------------------------------------------------------------------------------


def _stored(request: Request, offender_id: str) -> tuple[dict[str, Any], str | None]:
    with request.app.state.store.read() as session:
        person = session.get(Offender, offender_id)
        if person is None or not person.conditions_json:
            raise HTTPException(
                http.HTTP_404_NOT_FOUND, "No such person: enrol them with their conditions first"
            )
        return json.loads(person.conditions_json), person.conditions_version


def _page(
    request: Request,
    offender_id: str,
    form: Form,
    *,
    errors: list[tuple[str, str]] | None = None,
    draft: dict[str, Any] | None = None,
    version: str | None = None,
    code: int = 200,
) -> Response:
    grid = None
    if draft is not None:  # a checked draft: its curfew hours this week
        checked = check(json.dumps(draft).encode(), crs=request.app.state.settings.projected_crs)
        today = now(request).astimezone(LONDON).date()
        monday = today - timedelta(days=today.weekday())
        zone = ZoneInfo(checked.conditions.timezone)
        grid = (monday, P.week_grid(checked.compiled, checked.conditions, monday, zone))
    by_field: dict[str, str] = {}
    for name, message in errors or []:
        by_field.setdefault(name, message)
    return render(
        request,
        "admin_schedule.html",
        {
            "title": f"Schedules of {offender_id}",
            "offender_id": offender_id,
            "form": form,
            "days": DAYS,
            "day_names": DAY_NAMES,
            "errors": errors or [],
            "by_field": by_field,
            "grid": grid,
            "version": version,
        },
        status_code=code,
    )


@router.get("/people/{offender_id}/schedule")
def schedule_page(request: Request, caller: ConsoleAdmin, offender_id: OffenderId) -> Response:
    doc, version = _stored(request, offender_id)
    return _page(request, offender_id, form_of(doc), version=version)


@router.post("/people/{offender_id}/schedule")
async def schedule_save(
    request: Request, caller: ConsoleAdmin, offender_id: OffenderId
) -> Response:
    posted = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    check_csrf(request, posted.get("csrf_token"))
    doc, version = _stored(request, offender_id)
    form, errors = read_form(doc, posted)
    draft, more = draft_of(doc, form)
    errors += more
    bad = http.HTTP_422_UNPROCESSABLE_CONTENT
    if errors:
        return _page(request, offender_id, form, errors=errors, version=version, code=bad)
    settings = request.app.state.settings
    raw = json.dumps(draft).encode()
    try:
        await anyio.to_thread.run_sync(
            lambda: check(raw, crs=settings.projected_crs, key=offender_id)
        )
    except InvalidConditions as exc:
        errors = [subject_error(form, str(exc))]
        return _page(request, offender_id, form, errors=errors, version=version, code=bad)
    if posted.get("action") == "check":
        return _page(request, offender_id, form, draft=draft, version=version)
    try:  # the API's own path: the same check, then published, stored and audited
        done = await offenders_api.publish_conditions(
            request.app, caller, request.app.state.store, settings, offender_id, raw
        )
    except HTTPException as exc:
        errors = [("schedule-form", str(exc.detail))]
        return _page(
            request, offender_id, form, errors=errors, version=version, code=exc.status_code
        )
    return RedirectResponse(
        f"{PREFIX}/admin/people/{offender_id}/schedule?saved={done.version}",
        status_code=http.HTTP_303_SEE_OTHER,
    )
