"""geofences: the zone, curfew and proximity engine (pure: no Kafka, Faust or database)."""

from geofences.errors import ConditionsError, GeometryError
from geofences.index import BatchVerdicts, ZoneIndex
from geofences.zones import CompiledConditions, CompiledZone, ZoneVerdict, compile_conditions

__all__ = [
    "BatchVerdicts",
    "CompiledConditions",
    "CompiledZone",
    "ConditionsError",
    "GeometryError",
    "ZoneIndex",
    "ZoneVerdict",
    "compile_conditions",
]
