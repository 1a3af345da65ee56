"""Mandatory attendance appointments: a place and a local-time slot on one date, in UTC.

Local ``start`` and ``end`` on the appointment's local ``date`` map to UTC with the curfews' DST rule
(:func:`geofences.schedule.local_to_utc_s`: a time in the spring gap maps to the end of the gap, a
time in the autumn fold to its first occurrence). The place is an inclusion zone active from
``start - grace_before_s`` to ``end``; a fix is *at the place* when its verdict against it is
``clear`` (definitely inside) or ``possible`` (the accuracy disc straddles the edge).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from geofences import verdicts as V
from geofences.errors import ConditionsError
from geofences.schedule import get_timezone, local_to_utc_s, parse_hhmm


@dataclass(frozen=True, slots=True)
class Slot:
    """One appointment in UTC epoch seconds: arrival counts in ``[open_s, end_s)``; arriving
    after ``late_s`` is late."""

    appointment_id: str
    open_s: float
    start_s: float
    late_s: float
    end_s: float
    local_date: date
    local_start: str
    local_end: str
    name: str | None = None


@dataclass(frozen=True, eq=False)
class CompiledAppointments:
    """A person's appointments: their slots by start, and their places as inclusion zones
    (``places``, a :class:`~geofences.zones.CompiledConditions` of the same projector)."""

    slots: tuple[Slot, ...]
    places: Any  # CompiledConditions (import cycle)
    _opens: tuple[float, ...] = ()
    _max_len_s: float = 0.0

    def slot(self, appointment_id: str) -> Slot | None:
        """Return the slot called ``appointment_id``, or None."""
        return next((s for s in self.slots if s.appointment_id == appointment_id), None)

    def active(self, ts_s: float) -> list[Slot]:
        """Return the slots whose arrival window ``[open_s, end_s)`` contains ``ts_s``."""
        hi = bisect.bisect_right(self._opens, ts_s)
        lo = bisect.bisect_left(self._opens, ts_s - self._max_len_s)
        return [s for s in self.slots[lo:hi] if s.open_s <= ts_s < s.end_s]

    def at_place(self, ts_s: float, *, accuracy_m: float, lon: float, lat: float) -> dict[str, int]:
        """Return ``{appointment_id: verdict code}`` of a fix for the slots active at ``ts_s``
        (``CLEAR`` inside, ``POSSIBLE`` straddling, ``DEFINITE`` away, ``UNUSABLE``)."""
        return {
            v.zone_id: v.code
            for v in self.places.evaluate_fix(ts_s, accuracy_m=accuracy_m, lon=lon, lat=lat)
            if v.code != V.INACTIVE
        }


def compile_appointments(
    appointments: Sequence[Mapping[str, Any]],
    *,
    timezone: str,
    projector_crs: str,
    compile_place: Any,
    **zone_options: Any,
) -> CompiledAppointments | None:
    """Return the compiled appointments (None when there are none).

    ``compile_place(item_id, geometry, radius_m)`` returns ``(geometry, circle)`` in metres (the
    zones' own compiler); ``zone_options`` go to :func:`geofences.zones.compile_zones`.
    """
    if not appointments:
        return None
    from geofences.zones import CompiledZone, compile_zones

    tz = get_timezone(timezone)
    slots: list[Slot] = []
    places: list[CompiledZone] = []
    for a in appointments:
        item = str(a.get("appointment_id") or "?")
        raw_day = a.get("date")
        try:
            day = raw_day if isinstance(raw_day, date) else date.fromisoformat(str(raw_day))
        except ValueError:
            raise ConditionsError(f"date {raw_day!r} is not YYYY-MM-DD", item_id=item) from None
        s_min = parse_hhmm(a.get("start"), item_id=item)
        e_min = parse_hhmm(a.get("end"), item_id=item)
        start_s, end_s = local_to_utc_s(day, s_min, tz), local_to_utc_s(day, e_min, tz)
        if end_s <= start_s:
            raise ConditionsError("the appointment is empty in local time", item_id=item)
        before = float(a.get("grace_before_s", 900.0))
        after = float(a.get("grace_after_s", 600.0))
        if before < 0 or after < 0:
            raise ConditionsError("grace must not be negative", item_id=item)
        open_s = start_s - before
        slots.append(
            Slot(
                item,
                open_s,
                start_s,
                min(start_s + after, end_s),
                end_s,
                day,
                a.get("start"),
                a.get("end"),
                a.get("name"),
            )
        )
        geom, circle = compile_place(item, a.get("geometry"), a.get("radius_m"))
        places.append(CompiledZone(item, "inclusion", geom, circle, None, open_s, end_s))
    compiled = compile_zones(places, crs=projector_crs, timezone=timezone, **zone_options)
    slots.sort(key=lambda s: s.open_s)
    return CompiledAppointments(
        tuple(slots),
        compiled,
        tuple(s.open_s for s in slots),
        max((s.end_s - s.open_s for s in slots), default=0.0) + 1.0,
    )


__all__ = ["CompiledAppointments", "Slot", "compile_appointments"]
