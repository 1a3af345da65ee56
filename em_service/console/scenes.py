"""Investigator pages: the scenes list, a new scene (form or CSV), and a scene's page with its
matches on a map.

Role checks and store calls are the API's (``em_service/api/scenes.py``): listing and reading
are for investigators, reporting for investigators and admins; a new scene goes through the
API's own handler (same validation, publication, storage and audit). A scene's places are shown
only after the investigator has recorded the purpose (the crime reference) in the session, and
every view of them is audited with that purpose in the same transaction as the read.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi import Path as PathParam
from fastapi import status as http
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from em_service.api import scenes as scenes_api
from em_service.api.offenders import OffenderId
from em_service.api.schemas import IDENT_PATTERN
from em_service.clock import wall_now
from em_service.console import scene_view as V
from em_service.console.sessions import record_purpose
from em_service.console.web import (
    PREFIX,
    ConsoleInvestigator,
    ConsoleInvestigatorOrAdmin,
    check_csrf,
    render,
)
from em_service.contracts import CRIME_TYPES, Scene
from em_service.scenes import importer, pack
from em_service.scenes import store as scene_store
from em_service.scenes.basemap import TileSource
from em_service.scenes.config import get_scene_settings
from em_service.scenes.matching import RULE
from em_service.scenes.publish import SceneNotPublished
from em_service.store import audit
from em_service.store.audit import AuditEntry
from em_service.store.tokens import Caller

router = APIRouter(prefix=PREFIX, include_in_schema=False)
SceneId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=IDENT_PATTERN)]
LIST_MAX = 200
CSV_MAX_BYTES = 5 * 1024 * 1024
FORM_FIELDS = (
    "crime_reference",
    "crime_type",
    "start_date",
    "start_time",
    "start_offset",
    "end_date",
    "end_time",
    "end_offset",
    "radius_m",
    "lat",
    "lon",
    "grid_ref",
    "easting",
    "northing",
)
_Text = Annotated[str, Form(max_length=100)]


def _creators(session: Any, scene_ids: list[str]) -> dict[str, str]:
    """Return who reported each scene (its ``scene.create`` audit entry), where known."""
    wanted, found = set(scene_ids), {}
    rows = session.query(AuditEntry).filter(AuditEntry.action == "scene.create")
    for e in rows.order_by(AuditEntry.seq.desc()).limit(5000):
        sid = json.loads(e.detail_json or "{}").get("scene_id")
        if sid in wanted and sid not in found:
            found[sid] = e.actor
    return found


@router.get("/scenes")
def scenes_list(request: Request, caller: ConsoleInvestigator, mine: bool = False) -> Response:
    with request.app.state.store.read() as session:
        rows, total = scene_store.list_scenes(session, limit=LIST_MAX)
        counts = scene_store.match_counts(session, [r.scene_id for r in rows])
        creators = _creators(session, [r.scene_id for r in rows])
        session.expunge_all()
    items = [
        {
            "row": r,
            "status": V.status(r.searched_at, counts[r.scene_id]),
            "by": creators.get(r.scene_id, r.source or ""),
        }
        for r in rows
    ]
    if mine:
        items = [i for i in items if i["by"] == caller.name]
    return render(
        request,
        "scenes.html",
        {"title": "Scenes", "items": items, "total": total, "mine": mine, "shown_max": LIST_MAX},
    )


# --- New scene ------------------------------------------------------------------------------


def _form_page(
    request: Request,
    values: dict[str, str],
    errors: list[tuple[str, str]] | None = None,
    import_report: importer.ImportReport | None = None,
    code: int = 200,
) -> Response:
    s = get_scene_settings()
    return render(
        request,
        "scene_new.html",
        {
            "title": "Report a scene",
            "v": values,
            "errors": errors or [],
            "by_field": dict(reversed(errors or [])),
            "crime_types": CRIME_TYPES,
            "limits": {
                "min_radius_m": s.min_radius_m,
                "max_radius_m": s.max_radius_m,
                "default_radius_m": s.default_radius_m,
                "max_window_days": s.max_window_s / 86400,
            },
            "report": import_report,
        },
        status_code=code,
    )


@router.get("/scenes/new")
def scene_form(request: Request, caller: ConsoleInvestigatorOrAdmin) -> Response:
    return _form_page(request, {k: "" for k in FORM_FIELDS})


#: API validation messages → the form field they are about.
_API_FIELDS = (
    ("radius_m", "radius_m"),
    ("window_end", "end_date"),
    ("window", "start_date"),
    ("lat", "lat"),
    ("crime_reference", "crime_reference"),
    ("crime_type", "crime_type"),
)


def _field_of(message: str) -> str:
    return next((f for key, f in _API_FIELDS if key in message), "crime_reference")


def _body(values: dict[str, str], crs: str) -> tuple[scenes_api.SceneIn | None, list]:
    errors: list[tuple[str, str]] = []
    out: dict[str, Any] = {
        "crime_reference": values["crime_reference"].strip(),
        "crime_type": values["crime_type"],
    }
    if not out["crime_reference"]:
        errors.append(("crime_reference", "Enter the crime reference"))
    if values["crime_type"] not in CRIME_TYPES:
        errors.append(("crime_type", "Choose the crime type"))
    for end in ("start", "end"):
        try:
            out[f"window_{end}"] = V.local_time(
                f"{end}_date", values[f"{end}_date"], values[f"{end}_time"], values[f"{end}_offset"]
            )
        except V.BadField as exc:
            errors.append((exc.field, str(exc)))
    limits = get_scene_settings()
    radius: float | None = limits.default_radius_m  # for a grid reference's precision check
    if values["radius_m"].strip():
        try:
            out["radius_m"] = V.number("radius_m", values["radius_m"], "radius in metres")
        except V.BadField as exc:
            errors.append((exc.field, str(exc)))
        ok = limits.min_radius_m <= out.get("radius_m", -1.0) <= limits.max_radius_m
        radius = out["radius_m"] if ok else None  # a bad radius is the API's to report
    try:
        out["lat"], out["lon"] = V.place(
            values["lat"],
            values["lon"],
            values["easting"],
            values["northing"],
            crs,
            grid_ref=values["grid_ref"],
            radius_m=radius,
            max_radius_m=limits.max_radius_m,
        )
    except V.BadField as exc:
        errors.append((exc.field, str(exc)))
    if errors:
        return None, errors
    try:
        return scenes_api.SceneIn(**out), []
    except ValidationError as exc:
        return None, [
            (_field_of(str(e["loc"][0]) if e["loc"] else ""), f"{e['loc'][0]}: {e['msg']}")
            for e in exc.errors()
        ]


@router.post("/scenes/new")
async def scene_create(
    request: Request,
    caller: ConsoleInvestigatorOrAdmin,
    csrf_token: _Text = "",
    crime_reference: _Text = "",
    crime_type: _Text = "",
    start_date: _Text = "",
    start_time: _Text = "",
    start_offset: _Text = "",
    end_date: _Text = "",
    end_time: _Text = "",
    end_offset: _Text = "",
    radius_m: _Text = "",
    lat: _Text = "",
    lon: _Text = "",
    grid_ref: _Text = "",
    easting: _Text = "",
    northing: _Text = "",
) -> Response:
    check_csrf(request, csrf_token)
    values = {k: v for k, v in locals().items() if k in FORM_FIELDS}
    settings = request.app.state.settings
    body, errors = _body(values, settings.projected_crs)
    if body is None:
        return _form_page(request, values, errors, code=http.HTTP_422_UNPROCESSABLE_CONTENT)
    try:  # the API's own handler: same validation, publication, storage and audit
        made = await scenes_api.post_scene(request, caller, request.app.state.store, settings, body)
    except HTTPException as exc:
        message = str(exc.detail)
        if exc.status_code == http.HTTP_503_SERVICE_UNAVAILABLE:
            message = f"The scene was not saved: {message}. Try again in a minute."
        field = _field_of(message)
        if field == "lat" and values["grid_ref"].strip():  # the place was typed as a grid ref
            field = "grid_ref"
        return _form_page(request, values, [(field, message)], code=exc.status_code)
    target = f"{PREFIX}/scenes/{made.scene_id}" if caller.role == "investigator" else None
    return RedirectResponse(
        target or f"{PREFIX}/scenes/new?done={made.scene_id}", status_code=http.HTTP_303_SEE_OTHER
    )


async def _import(
    request: Request, caller: Caller, data: bytes, name: str
) -> importer.ImportReport:
    settings = request.app.state.settings
    report = importer.ImportReport()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenes.csv"
        path.write_bytes(data)
        scenes: list[Scene] = list(
            importer.read_scenes(
                path, get_scene_settings(), crs=settings.projected_crs, report=report
            )
        )
    publisher = request.app.state.scene_publisher
    published: list[Scene] = []
    failure: SceneNotPublished | None = None
    for scene in scenes:  # what Kafka took is stored even if a later scene fails
        try:
            await publisher.publish(scene)
        except SceneNotPublished as exc:
            failure = exc
            break
        published.append(scene)
    unsent, scenes = len(scenes) - len(published), published
    now = wall_now(settings)

    def _store() -> None:
        with request.app.state.store.write() as session:
            if scenes:
                scene_store.upsert_scenes(session, scenes, crs=settings.projected_crs, now=now)
            audit.append(
                session,
                actor=caller.name,
                role=caller.role,
                action="scenes.import",
                purpose=f"import {name}"[:200],
                detail={
                    "via": "console",
                    "file_sha256": hashlib.sha256(data).hexdigest(),
                    "format": report.format,
                    "imported": len(scenes),
                    "bad": len(report.bad),
                    "skipped": report.skipped,
                    "not_published": unsent,
                    "scenes": [s.scene_id for s in scenes][:1000],
                },
            )

    await anyio.to_thread.run_sync(_store)
    report.imported = len(scenes)
    if failure is not None:
        raise SceneNotPublished(
            f"{len(scenes)} scenes were published and saved, {unsent} were not: {failure}"
        )
    return report


@router.post("/scenes/import")
async def scene_import(
    request: Request,
    caller: ConsoleInvestigatorOrAdmin,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    check_csrf(request, csrf_token)
    blank = {k: "" for k in FORM_FIELDS}
    if file is None or not file.filename:
        return _form_page(request, blank, [("file", "Choose a CSV file")], code=400)
    data = await file.read(CSV_MAX_BYTES + 1)
    if len(data) > CSV_MAX_BYTES:
        return _form_page(
            request,
            blank,
            [("file", f"The file is larger than {CSV_MAX_BYTES >> 20} MB")],
            code=413,
        )
    try:
        data.decode("utf-8-sig")
        report = await _import(request, caller, data, Path(file.filename).name)
    except UnicodeDecodeError:
        return _form_page(request, blank, [("file", "The file is not UTF-8 text (CSV)")], code=400)
    except importer.BadFile as exc:
        return _form_page(request, blank, [("file", str(exc))], code=400)
    except SceneNotPublished as exc:
        message = f"Kafka did not take every scene: {exc}. Upload the file again (saved scenes are not duplicated)."
        return _form_page(request, blank, [("file", message)], code=503)
    errors = [("file", f"Line {line}: {why}") for line, why in report.bad]
    return _form_page(request, blank, errors, import_report=report, code=200)


# --- A scene's page -------------------------------------------------------------------------


@router.post("/scenes/{scene_id}/purpose")
def scene_purpose(
    request: Request,
    caller: ConsoleInvestigator,
    scene_id: SceneId,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Record the purpose (the scene's crime reference) before any of its places is shown."""
    check_csrf(request, csrf_token)
    with request.app.state.store.write() as session:
        row = scene_store.get_scene(session, scene_id)
        if row is None:
            raise HTTPException(http.HTTP_404_NOT_FOUND, "No such scene")
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="scene.purpose",
            purpose=row.crime_reference,
            detail={"scene_id": scene_id, "via": "console"},
        )
    record_purpose(request, scene_id)
    return RedirectResponse(f"{PREFIX}/scenes/{scene_id}", status_code=http.HTTP_303_SEE_OTHER)


