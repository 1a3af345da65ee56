"""Validate a conditions document: the contract (msgspec) and the geometry (geofences)."""

from __future__ import annotations

import msgspec

from em_service.contracts import Conditions
from geofences import compile_conditions
from geofences.errors import ConditionsError

_decoder = msgspec.json.Decoder(Conditions)


class InvalidConditions(ValueError):
    """The document is not valid conditions; the message says what and where."""


def parse_conditions(raw: bytes | str, *, crs: str = "EPSG:27700") -> Conditions:
    """Return the typed conditions in ``raw`` after checking contract and geometry.

    Raises :class:`InvalidConditions` with a message naming the offending field or zone.
    """
    try:
        conditions = _decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise InvalidConditions(f"conditions contract: {exc}") from None
    check_geometry(conditions, crs=crs)
    return conditions


def check_geometry(conditions: Conditions, *, crs: str = "EPSG:27700") -> None:
    """Raise :class:`InvalidConditions` if a zone or curfew geometry or schedule is unusable."""
    try:
        compile_conditions(msgspec.to_builtins(conditions), crs=crs)
    except ConditionsError as exc:
        raise InvalidConditions(str(exc)) from None
