"""``GET /api/v1/offenders/{id}/trail`` (investigators): fixes as GeoJSON, purpose audited.

The audit entry (who, role, offender, time range, purpose, how many fixes) is written in the
same transaction as the read: no trail leaves the store without its audit row.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from em_service.api.deps import Investigator, SettingsDep, StoreDep, not_found
from em_service.api.errors import responses
from em_service.api.offenders import OffenderId
from em_service.api.schemas import (
    FixFeature,
    FixProperties,
    GeoLineString,
    GeoPoint,
    TrackFeature,
    TrackProperties,
    TrailOut,
    UtcTime,
)
from em_service.store import audit, offenders, trail
from em_service.store.records import StoredFix
from em_service.text import Purpose

router = APIRouter(prefix="/api/v1/offenders", tags=["trails"])


def as_geojson(offender_id: str, fixes: list[StoredFix], t0, t1) -> TrailOut:
    """Return the FeatureCollection of ``fixes``: a LineString (≥ 2 fixes), then the Points."""
    features: list[TrackFeature | FixFeature] = []
    if len(fixes) >= 2:
        features.append(
            TrackFeature(
                type="Feature",
                geometry=GeoLineString(
                    type="LineString", coordinates=[[f.lon, f.lat] for f in fixes]
                ),
                properties=TrackProperties(
                    offender_id=offender_id, time_from=t0, time_to=t1, fixes=len(fixes)
                ),
            )
        )
    features.extend(
        FixFeature(
            type="Feature",
            geometry=GeoPoint(type="Point", coordinates=[f.lon, f.lat]),
            properties=FixProperties(
                device_id=f.device_id,
                ts=f.ts,
                accuracy_m=f.accuracy_m,
                speed_mps=f.speed_mps,
                heading_deg=f.heading_deg,
            ),
        )
        for f in fixes
    )
    return TrailOut(type="FeatureCollection", features=features)


@router.get(
    "/{offender_id}/trail",
    response_model=TrailOut,
    summary="Location trail as GeoJSON (investigators; purpose required and audited)",
    responses=responses(401, 403, 404, 422),
)
def get_trail(
    caller: Investigator,
    store: StoreDep,
    settings: SettingsDep,
    offender_id: OffenderId,
    from_: Annotated[UtcTime, Query(alias="from", description="Start, inclusive")],
    to: Annotated[UtcTime, Query(description="End, inclusive")],
    purpose: Annotated[
        Purpose,
        Query(
            description="Why you read it, e.g. a crime reference (3–200 characters after "
            "normalisation; written to the audit log)",
        ),
    ],
) -> TrailOut:
    if to <= from_:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'to' must be after 'from'")
    if to - from_ > timedelta(seconds=settings.trail_max_window_s):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"time range longer than {settings.trail_max_window_s:.0f} s; ask for less",
        )
    with store.write() as session:
        if not offenders.exists(session, offender_id):
            raise not_found("offender")
        fixes = trail.offender_trail(session, offender_id=offender_id, t0=from_, t1=to)
        audit.append(
            session,
            actor=caller.name,
            role=caller.role,
            action="trail.read",
            offender_id=offender_id,
            time_from=from_,
            time_to=to,
            purpose=purpose,
            detail={"fixes": len(fixes)},
        )
    return as_geojson(offender_id, fixes, from_, to)
