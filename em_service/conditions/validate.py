"""The one validation of a conditions document, shared by the API, the CLI, the worker and the
archiver: size, contract (msgspec), key, vertex caps, then geometry, area of use, size limits and
schedules (``geofences.compile_conditions``). Whatever passes here, the worker applies.

Vertex caps (``EM_MAX_ZONE_VERTICES`` per polygon, holes included; ``EM_MAX_CONDITIONS_VERTICES``
for the whole document) bound the time compiling takes on the worker's event loop, at every
apply and every restart. A polygon over the cap is refused, not simplified: the zone enforced
and kept as evidence must be the one the order gives, not an approximation nobody approved; the
sender simplifies it, with a tolerance they choose and record.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from em_service.contracts import Conditions
from em_service.contracts.conditions import MultiPolygonGeometry, PolygonGeometry
from geofences import CompiledConditions, compile_conditions
from geofences.errors import ConditionsError

log = logging.getLogger(__name__)
_decoder = msgspec.json.Decoder(Conditions)
#: The largest conditions document accepted (also Kafka's default largest message).
MAX_CONDITIONS_BYTES = 1_048_576


class InvalidConditions(ValueError):
    """The document is not valid conditions; the message says what and where."""


class TooLarge(InvalidConditions):
    """The document is larger than :data:`MAX_CONDITIONS_BYTES`."""


@dataclass(frozen=True, slots=True)
class Checked:
    """A valid document: the typed conditions and their compiled zones and curfews."""

    conditions: Conditions
    compiled: CompiledConditions


def version_id(raw: bytes) -> str:
    """Return the id of one published version: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(raw).hexdigest()[:16]


def _polygons(conditions: Conditions) -> Iterator[tuple[str, list[list[list[list[float]]]]]]:
    """Yield ``(id, [polygon rings, …])`` of every zone, curfew and appointment with an area."""
    places = [(z.properties.zone_id, z.geometry) for z in conditions.zones]
    places += [(c.curfew_id, c.geometry) for c in conditions.curfews]
    places += [(a.appointment_id, a.geometry) for a in conditions.appointments]
    for item_id, geometry in places:
        if isinstance(geometry, PolygonGeometry):
            yield item_id, [geometry.coordinates]
        elif isinstance(geometry, MultiPolygonGeometry):
            yield item_id, geometry.coordinates


def check_vertices(conditions: Conditions, per_polygon: int, per_document: int) -> int:
    """Return the number of polygon vertices (positions, closing ones and holes included) in
    ``conditions``, or raise :class:`InvalidConditions` if a polygon or the whole has too many."""
    total = 0
    for item_id, polygons in _polygons(conditions):
        for i, rings in enumerate(polygons):
            count = sum(len(ring) for ring in rings)
            total += count
            if count > per_polygon:
                part = f" {i + 1} of {len(polygons)}" if len(polygons) > 1 else ""
                raise InvalidConditions(
                    f"{item_id}: polygon{part} has {count:,} vertices (holes included); the "
                    f"limit is {per_polygon:,} per polygon (EM_MAX_ZONE_VERTICES): simplify it"
                )
    if total > per_document:
        raise InvalidConditions(
            f"conditions have {total:,} polygon vertices in all; the limit is "
            f"{per_document:,} (EM_MAX_CONDITIONS_VERTICES)"
        )
    return total


def check(
    raw: bytes | str,
    *,
    crs: str,
    key: str | None = None,
    max_polygon_vertices: int | None = None,
    max_vertices: int | None = None,
) -> Checked:
    """Return ``raw`` decoded and compiled, or raise :class:`InvalidConditions` saying why.

    ``key`` is the record key (offender_id) the document is published under, if any; a body
    naming another offender is refused. ``crs`` is the projected CRS the worker uses. The vertex
    caps default to ``EM_MAX_ZONE_VERTICES`` and ``EM_MAX_CONDITIONS_VERTICES``.
    """
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_CONDITIONS_BYTES:
        raise TooLarge(f"conditions are {size} bytes; the limit is {MAX_CONDITIONS_BYTES}")
    try:
        conditions = _decoder.decode(raw)
    except (msgspec.MsgspecError, ValueError) as exc:
        raise InvalidConditions(f"conditions contract: {exc}") from None
    if key is not None and conditions.offender_id != key:
        raise InvalidConditions(
            f"offender_id {conditions.offender_id!r} differs from the key {key!r}"
        )
    if max_polygon_vertices is None or max_vertices is None:
        from em_service.settings import get_settings

        settings = get_settings()
        max_polygon_vertices = max_polygon_vertices or settings.max_zone_vertices
        max_vertices = max_vertices or settings.max_conditions_vertices
    check_vertices(conditions, max_polygon_vertices, max_vertices)  # before compiling
    try:
        compiled = compile_conditions(msgspec.to_builtins(conditions), crs=crs)
    except ConditionsError as exc:
        raise InvalidConditions(str(exc)) from None
    except Exception as exc:  # no document may stop a consumer: refuse what cannot be compiled
        log.error(  # no traceback: its messages may hold the zone's coordinates
            "conditions of %s could not be compiled: %s",
            conditions.offender_id,
            type(exc).__name__,
        )
        raise InvalidConditions(f"cannot be compiled: {type(exc).__name__}: {exc}") from None
    return Checked(conditions, compiled)


def parse_conditions(raw: bytes | str, *, crs: str = "EPSG:27700") -> Conditions:
    """Return the typed conditions in ``raw`` after :func:`check` (the CLI's entry)."""
    return check(raw, crs=crs).conditions
