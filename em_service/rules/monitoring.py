"""Monitoring status: ``active``, ``suspended`` (custody, hospital …) or ``ended``, by event time.

The status is part of each conditions version (``Conditions.monitoring``), so a change is an event
on the conditions topic applied by event time like any other, and audited where conditions are
published. While not active nothing alerts except ``strap_tamper`` (suspended only); silence is
not a breach. Entering a pause closes what is open (silence, location failure, zone episodes) so
the record is complete; coming back to active starts from a clean state.
"""

from __future__ import annotations

from datetime import datetime

from em_service.contracts import Alert
from em_service.contracts.conditions import Conditions

#: The only alert that a suspension lets through.
PASSES_SUSPENSION = frozenset({"strap_tamper"})


def status_at(conditions: Conditions, ts: datetime) -> str:
    """Return the monitoring status (``active``, ``suspended``, ``ended``) in force at ``ts``."""
    m = conditions.monitoring
    if m.status == "active":
        return "active"
    if m.from_ is not None and ts < m.from_:
        return "active"
    if m.status == "suspended" and m.until is not None and ts >= m.until:
        return "active"
    return m.status


def let_through(status: str, alerts: list[Alert]) -> list[Alert]:
    """Return the alerts a status lets through (all when active)."""
    if status == "active":
        return alerts
    if status == "suspended":
        return [a for a in alerts if a.type in PASSES_SUSPENSION]
    return []
