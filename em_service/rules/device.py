"""Device events → alerts: strap tamper (high, immediate), battery low (medium), and context.

Charging start/stop and strap restored are kept for context: they become ``info`` alerts only when
``alert_on_info`` is set.
"""

from __future__ import annotations

from datetime import datetime

from em_service.contracts import Alert, DeviceEvent
from em_service.rules.ids import alert_id

#: event -> (alert type, severity); ``None`` severity for context-only events.
EVENT_ALERTS: dict[str, tuple[str, str]] = {
    "strap_tamper": ("strap_tamper", "high"),
    "battery_low": ("battery_low", "medium"),
    "device_fault": ("device_fault", "medium"),
    "strap_restored": ("strap_restored", "info"),
    "charging_started": ("charging_started", "info"),
    "charging_stopped": ("charging_stopped", "info"),
}


def device_event_alerts(
    event: DeviceEvent, offender_id: str, *, now: datetime, late: bool, alert_on_info: bool = False
) -> list[Alert]:
    """Return the alert for ``event`` (none for context events unless ``alert_on_info``, none
    for heartbeats: they feed the location-failure and silence rules)."""
    if event.event not in EVENT_ALERTS:
        return []
    kind, severity = EVENT_ALERTS[event.event]
    if severity == "info" and not alert_on_info:
        return []
    return [
        Alert(
            alert_id=alert_id(offender_id, kind, event.device_id, event.ts),
            type=kind,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            offender_id=offender_id,
            device_id=event.device_id,
            occurred_at=event.ts,
            detected_at=now,
            episode_start=event.ts,
            late=late,
            details={"event": event.event, **({"detail": event.detail} if event.detail else {})},
        )
    ]
