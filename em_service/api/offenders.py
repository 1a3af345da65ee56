"""``/api/v1/offenders``: list and status (officers: own caseload; admin: all) and, for admins,
``PUT …/conditions`` (checked exactly as the worker checks it, published, stored, audited)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import msgspec
from aiokafka.structs import RecordMetadata
from fastapi import APIRouter, HTTPException, Path, Request, status

from em_service.api.conditions_publisher import PublishFailed
from em_service.api.deps import Admin, OfficerOrAdmin, SettingsDep, StoreDep, not_found, visible
from em_service.api.errors import responses
from em_service.api.schemas import (
    IDENT_PATTERN,
    ConditionsAccepted,
    EpisodeOut,
    MonitoringOut,
    OffenderOut,
    OffenderPage,
    PageLimit,
    PageOffset,
    RejectedConditionsOut,
    SuspensionOut,
)
from em_service.clock import wall_now
from em_service.conditions.validate import InvalidConditions, TooLarge, check, version_id
from em_service.contracts import Conditions
from em_service.contracts.codec import encode
from em_service.store import audit, offenders
from em_service.store.offenders import OffenderState

router = APIRouter(prefix="/api/v1/offenders", tags=["offenders"])
OffenderId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=IDENT_PATTERN, description="Offender id")
]

#: OpenAPI body of PUT conditions: the contract's own JSON Schema (see ``main.openapi``).
CONDITIONS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Conditions"}}},
    }
}


def offender_out(state: OffenderState) -> OffenderOut:
    """Return the API view of an offender's state."""
    return OffenderOut(
        offender_id=state.offender_id,
        status=state.status,
        device_ids=state.device_ids,
        open_episodes=[
            EpisodeOut(
                alert_id=e.alert_id,
                type=e.type,
                started_at=e.started_at,
                zone_id=e.zone_id,
                curfew_id=e.curfew_id,
            )
            for e in state.open_episodes
        ],
        open_alerts=state.open_alerts,
        last_fix_at=state.last_fix_at,
        conditions_updated_at=state.conditions_updated_at,
        conditions_version=state.conditions_version,
        conditions_rejected=(
            RejectedConditionsOut(
                version=r.version,
                updated_at=r.updated_at,
                rejected_at=r.rejected_at,
                reason=r.reason,
            )
            if (r := state.conditions_rejected)
            else None
        ),
        monitoring=(
            MonitoringOut(
                status=m.status,
                declared=m.declared,
                reason=m.reason,
                from_=m.from_,
                until=m.until,
                approved_by=m.approved_by,
            )
            if (m := state.monitoring)
            else None
        ),
        suspensions=[
            SuspensionOut(
                suspension_id=x.suspension_id,
                subject_id=x.subject_id,
                from_=x.from_,
                until=x.until,
                reason=x.reason,
                approved_by=x.approved_by,
                active=x.active,
            )
            for x in state.suspensions
        ],
    )


@router.get(
    "",
    response_model=OffenderPage,
    summary="List offenders (officers: their caseload) with status",
    responses=responses(401, 403, 422),
)
def list_offenders(
    caller: OfficerOrAdmin,
    store: StoreDep,
    settings: SettingsDep,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> OffenderPage:
    with store.read() as session:
        states, total = offenders.list_offenders(
            session, only=visible(caller), limit=limit, offset=offset, now=wall_now(settings)
        )
    return OffenderPage(
        items=[offender_out(s) for s in states], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{offender_id}",
    response_model=OffenderOut,
    summary="Current status: compliant / in breach / silent, open episodes, last fix time, "
    "monitoring status (suspension details) and single-rule suspensions",
    responses=responses(401, 403, 404, 422),
)
def get_offender(
    caller: OfficerOrAdmin, store: StoreDep, settings: SettingsDep, offender_id: OffenderId
) -> OffenderOut:
    if not caller.sees(offender_id):
        raise not_found("offender")
    with store.read() as session:
        state = offenders.state(session, offender_id=offender_id, now=wall_now(settings))
    if state is None:
        raise not_found("offender")
    return offender_out(state)


def _check(raw: bytes, offender_id: str, crs: str) -> Conditions:
    """Run the worker's own check (``conditions.validate.check``); refuse what it refuses."""
    try:
        return check(raw, crs=crs, key=offender_id).conditions
    except TooLarge as exc:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, str(exc)) from None
    except InvalidConditions as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid conditions: {exc}"
        ) from None


def _published(meta: RecordMetadata) -> datetime | None:
    return datetime.fromtimestamp(meta.timestamp / 1000, tz=UTC) if meta.timestamp >= 0 else None


@router.put(
    "/{offender_id}/conditions",
    response_model=ConditionsAccepted,
    summary="Replace an offender's conditions (admin): publish to the conditions topic and store",
    responses=responses(400, 401, 403, 409, 413, 422, 503),
    openapi_extra=CONDITIONS_BODY,
)
async def put_conditions(
    request: Request,
    caller: Admin,
    store: StoreDep,
    settings: SettingsDep,
    offender_id: OffenderId,
) -> ConditionsAccepted:
    raw = await request.body()
    return await publish_conditions(request.app, caller, store, settings, offender_id, raw)


async def publish_conditions(
    app: Any, caller: Any, store: Any, settings: Any, offender_id: str, raw: bytes
) -> ConditionsAccepted:
    """Check, publish, store and audit a conditions document (``PUT …/conditions`` and the
    console's conditions editor); raise HTTPException as the API answers."""
    conditions = await anyio.to_thread.run_sync(_check, raw, offender_id, settings.projected_crs)
    now = wall_now()
    if conditions.updated_at is None:
        conditions = msgspec.structs.replace(conditions, updated_at=now)

    def taken() -> dict[str, str]:
        with store.read() as session:
            holders = offenders.device_holders(session, list(conditions.device_ids))
        return {d: o for d, o in holders.items() if o != offender_id}

    conflicts = await anyio.to_thread.run_sync(taken)
    if conflicts:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "devices still assigned to another offender: " + ", ".join(sorted(conflicts)),
        )
    value = encode(conditions)
    version = version_id(value)
    try:
        meta = await app.state.publisher.publish(offender_id, value)
    except PublishFailed as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"conditions not published: {exc}"
        ) from None

    def store_it() -> None:
        with store.write() as session:
            offenders.put_conditions(  # by event time, as the archiver's ingest stores it
                session,
                conditions=conditions,
                changed_at=conditions.updated_at or now,
                version=version,
                position=offenders.Position(meta.partition, meta.offset, _published(meta)),
            )
            audit.append(
                session,
                actor=caller.name,
                role=caller.role,
                action="conditions.put",
                offender_id=offender_id,
                detail={
                    "device_ids": list(conditions.device_ids),
                    "zones": len(conditions.zones),
                    "curfews": len(conditions.curfews),
                    "version": version,
                    "partition": meta.partition,
                    "offset": meta.offset,
                },
                at=now,
            )

    await anyio.to_thread.run_sync(store_it)
    return ConditionsAccepted(
        offender_id=offender_id,
        device_ids=list(conditions.device_ids),
        updated_at=conditions.updated_at or now,
        version=version,
        topic=meta.topic,
        partition=meta.partition,
        offset=meta.offset,
    )
