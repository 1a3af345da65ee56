"""The one validation of a conditions document, shared by the API, the CLI, the worker and the
archiver: size, contract (msgspec), key, then geometry, area of use, size limits and schedules
(``geofences.compile_conditions``). Whatever passes here, the worker applies."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import msgspec

from em_service.contracts import Conditions
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


def check(raw: bytes | str, *, crs: str, key: str | None = None) -> Checked:
    """Return ``raw`` decoded and compiled, or raise :class:`InvalidConditions` saying why.

    ``key`` is the record key (offender_id) the document is published under, if any; a body
    naming another offender is refused. ``crs`` is the projected CRS the worker uses.
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
