"""Suspensions of single rules: an approved absence for one zone or curfew and a time range.

A breach (or its end) of the suspended zone or curfew whose episode starts inside ``[from, until)``
is still emitted, so the record stays complete, but marked ``details.suppressed`` (the
suspension's id, reason, approver and end, and the severity it would have had) with severity
``info``: visible in history, not for the queue. A breach that began before the suspension is not
touched.

A suppressed breach that outlives its suspension is raised again, unsuppressed, at the
suspension's end (event time), once (:func:`follow`): the absence was approved until then, not
after. Its id is derived from the suppressed alert's, so re-processing yields the same alert;
``details.after_suspension`` names the suspension and the suppressed alert. When the episode
ends, the re-alert gets its own ``…_ended``. If another suspension of the same subject covers the
end (back-to-back absences), the breach stays suppressed until that one ends.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from msgspec import Struct

from em_service.contracts import Alert
from em_service.contracts.conditions import RuleSuspension
from em_service.rules.ids import alert_id

#: The alert types a single-rule suspension can suppress.
SUSPENDABLE = frozenset(
    f"{kind}_breach{end}" for kind in ("exclusion", "inclusion", "curfew") for end in ("", "_ended")
)


class Suppressed(Struct):
    """An open breach episode that began inside a suspension: its suppressed alert, the end of
    the approved absence, and the re-alert once raised."""

    alert: Alert
    until: datetime
    suspension_id: str
    realert_id: str | None = None


class SuppressionState(Struct):
    """Per device: suppressed breaches whose episode is still open, by suppressed alert id."""

    open: dict[str, Suppressed] = msgspec.field(default_factory=dict)


def _covering(
    suspensions: list[RuleSuspension], subject: str | None, at: datetime
) -> RuleSuspension | None:
    return next(
        (s for s in suspensions if s.subject_id == subject and s.from_ <= at < s.until), None
    )


def mark(alerts: list[Alert], suspensions: list[RuleSuspension]) -> list[Alert]:
    """Mark (in place) and return ``alerts``: those inside a suspension become suppressed."""
    for a in alerts:
        subject = a.zone_id or a.curfew_id
        if subject is None or a.type not in SUSPENDABLE:
            continue
        s = _covering(suspensions, subject, a.episode_start or a.occurred_at)
        if s is not None:
            a.details = {
                **a.details,
                "suppressed": {
                    "suspension_id": s.suspension_id,
                    "reason": s.reason,
                    "approved_by": s.approved_by,
                    "until": s.until.isoformat(),
                    "severity": a.severity,
                },
            }
            a.severity = "info"
    return alerts


def _unsuppressed(a: Alert, new_id: str, pending: Suppressed, **changes) -> Alert:
    details = {k: v for k, v in a.details.items() if k != "suppressed"}
    details["after_suspension"] = {
        "suspension_id": pending.suspension_id,
        "until": pending.until.isoformat(),
        "suppressed_alert_id": a.alert_id,
    }
    severity = a.details.get("suppressed", {}).get("severity", a.severity)
    return msgspec.structs.replace(
        a, alert_id=new_id, severity=severity, details=details, **changes
    )


def _id(a: Alert, pending: Suppressed, rule: str) -> str:
    subject = f"{a.zone_id or a.curfew_id}\x1f{pending.suspension_id}"
    start = pending.alert.episode_start or pending.alert.occurred_at
    return alert_id(a.offender_id, f"{rule}:after_suspension", subject, start)


def _realert(pending: Suppressed, now: datetime, late: bool) -> Alert:
    a = pending.alert
    pending.realert_id = _id(a, pending, a.type)
    return _unsuppressed(
        a, pending.realert_id, pending, occurred_at=pending.until, detected_at=now, late=late
    )


def _due(
    pending: Suppressed, at: datetime, suspensions: list[RuleSuspension], *, strict: bool
) -> bool:
    """True if the absence is over at ``at`` (``strict``: after it); follow a back-to-back
    suspension of the same subject first."""
    subject = pending.alert.zone_id or pending.alert.curfew_id
    while (nxt := _covering(suspensions, subject, pending.until)) is not None:
        pending.until, pending.suspension_id = nxt.until, nxt.suspension_id
    return pending.until < at if strict else pending.until <= at


def follow(
    state: SuppressionState,
    alerts: list[Alert],
    suspensions: list[RuleSuspension],
    *,
    at: datetime,
    now: datetime,
    late: bool = False,
) -> list[Alert]:
    """Mark ``alerts`` (in place, :func:`mark`), track suppressed breaches, and return the extra
    alerts: the re-alert of each suppressed breach still open at its suspension's end (``at`` is
    the event time reached: the reading's time or the rule clock), and the end of a re-alert
    when its episode ends."""
    mark(alerts, suspensions)
    extra: list[Alert] = []
    for a in alerts:
        if a.type.endswith("_ended"):
            pending = state.open.pop(a.ref_alert_id or "", None)
            if pending is None:
                continue
            end = a.episode_end or a.occurred_at
            if pending.realert_id is None and _due(pending, end, suspensions, strict=True):
                extra.append(_realert(pending, now, late))  # in breach when it ended
            if pending.realert_id is not None:
                ended_id = _id(a, pending, a.type)
                extra.append(_unsuppressed(a, ended_id, pending, ref_alert_id=pending.realert_id))
        elif a.type in SUSPENDABLE and "suppressed" in a.details:
            s = a.details["suppressed"]
            state.open[a.alert_id] = Suppressed(
                alert=a, until=datetime.fromisoformat(s["until"]), suspension_id=s["suspension_id"]
            )
    for pending in state.open.values():
        if pending.realert_id is None and _due(pending, at, suspensions, strict=False):
            extra.append(_realert(pending, now, late))
    return extra