@router.get("/scenes/{scene_id}")
def scene_page(request: Request, caller: ConsoleInvestigator, scene_id: SceneId) -> Response:
    opened = scene_id in request.state.console_session.purposes
    with request.app.state.store.write() as session:
        row = scene_store.get_scene(session, scene_id)
        if row is None:
            raise HTTPException(http.HTTP_404_NOT_FOUND, "No such scene")
        counts = scene_store.match_counts(session, [scene_id])[scene_id]
        matches: list[scene_store.SceneMatchRow] = []
        if opened:  # audited as the API's matches read, in the same transaction
            matches = V.ordered(scene_store.matches_of_scene(session, scene_id))
            audit.append(
                session,
                actor=caller.name,
                role=caller.role,
                action="scene.matches.read",
                purpose=row.crime_reference,
                time_from=row.window_start,
                time_to=row.window_end,
                detail={
                    "scene_id": scene_id,
                    "offenders": [m.offender_id for m in matches],
                    "via": "console",
                },
            )
        session.expunge_all()
    found = [m for m in matches if m.confidence != "excluded"]
    excluded = [m for m in matches if m.confidence == "excluded"]
    return render(
        request,
        "scene.html",
        {
            "title": f"Scene {row.crime_reference}",
            "s": row,
            "opened": opened,
            "status": V.status(row.searched_at, counts),
            "found": [(m, *V.fixes_counts(m)) for m in found],
            "excluded": [(m, *V.fixes_counts(m)) for m in excluded],
            "map_json": json.dumps(V.map_data(row, found)) if opened else "",
            "rule": RULE,
            "offset": V.offset_text,
            "london": V.LONDON,
        },
    )


