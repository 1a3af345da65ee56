"""Alerts on ``em.alerts`` (key = offender_id).

``alert_id`` is deterministic: derived from (offender, rule, zone/curfew/scene, episode start), so
re-processing the same readings yields the same id. An ``…_ended`` alert closes an episode and
names the alert it ends in ``ref_alert_id``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from msgspec import Meta, Struct

from em_service.contracts.types import AwareDatetime, Ident, Latitude, Longitude

AlertType = Literal[
    "exclusion_breach",
    "exclusion_breach_ended",
    "inclusion_breach",
    "inclusion_breach_ended",
    "curfew_breach",
    "curfew_breach_ended",
    "device_silent",
    "device_silent_ended",
    "curfew_unverified",
    "curfew_unverified_ended",
    "alcohol_detected",
    "alcohol_suspect_interferent",
    "alcohol_tamper",
    "alcohol_missed_readings",
    "strap_tamper",
    "strap_restored",
    "battery_low",
    "charging_started",
    "charging_stopped",
    "device_fault",
    "scene_proximity",
    "attendance_missed",
    "attendance_late",
    "attendance_kept",
    "attendance_unverified",
    "location_failure",
    "location_failure_ended",
    "victim_proximity",
    "victim_proximity_ended",
]
Severity = Literal["info", "low", "medium", "high"]

#: Every alert type and severity, in contract order (derived from the Literals above).
ALERT_TYPES: tuple[str, ...] = get_args(AlertType)
SEVERITIES: tuple[str, ...] = get_args(Severity)


class Location(Struct, forbid_unknown_fields=True):
    """Where the evidence fix was (WGS84)."""

    lat: Latitude
    lon: Longitude
    accuracy_m: Annotated[float, Meta(ge=0.0)] | None = None


class Alert(Struct, forbid_unknown_fields=True):
    """An alert for the IOM team. Times are event time (``occurred_at``) and processing time."""

    alert_id: Annotated[str, Meta(min_length=8, max_length=80)]
    type: AlertType
    severity: Severity
    offender_id: Ident
    occurred_at: AwareDatetime
    detected_at: AwareDatetime
    device_id: Ident | None = None
    location: Location | None = None
    zone_id: Ident | None = None
    curfew_id: Ident | None = None
    scene_id: Ident | None = None
    episode_start: AwareDatetime | None = None
    episode_end: AwareDatetime | None = None
    ref_alert_id: Annotated[str, Meta(min_length=8, max_length=80)] | None = None
    late: bool = False
    details: dict[str, Any] = {}
