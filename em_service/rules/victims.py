"""Victim proximity: a moving exclusion zone around a protected victim's own device.

A conditions entry (``victims``: ``protection_id``, ``victim_device_id``, ``radius_m``) names the
victim's device, whose fixes arrive on their own topic. Each fix of the person is compared with
the victim's newest fix taken at or before it, and only if that fix is at most
``EM_VICTIM_FIX_MAX_AGE_S`` older (:class:`VictimPositions`, a small in-memory table). Distances
are metres in the projected CRS; both fixes are discs of their accuracy, so with ``d`` the
distance between the fixes and ``a`` the two accuracies added:

* ``definite`` if ``d + a <= radius`` (every place either could be is within the radius),
* ``possible`` if ``d - a <= radius`` (some could be),
* ``clear`` otherwise; ``unusable`` (no decision) without a recent victim fix or with a person's
  fix worse than the conditions' accuracy limit.

The verdicts feed the episode state machine of the zones (:mod:`geofences.episodes`: reordering,
late lane, debounce), tuned for a critical rule: an episode opens on 3 evidence fixes in a run of
which at least one is definite, and closes after 3 clear fixes or 5 min clear. An opened episode
is ``victim_proximity`` (high; tier critical), a closed one ``victim_proximity_ended``.

Alerts carry the person's fix only and the closest distance seen (rounded to 10 m), never the
victim's position or device.
"""

from __future__ import annotations

import bisect
import math
from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Struct

from em_service.conditions.registry import Version
from em_service.contracts import Alert, GpsReading, Location
from em_service.rules.ids import alert_id
from em_service.settings import Settings
from geofences import verdicts as V
from geofences.episodes import (
    EpisodeConfig,
    EpisodeEvent,
    EpisodeState,
    Observation,
    advance,
    close_episode,
    is_open,
    push_in_place,
)

#: Debounce of the victim rule: 3 evidence fixes in a run, one of them definite, open it.
EPISODES = EpisodeConfig(open_min_fixes=3, open_min_definite=1)
RULE = "victim_proximity"
_QUIET = frozenset((V.CLEAR, V.UNUSABLE))


class VictimFix(NamedTuple):
    """A victim's fix: event time (epoch s), projected metres and accuracy."""

    ts_s: float
    x: float
    y: float
    accuracy_m: float


class VictimPositions:
    """Victims' recent fixes by victim device, in time order; memory only (never stored).

    Keeps a short history rather than the last fix alone so that a person's fix is compared
    with the victim's fix *of its time*, whatever order the two streams are read in (a late or
    replayed person's fix finds the victim's fix before it). :meth:`prune` drops fixes older
    than the retention behind the rule clock.
    """

    def __init__(self) -> None:
        self._fixes: dict[str, list[VictimFix]] = {}
        self.reads = 0  # look-ups that found a fix (a metric; the positions never leave)

    def __len__(self) -> int:
        return len(self._fixes)

    def put(self, device_id: str, fix: VictimFix) -> None:
        """Add a fix (a second fix at the same time is ignored)."""
        fixes = self._fixes.setdefault(device_id, [])
        if not fixes or fixes[-1].ts_s < fix.ts_s:
            fixes.append(fix)
            return
        i = bisect.bisect_left(fixes, fix.ts_s, key=_ts)
        if i == len(fixes) or fixes[i].ts_s != fix.ts_s:
            fixes.insert(i, fix)

    def at(self, device_id: str, ts_s: float, max_age_s: float) -> VictimFix | None:
        """Return the victim's newest fix at or before ``ts_s`` and at most ``max_age_s`` older."""
        fixes = self._fixes.get(device_id)
        if not fixes:
            return None
        i = bisect.bisect_right(fixes, ts_s, key=_ts)
        if i == 0 or ts_s - fixes[i - 1].ts_s > max_age_s:
            return None
        self.reads += 1
        return fixes[i - 1]

    def prune(self, before_s: float) -> int:
        """Forget fixes older than ``before_s``; return how many were dropped."""
        dropped = 0
        for device_id in list(self._fixes):
            fixes = self._fixes[device_id]
            i = bisect.bisect_left(fixes, before_s, key=_ts)
            if i:
                del fixes[:i]
                dropped += i
            if not fixes:
                del self._fixes[device_id]
        return dropped


def _ts(fix: VictimFix) -> float:
    return fix.ts_s


class VictimRulesState(Struct, omit_defaults=True):
    """Per-device episode state of each victim protection (key = protection_id)."""

    episodes: dict[str, EpisodeState] = msgspec.field(default_factory=dict)
    radius_m: dict[str, float] = msgspec.field(default_factory=dict)


def verdict(distance_m: float, accuracy_m: float, radius_m: float) -> int:
    """Return the verdict of two fixes ``distance_m`` apart with ``accuracy_m`` (both added)."""
    if distance_m + accuracy_m <= radius_m:
        return V.DEFINITE
    if distance_m - accuracy_m <= radius_m:
        return V.POSSIBLE
    return V.CLEAR


