"""Per-offender conditions on the compacted ``em.conditions`` topic (key = offender_id).

Zones are GeoJSON (RFC 7946) Features in WGS84, coordinates ``[lon, lat]``. A Point zone or
curfew address needs ``radius_m``. Weekly windows are local wall-clock times in the conditions'
``timezone`` (default Europe/London); a window whose ``end`` is before its ``start`` runs past
midnight into the next day (``19:00``–``07:00``). ``end`` equal to ``start`` is refused: a window
of 24 hours says so with ``all_day: true`` (and no ``end``). Structural checks live here; geometric
validity (self-intersection, absurd size, vertex caps) is checked when the conditions are loaded
(``em_service.conditions.validate``, ``geofences``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from em_service.contracts.types import AwareDatetime, Ident, LocalTime

Position = Annotated[
    list[float], Meta(min_length=2, max_length=3, description="[lon, lat] WGS84 degrees")
]
Ring = Annotated[list[Position], Meta(min_length=4, description="Closed linear ring")]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Radius = Annotated[float, Meta(gt=0.0, le=50_000.0, description="Radius in metres")]


def _check_position(pos: list[float]) -> None:
    lon, lat = pos[0], pos[1]
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"position {pos} is not [lon, lat] in WGS84 degrees")


def _check_ring(ring: list[list[float]]) -> None:
    for pos in ring:
        _check_position(pos)
    if ring[0][:2] != ring[-1][:2]:
        raise ValueError("polygon ring is not closed (first and last positions differ)")


class PointGeometry(Struct, tag="Point", tag_field="type", forbid_unknown_fields=True):
    """GeoJSON Point ``[lon, lat]``; used with a ``radius_m`` as a circle."""

    coordinates: Position

    def __post_init__(self) -> None:
        _check_position(self.coordinates)


class PolygonGeometry(Struct, tag="Polygon", tag_field="type", forbid_unknown_fields=True):
    """GeoJSON Polygon: exterior ring then holes."""

    coordinates: Annotated[list[Ring], Meta(min_length=1)]

    def __post_init__(self) -> None:
        for ring in self.coordinates:
            _check_ring(ring)


class MultiPolygonGeometry(
    Struct, tag="MultiPolygon", tag_field="type", forbid_unknown_fields=True
):
    """GeoJSON MultiPolygon (holes allowed)."""

    coordinates: Annotated[list[Annotated[list[Ring], Meta(min_length=1)]], Meta(min_length=1)]

    def __post_init__(self) -> None:
        for polygon in self.coordinates:
            for ring in polygon:
                _check_ring(ring)


Geometry = PointGeometry | PolygonGeometry | MultiPolygonGeometry


def _check_span(what: str, start: str | None, end: str | None, all_day: bool) -> None:
    """Refuse a window whose end equals its start (which meant 24 h, silently): 24 h is
    ``all_day: true`` without ``end``."""
    if all_day:
        if end is not None:
            raise ValueError(f"{what}: give end or all_day: true, not both")
    elif end is None:
        raise ValueError(f"{what} needs end (or all_day: true for 24 hours from start)")
    elif end == start:
        raise ValueError(
            f"{what} start equals end ({start}); use all_day: true (without end) for 24 hours"
        )


class WeeklyWindow(Struct, forbid_unknown_fields=True):
    """A weekly window in local time, starting on each of ``days``; crosses midnight if
    end < start; ``all_day: true`` (no ``end``) lasts until ``start`` the next day."""

    days: Annotated[list[Day], Meta(min_length=1, max_length=7)]
    start: LocalTime
    end: LocalTime | None = None
    all_day: Annotated[
        bool, Meta(description="24 hours from start (to start on the next local day); no end")
    ] = False

    def __post_init__(self) -> None:
        _check_span("weekly window", self.start, self.end, self.all_day)


class ScheduleException(Struct, forbid_unknown_fields=True):
    """A one-off change for the window that starts on local ``date``: cancelled, or new times
    (``start`` and ``end``, or ``start`` and ``all_day: true``)."""

    date: date
    cancelled: bool = False
    start: LocalTime | None = None
    end: LocalTime | None = None
    all_day: bool = False

    def __post_init__(self) -> None:
        if self.cancelled:
            return
        if self.start is None:
            raise ValueError("an exception either is cancelled or gives start and end")
        _check_span(f"exception {self.date.isoformat()}", self.start, self.end, self.all_day)


class ZoneProperties(Struct, forbid_unknown_fields=True):
    """Properties of a zone Feature."""

    zone_id: Ident
    kind: Literal["exclusion", "inclusion"]
    name: Annotated[str, Meta(max_length=200)] | None = None
    radius_m: Radius | None = None
    schedule: list[WeeklyWindow] | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None


class ZoneFeature(Struct, tag="Feature", tag_field="type", forbid_unknown_fields=True):
    """A zone: GeoJSON Feature with Polygon, MultiPolygon or Point (+ ``properties.radius_m``)."""

    geometry: Geometry
    properties: ZoneProperties
    id: Ident | None = None

    def __post_init__(self) -> None:
        is_point = isinstance(self.geometry, PointGeometry)
        if is_point and self.properties.radius_m is None:
            raise ValueError(f"zone {self.properties.zone_id}: a Point zone needs radius_m")
        if not is_point and self.properties.radius_m is not None:
            raise ValueError(f"zone {self.properties.zone_id}: radius_m is only for Point zones")
        vf, vt = self.properties.valid_from, self.properties.valid_to
        if vf is not None and vt is not None and vt <= vf:
            raise ValueError(f"zone {self.properties.zone_id}: valid_to must be after valid_from")


class Curfew(Struct, forbid_unknown_fields=True):
    """A curfew: be at the address (Point + radius_m, or Polygon) during each weekly window."""

    curfew_id: Ident
    geometry: PointGeometry | PolygonGeometry
    windows: Annotated[list[WeeklyWindow], Meta(min_length=1)]
    radius_m: Radius | None = None
    exceptions: list[ScheduleException] = []
    grace_s: Annotated[float, Meta(ge=0.0, le=7200.0, description="Grace after start, s")] = 0.0

    def __post_init__(self) -> None:
        is_point = isinstance(self.geometry, PointGeometry)
        if is_point and self.radius_m is None:
            raise ValueError(f"curfew {self.curfew_id}: a Point address needs radius_m")
        if not is_point and self.radius_m is not None:
            raise ValueError(f"curfew {self.curfew_id}: radius_m is only for a Point address")


class Appointment(Struct, forbid_unknown_fields=True):
    """A mandatory attendance: be at the place (Point + radius_m, or Polygon) on local ``date``
    from ``start`` to ``end`` (same day, DST-correct in the conditions' timezone).

    The person may arrive up to ``grace_before_s`` early; the first fix inside after
    ``start + grace_after_s`` makes the attendance late.
    """

    appointment_id: Ident
    geometry: PointGeometry | PolygonGeometry
    date: date
    start: LocalTime
    end: LocalTime
    radius_m: Radius | None = None
    name: Annotated[str, Meta(max_length=200)] | None = None
    grace_before_s: Annotated[
        float, Meta(ge=0.0, le=7200.0, description="Arrival counts from start minus this, s")
    ] = 900.0
    grace_after_s: Annotated[
        float, Meta(ge=0.0, le=7200.0, description="Arriving after start plus this is late, s")
    ] = 600.0

    def __post_init__(self) -> None:
        is_point = isinstance(self.geometry, PointGeometry)
        if is_point and self.radius_m is None:
            raise ValueError(f"appointment {self.appointment_id}: a Point place needs radius_m")
        if not is_point and self.radius_m is not None:
            raise ValueError(f"appointment {self.appointment_id}: radius_m is only for a Point")
        if self.end <= self.start:
            raise ValueError(f"appointment {self.appointment_id}: end must be after start")


class Monitoring(Struct, forbid_unknown_fields=True):
    """Monitoring status: ``active``; ``suspended`` from ``from`` until ``until`` (custody,
    hospital; approved by someone); or ``ended`` (order ended, de-selected) from ``from``.

    A suspension outside ``[from, until)`` leaves monitoring active; ``until`` may be open.
    """

    status: Literal["active", "suspended", "ended"] = "active"
    reason: Literal["custody", "hospital", "approved_absence", "other"] | None = None
    from_: AwareDatetime | None = msgspec.field(default=None, name="from")
    until: AwareDatetime | None = None
    approved_by: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    note: Annotated[str, Meta(max_length=500)] | None = None

    def __post_init__(self) -> None:
        if self.status == "suspended" and (self.reason is None or self.approved_by is None):
            raise ValueError("a suspension needs a reason and approved_by")
        if self.status == "suspended" and self.from_ is None:
            raise ValueError("a suspension needs from")
        if self.from_ and self.until and self.until <= self.from_:
            raise ValueError("monitoring until must be after from")


class RuleSuspension(Struct, forbid_unknown_fields=True):
    """An approved absence: breaches of one zone or curfew (``subject_id``) whose episode starts
    in ``[from, until)`` are recorded as suppressed (kept in history, not for the queue)."""

    suspension_id: Ident
    subject_id: Ident
    from_: AwareDatetime = msgspec.field(name="from")
    until: AwareDatetime
    reason: Annotated[str, Meta(min_length=1, max_length=200)]
    approved_by: Annotated[str, Meta(min_length=1, max_length=200)]

    def __post_init__(self) -> None:
        if self.until <= self.from_:
            raise ValueError(f"suspension {self.suspension_id}: until must be after from")


class VictimProtection(Struct, forbid_unknown_fields=True):
    """A moving exclusion zone: stay more than ``radius_m`` from a protected victim's device,
    whose fixes arrive on their own topic (``em.victim_readings``, key = the victim device).

    Alerts name ``protection_id`` and the distance only, never the victim's position.
    """

    protection_id: Ident
    victim_device_id: Ident
    radius_m: Radius


class Conditions(Struct, forbid_unknown_fields=True):
    """Everything an offender must comply with, and the devices they wear."""

    offender_id: Ident
    device_ids: Annotated[list[Ident], Meta(min_length=1, max_length=8)]
    zones: list[ZoneFeature] = []
    curfews: list[Curfew] = []
    appointments: Annotated[list[Appointment], Meta(max_length=500)] = []
    monitoring: Monitoring = msgspec.field(default_factory=Monitoring)
    suspensions: Annotated[list[RuleSuspension], Meta(max_length=500)] = []
    victims: Annotated[list[VictimProtection], Meta(max_length=8)] = []
    alcohol_monitoring: bool = False
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] = "Europe/London"
    gps_interval_s: Annotated[
        float, Meta(gt=0.0, le=3600.0, description="Tag reporting interval, s")
    ] = 60.0
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        ids = [z.properties.zone_id for z in self.zones] + [c.curfew_id for c in self.curfews]
        subjects = set(ids)
        ids += [a.appointment_id for a in self.appointments]
        ids += [v.protection_id for v in self.victims]
        if len(ids) != len(set(ids)):
            raise ValueError(
                "zone_id, curfew_id, appointment_id and protection_id values must be unique "
                "within one offender"
            )
        for v in self.victims:
            if v.victim_device_id in self.device_ids:
                raise ValueError(f"victim protection {v.protection_id}: the victim device is worn")
        for s in self.suspensions:
            if s.subject_id not in subjects:
                raise ValueError(
                    f"suspension {s.suspension_id}: no zone or curfew {s.subject_id!r}"
                )
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
