"""Store rows → API bodies, shared by the routes and the outlets (SSE, webhook)."""

from __future__ import annotations

import json

from em_service.api.schemas import AlertDetail, AlertSummary, LocationOut, TransitionOut
from em_service.store.models import AlertRow, AlertTransition


def alert_summary(row: AlertRow) -> AlertSummary:
    """Return the location-free view of an alert row."""
    return AlertSummary(
        alert_id=row.alert_id,
        type=row.type,
        severity=row.severity,
        offender_id=row.offender_id,
        device_id=row.device_id,
        occurred_at=row.occurred_at,
        detected_at=row.detected_at,
        zone_id=row.zone_id,
        curfew_id=row.curfew_id,
        scene_id=row.scene_id,
        episode_start=row.episode_start,
        episode_end=row.episode_end,
        ended_alert_id=row.ended_alert_id,
        late=row.late,
        status=row.status,  # type: ignore[arg-type]
        status_changed_at=row.status_changed_at,
        has_location=row.lat is not None,
        escalation_level=row.escalation_level or 0,
        suppressed=row.suppressed,
    )


def alert_detail(row: AlertRow, steps: list[AlertTransition]) -> AlertDetail:
    location = None
    if row.lat is not None and row.lon is not None:
        location = LocationOut(lat=row.lat, lon=row.lon, accuracy_m=row.accuracy_m)
    return AlertDetail(
        **alert_summary(row).model_dump(),
        ref_alert_id=row.ref_alert_id,
        location=location,
        details=json.loads(row.details_json),
        transitions=[
            TransitionOut(
                from_status=t.from_status,
                to_status=t.to_status,
                actor=t.actor,
                role=t.role,
                at=t.at,
                note=t.note,
            )
            for t in steps
        ],
    )
