"""Suspensions of single rules: an approved absence for one zone or curfew and a time range.

A breach (or its end) of the suspended zone or curfew whose episode starts inside ``[from, until)``
is still emitted, so the record stays complete, but marked ``details.suppressed`` (the
suspension's id, reason and approver, and the severity it would have had) with severity ``info``:
visible in history, not for the queue. A breach that began before the suspension is not touched.
"""

from __future__ import annotations

from em_service.contracts import Alert
from em_service.contracts.conditions import RuleSuspension

#: The alert types a single-rule suspension can suppress.
SUSPENDABLE = frozenset(
    f"{kind}_breach{end}" for kind in ("exclusion", "inclusion", "curfew") for end in ("", "_ended")
)


def mark(alerts: list[Alert], suspensions: list[RuleSuspension]) -> list[Alert]:
    """Mark (in place) and return ``alerts``: those inside a suspension become suppressed."""
    for a in alerts:
        subject = a.zone_id or a.curfew_id
        if subject is None or a.type not in SUSPENDABLE:
            continue
        start = a.episode_start or a.occurred_at
        s = next(
            (s for s in suspensions if s.subject_id == subject and s.from_ <= start < s.until),
            None,
        )
        if s is not None:
            a.details = {
                **a.details,
                "suppressed": {
                    "suspension_id": s.suspension_id,
                    "reason": s.reason,
                    "approved_by": s.approved_by,
                    "severity": a.severity,
                },
            }
            a.severity = "info"
    return alerts
