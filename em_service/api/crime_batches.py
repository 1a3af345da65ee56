"""Police crime batches: upload (a force's automated sender or an investigator), check, list,
a batch with its rejected rows and runs, the proximity report, a re-run.

``POST /api/v1/crime-batches`` takes the MoJ 13-column CSV as a multipart ``file``
(``force-feed``, ``investigator`` or ``admin``); ``?check=true`` validates only. Reading
batches and reports is for investigators, audited with the batch id as the purpose; a report
download also records the head of its hash chain. Stored first, then published: a batch whose
publication fails is stored and answered 503; ``…/rerun`` starts its run again.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from fastapi import (
    APIRouter,
    Depends,
    File,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi import status as http
from pydantic import BaseModel

from em_service.api.deps import Investigator, SettingsDep, StoreDep, not_found, require
from em_service.api.errors import responses
from em_service.api.schemas import PageLimit, PageOffset
from em_service.clock import wall_now
from em_service.contracts import Scene
from em_service.scenes.batches import report as batch_report
from em_service.scenes.batches import service
from em_service.scenes.batches import store as batch_store
from em_service.scenes.batches.config import get_batch_settings
from em_service.scenes.batches.format import BadFile
from em_service.scenes.config import get_scene_settings
from em_service.scenes.publish import SceneNotPublished, ScenePublisher
from em_service.store import audit
from em_service.store.tokens import Caller

router = APIRouter(prefix="/api/v1", tags=["crime batches"])
Sender = Annotated[Caller, Depends(require("force-feed", "investigator", "admin"))]
InvestigatorOrAdmin = Annotated[Caller, Depends(require("investigator", "admin"))]
BatchId = Annotated[
    str,
    Path(min_length=3, max_length=32, pattern=r"^[A-Za-z]{2,8}[0-9]{8}$", description="Batch id"),
]
MAX_BYTES = 20 * 1024 * 1024
MEDIA = {"geojson": "application/geo+json", "csv": "text/csv; charset=utf-8"}


class RowError(BaseModel):
    line: int
    crime_reference: str
    reason: str


class BatchReceived(BaseModel):
    """What an upload did: counts, every rejected row, and the runs started."""

    rows: int
    accepted: int
    rejected: int
    batches: list[str]
    errors: list[RowError]
    runs: dict[str, dict[str, Any]] = {}
    file_sha256: str = ""
    checked_only: bool = False


class RunOut(BaseModel):
    run_id: int
    trigger: str
    status: str
    algorithm: str
    parameters: dict[str, Any]
    crimes: int
    crimes_searched: int
    started_at: str
    finished_at: str | None
    seconds: float | None
    changes: list[dict[str, Any]] | None


class BatchOut(BaseModel):
    batch_id: str
    force_code: str
    batch_date: str
    sends: int
    rows_received: int
    rows_accepted: int
    rows_rejected: int
    received_at: str
    updated_at: str
    run_status: str | None
    rejections: list[RowError] = []
    runs: list[RunOut] = []


class BatchPage(BaseModel):
    items: list[BatchOut]
    total: int


def _batch_out(session: Any, row: batch_store.CrimeBatchRow, full: bool) -> BatchOut:
    runs = batch_store.runs_of(session, row.batch_id)
    return BatchOut(
        batch_id=row.batch_id,
        force_code=row.force_code,
        batch_date=row.batch_date.isoformat(),
        sends=row.sends,
        rows_received=row.rows_received,
        rows_accepted=row.rows_accepted,
        rows_rejected=row.rows_rejected,
        received_at=row.received_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
        run_status=runs[0].status if runs else None,
        rejections=msgspec.json.decode(row.rejections_json) if full else [],
        runs=[RunOut(**batch_store.run_dict(r)) for r in runs] if full else [],
    )


async def _publish(request: Request, scenes: list[Scene]) -> None:
    publisher: ScenePublisher = request.app.state.scene_publisher
    for i in range(0, len(scenes), 200):
        await asyncio.gather(*(publisher.publish(s) for s in scenes[i : i + 200]))


@router.post(
    "/crime-batches",
    status_code=http.HTTP_201_CREATED,
    response_model=BatchReceived,
    summary="Upload a crime batch (MoJ 13-column CSV); ?check=true validates only",
    responses=responses(400, 401, 403, 413, 422, 503),  # 400: malformed multipart
)
async def upload_batch(
    request: Request,
    caller: Sender,
    store: StoreDep,
    settings: SettingsDep,
    response: Response,
    file: Annotated[UploadFile, File(description="The batch CSV")],
    check: Annotated[bool, Query(description="Validate and report; import nothing")] = False,
) -> BatchReceived:
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise HTTPException(http.HTTP_413_CONTENT_TOO_LARGE, "batch file over 20 MiB")
    now = wall_now()
    try:
        if check:
            parsed = await asyncio.to_thread(
                service.check, data, get_batch_settings(), now=now, crs=settings.projected_crs
            )
            response.status_code = http.HTTP_200_OK
            return BatchReceived(**parsed.report(), checked_only=True)
        received = await asyncio.to_thread(
            service.receive,
            store,
            data,
            batch_settings=get_batch_settings(),
            scene_settings=get_scene_settings(),
            crs=settings.projected_crs,
            source="api",
            file_name=file.filename,
            now=now,
        )
    except BadFile as exc:
        raise HTTPException(http.HTTP_422_UNPROCESSABLE_CONTENT, f"file rejected: {exc}") from None
    with store.write() as session:
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.upload",
            purpose=", ".join(received.runs)[:200] or "crime batch upload",
            detail={
                "file_sha256": received.file_sha256,
                "accepted": len(received.parsed.crimes),
                "rejected": len(received.parsed.rejections),
            },
            at=now,
        )
    try:
        await _publish(request, received.scenes)
    except SceneNotPublished as exc:
        raise HTTPException(
            http.HTTP_503_SERVICE_UNAVAILABLE,
            f"batch stored but Kafka did not take its crimes ({exc}); re-run the batch",
        ) from None
    return BatchReceived(**received.report())


@router.get(
    "/crime-batches",
    response_model=BatchPage,
    summary="Crime batches with their latest run status (investigators)",
    responses=responses(401, 403, 422),
)
def list_batches(
    caller: Investigator,
    store: StoreDep,
    force: Annotated[str | None, Query(max_length=16)] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> BatchPage:
    with store.write() as session:
        rows, total = batch_store.list_batches(session, force=force, limit=limit, offset=offset)
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.list",
            purpose="crime batches",
            detail={"force": force},
        )
        return BatchPage(items=[_batch_out(session, r, False) for r in rows], total=total)


@router.get(
    "/crime-batches/{batch_id}",
    response_model=BatchOut,
    summary="One batch: counts, rejected rows with reasons, runs (investigators; audited)",
    responses=responses(401, 403, 404, 422),
)
def get_batch(caller: Investigator, store: StoreDep, batch_id: BatchId) -> BatchOut:
    with store.write() as session:
        row = batch_store.get_batch(session, batch_id)
        if row is None:
            raise not_found("crime batch")
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.read",
            purpose=batch_id,
        )
        return _batch_out(session, row, True)


@router.get(
    "/crime-batches/{batch_id}/report",
    response_class=Response,
    summary="The batch's proximity report: JSON summary, or CSV/GeoJSON with a hash-chained "
    "manifest (investigators; audited with the head)",
    responses={
        200: {
            "description": "The report; CSV/GeoJSON verify with `em-service evidence verify FILE`",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/geo+json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **responses(401, 403, 404, 422),
    },
)
def get_report(
    caller: Investigator,
    store: StoreDep,
    batch_id: BatchId,
    format: Literal["json", "csv", "geojson"] = "json",
) -> Response:
    now = wall_now()
    with store.write() as session:
        try:
            records = batch_report.build(session, batch_id, generated_at=now)
        except KeyError:
            raise not_found("crime batch") from None
        if format == "json":
            data = msgspec.json.encode(
                {"header": records[0], "summary": records[1], "records": records[2:]}
            )
            head = ""
        else:
            data, head = batch_report.export(records, format)
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.report",
            purpose=batch_id,
            detail={"format": format, "records": len(records), "head": head},
            at=now,
        )
    if format == "json":
        return Response(content=data, media_type="application/json")
    return Response(
        content=data,
        media_type=MEDIA[format],
        headers={
            "Content-Disposition": f'attachment; filename="report-{batch_id}.{format}"',
            "X-Evidence-Head": head,
        },
    )


@router.post(
    "/crime-batches/{batch_id}/rerun",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=RunOut,
    summary="Match a stored batch again (a new run, trigger rerun)",
    responses=responses(401, 403, 404, 422, 503),
)
async def rerun_batch(
    request: Request, caller: InvestigatorOrAdmin, store: StoreDep, batch_id: BatchId
) -> RunOut:
    now = wall_now()
    started = await asyncio.to_thread(
        service.rerun,
        store,
        batch_id,
        trigger="rerun",
        batch_settings=get_batch_settings(),
        scene_settings=get_scene_settings(),
        now=now,
    )
    if started is None:
        raise not_found("crime batch")
    run_id, scenes = started
    with store.write() as session:
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="crime_batches.rerun",
            purpose=batch_id,
            detail={"run_id": run_id},
            at=now,
        )
        run = session.get(batch_store.CrimeBatchRunRow, run_id)
        out = RunOut(**batch_store.run_dict(run))
    try:
        await _publish(request, scenes)
    except SceneNotPublished as exc:
        raise HTTPException(
            http.HTTP_503_SERVICE_UNAVAILABLE, f"Kafka did not take the crimes: {exc}"
        ) from None
    return out
