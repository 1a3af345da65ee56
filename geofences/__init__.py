"""geofences: the zone, curfew and proximity engine of the service — pure decision code.

No Kafka or database: it takes the JSON form of the conditions contract and arrays of
fixes, and returns verdicts and episode events by event time. Coordinates are WGS84 ``lon, lat``
(x, y order) on input and projected metres inside (British National Grid by default).

Typical use by a streaming worker::

    compiled = compile_conditions(msgspec.to_builtins(conditions))      # once per update
    for v in compiled.evaluate_fix(ts, lon=lon, lat=lat, accuracy_m=acc):
        state, events = push(states[v.zone_id], Observation.from_verdict(ts, v))
        states[v.zone_id] = state                                        # a state-store value

See ``geofences/README.md`` for the rules, the defaults and why.
"""

from geofences.curfew import curfew_verdicts, curfew_window_at, curfew_windows
from geofences.episodes import (
    DEFAULT_CONFIG,
    EpisodeConfig,
    EpisodeEvent,
    EpisodeState,
    Observation,
    advance,
    close_episode,
    decode_state,
    encode_state,
    is_open,
    new_state,
    push,
)
from geofences.errors import ConditionsError, GeometryError
from geofences.index import BatchVerdicts, ZoneIndex
from geofences.projection import Projector, get_projector
from geofences.proximity import Approach, closest_approach
from geofences.schedule import (
    Schedule,
    Window,
    parse_schedule,
    windows_covering,
    windows_overlapping,
)
from geofences.verdicts import (
    CLEAR,
    CURFEW_NAMES,
    DEFINITE,
    INACTIVE,
    POSSIBLE,
    UNUSABLE,
    ZONE_NAMES,
    verdict_code,
    verdict_name,
)
from geofences.zones import (
    CompiledConditions,
    CompiledZone,
    ZoneVerdict,
    compile_conditions,
    compile_zones,
)

__all__ = [
    "CLEAR",
    "CURFEW_NAMES",
    "DEFAULT_CONFIG",
    "DEFINITE",
    "INACTIVE",
    "POSSIBLE",
    "UNUSABLE",
    "ZONE_NAMES",
    "Approach",
    "BatchVerdicts",
    "CompiledConditions",
    "CompiledZone",
    "ConditionsError",
    "EpisodeConfig",
    "EpisodeEvent",
    "EpisodeState",
    "GeometryError",
    "Observation",
    "Projector",
    "Schedule",
    "Window",
    "ZoneIndex",
    "ZoneVerdict",
    "advance",
    "close_episode",
    "closest_approach",
    "compile_conditions",
    "compile_zones",
    "curfew_verdicts",
    "curfew_window_at",
    "curfew_windows",
    "decode_state",
    "encode_state",
    "get_projector",
    "is_open",
    "new_state",
    "parse_schedule",
    "push",
    "verdict_code",
    "verdict_name",
    "windows_covering",
    "windows_overlapping",
]
