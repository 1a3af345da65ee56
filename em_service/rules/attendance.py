"""Mandatory attendance: was the person at the appointment's place during its slot?

For each appointment (``geofences.appointments.Slot``): the arrival window is
``[open_s, end_s)`` (start minus ``grace_before_s`` to the end). With ``g`` = GPS interval + buffer:

- the first fix *at the place* (verdict clear or possible) in the window raises
  ``attendance_kept`` (info) if at or before ``late_s`` (start + ``grace_after_s``), else
  ``attendance_late`` (medium), at once;
- at rule clock ``end_s + g`` (or a fix that late), an appointment nobody arrived at is decided:
  ``attendance_missed`` (high) if usable fixes away from the place cover the whole window (each
  covers ``[ts, ts + g]``, merged, out of order too), else ``attendance_unverified`` (medium): a
  gap in the evidence is not a miss.

A decision is revised by better evidence: when a late (store-and-forward) fix at the place inside
the window arrives after ``attendance_missed`` or ``attendance_unverified`` was raised, the
arrival is raised after all (``attendance_kept`` or ``attendance_late``) with ``details.revises``
= the earlier alert's id and ``details.revised_type`` its type; once per appointment.

Appointments whose window opened before the device's first reading here, or that start while
monitoring is not active, are not judged. Ids derive from (offender, type, appointment, start).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
from msgspec import Struct

from em_service.contracts import Alert, GpsReading, Location
from em_service.rules.ids import alert_id
from geofences import verdicts as V
from geofences.appointments import CompiledAppointments, Slot


class Memo(Struct, omit_defaults=True):
    """What the rule knows of one appointment so far."""

    arrived_s: float | None = None
    covered: list[list[float]] = []  # merged [from, to] covered by usable fixes away


class AttendanceState(Struct, omit_defaults=True):
    """Per-device attendance state."""

    since_s: float | None = None
    memos: dict[str, Memo] = msgspec.field(default_factory=dict)
    done: list[str] = []
    next_due_s: float | None = None  # the earliest undecided end + g (None: recompute)
    version_s: float | None = None  # the conditions version next_due_s was computed for
    #: Appointments decided missed or unverified → [alert id, type], until revised by a late fix.
    revisable: dict[str, list[str]] = msgspec.field(default_factory=dict)


def _utc(ts_s: float) -> datetime:
    return datetime.fromtimestamp(ts_s, UTC)


def _cover(covered: list[list[float]], lo: float, hi: float) -> list[list[float]]:
    """Return ``covered`` with ``[lo, hi]`` merged in (sorted, disjoint)."""
    out: list[list[float]] = []
    for a, b in sorted([*covered, [lo, hi]]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def _covers(covered: list[list[float]], lo: float, hi: float) -> bool:
    return any(a <= lo and b >= hi for a, b in covered)


def _alert(
    kind: str,
    severity: str,
    slot: Slot,
    offender_id: str,
    device_id: str,
    occurred_s: float,
    now: datetime,
    late: bool,
    location: Location | None = None,
    **details: object,
) -> Alert:
    return Alert(
        alert_id=alert_id(offender_id, kind, slot.appointment_id, _utc(slot.start_s)),
        type=kind,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        offender_id=offender_id,
        device_id=device_id,
        occurred_at=_utc(occurred_s),
        detected_at=now,
        location=location,
        episode_start=_utc(slot.start_s),
        episode_end=_utc(slot.end_s),
        late=late,
        details={
            "rule": "attendance",
            "appointment_id": slot.appointment_id,
            "name": slot.name,
            "date_local": slot.local_date.isoformat(),
            "start_local": slot.local_start,
            "end_local": slot.local_end,
            **details,
        },
    )


def _candidates(appts: CompiledAppointments, ts_s: float, gap_s: float) -> list[Slot]:
    """Slots open at ``ts_s``, and slots opening within ``gap_s`` after it (coverage only)."""
    now_open = appts.active(ts_s)
    soon = [s for s in appts.active(ts_s + gap_s) if s.open_s > ts_s]
    return now_open + soon


def on_fix(
    state: AttendanceState,
    appts: CompiledAppointments | None,
    offender_id: str,
    fix: GpsReading,
    *,
    now: datetime,
    gap_s: float,
    late: bool = False,
    active: Callable[[float], bool] = lambda _t: True,
) -> list[Alert]:
    """Apply one GPS fix; return arrivals (kept/late) and decisions due by the fix's time."""
    ts_s = fix.ts.timestamp()
    if state.since_s is None or ts_s < state.since_s:
        state.since_s = ts_s
    if appts is None:
        return []
    alerts: list[Alert] = []
    slots = _candidates(appts, ts_s, gap_s)
    if slots:
        usable = fix.accuracy_m <= appts.places.max_accuracy_m
        codes = (
            appts.at_place(ts_s, accuracy_m=fix.accuracy_m, lon=fix.lon, lat=fix.lat)
            if usable
            else {}
        )
        for slot in slots:
            code = codes.get(slot.appointment_id)
            if slot.appointment_id in state.done:
                if code in (V.CLEAR, V.POSSIBLE) and slot.appointment_id in state.revisable:
                    alerts += _revise(state, slot, offender_id, fix, code, now, late)
                continue
            memo = state.memos.setdefault(slot.appointment_id, Memo())
            if code in (V.CLEAR, V.POSSIBLE) and slot.open_s <= ts_s:
                first = memo.arrived_s is None
                memo.arrived_s = ts_s if first else min(memo.arrived_s, ts_s)  # type: ignore[type-var]
                if first and active(slot.start_s):
                    alerts.append(_arrival(slot, offender_id, fix, code, now, late))
            elif usable:
                memo.covered = _cover(memo.covered, ts_s, ts_s + gap_s)
    return alerts + decide(
        state,
        appts,
        offender_id,
        fix.device_id,
        until_s=ts_s,
        now=now,
        gap_s=gap_s,
        late=late,
        active=active,
    )


