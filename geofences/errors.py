"""Errors raised while compiling conditions: each names the zone or curfew at fault."""

from __future__ import annotations


class ConditionsError(ValueError):
    """Conditions cannot be compiled (bad schedule, timestamp, or structure).

    Parameters
    ----------
    message
        What is wrong, in words an operator can act on.
    item_id
        ``zone_id`` or ``curfew_id`` at fault, if any.
    """

    def __init__(self, message: str, *, item_id: str | None = None) -> None:
        self.item_id = item_id
        super().__init__(f"{item_id}: {message}" if item_id else message)


class GeometryError(ConditionsError):
    """A zone or curfew geometry is invalid: empty, self-intersecting, absurd size, out of area."""
