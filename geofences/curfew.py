"""Curfews: be at the address (Point + radius_m, or Polygon) during weekly local-time windows.

A compiled curfew is a :class:`~geofences.zones.CompiledZone` of kind ``"curfew"``: an inclusion
zone that is active only from each window's start plus ``grace_s`` until its end. Its verdicts
use curfew names (:data:`geofences.verdicts.CURFEW_NAMES`):

``at_home``         the whole accuracy disc is at the address;
``away_definite``   the whole disc is away from it;
``away_possible``   the disc straddles the address boundary;
``unusable``        accuracy worse than the limit;
``not_applicable``  outside the enforced part of every window (before start + grace, after end).

Late return: away when the window starts (after the grace) → the episode opens at the first
evidence fix. Early leave: away before the end → the episode closes at the window end at the
latest (:func:`geofences.episodes.advance` closes it even if no fix arrives).
"""

from __future__ import annotations

from datetime import datetime

from geofences.schedule import Window, windows_covering, windows_overlapping
from geofences.zones import CompiledConditions, CompiledZone, ZoneVerdict


def _curfew(compiled: CompiledConditions, curfew_id: str) -> CompiledZone:
    zone = compiled.zone(curfew_id)
    if zone.kind != "curfew" or zone.schedule is None:
        raise KeyError(f"{curfew_id} is not a curfew")
    return zone


def curfew_windows(
    compiled: CompiledConditions, curfew_id: str, t0_s: float, t1_s: float
) -> list[Window]:
    """Return the curfew's windows overlapping ``[t0_s, t1_s]`` (from their nominal start).

    Each :class:`~geofences.schedule.Window` gives ``nominal_start_s``, ``start_s`` (enforced:
    after the grace), ``end_s`` and the ``local_date`` it starts on, all in UTC epoch seconds.
    """
    zone = _curfew(compiled, curfew_id)
    return windows_overlapping(zone.schedule, t0_s, t1_s, nominal=True)


def curfew_window_at(compiled: CompiledConditions, curfew_id: str, ts_s: float) -> Window | None:
    """Return the curfew window covering ``ts_s`` (grace included), or None.

    If windows overlap, the one that started last is returned.
    """
    windows = windows_covering(_curfew(compiled, curfew_id).schedule, ts_s, nominal=True)
    return windows[-1] if windows else None


def curfew_verdicts(
    compiled: CompiledConditions,
    ts: float | datetime,
    *,
    accuracy_m: float,
    lon: float | None = None,
    lat: float | None = None,
    x: float | None = None,
    y: float | None = None,
) -> list[ZoneVerdict]:
    """Return the verdicts of one fix against the person's curfews only (names as above)."""
    verdicts = compiled.evaluate_fix(ts, accuracy_m=accuracy_m, lon=lon, lat=lat, x=x, y=y)
    return [v for v in verdicts if v.kind == "curfew"]
