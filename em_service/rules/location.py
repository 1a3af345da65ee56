"""Location failure: the tag talks (heartbeats, device events, unusable fixes) but has no usable fix.

Let ``last_fix`` be the newest usable fix's time and ``T = last_fix + interval_s + buffer_s``. A
contact (any reading that is not a usable fix) at event time after ``T`` raises, once per gap:
``curfew_unverified`` (high) for the curfew window active at ``T``, else ``location_failure``
(high; tier urgent), ``episode_start = last_fix``. The next usable fix ends it (``…_ended`` with
the gap). A tag that says nothing at all is the silence rule's ``device_silent`` instead; a tag
never seen with a usable fix has no baseline and is not judged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from msgspec import Struct

from em_service.contracts import Alert
from em_service.rules.silence import Curfews, _alert, _no_curfews


class LocationState(Struct, omit_defaults=True):
    """Per-device location-failure state."""

    last_fix_s: float | None = None  # epoch seconds (cheaper to store than a datetime)

    @property
    def last_fix_ts(self) -> datetime | None:
        """The newest usable fix's time."""
        return None if self.last_fix_s is None else datetime.fromtimestamp(self.last_fix_s, UTC)

    open_type: str | None = None
    open_id: str | None = None
    open_curfew: str | None = None


def on_fix(
    state: LocationState, offender_id: str, device_id: str, ts: datetime, *, now: datetime
) -> list[Alert]:
    """A usable fix at ``ts``: the baseline moves on; an open failure ends."""
    alerts: list[Alert] = []
    last = state.last_fix_ts
    if last is not None and ts > last and state.open_id and state.open_type:
        alerts.append(
            _alert(
                f"{state.open_type}_ended",
                "info",
                offender_id,
                device_id,
                last,
                ts,
                now,
                state.open_curfew,
                ref=state.open_id,
                gap_s=(ts - last).total_seconds(),
                cause="location_failure",
            )
        )
        state.open_type = state.open_id = state.open_curfew = None
    if last is None or ts > last:
        state.last_fix_s = ts.timestamp()
    return alerts


def on_contact(
    state: LocationState,
    offender_id: str,
    device_id: str,
    ts: datetime,
    *,
    now: datetime,
    threshold_s: float,
    curfews: Curfews = _no_curfews,
    late: bool = False,
) -> list[Alert]:
    """A reading that is not a usable fix, at ``ts``: raise the failure if overdue."""
    last = state.last_fix_ts
    if last is None or state.open_id is not None:
        return []
    due = last + timedelta(seconds=threshold_s)
    if ts <= due:
        return []
    in_curfew = next((w for w in curfews(due, due) if w[1] <= due), None)
    kind, curfew_id = (
        ("curfew_unverified", in_curfew[0]) if in_curfew else ("location_failure", None)
    )
    a = _alert(
        kind,
        "high",
        offender_id,
        device_id,
        last,
        ts,
        now,
        curfew_id,
        last_fix_at=last.isoformat(),
        threshold_s=threshold_s,
        cause="location_failure",
    )
    a.late = late
    state.open_type, state.open_id, state.open_curfew = kind, a.alert_id, curfew_id
    return [a]
