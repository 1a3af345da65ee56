"""Severity tiers: one table ranking every alert type for a monitoring centre's queue.

``critical`` (act now: someone may be at risk), ``urgent`` (act within the shift), ``warning``
(check) and ``info`` (for the record: episode ends, context). The tier is a property of the alert
*type*; ``Alert.severity`` stays the rule's own graded judgement (e.g. a possible-only breach).
"""

from __future__ import annotations

from typing import Literal

from em_service.contracts import ALERT_TYPES

Tier = Literal["critical", "urgent", "warning", "info"]
TIERS: tuple[Tier, ...] = ("critical", "urgent", "warning", "info")

#: Alert type → tier. Every type of the alert contract is listed (a test checks it); every
#: ``…_ended`` type is ``info``.
TIER_OF: dict[str, Tier] = {
    # The officer console's triage (issue 12): tamper, exclusion and curfew breach are critical;
    # inclusion, silence, unverified curfew, location failure, alcohol and a missed appointment
    # are urgent; the rest are warnings; episode ends and context are info. A person near a
    # protected victim (issue 15) is critical.
    "exclusion_breach": "critical",
    "victim_proximity": "critical",
    "strap_tamper": "critical",
    "curfew_breach": "critical",
    "inclusion_breach": "urgent",
    "device_silent": "urgent",
    "curfew_unverified": "urgent",
    "location_failure": "urgent",
    "attendance_missed": "urgent",
    "alcohol_detected": "urgent",
    "alcohol_tamper": "urgent",
    "alcohol_suspect_interferent": "urgent",
    "alcohol_missed_readings": "urgent",
    "attendance_late": "warning",
    "attendance_unverified": "warning",
    "battery_low": "warning",
    "device_fault": "warning",
    "scene_proximity": "warning",
    "attendance_kept": "info",
    "strap_restored": "info",
    "charging_started": "info",
    "charging_stopped": "info",
    **{t: "info" for t in ALERT_TYPES if t.endswith("_ended")},
}


def tier(alert_type: str) -> Tier:
    """Return the tier of ``alert_type`` (KeyError for a type the contract does not have)."""
    return TIER_OF[alert_type]


def rank(alert_type: str) -> int:
    """Return 0 for critical … 3 for info (sort key for a queue)."""
    return TIERS.index(TIER_OF[alert_type])
