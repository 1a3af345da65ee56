"""Response and request bodies of the HTTP API (pydantic; documented in OpenAPI with examples).

Coordinates follow GeoJSON: positions are ``[lon, lat]`` WGS84 degrees. Times are RFC 3339 UTC.
Alert lists and streams carry no location; only ``GET /alerts/{id}`` does, and that read is
audited.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from em_service.contracts import ALERT_TYPES
from em_service.text import Note

AlertTypeName = Literal[ALERT_TYPES]  # type: ignore[valid-type]
AlertStatusName = Literal["open", "acknowledged", "closed"]
SeverityName = Literal["info", "low", "medium", "high"]
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
PAGE_MAX = 500
OFFSET_MAX = 1_000_000
#: Page size and start of every list route (bounded: SQLite integers end at 2^63 - 1).
PageLimit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="page size")]
PageOffset = Annotated[int, Query(ge=0, le=OFFSET_MAX, description="rows to skip")]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENT_PATTERN)]
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _utc_in_range(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        value = _LATEST
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("time must be between 1970-01-01 and 9000-01-01 UTC")
    return value


_RFC3339_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")


def _rfc3339_text(value: object) -> object:
    """Refuse numbers (pydantic would read them as Unix times): only RFC 3339 text is a time."""
    if not isinstance(value, datetime) and not (
        isinstance(value, str) and _RFC3339_DATE.match(value)
    ):
        raise ValueError("time must be RFC 3339 text with an offset, e.g. 2026-10-25T01:30:00Z")
    return value


#: A query time: RFC 3339 with an offset (naive is refused), in a sane range, as UTC.
UtcTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_utc_in_range)]

_ALERT_EXAMPLE = {
    "alert_id": "exclusion_breach:off-0001:zone-7:20261024T2130Z",
    "type": "exclusion_breach",
    "severity": "high",
    "offender_id": "off-0001",
    "device_id": "tag-0001",
    "occurred_at": "2026-10-24T21:30:05Z",
    "detected_at": "2026-10-24T21:30:06Z",
    "zone_id": "zone-7",
    "curfew_id": None,
    "scene_id": None,
    "episode_start": "2026-10-24T21:30:05Z",
    "episode_end": None,
    "ended_alert_id": None,
    "late": False,
    "status": "open",
    "status_changed_at": "2026-10-24T21:30:06Z",
    "has_location": True,
}


class AlertSummary(BaseModel):
    """An alert and its lifecycle status, without location."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ALERT_EXAMPLE]})

    alert_id: str
    type: str
    severity: str
    offender_id: str
    device_id: str | None
    occurred_at: datetime
    detected_at: datetime
    zone_id: str | None
    curfew_id: str | None
    scene_id: str | None
    episode_start: datetime | None
    episode_end: datetime | None
    ended_alert_id: str | None
    late: bool
    status: AlertStatusName
    status_changed_at: datetime
    has_location: bool
    escalation_level: int = Field(
        0, description="0, or the last escalation raised (1, 2) while it was unacknowledged"
    )
    suppressed: bool = Field(
        False, description="Suppressed by a rule suspension (approved absence): not for the queue"
    )


class LocationOut(BaseModel):
    """Where the evidence fix was (WGS84 degrees, accuracy in metres)."""

    lat: float
    lon: float
    accuracy_m: float | None


class TransitionOut(BaseModel):
    """One lifecycle step."""

    from_status: AlertStatusName
    to_status: AlertStatusName
    actor: str
    role: str
    at: datetime
    note: str | None


class AlertDetail(AlertSummary):
    """An alert with its evidence location, details and lifecycle history."""

    ref_alert_id: str | None
    location: LocationOut | None
    details: dict[str, Any]
    transitions: list[TransitionOut]


class AlertPage(BaseModel):
    """One page of alerts, newest first."""

    items: list[AlertSummary]
    total: int = Field(description="Alerts matching the filters, all pages")
    limit: int
    offset: int


class AcknowledgeIn(BaseModel):
    """Acknowledge an alert, optionally with a note."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "On it"}]})

    note: Note | None = Field(None, description="Up to 2000 characters (line breaks allowed)")


class CloseIn(BaseModel):
    """Close an alert; the note (what was done) is required."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"note": "Spoke to subject; left zone at 21:40"}]},
    )

    note: Note = Field(description="1–2000 characters after normalisation (line breaks allowed)")


class AlertEventOut(BaseModel):
    """One streamed change: ``kind`` is created, ended, acknowledged, closed or escalated."""

    event_id: int
    kind: str
    level: int | None = Field(None, description="The escalation level of an escalated event")
    at: datetime
    alert: AlertSummary


class EpisodeOut(BaseModel):
    """An open episode (breach or silence that has not ended yet)."""

    alert_id: str
    type: str
    started_at: datetime
    zone_id: str | None
    curfew_id: str | None


class RejectedConditionsOut(BaseModel):
    """The newest conditions version published for the offender that the worker refuses."""

    version: str = Field(description="Version id of the rejected document (SHA-256 prefix)")
    updated_at: datetime | None = Field(description="Its updated_at, if it could be read")
    rejected_at: datetime = Field(description="When it was published")
    reason: str = Field(description="Why the worker refuses it")


