"""Builders of contract messages and a ready database for store and API tests (simulated data)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from em_service.contracts import AlcoholReading, Alert, Conditions, GpsReading
from em_service.store import Store, migrate

T0 = datetime(2026, 10, 24, 21, 0, tzinfo=UTC)
READING = (-0.97, 51.45)  # lon, lat of a simulated town centre


def gps(
    device_id: str = "tag-1",
    ts: datetime = T0,
    lon: float = READING[0],
    lat: float = READING[1],
    seq: int | None = None,
    accuracy_m: float = 8.0,
) -> GpsReading:
    return GpsReading(device_id=device_id, ts=ts, lat=lat, lon=lon, accuracy_m=accuracy_m, seq=seq)


def alcohol(device_id: str = "scram-1", ts: datetime = T0, seq: int | None = None):
    return AlcoholReading(
        device_id=device_id, ts=ts, tac_g_dl=0.0, skin_temp_c=33.0, ir_value=1000.0, seq=seq
    )


def alert(
    alert_id: str = "alert-0001",
    type: str = "exclusion_breach",
    offender_id: str = "off-1",
    occurred_at: datetime = T0,
    **extra: Any,
) -> Alert:
    fields = {
        "alert_id": alert_id,
        "type": type,
        "severity": "high",
        "offender_id": offender_id,
        "occurred_at": occurred_at.isoformat(),
        "detected_at": (occurred_at + timedelta(seconds=2)).isoformat(),
        "device_id": "tag-1",
        **extra,
    }
    return msgspec.convert(fields, Alert)


def ended(of: Alert, alert_id: str | None = None, after: timedelta = timedelta(minutes=5)):
    end = of.occurred_at + after
    return alert(
        alert_id=alert_id or f"{of.alert_id}-ended",
        type=f"{of.type}_ended",
        offender_id=of.offender_id,
        occurred_at=end,
        ref_alert_id=of.alert_id,
        episode_end=end.isoformat(),
    )


def conditions(offender_id: str = "off-1", device_ids: list[str] | None = None, **kw):
    return Conditions(offender_id=offender_id, device_ids=device_ids or ["tag-1"], **kw)


def fresh_db(template_dir: Path, target: Path) -> Store:
    """Return a store on a copy of a migrated template database (created once per session)."""
    template = template_dir / "template.db"
    if not template.exists():
        store = Store(f"sqlite:///{template}")
        migrate.upgrade(store)
        store.dispose()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, target)
    return Store(f"sqlite:///{target}")
