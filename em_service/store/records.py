"""Plain records the store returns (no ORM objects leak out of a session)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class StoredFix(NamedTuple):
    """An archived GPS fix: WGS84 ``lon``/``lat`` degrees and projected ``x_m``/``y_m`` metres.

    A named tuple: trails build thousands of these per request, so construction must be cheap.
    """

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