def on_fix(
    state: VictimRulesState,
    version: Version,
    offender_id: str,
    fix: GpsReading,
    xy: tuple[float, float],
    positions: VictimPositions,
    *,
    now: datetime,
    settings: Settings,
    late: bool = False,
) -> list[Alert]:
    """Compare one fix of the person (``xy``: its projected metres) with each protected victim's
    fix of its time; return the alerts (mutates ``state``)."""
    ts_s = fix.ts.timestamp()
    protections = version.conditions.victims
    present = {p.protection_id for p in protections}
    alerts = _retire_missing(state, present, version, offender_id, fix, now)
    usable = fix.accuracy_m <= version.compiled.max_accuracy_m and math.isfinite(xy[0])
    for p in protections:
        pid = p.protection_id
        victim = positions.at(p.victim_device_id, ts_s, settings.victim_fix_max_age_s)
        depth = None
        if victim is None or not usable:
            code = V.UNUSABLE
        else:
            d = math.hypot(xy[0] - victim.x, xy[1] - victim.y)
            code, depth = verdict(d, fix.accuracy_m + victim.accuracy_m, p.radius_m), p.radius_m - d
        ep = state.episodes.get(pid)
        if ep is None:
            if code in _QUIET:
                continue  # nothing to remember: keeps the state small
            ep = state.episodes[pid] = EpisodeState()
        state.radius_m[pid] = p.radius_m
        events = push_in_place(ep, Observation(ts_s, code, depth), EPISODES)
        if events:
            alerts += _alerts(events, state, pid, offender_id, fix, now, version, settings, late)
    return alerts


def on_tick(
    state: VictimRulesState,
    version: Version | None,
    offender_id: str,
    device_id: str,
    *,
    now: datetime,
    settings: Settings,
) -> list[Alert]:
    """Time reached ``now``: apply the fixes held for reordering."""
    alerts: list[Alert] = []
    for pid, ep in list(state.episodes.items()):
        if not ep.buffer:
            continue
        ep, events = advance(ep, now.timestamp(), EPISODES)
        state.episodes[pid] = ep
        alerts += _alerts(
            events,
            state,
            pid,
            offender_id,
            None,
            now,
            version,
            settings,
            False,
            device_id=device_id,
        )
    return alerts


def close_all(
    state: VictimRulesState,
    version: Version | None,
    offender_id: str,
    device_id: str,
    at: datetime,
    now: datetime,
    reason: str,
) -> list[Alert]:
    """Close every open episode at ``at`` (monitoring paused) and forget the state."""
    pids = list(state.episodes)
    alerts = _close(state, pids, version, offender_id, device_id, at, now, reason)
    state.radius_m.clear()
    return alerts


def _retire_missing(
    state: VictimRulesState,
    present: set[str],
    version: Version,
    offender_id: str,
    fix: GpsReading,
    now: datetime,
) -> list[Alert]:
    """Close and forget episodes of protections the conditions no longer have."""
    gone = [p for p in state.episodes if p not in present]
    return _close(
        state, gone, version, offender_id, fix.device_id, fix.ts, now, "conditions_changed"
    )


def _close(
    state: VictimRulesState,
    pids: list[str],
    version: Version | None,
    offender_id: str,
    device_id: str,
    at: datetime,
    now: datetime,
    reason: str,
) -> list[Alert]:
    """Close the open episodes of ``pids`` at ``at`` and forget them (radius after the alert)."""
    alerts: list[Alert] = []
    for pid in pids:
        ep = state.episodes.pop(pid)
        if is_open(ep):
            _, events = close_episode(ep, at.timestamp(), EPISODES, reason=reason)
            alerts += _alerts(
                events,
                state,
                pid,
                offender_id,
                None,
                now,
                version,
                None,
                False,
                device_id=device_id,
            )
        state.radius_m.pop(pid, None)
    return alerts


def _closest(radius_m: float | None, ev: EpisodeEvent) -> float | None:
    if radius_m is None or ev.max_depth_m is None:
        return None
    return float(max(0, round((radius_m - ev.max_depth_m) / 10.0) * 10))


def _alerts(
    events: list[EpisodeEvent],
    state: VictimRulesState,
    pid: str,
    offender_id: str,
    fix: GpsReading | None,
    now: datetime,
    version: Version | None,
    settings: Settings | None,
    late: bool,
    *,
    device_id: str | None = None,
) -> list[Alert]:
    tz = ZoneInfo(version.conditions.timezone if version else "Europe/London")
    radius = state.radius_m.get(pid)
    out = []
    for ev in events:
        start = datetime.fromtimestamp(ev.start_s, UTC)
        details: dict[str, object] = {
            "protection_id": pid,
            "radius_m": radius,
            "closest_m": _closest(radius, ev),
            "n_fixes": ev.n_fixes,
            "evidence": "definite" if ev.definite else "possible",
            "occurred_at_local": start.astimezone(tz).isoformat(),
        }
        if ev.kind == "episode_opened":
            severity = (
                "high" if ev.definite or settings is None else settings.possible_only_severity
            )
            where = Location(lat=fix.lat, lon=fix.lon, accuracy_m=fix.accuracy_m) if fix else None
            rule, occurred, end, ref = RULE, start, None, None
        else:
            end = datetime.fromtimestamp(ev.end_s if ev.end_s is not None else ev.detected_s, UTC)
            details.update(duration_s=ev.duration_s, reason=ev.reason)
            details["ended_at_local"] = end.astimezone(tz).isoformat()
            severity, where, occurred = "info", None, end
            rule, ref = f"{RULE}_ended", alert_id(offender_id, RULE, pid, start)
        out.append(
            Alert(
                alert_id=alert_id(offender_id, rule, pid, start),
                type=rule,  # type: ignore[arg-type]
                severity=severity,  # type: ignore[arg-type]
                offender_id=offender_id,
                device_id=fix.device_id if fix else device_id,
                occurred_at=occurred,
                detected_at=now,
                location=where,
                episode_start=start,
                episode_end=end,
                ref_alert_id=ref,
                late=ev.late or late,
                details=details,
            )
        )
    return out
