"""Crime scenes for investigators: report a scene, see who was at it, export the evidence.

``POST /api/v1/scenes`` (investigator or admin) publishes the scene to the scenes topic (the
archiver then searches the trail archive) and stores it. Reads are for investigators only and
each one that touches a scene or its matches is written to the audit log with the scene's
crime reference as the purpose, in the same transaction as the read; an evidence export also
records the head of its hash chain there, for later comparison.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi import status as http
from pydantic import BaseModel, Field

from em_service.api.deps import Investigator, SettingsDep, StoreDep, not_found, require
from em_service.api.errors import responses
from em_service.api.offenders import OffenderId
from em_service.api.schemas import IDENT_PATTERN, Ident, PageLimit, PageOffset, UtcTime
from em_service.clock import wall_now
from em_service.contracts import CRIME_TYPES, Scene
from em_service.scenes import evidence, ids
from em_service.scenes import store as scene_store
from em_service.scenes.config import check_crime_reference, get_scene_settings
from em_service.scenes.matching import RULE
from em_service.scenes.publish import SceneNotPublished, ScenePublisher
from em_service.store import audit, offenders
from em_service.store.tokens import Caller
from em_service.text import CrimeReference, Purpose
from geofences.projection import get_projector


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    publisher = ScenePublisher(app.state.settings, get_scene_settings().publish_timeout_s)
    app.state.scene_publisher = publisher
    await publisher.start()
    try:
        yield
    finally:
        await publisher.stop()


router = APIRouter(prefix="/api/v1", tags=["scenes"], lifespan=_lifespan)
InvestigatorOrAdmin = Annotated[Caller, Depends(require("investigator", "admin"))]
SceneId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=IDENT_PATTERN, description="Scene id")
]
CrimeType = Literal[CRIME_TYPES]  # type: ignore[valid-type]
Confidence = Literal["at_scene", "passed_by", "near_scene", "excluded"]


class SceneIn(BaseModel):
    """A reported crime: where, within what radius, and between when and when."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "crime_reference": "CR/2026/10/0421",
                    "crime_type": "burglary_dwelling",
                    "lat": 51.45,
                    "lon": -0.98,
                    "radius_m": 100,
                    "window_start": "2026-10-20T22:00:00+01:00",
                    "window_end": "2026-10-21T07:00:00+01:00",
                }
            ]
        }
    }

    crime_reference: CrimeReference
    crime_type: CrimeType
    lat: float = Field(ge=-90, le=90, description="WGS84 latitude, degrees")
    lon: float = Field(ge=-180, le=180, description="WGS84 longitude, degrees")
    radius_m: float | None = Field(
        None, description="Search radius, m (default 100; bounded, see EM_SCENES_*_RADIUS_M)"
    )
    window_start: UtcTime
    window_end: UtcTime
    reported_at: UtcTime | None = Field(None, description="Default: now")
    scene_id: Ident | None = Field(
        None, description="Default: derived from the other fields (a retried POST is the same)"
    )


class SceneOut(BaseModel):
    """A stored scene, how many matches of each class it has, and its last search."""

    scene_id: str
    crime_reference: str
    crime_type: str
    lat: float
    lon: float
    radius_m: float
    window_start: datetime
    window_end: datetime
    reported_at: datetime
    low_precision: bool
    source: str | None
    received_at: datetime
    searched_at: datetime | None
    matches: dict[str, int] = Field(description="confidence → count (excluded included)")


class ScenePage(BaseModel):
    items: list[SceneOut]
    total: int
    limit: int
    offset: int


class MatchOut(BaseModel):
    """One offender's match with a scene (or their exclusion), without the fixes."""

    scene_id: str
    offender_id: str
    device_id: str | None
    confidence: Confidence
    closest_m: float = Field(description="Closest approach, accuracy-discounted, m")
    closest_at: datetime
    closest_source: str = Field(description="fix | segment | alibi | live")
    closest_lat: float | None
    closest_lon: float | None
    dwell_s: float
    fixes_inside: int
    worst_accuracy_m: float | None
    in_window: bool
    origin: str
    alerted: bool
    found_at: datetime
    updated_at: datetime


class SceneMatchesOut(BaseModel):
    scene: SceneOut
    rule: str
    matches: list[MatchOut]
    exclusions: list[MatchOut]


class OffenderSceneMatch(BaseModel):
    scene: SceneOut
    match: MatchOut


class OffenderSceneMatchesOut(BaseModel):
    offender_id: str
    items: list[OffenderSceneMatch]


class SceneAccepted(SceneOut):
    topic: str
    partition: int
    offset: int


def _scene_out(row: scene_store.SceneRow, counts: dict[str, int]) -> SceneOut:
    return SceneOut(
        scene_id=row.scene_id,
        crime_reference=row.crime_reference,
        crime_type=row.crime_type,
        lat=row.lat,
        lon=row.lon,
        radius_m=row.radius_m,
        window_start=row.window_start,
        window_end=row.window_end,
        reported_at=row.reported_at,
        low_precision=row.low_precision,
        source=row.source,
        received_at=row.received_at,
        searched_at=row.searched_at,
        matches=counts,
    )


