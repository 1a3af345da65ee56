"""Message contracts: typed msgspec structs, the one source of truth for ``schemas/*.schema.json``.

Coordinates are WGS84 everywhere in messages; GeoJSON order is ``[lon, lat]`` (x, y), while flat
fields are named ``lat`` and ``lon``. Times are RFC 3339 with an offset and become aware UTC
datetimes inside the service.
"""

from em_service.contracts.alerts import ALERT_TYPES, SEVERITIES, Alert, Location
from em_service.contracts.conditions import (
    Appointment,
    Conditions,
    Curfew,
    Geometry,
    Monitoring,
    MultiPolygonGeometry,
    PointGeometry,
    PolygonGeometry,
    RuleSuspension,
    ScheduleException,
    WeeklyWindow,
    ZoneFeature,
    ZoneProperties,
)
from em_service.contracts.dlq import DeadLetter
from em_service.contracts.readings import (
    DEVICE_EVENTS,
    AlcoholReading,
    DeviceEvent,
    GpsReading,
    Reading,
)
from em_service.contracts.scenes import CRIME_TYPES, Scene

__all__ = [
    "ALERT_TYPES",
    "CRIME_TYPES",
    "DEVICE_EVENTS",
    "SEVERITIES",
    "AlcoholReading",
    "Alert",
    "Appointment",
    "Conditions",
    "Curfew",
    "DeadLetter",
    "DeviceEvent",
    "Geometry",
    "GpsReading",
    "Location",
    "Monitoring",
    "MultiPolygonGeometry",
    "PointGeometry",
    "PolygonGeometry",
    "Reading",
    "RuleSuspension",
    "Scene",
    "ScheduleException",
    "WeeklyWindow",
    "ZoneFeature",
    "ZoneProperties",
]