class MonitoringOut(BaseModel):
    """Monitoring status: ``status`` in force now; ``declared`` as the conditions set it (a
    suspension outside ``[from, until)`` leaves monitoring active)."""

    model_config = ConfigDict(populate_by_name=True)

    status: Literal["active", "suspended", "ended"]
    declared: Literal["active", "suspended", "ended"]
    reason: str | None = Field(description="custody, hospital, approved_absence or other")
    from_: datetime | None = Field(alias="from")
    until: datetime | None
    approved_by: str | None


class SuspensionOut(BaseModel):
    """A single-rule suspension (approved absence of one zone or curfew) not yet over."""

    model_config = ConfigDict(populate_by_name=True)

    suspension_id: str
    subject_id: str = Field(description="The zone_id or curfew_id suspended")
    from_: datetime = Field(alias="from")
    until: datetime
    reason: str
    approved_by: str
    active: bool = Field(description="In force now (else it is still to come)")


class OffenderOut(BaseModel):
    """An offender's current status.

    ``conditions_rejected`` (status, after ``in_breach``): the newest conditions published were
    refused by the worker; ``conditions_version``/``conditions_updated_at`` name the version
    still in force (null: none).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "offender_id": "off-0001",
                    "status": "in_breach",
                    "device_ids": ["tag-0001"],
                    "open_episodes": [
                        {
                            "alert_id": "exclusion_breach:off-0001:zone-7:20261024T2130Z",
                            "type": "exclusion_breach",
                            "started_at": "2026-10-24T21:30:05Z",
                            "zone_id": "zone-7",
                            "curfew_id": None,
                        }
                    ],
                    "open_alerts": 1,
                    "last_fix_at": "2026-10-24T21:41:00Z",
                    "conditions_updated_at": "2026-10-01T09:00:00Z",
                }
            ]
        }
    )

    offender_id: str
    status: Literal["compliant", "in_breach", "conditions_rejected", "silent"]
    device_ids: list[str]
    open_episodes: list[EpisodeOut]
    open_alerts: int
    last_fix_at: datetime | None = Field(description="Latest fix (event time); null in lists")
    conditions_updated_at: datetime | None
    conditions_version: str | None = Field(
        None, description="Version id of the conditions in force (SHA-256 prefix)"
    )
    conditions_rejected: RejectedConditionsOut | None = None
    monitoring: MonitoringOut | None = Field(
        None, description="Monitoring status now, with a suspension's details (null: no conditions)"
    )
    suspensions: list[SuspensionOut] = Field(
        [], description="Single-rule suspensions in force now or to come, by start"
    )


class OffenderPage(BaseModel):
    """One page of offenders, by id."""

    items: list[OffenderOut]
    total: int
    limit: int
    offset: int


class ConditionsAccepted(BaseModel):
    """Conditions published to the conditions topic and stored."""

    offender_id: str
    device_ids: list[str]
    updated_at: datetime
    version: str = Field(description="Version id of the published document (SHA-256 prefix)")
    topic: str
    partition: int
    offset: int


class GeoPoint(BaseModel):
    type: Literal["Point"]
    coordinates: list[float] = Field(description="[lon, lat]")


class GeoLineString(BaseModel):
    type: Literal["LineString"]
    coordinates: list[list[float]] = Field(description="[[lon, lat], …] in time order")


class FixProperties(BaseModel):
    device_id: str
    ts: datetime
    accuracy_m: float
    speed_mps: float | None
    heading_deg: float | None


class FixFeature(BaseModel):
    """One fix."""

    type: Literal["Feature"]
    geometry: GeoPoint
    properties: FixProperties


class TrackProperties(BaseModel):
    offender_id: str
    time_from: datetime
    time_to: datetime
    fixes: int


class TrackFeature(BaseModel):
    """The fixes joined in time order (present when there are at least two)."""

    type: Literal["Feature"]
    geometry: GeoLineString
    properties: TrackProperties


class TrailOut(BaseModel):
    """GeoJSON FeatureCollection: the track (LineString) first, then every fix (Point)."""

    type: Literal["FeatureCollection"]
    features: list[TrackFeature | FixFeature]


class AuditOut(BaseModel):
    """One audit entry."""

    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    offender_id: str | None
    time_from: datetime | None
    time_to: datetime | None
    purpose: str | None
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int


class AuditVerifyOut(BaseModel):
    """Result of recomputing the audit hash chain."""

    ok: bool
    checked: int
    problems: list[str]


class MeOut(BaseModel):
    """Who the token belongs to."""

    name: str
    role: str
    caseload: list[str]


class CaseloadIn(BaseModel):
    """The offenders a principal's caseload should hold (replaces it)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"offender_ids": ["off-0001"]}]}
    )

    offender_ids: list[Ident] = Field(max_length=5000)


class CaseloadOut(BaseModel):
    name: str
    offender_ids: list[str]


class TokenOut(BaseModel):
    """One API token as admins see it (never its text). Times are UTC."""

    id: int
    principal: str
    role: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    status: Literal["live", "expired", "revoked"]


class TokenRenewIn(BaseModel):
    """How long a renewed token works from now (default ``EM_TOKEN_TTL_DAYS``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ttl_days": 90}]})

    ttl_days: float | None = Field(None, gt=0, le=36_600, description="Days, within the maximum")
