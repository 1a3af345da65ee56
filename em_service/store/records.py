"""Plain records the store returns (no ORM objects leak out of a session)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class StoredFix:
    """An archived GPS fix: WGS84 ``lon``/``lat`` degrees and projected ``x_m``/``y_m`` metres."""

    device_id: str
    ts: datetime
    seq: int | None
    lon: float
    lat: float
    accuracy_m: float
    x_m: float
    y_m: float
    speed_mps: float | None = None
    heading_deg: float | None = None
    distance_m: float | None = None
