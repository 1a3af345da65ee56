"""Investigator pages for police crime batches: the list (run status and timings, crimes and
wearers matched), a batch's page (summary, runs, rejected rows; after the purpose is recorded,
the per-crime matches and the report downloads) and the upload form.

Role checks, store calls and audit actions are the API's (``em_service/api/crime_batches.py``):
reading is for investigators, uploading for investigators and admins, and an upload goes
through the API's own handler (same parser, storage, runs, audit and publication). The matches
of a batch name people and their closest approach: they are shown, and the report downloaded,
only after the investigator has recorded the purpose (the batch id) in the session, and each
view is audited with it, as the scene pages do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi import status as http
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from em_service.api import crime_batches as batches_api
from em_service.api.crime_batches import BatchId
from em_service.clock import wall_now
from em_service.console.sessions import record_purpose
from em_service.console.web import (
    PREFIX,
    ConsoleInvestigator,
    ConsoleInvestigatorOrAdmin,
    check_csrf,
    render,
)
from em_service.scenes import store as scene_store
from em_service.scenes.batches import report as batch_report
from em_service.scenes.batches import store as batch_store
from em_service.store import audit

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LIST_MAX = 200
RANK = {"at_scene": 3, "passed_by": 2, "near_scene": 1}


def purpose_key(batch_id: str) -> str:
    """The session's purpose key of a batch (a space: never a scene id)."""
    return f"crime batch {batch_id}"


