"""Silence: a tag that stops reporting.

Rule (precisely, by event time): let ``last_ts`` be the newest event time received from the device
and ``T = last_ts + interval_s + buffer_s`` the instant its silence becomes overdue. Once the rule
clock ``now`` (timer path, :func:`check`) or a returning reading's ``ts`` (contact path,
:func:`on_reading`) is past ``T``, the silence implies, in order:

- at ``T``: ``curfew_unverified`` (high) for the curfew window active at ``T``, else
  ``device_silent`` (medium); ``episode_start = last_ts``, ``occurred_at = T``;
- for each curfew window starting after ``T`` and before ``now`` (or the returning ``ts``):
  ``curfew_unverified`` for that window, ``episode_start = occurred_at =`` the window start.

Ids derive from (offender, rule, device or curfew, episode start), so a timer, a returning reading
(which raises what no timer did, ``late: true``) and a replay all yield the same alerts and ids.
The first reading with ``ts > last_ts`` restores contact: each open silence alert gets its
``…_ended`` update carrying the gap in seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from msgspec import Struct

from em_service.contracts import Alert
from em_service.rules.ids import alert_id

#: ``curfews(t0, t1)``: ``(curfew_id, window start)`` of each curfew window active at ``t0`` or
#: starting in ``(t0, t1)``, by start.
Curfews = Callable[[datetime, datetime], Sequence[tuple[str, datetime]]]


def _no_curfews(_t0: datetime, _t1: datetime) -> Sequence[tuple[str, datetime]]:
    return ()


class OpenSilence(Struct):
    """One open silence alert."""

    type: str
    alert_id: str
    curfew_id: str | None = None
    start: datetime | None = None  # its episode start (None in older state: ``last_ts``)


class SilenceState(Struct):
    """Per-device silence state."""

    last_ts: datetime | None = None
    open: list[OpenSilence] = []


def _alert(
    kind: str,
    severity: str,
    offender_id: str,
    device_id: str,
    start: datetime,
    occurred: datetime,
    now: datetime,
    curfew_id: str | None,
    ref: str | None = None,
    **details: object,
) -> Alert:
    subject = curfew_id or device_id
    rule = kind.removesuffix("_ended")
    return Alert(
        alert_id=alert_id(offender_id, kind, subject, start),
        type=kind,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        offender_id=offender_id,
        device_id=device_id,
        occurred_at=occurred,
        detected_at=now,
        curfew_id=curfew_id,
        episode_start=start,
        episode_end=occurred if ref else None,
        ref_alert_id=ref,
        details={"rule": rule, **details},
    )


def _raise_due(
    state: SilenceState,
    offender_id: str,
    device_id: str,
    last: datetime,
    *,
    until: datetime,
    threshold_s: float,
    curfews: Curfews,
    now: datetime,
) -> list[Alert]:
    """Open and return the alerts of the silence from ``last`` up to ``until`` (exclusive) that are
    not open yet (see the module docstring); ``now`` is their ``detected_at``."""
    due = last + timedelta(seconds=threshold_s)
    if until <= due:
        return []  # not overdue (the common case: a reading within its interval)
    # Windows before the newest one already alerted were alerted too: scan from there.
    since = max((o.start for o in state.open if o.start and o.start > due), default=due)
    if until <= since:
        return []
    windows = curfews(since, until)
    owed: list[tuple[str, str | None, datetime, datetime]] = []  # kind, curfew, start, occurred
    if not state.open:
        at_due = next((w for w in windows if w[1] <= due), None)
        owed.append(
            ("curfew_unverified", at_due[0], last, due)
            if at_due
            else ("device_silent", None, last, due)
        )
    owed += [("curfew_unverified", c, start, start) for c, start in windows if start > due]
    opened = {o.alert_id for o in state.open}
    gap = {"last_reading_at": last.isoformat(), "threshold_s": threshold_s}
    alerts: list[Alert] = []
    for kind, curfew_id, start, occurred in owed:
        severity = "high" if kind == "curfew_unverified" else "medium"
        a = _alert(kind, severity, offender_id, device_id, start, occurred, now, curfew_id, **gap)
        if a.alert_id not in opened:
            alerts.append(a)
            state.open.append(OpenSilence(kind, a.alert_id, curfew_id, start))
    return alerts


def check(
    state: SilenceState,
    offender_id: str,
    device_id: str,
    *,
    now: datetime,
    interval_s: float,
    buffer_s: float,
    curfews: Curfews = _no_curfews,
) -> list[Alert]:
    """Return the new silence alerts at rule clock ``now`` of a device last heard at
    ``state.last_ts`` (the timer path)."""
    if state.last_ts is None:
        return []
    return _raise_due(
        state,
        offender_id,
        device_id,
        state.last_ts,
        until=now,
        threshold_s=interval_s + buffer_s,
        curfews=curfews,
        now=now,
    )


def on_reading(
    state: SilenceState,
    offender_id: str,
    device_id: str,
    ts: datetime,
    *,
    now: datetime,
    interval_s: float | None = None,
    buffer_s: float = 0.0,
    curfews: Curfews = _no_curfews,
) -> list[Alert]:
    """Record a reading at event time ``ts``; return the alerts it implies (the contact path).

    A reading after an overdue gap first raises, late (``late: true``), the alerts of the gap that
    no timer raised (the worker was down, or a replay ran faster than its ticks), exactly as
    :func:`check` at ``now = ts`` would have; then every open silence alert gets its ``…_ended``.
    Pass ``interval_s=None`` for devices whose silence is not watched.
    """
    alerts: list[Alert] = []
    if state.last_ts is not None and ts > state.last_ts:
        if interval_s is not None:
            found = _raise_due(
                state,
                offender_id,
                device_id,
                state.last_ts,
                until=ts,
                threshold_s=interval_s + buffer_s,
                curfews=curfews,
                now=now,
            )
            for a in found:
                a.late = True
            alerts += found
        gap_s = (ts - state.last_ts).total_seconds()
        for o in state.open:
            alerts.append(
                _alert(
                    f"{o.type}_ended",
                    "info",
                    offender_id,
                    device_id,
                    o.start or state.last_ts,
                    ts,
                    now,
                    o.curfew_id,
                    ref=o.alert_id,
                    gap_s=gap_s,
                )
            )
        state.open = []
    if state.last_ts is None or ts > state.last_ts:
        state.last_ts = ts
    return alerts
