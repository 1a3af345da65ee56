"""geofences: the zone, curfew and proximity engine (pure: no Kafka, Faust or database)."""

from geofences.errors import ConditionsError, GeometryError
from geofences.zones import (
    BatchVerdicts,
    CompiledConditions,
    CompiledZone,
    ZoneIndex,
    ZoneVerdict,
    compile_conditions,
)

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
