"""Zone and curfew rules: geofences verdicts → debounced episodes → breach alerts.

Each fix is evaluated against every zone and curfew of the conditions in force at its event time
(:meth:`geofences.CompiledConditions.evaluate_fix`); each (zone or curfew) has its own
:class:`geofences.episodes.EpisodeState`. An ``episode_opened`` becomes ``exclusion_breach``,
``inclusion_breach`` or ``curfew_breach`` (high if any evidence fix was definite, else
``possible_only_severity``); ``episode_closed`` becomes the matching ``…_ended`` with the duration.

Curfew breaches say which pattern they are (``details.pattern``): ``late_return`` (no fix at home
in this window before the episode started), ``away_during_curfew`` (was home, then left), and at
the end ``early_leave`` when an ``away_during_curfew`` episode lasted to the window end. Alerts
carry the window's local start and end (the conditions' timezone) next to UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Struct

from em_service.conditions.registry import Version
from em_service.contracts import Alert, GpsReading, Location
from em_service.rules.ids import alert_id
from em_service.settings import Settings
from geofences import ZoneVerdict
from geofences import verdicts as V
from geofences.curfew import curfew_window_at as _window_at
from geofences.curfew import curfew_windows
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


class CurfewMemo(Struct):
    """What a curfew rule remembers about the current window."""

    window_start_s: float | None = None
    window_end_s: float | None = None
    home_seen: bool = False
    pattern: str | None = None


class ZoneRulesState(Struct):
    """Per-device episode state for each zone and curfew (key = zone_id or curfew_id)."""

    episodes: dict[str, EpisodeState] = msgspec.field(default_factory=dict)
    kinds: dict[str, str] = msgspec.field(default_factory=dict)
    curfews: dict[str, CurfewMemo] = msgspec.field(default_factory=dict)


EPISODES = EpisodeConfig()
#: Verdicts that start no episode state for a zone (curfews keep one to note home fixes).
_QUIET = frozenset((V.INACTIVE, V.CLEAR, V.UNUSABLE))


def _utc(ts_s: float) -> datetime:
    return datetime.fromtimestamp(ts_s, UTC)


def _local(ts_s: float, tz: str) -> str:
    return datetime.fromtimestamp(ts_s, ZoneInfo(tz)).isoformat()


def curfew_windows_from(version: Version, t0: datetime, t1: datetime) -> list[tuple[str, datetime]]:
    """Return ``(curfew_id, window start)`` of each curfew window active at ``t0`` or starting in
    ``(t0, t1)``, by start; a window is active from its nominal start."""
    lo, hi = t0.timestamp(), t1.timestamp()
    found = sorted(
        (w.nominal_start_s, i, c.curfew_id)
        for i, c in enumerate(version.conditions.curfews)
        for w in curfew_windows(version.compiled, c.curfew_id, lo, hi)
        if w.nominal_start_s < hi and w.end_s > lo
    )
    return [(curfew_id, _utc(start)) for start, _, curfew_id in found]


def open_kinds(state: ZoneRulesState) -> list[str]:
    """Return the kind of every open episode."""
    return [state.kinds.get(s, "exclusion") for s, ep in state.episodes.items() if is_open(ep)]


def _alerts(
    events: list[EpisodeEvent],
    state: ZoneRulesState,
    subject: str,
    version: Version,
    offender_id: str,
    device_id: str,
    now: datetime,
    settings: Settings,
    fix: GpsReading | None,
    late: bool = False,
) -> list[Alert]:
    kind = state.kinds[subject]
    rule = f"{kind}_breach"
    tz = version.conditions.timezone
    out = []
    for ev in events:
        start = _utc(ev.start_s)
        details: dict[str, object] = {
            "n_fixes": ev.n_fixes,
            "max_depth_m": None if ev.max_depth_m is None else round(ev.max_depth_m, 1),
            "evidence": "definite" if ev.definite else "possible",
            "occurred_at_local": _local(ev.start_s, tz),
        }
        if kind == "curfew":
            details.update(_curfew_details(state, subject, version, ev, tz))
        if ev.kind == "episode_opened":
            severity = "high" if ev.definite else settings.possible_only_severity
            location = (
                Location(lat=fix.lat, lon=fix.lon, accuracy_m=fix.accuracy_m) if fix else None
            )
            out.append(
                _alert(
                    rule,
                    severity,
                    offender_id,
                    device_id,
                    subject,
                    kind,
                    start,
                    start,
                    None,
                    now,
                    ev.late or late or _stale(ev, now, settings, fix),
                    location,
                    None,
                    details,
                )
            )
        else:
            end = _utc(ev.end_s if ev.end_s is not None else ev.detected_s)
            details.update(
                duration_s=ev.duration_s,
                reason=ev.reason,
                ended_at_local=_local(end.timestamp(), tz),
            )
            ref = alert_id(offender_id, rule, subject, start)
            out.append(
                _alert(
                    f"{rule}_ended",
                    "info",
                    offender_id,
                    device_id,
                    subject,
                    kind,
                    end,
                    start,
                    end,
                    now,
                    ev.late or late or _stale(ev, now, settings, fix),
                    None,
                    ref,
                    details,
                )
            )
    return out


def _stale(ev: EpisodeEvent, now: datetime, settings: Settings, fix: GpsReading | None) -> bool:
    """A timer-released event is late if the fix behind it was older than the rule clock allows."""
    return fix is None and now.timestamp() - ev.detected_s > settings.late_after_s


def _alert(
    rule: str,
    severity: str,
    offender_id: str,
    device_id: str,
    subject: str,
    kind: str,
    occurred: datetime,
    start: datetime,
    end: datetime | None,
    now: datetime,
    late: bool,
    location: Location | None,
    ref: str | None,
    details: dict,
) -> Alert:
    return Alert(
        alert_id=alert_id(offender_id, rule, subject, start),
        type=rule,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        offender_id=offender_id,
        device_id=device_id,
        occurred_at=occurred,
        detected_at=now,
        location=location,
        zone_id=None if kind == "curfew" else subject,
        curfew_id=subject if kind == "curfew" else None,
        episode_start=start,
        episode_end=end,
        ref_alert_id=ref,
        late=late,
        details=details,
    )


def _curfew_details(
    state: ZoneRulesState, subject: str, version: Version, ev: EpisodeEvent, tz: str
) -> dict[str, object]:
    try:
        window = _window_at(version.compiled, subject, ev.start_s)
    except KeyError:  # the curfew was removed from the conditions
        window = None
    memo = state.curfews.setdefault(subject, CurfewMemo())
    details: dict[str, object] = {}
    if window is not None:
        details["window_start_local"] = _local(window.nominal_start_s, tz)
        details["window_end_local"] = _local(window.end_s, tz)
        details["window_start"] = _utc(window.nominal_start_s).isoformat()
        details["window_end"] = _utc(window.end_s).isoformat()
    if ev.kind == "episode_opened":
        same_window = window is not None and memo.window_start_s == window.nominal_start_s
        memo.pattern = "away_during_curfew" if same_window and memo.home_seen else "late_return"
        if window is not None and not same_window:
            memo.window_start_s, memo.home_seen = window.nominal_start_s, False
        details["pattern"] = memo.pattern
    else:
        pattern = memo.pattern or "away_during_curfew"
        if ev.reason == "window_end" and pattern == "away_during_curfew":
            pattern = "early_leave"
        details["pattern"] = pattern
    return details


def _note_home(state: ZoneRulesState, subject: str, version: Version, ts_s: float) -> None:
    """Remember that the person was seen at home in the current window."""
    memo = state.curfews.setdefault(subject, CurfewMemo())
    if (
        memo.home_seen
        and memo.window_start_s is not None
        and (memo.window_start_s <= ts_s < (memo.window_end_s or 0.0))
    ):
        return  # already known for this window: skip the schedule look-up
    window = _window_at(version.compiled, subject, ts_s)
    if window is None:
        return
    if memo.window_start_s != window.nominal_start_s:
        memo.window_start_s, memo.home_seen, memo.pattern = window.nominal_start_s, False, None
    memo.window_end_s = window.end_s
    memo.home_seen = True


def on_fix(
    state: ZoneRulesState,
    version: Version,
    offender_id: str,
    fix: GpsReading,
    *,
    now: datetime,
    settings: Settings,
    late: bool = False,
    verdicts: list[ZoneVerdict] | None = None,
) -> list[Alert]:
    """Apply one GPS fix to every zone and curfew; return the alerts (mutates ``state``).

    ``late`` marks alerts raised by this fix as late (the fix arrived well after its time);
    ``verdicts`` are the fix's verdicts if already evaluated in a batch (else evaluated here).
    """
    ts_s = fix.ts.timestamp()
    if verdicts is None:
        verdicts = version.compiled.evaluate_fix(
            ts_s, lon=fix.lon, lat=fix.lat, accuracy_m=fix.accuracy_m
        )
    present, episodes, device_id = version.subject_ids, state.episodes, fix.device_id
    alerts = (
        _retire_missing(state, present, version, offender_id, device_id, now, settings)
        if not present.issuperset(episodes)
        else []
    )
    for v in verdicts:
        subject, kind, code = v.zone_id, v.kind, v.code
        ep = episodes.get(subject)
        if ep is None:
            if code in _QUIET and kind != "curfew":
                continue  # nothing to remember yet: keeps the state small
            ep = episodes[subject] = EpisodeState()
        state.kinds[subject] = kind
        if code == V.CLEAR and kind == "curfew":
            _note_home(state, subject, version, ts_s)
        events = push_in_place(ep, Observation.from_verdict(ts_s, v), EPISODES)  # ours: no copy
        if events:
            alerts += _alerts(
                events, state, subject, version, offender_id, device_id, now, settings, fix, late
            )
    return alerts


def on_tick(
    state: ZoneRulesState,
    version: Version,
    offender_id: str,
    device_id: str,
    *,
    now: datetime,
    settings: Settings,
) -> list[Alert]:
    """Time reached ``now``: flush reorder buffers, close episodes whose window ended."""
    alerts: list[Alert] = []
    for subject, ep in list(state.episodes.items()):
        if not ep.buffer and not is_open(ep):
            continue
        ep, events = advance(ep, now.timestamp(), EPISODES)
        state.episodes[subject] = ep
        alerts += _alerts(
            events, state, subject, version, offender_id, device_id, now, settings, None
        )
    return alerts


def _retire_missing(
    state: ZoneRulesState,
    present: frozenset[str],
    version: Version,
    offender_id: str,
    device_id: str,
    now: datetime,
    settings: Settings,
    *,
    at: datetime | None = None,
) -> list[Alert]:
    """Close and forget episodes of zones that the conditions no longer have, at event time
    ``at`` (default ``now``: a conditions change noticed now; a pause passes its own time)."""
    alerts: list[Alert] = []
    end_s = (at or now).timestamp()
    for subject in [s for s in state.episodes if s not in present]:
        ep = state.episodes.pop(subject)
        if is_open(ep):
            _, events = close_episode(ep, end_s, EPISODES, reason="conditions_changed")
            alerts += _alerts(
                events, state, subject, version, offender_id, device_id, now, settings, None
            )
        state.kinds.pop(subject, None)
        state.curfews.pop(subject, None)
    return alerts