def evidence_tiles(settings: Any) -> TileSource | None:
    """Return the evidence image's tile source, None when no base map is configured."""
    if not settings.evidence_tile_url:
        return None
    return TileSource(
        settings.evidence_tile_url,
        settings.evidence_tile_attribution,
        settings.evidence_tile_timeout_s,
    )


@router.get("/scenes/{scene_id}/matches/{offender_id}/evidence.zip")
def evidence_pack(
    request: Request, caller: ConsoleInvestigator, scene_id: SceneId, offender_id: OffenderId
) -> Response:
    """The evidence pack of one match (exports, map image, manifest), audited as the API's
    evidence export with the pack's head; only after the purpose was recorded."""
    if scene_id not in request.state.console_session.purposes:
        return RedirectResponse(f"{PREFIX}/scenes/{scene_id}", status_code=http.HTTP_303_SEE_OTHER)
    settings = request.app.state.settings
    now = wall_now(settings)
    with request.app.state.store.write() as session:
        scene = scene_store.get_scene(session, scene_id)
        match = scene_store.get_match(session, scene_id, offender_id) if scene else None
        if scene is None or match is None:
            raise HTTPException(http.HTTP_404_NOT_FOUND, "No such match")
        data, head, records_head = pack.build(
            scene,
            match,
            actor=caller.name,
            exported_at=now,
            crs=settings.projected_crs,
            tz=settings.timezone,
            tiles=evidence_tiles(settings),
        )
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="scene.evidence.export",
            purpose=scene.crime_reference,
            offender_id=offender_id,
            time_from=scene.window_start,
            time_to=scene.window_end,
            detail={
                "scene_id": scene_id,
                "format": "pack",
                "head": head,
                "records_head": records_head,
                "via": "console",
            },
            at=now,
        )
    name = f"evidence-pack-{scene_id}-{offender_id}.zip"
    return Response(
        content=data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Evidence-Head": head},
    )