def _match_out(m: scene_store.SceneMatchRow) -> MatchOut:
    return MatchOut(
        scene_id=m.scene_id,
        offender_id=m.offender_id,
        device_id=m.device_id,
        confidence=m.confidence,  # type: ignore[arg-type]
        closest_m=m.closest_m,
        closest_at=m.closest_at,
        closest_source=m.closest_source,
        closest_lat=m.closest_lat,
        closest_lon=m.closest_lon,
        dwell_s=m.dwell_s,
        fixes_inside=m.fixes_inside,
        worst_accuracy_m=m.worst_accuracy_m,
        in_window=m.in_window,
        origin=m.origin,
        alerted=m.alerted_rank >= m.rank > 0,
        found_at=m.found_at,
        updated_at=m.updated_at,
    )


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(http.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _scene_from(body: SceneIn, now: datetime, crs: str) -> Scene:
    """Return the ``Scene`` of a request body, or raise 422 with the reason."""
    s = get_scene_settings()
    radius = s.default_radius_m if body.radius_m is None else body.radius_m
    if not s.min_radius_m <= radius <= s.max_radius_m:
        raise _unprocessable(f"radius_m must be in [{s.min_radius_m:g}, {s.max_radius_m:g}] m")
    if body.window_end < body.window_start:
        raise _unprocessable("window_end must not be before window_start")
    if (body.window_end - body.window_start).total_seconds() > s.max_window_s:
        raise _unprocessable(f"the window is longer than {s.max_window_s / 3600:g} h")
    if why := check_crime_reference(s, body.crime_reference):
        raise _unprocessable(why)
    if body.window_start > now + timedelta(days=1):
        raise _unprocessable("window_start is in the future")
    if not bool(get_projector(crs).in_area(body.lon, body.lat)):
        raise _unprocessable(f"lat/lon is outside the area the service covers ({crs})")
    reported = body.reported_at or now
    return Scene(
        scene_id=body.scene_id
        or ids.scene_id(
            body.crime_reference, body.lat, body.lon, body.window_start, body.window_end
        ),
        crime_reference=body.crime_reference.strip(),
        crime_type=body.crime_type,
        lat=body.lat,
        lon=body.lon,
        window_start=body.window_start,
        window_end=body.window_end,
        reported_at=reported,
        radius_m=radius,
        source="api",
    )


@router.post(
    "/scenes",
    response_model=SceneAccepted,
    status_code=http.HTTP_201_CREATED,
    summary="Report a scene (investigator or admin): published for matching, stored, audited",
    responses=responses(401, 403, 422, 503),
)
async def post_scene(
    request: Request,
    caller: InvestigatorOrAdmin,
    store: StoreDep,
    settings: SettingsDep,
    body: SceneIn,
) -> SceneAccepted:
    now = wall_now()
    scene = _scene_from(body, now, settings.projected_crs)
    publisher: ScenePublisher = request.app.state.scene_publisher
    try:
        meta = await publisher.publish(scene)
    except SceneNotPublished as exc:
        raise HTTPException(
            http.HTTP_503_SERVICE_UNAVAILABLE, f"Kafka did not take the scene: {exc}"
        ) from None
    x, y = get_projector(settings.projected_crs).to_xy(scene.lon, scene.lat)
    with store.write() as session:
        row, _changed = scene_store.upsert_scene(
            session, scene, x_m=float(x), y_m=float(y), now=now
        )
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="scene.create",
            time_from=scene.window_start,
            time_to=scene.window_end,
            purpose=scene.crime_reference,
            detail={"scene_id": scene.scene_id, "offset": meta.offset},
        )
        counts = scene_store.match_counts(session, [row.scene_id])[row.scene_id]
        out = _scene_out(row, counts)
    return SceneAccepted(
        **out.model_dump(), topic=meta.topic, partition=meta.partition, offset=meta.offset
    )


