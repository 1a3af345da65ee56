"""Silence: a tag that stops reporting.

Rule (precisely): let ``last_ts`` be the newest event time received from the device and ``now`` the
rule clock (wall-clock UTC in production; the stream's event-time watermark in replays). When
``now - last_ts > interval_s + buffer_s`` the tag is *silent*:

- ``device_silent`` (medium) is raised, or ``curfew_unverified`` (high) if a curfew window is active
  at ``now``; a tag already ``device_silent`` when a curfew window opens also gets
  ``curfew_unverified``. Both carry ``episode_start = last_ts`` and
  ``occurred_at = last_ts + interval_s + buffer_s`` (the moment the silence became overdue).
- The first reading with ``ts > last_ts`` restores contact: each open silence alert gets its
  ``…_ended`` update carrying the gap in seconds.

Ids derive from (offender, rule, device or curfew, last_ts), so re-evaluation yields the same ids.
The check itself is driven by a processing-time timer in the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec
from msgspec import Struct

from em_service.contracts import Alert
from em_service.rules.ids import alert_id


class OpenSilence(Struct):
    """One open silence alert."""

    type: str
    alert_id: str
    curfew_id: str | None = None


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


def check(
    state: SilenceState,
    offender_id: str,
    device_id: str,
    *,
    now: datetime,
    interval_s: float,
    buffer_s: float,
    curfew_at: Callable[[datetime], tuple[str, datetime] | None],
) -> list[Alert]:
    """Return new silence alerts for a device whose newest reading is ``state.last_ts``.

    ``curfew_at(t)`` returns ``(curfew_id, window_start)`` of the curfew window active at ``t``,
    or None.
    """
    if state.last_ts is None:
        return []
    due = state.last_ts + timedelta(seconds=interval_s + buffer_s)
    if now <= due:
        return []
    alerts: list[Alert] = []
    kinds = {o.type for o in state.open}
    active = curfew_at(now)
    curfew_id = active[0] if active else None
    gap = {"last_reading_at": state.last_ts.isoformat(), "threshold_s": interval_s + buffer_s}
    if curfew_id and "curfew_unverified" not in kinds:
        a = _alert(
            "curfew_unverified",
            "high",
            offender_id,
            device_id,
            state.last_ts,
            max(due, active[1]),  # type: ignore[index]
            now,
            curfew_id,
            **gap,
        )
        alerts.append(a)
        state.open.append(OpenSilence("curfew_unverified", a.alert_id, curfew_id))
    elif not curfew_id and not kinds:
        a = _alert(
            "device_silent", "medium", offender_id, device_id, state.last_ts, due, now, None, **gap
        )
        alerts.append(a)
        state.open.append(OpenSilence("device_silent", a.alert_id))
    return alerts


def on_reading(
    state: SilenceState,
    offender_id: str,
    device_id: str,
    ts: datetime,
    *,
    now: datetime,
    interval_s: float | None = None,
    buffer_s: float = 0.0,
    curfew_between: Callable[[datetime, datetime], tuple[str, datetime] | None] | None = None,
) -> list[Alert]:
    """Record a reading at event time ``ts``; return the alerts it implies.

    A reading after a gap longer than ``interval_s + buffer_s`` that no timer noticed (the worker
    was down, or a replay ran faster than its ticks) raises the silence alert late
    (``late: true``; ``curfew_unverified`` if a curfew window overlapped the overdue part of the
    gap, per ``curfew_between(t0, t1)``); then every open silence alert gets its ``…_ended``.
    Pass ``interval_s=None`` for devices whose silence is not watched.
    """
    alerts: list[Alert] = []
    if state.last_ts is not None and ts > state.last_ts:
        due = state.last_ts + timedelta(seconds=(interval_s or 0.0) + buffer_s)
        if interval_s is not None and not state.open and ts > due:
            found = check(
                state,
                offender_id,
                device_id,
                now=ts,
                interval_s=interval_s,
                buffer_s=buffer_s,
                curfew_at=lambda _t: curfew_between(due, ts) if curfew_between else None,
            )
            alerts += [msgspec.structs.replace(a, late=True, detected_at=now) for a in found]
        gap_s = (ts - state.last_ts).total_seconds()
        for o in state.open:
            alerts.append(
                _alert(
                    f"{o.type}_ended",
                    "info",
                    offender_id,
                    device_id,
                    state.last_ts,
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