def _arrival(
    slot: Slot, offender_id: str, fix: GpsReading, code: int, now: datetime, late: bool, **extra
) -> Alert:
    ts_s = fix.ts.timestamp()
    on_time = ts_s <= slot.late_s
    return _alert(
        "attendance_kept" if on_time else "attendance_late",
        "info" if on_time else "medium",
        slot,
        offender_id,
        fix.device_id,
        ts_s,
        now,
        late,
        Location(lat=fix.lat, lon=fix.lon, accuracy_m=fix.accuracy_m),
        arrived_at=fix.ts.isoformat(),
        minutes_after_start=round((ts_s - slot.start_s) / 60.0, 1),
        evidence="definite" if code == V.CLEAR else "possible",
        **extra,
    )


def _revise(
    state: AttendanceState,
    slot: Slot,
    offender_id: str,
    fix: GpsReading,
    code: int,
    now: datetime,
    late: bool,
) -> list[Alert]:
    """A fix at the place inside the window of an appointment already decided missed or
    unverified: raise the arrival after all, naming the decision it revises (once)."""
    ts_s = fix.ts.timestamp()
    if not slot.open_s <= ts_s < slot.end_s:
        return []
    earlier_id, earlier_type = state.revisable.pop(slot.appointment_id)
    return [
        _arrival(
            slot, offender_id, fix, code, now, late, revises=earlier_id, revised_type=earlier_type
        )
    ]


def decide(
    state: AttendanceState,
    appts: CompiledAppointments | None,
    offender_id: str,
    device_id: str,
    *,
    until_s: float,
    now: datetime,
    gap_s: float,
    late: bool = False,
    active: Callable[[float], bool] = lambda _t: True,
) -> list[Alert]:
    """Decide every appointment whose ``end + gap_s`` is at or before ``until_s`` (rule clock)."""
    if appts is None or state.since_s is None:
        return []
    if state.next_due_s is not None and until_s < state.next_due_s:
        return []  # the common case: nothing due
    alerts: list[Alert] = []
    done = set(state.done)
    for slot in appts.slots:
        sid = slot.appointment_id
        if sid in done or slot.end_s + gap_s > until_s:
            continue
        done.add(sid)
        memo = state.memos.pop(sid, None)
        if memo is not None and memo.arrived_s is not None:
            continue  # kept or late, already said
        if slot.open_s < state.since_s or not active(slot.start_s):
            continue  # not watched from its start, or monitoring suspended: not judged
        if memo is not None and _covers(memo.covered, slot.open_s, slot.end_s):
            alerts.append(
                _alert(
                    "attendance_missed",
                    "high",
                    slot,
                    offender_id,
                    device_id,
                    slot.end_s,
                    now,
                    late,
                    evidence="usable fixes away throughout",
                )
            )
        else:
            gaps = _uncovered_s(memo.covered if memo else [], slot.open_s, slot.end_s)
            alerts.append(
                _alert(
                    "attendance_unverified",
                    "medium",
                    slot,
                    offender_id,
                    device_id,
                    slot.end_s,
                    now,
                    late,
                    uncovered_s=round(gaps, 1),
                )
            )
    ids = {s.appointment_id for s in appts.slots}
    for a in alerts:
        state.revisable[a.details["appointment_id"]] = [a.alert_id, a.type]
    state.done = sorted(done & ids)
    state.revisable = {k: v for k, v in state.revisable.items() if k in ids}
    pending = [s.end_s + gap_s for s in appts.slots if s.appointment_id not in done]
    state.next_due_s = min(pending) if pending else float("inf")
    return alerts


def _uncovered_s(covered: list[list[float]], lo: float, hi: float) -> float:
    inside = sum(max(0.0, min(b, hi) - max(a, lo)) for a, b in covered)
    return max(0.0, (hi - lo) - inside)


def conditions_changed(state: AttendanceState) -> None:
    """The appointments may have changed: recompute what is due next."""
    state.next_due_s = None