def matched(session: Session, batch_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Return per batch (crimes matched, wearers matched); exclusions are not matches."""
    C, M = batch_store.CrimeBatchCrimeRow, scene_store.SceneMatchRow
    rows = session.execute(
        select(C.batch_id, C.crime_reference, M.offender_id)
        .join(M, M.scene_id == C.scene_id)
        .where(C.batch_id.in_(batch_ids), M.confidence != "excluded")
    ).all()
    crimes: dict[str, set[str]] = {b: set() for b in batch_ids}
    wearers: dict[str, set[str]] = {b: set() for b in batch_ids}
    for batch_id, ref, offender in rows:
        crimes[batch_id].add(ref)
        wearers[batch_id].add(offender)
    return {b: (len(crimes[b]), len(wearers[b])) for b in batch_ids}


@dataclass
class CrimeView:
    """One crime of a batch's page: its record and its matches (strongest first)."""

    crime: dict[str, Any]
    matches: list[dict[str, Any]]


def crime_views(records: list[dict[str, Any]]) -> list[CrimeView]:
    """Group the report's ``crime`` and ``match`` records (positions are left to the downloads)."""
    out: list[CrimeView] = []
    by_ref: dict[str, CrimeView] = {}
    for r in records:
        if r.get("record") == "crime":
            by_ref[r["crime_reference"]] = view = CrimeView(r, [])
            out.append(view)
        elif r.get("record") == "match" and r["crime_reference"] in by_ref:
            by_ref[r["crime_reference"]].matches.append(r)
    for v in out:
        v.matches.sort(key=lambda m: (-RANK.get(m["confidence"], 0), m["closest_m"]))
    return out


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@router.get("/batches")
def batches_list(
    request: Request, caller: ConsoleInvestigator, force: str | None = None
) -> Response:
    force = force.strip() if force and force.strip() else None
    with request.app.state.store.write() as session:
        rows, total = batch_store.list_batches(session, force=force, limit=LIST_MAX)
        counts = matched(session, [r.batch_id for r in rows])
        latest = {}
        for r in rows:
            runs = batch_store.runs_of(session, r.batch_id)
            latest[r.batch_id] = batch_store.run_dict(runs[0]) if runs else None
        audit.append(  # as GET /api/v1/crime-batches
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.list",
            purpose="crime batches",
            detail={"force": force, "via": "console"},
        )
        session.expunge_all()
    items = [
        {
            "row": r,
            "run": latest[r.batch_id],
            "started": _when(latest[r.batch_id]["started_at"]) if latest[r.batch_id] else None,
            "finished": _when(latest[r.batch_id]["finished_at"]) if latest[r.batch_id] else None,
            "crimes_matched": counts[r.batch_id][0],
            "wearers_matched": counts[r.batch_id][1],
        }
        for r in rows
    ]
    return render(
        request,
        "batches.html",
        {
            "title": "Crime batches",
            "items": items,
            "total": total,
            "force": force or "",
            "shown_max": LIST_MAX,
        },
    )


# --- Upload ---------------------------------------------------------------------------------


def _upload_page(
    request: Request,
    *,
    error: str | None = None,
    result: batches_api.BatchReceived | None = None,
    code: int = 200,
) -> Response:
    return render(
        request,
        "batch_upload.html",
        {
            "title": "Upload a crime batch",
            "error": error,
            "result": result,
            "max_mb": batches_api.MAX_BYTES >> 20,
        },
        status_code=code,
    )


@router.get("/batches/upload")
def upload_form(request: Request, caller: ConsoleInvestigatorOrAdmin) -> Response:
    return _upload_page(request)


@router.post("/batches/upload")
async def upload(
    request: Request,
    caller: ConsoleInvestigatorOrAdmin,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[Literal["upload", "check"], Form()] = "upload",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    check_csrf(request, csrf_token)
    if file is None or not file.filename:
        return _upload_page(request, error="Choose a crime batch file (CSV)", code=400)
    try:  # the API's own handler: same parser, storage, runs, audit and publication
        result = await batches_api.upload_batch(
            request,
            caller,
            request.app.state.store,
            request.app.state.settings,
            Response(),
            file,
            check=action == "check",
        )
    except HTTPException as exc:
        message = str(exc.detail)
        if exc.status_code == http.HTTP_503_SERVICE_UNAVAILABLE:
            message = f"The batch was stored, but {message.removeprefix('batch stored but ')}"
        elif message.startswith("file rejected: "):
            message = "The file was rejected: " + message.removeprefix("file rejected: ")
        return _upload_page(request, error=message, code=exc.status_code)
    return _upload_page(request, result=result)


# --- A batch's page ---------------------------------------------------------------------


@router.post("/batches/{batch_id}/purpose")
def batch_purpose(
    request: Request,
    caller: ConsoleInvestigator,
    batch_id: BatchId,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Record the purpose (the batch id) before any match of the batch is shown."""
    check_csrf(request, csrf_token)
    with request.app.state.store.write() as session:
        if batch_store.get_batch(session, batch_id) is None:
            raise HTTPException(http.HTTP_404_NOT_FOUND, "No such crime batch")
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.purpose",
            purpose=batch_id,
            detail={"via": "console"},
        )
    record_purpose(request, purpose_key(batch_id))
    return RedirectResponse(f"{PREFIX}/batches/{batch_id}", status_code=http.HTTP_303_SEE_OTHER)


@router.get("/batches/{batch_id}")
def batch_page(request: Request, caller: ConsoleInvestigator, batch_id: BatchId) -> Response:
    opened = purpose_key(batch_id) in request.state.console_session.purposes
    now = wall_now(request.app.state.settings)
    with request.app.state.store.write() as session:
        row = batch_store.get_batch(session, batch_id)
        if row is None:
            raise HTTPException(http.HTTP_404_NOT_FOUND, "No such crime batch")
        runs = [batch_store.run_dict(r) for r in batch_store.runs_of(session, batch_id)]
        audit.append(  # as GET /api/v1/crime-batches/{id}
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.read",
            purpose=batch_id,
            detail={"via": "console"},
        )
        records: list[dict[str, Any]] = []
        if opened:  # as the API's JSON report read, in the same transaction
            records = batch_report.build(session, batch_id, generated_at=now)
            audit.append(
                session,
                actor=caller.name,
                role=caller.role,
                action="crime_batches.report",
                purpose=batch_id,
                detail={"format": "page", "records": len(records), "head": "", "via": "console"},
                at=now,
            )
        session.expunge_all()
    for run in runs:
        run["started"], run["finished"] = _when(run["started_at"]), _when(run["finished_at"])
    return render(
        request,
        "batch.html",
        {
            "title": f"Crime batch {batch_id}",
            "b": row,
            "opened": opened,
            "runs": runs,
            "rejections": json.loads(row.rejections_json),
            "summary": records[1] if records else None,
            "crimes": crime_views(records[2:]),
        },
    )


@router.get("/batches/{batch_id}/report.{fmt}")
def batch_report_download(
    request: Request,
    caller: ConsoleInvestigator,
    batch_id: BatchId,
    fmt: Literal["csv", "geojson"],
) -> Response:
    """The batch's report (hash-chained CSV or GeoJSON), audited with its head as the API's
    download is; only after the purpose was recorded."""
    if purpose_key(batch_id) not in request.state.console_session.purposes:
        return RedirectResponse(f"{PREFIX}/batches/{batch_id}", status_code=http.HTTP_303_SEE_OTHER)
    now = wall_now(request.app.state.settings)
    with request.app.state.store.write() as session:
        try:
            records = batch_report.build(session, batch_id, generated_at=now)
        except KeyError:
            raise HTTPException(http.HTTP_404_NOT_FOUND, "No such crime batch") from None
        data, head = batch_report.export(records, fmt)
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.report",
            purpose=batch_id,
            detail={"format": fmt, "records": len(records), "head": head, "via": "console"},
            at=now,
        )
    return Response(
        content=data,
        media_type=batches_api.MEDIA[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="report-{batch_id}.{fmt}"',
            "X-Evidence-Head": head,
        },
    )