@router.get(
    "/scenes",
    response_model=ScenePage,
    summary="List scenes (investigators), latest window first",
    responses=responses(401, 403, 422),
)
def list_scenes(
    caller: Investigator,
    store: StoreDep,
    crime_type: CrimeType | None = None,
    since: Annotated[UtcTime | None, Query(description="Window ends at or after")] = None,
    until: Annotated[UtcTime | None, Query(description="Window starts at or before")] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> ScenePage:
    with store.read() as session:
        rows, total = scene_store.list_scenes(
            session, crime_type=crime_type, since=since, until=until, limit=limit, offset=offset
        )
        counts = scene_store.match_counts(session, [r.scene_id for r in rows])
    return ScenePage(
        items=[_scene_out(r, counts[r.scene_id]) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _audit(session: Any, caller: Caller, action: str, purpose: str, **kw: Any) -> None:
    audit.append(session, actor=caller.name, role=caller.role, action=action, purpose=purpose, **kw)


@router.get(
    "/scenes/{scene_id}",
    response_model=SceneOut,
    summary="One scene (investigators; audited with its crime reference)",
    responses=responses(401, 403, 404, 422),
)
def get_scene(caller: Investigator, store: StoreDep, scene_id: SceneId) -> SceneOut:
    with store.write() as session:
        row = scene_store.get_scene(session, scene_id)
        if row is None:
            raise not_found("scene")
        _audit(session, caller, "scene.read", row.crime_reference, detail={"scene_id": scene_id})
        return _scene_out(row, scene_store.match_counts(session, [scene_id])[scene_id])


@router.get(
    "/scenes/{scene_id}/matches",
    response_model=SceneMatchesOut,
    summary="Who was at, near or past a scene, and who is excluded (investigators; audited)",
    responses=responses(401, 403, 404, 422),
)
def get_scene_matches(caller: Investigator, store: StoreDep, scene_id: SceneId) -> SceneMatchesOut:
    with store.write() as session:
        row = scene_store.get_scene(session, scene_id)
        if row is None:
            raise not_found("scene")
        rows = scene_store.matches_of_scene(session, scene_id)
        _audit(
            session,
            caller,
            "scene.matches.read",
            row.crime_reference,
            time_from=row.window_start,
            time_to=row.window_end,
            detail={"scene_id": scene_id, "offenders": [m.offender_id for m in rows]},
        )
        counts = scene_store.match_counts(session, [scene_id])[scene_id]
        out = [_match_out(m) for m in rows]
        scene = _scene_out(row, counts)
    return SceneMatchesOut(
        scene=scene,
        rule=RULE,
        matches=[m for m in out if m.confidence != "excluded"],
        exclusions=[m for m in out if m.confidence == "excluded"],
    )


@router.get(
    "/offenders/{offender_id}/scene-matches",
    response_model=OffenderSceneMatchesOut,
    summary="An offender's scene matches and exclusions (investigators; audited)",
    responses=responses(401, 403, 404, 422),
)
def get_offender_scene_matches(
    caller: Investigator, store: StoreDep, offender_id: OffenderId
) -> OffenderSceneMatchesOut:
    with store.write() as session:
        if not offenders.exists(session, offender_id):
            raise not_found("offender")
        pairs = scene_store.matches_of_offender(session, offender_id)
        refs = sorted({s.crime_reference for _m, s in pairs})
        _audit(
            session,
            caller,
            "offender.scene_matches.read",
            ("; ".join(refs) or "scene matches")[:200],
            offender_id=offender_id,
            detail={"scenes": [s.scene_id for _m, s in pairs]},
        )
        counts = scene_store.match_counts(session, [s.scene_id for _m, s in pairs])
        items = [
            OffenderSceneMatch(scene=_scene_out(s, counts[s.scene_id]), match=_match_out(m))
            for m, s in pairs
        ]
    return OffenderSceneMatchesOut(offender_id=offender_id, items=items)


MEDIA = {"geojson": "application/geo+json", "csv": "text/csv; charset=utf-8"}


@router.get(
    "/scenes/{scene_id}/matches/{offender_id}/evidence",
    response_class=Response,
    summary="Evidence export of one match, GeoJSON or CSV, with a hash-chained manifest "
    "(investigators; audited with the manifest head)",
    responses={
        200: {
            "description": "The evidence file; verify with `em-service evidence verify FILE`",
            "content": {
                "application/geo+json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **responses(401, 403, 404, 422),
    },
)
def get_evidence(
    caller: Investigator,
    store: StoreDep,
    settings: SettingsDep,
    scene_id: SceneId,
    offender_id: OffenderId,
    purpose: Annotated[
        Purpose,
        Query(description="Why you export it, as for a trail (3–200 characters; audited)"),
    ],
    format: Literal["geojson", "csv"] = "geojson",
) -> Response:
    now = wall_now()
    with store.write() as session:
        scene = scene_store.get_scene(session, scene_id)
        match = scene_store.get_match(session, scene_id, offender_id) if scene else None
        if scene is None or match is None:
            raise not_found("match")
        pad = get_scene_settings().time_pad_s
        span = (scene.window_end - scene.window_start).total_seconds() + 2 * pad
        if span > settings.trail_max_window_s:
            raise _unprocessable(
                f"the scene's padded window ({span:.0f} s) is longer than a trail may be "
                f"({settings.trail_max_window_s:.0f} s); read trails instead"
            )
        data, head, n = evidence.export(
            scene, match, fmt=format, actor=caller.name, exported_at=now, tz=settings.timezone
        )
        _audit(
            session,
            caller,
            "scene.evidence.export",
            purpose,
            offender_id=offender_id,
            time_from=scene.window_start - timedelta(seconds=pad),
            time_to=scene.window_end + timedelta(seconds=pad),
            detail={
                "scene_id": scene_id,
                "crime_reference": scene.crime_reference,
                "format": format,
                "records": n,
                "head": head,
            },
            at=now,
        )
    name = f"evidence-{scene_id}-{offender_id}.{format}"
    return Response(
        content=data,
        media_type=MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Evidence-Head": head},
    )
