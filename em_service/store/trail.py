"""Trail archive: idempotent batched inserts of fixes and alcohol readings, and trail reads.

Inserts are ``INSERT … ON CONFLICT DO NOTHING`` on the unique key (device_id, ts_ms, seq), so a
re-delivered reading inserts nothing. A fix belongs to an offender only while the device was
assigned to them (``device_assignments``), so a reassigned tag never leaks one person's trail
into another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from em_service.contracts import AlcoholReading, GpsReading
from em_service.store.models import AlcoholSample, DeviceAssignment, Fix
from em_service.store.projection import project
from em_service.store.records import StoredFix
from em_service.store.spatial_index import cell_of
from em_service.store.types import from_ms, insert_ignore, to_ms

NO_SEQ = -1


def fix_rows(readings: Sequence[GpsReading], crs: str) -> list[dict]:
    """Return insert rows for ``readings``: projected metres and index cell computed in bulk."""
    if not readings:
        return []
    lon = np.fromiter((r.lon for r in readings), float, len(readings))
    lat = np.fromiter((r.lat for r in readings), float, len(readings))
    x, y = project(lon, lat, crs)
    cells = cell_of(x, y).tolist()
    xs, ys = x.tolist(), y.tolist()
    return [
        {
            "device_id": r.device_id,
            "ts_ms": to_ms(r.ts),
            "seq": NO_SEQ if r.seq is None else r.seq,
            "lat": r.lat,
            "lon": r.lon,
            "accuracy_m": r.accuracy_m,
            "speed_mps": r.speed_mps,
            "heading_deg": r.heading_deg,
            "battery_pct": r.battery_pct,
            "x_m": xs[i],
            "y_m": ys[i],
            "cell": cells[i],
        }
        for i, r in enumerate(readings)
    ]


def insert_fixes(session: Session, *, readings: Sequence[GpsReading], crs: str) -> int:
    """Insert ``readings`` (duplicates are ignored); return how many were offered."""
    rows = fix_rows(readings, crs)
    if rows:
        session.execute(insert_ignore(Fix.__table__, session.bind.dialect.name), rows)
    return len(rows)


def insert_alcohol(session: Session, *, readings: Sequence[AlcoholReading]) -> int:
    """Insert alcohol ``readings`` (duplicates are ignored); return how many were offered."""
    rows = [
        {
            "device_id": r.device_id,
            "ts_ms": to_ms(r.ts),
            "seq": NO_SEQ if r.seq is None else r.seq,
            "tac_g_dl": r.tac_g_dl,
            "skin_temp_c": r.skin_temp_c,
            "ir_value": r.ir_value,
            "ir_contact": r.ir_contact,
        }
        for r in readings
    ]
    if rows:
        session.execute(insert_ignore(AlcoholSample.__table__, session.bind.dialect.name), rows)
    return len(rows)


def _assignment_windows(
    session: Session, offender_id: str, t0: datetime, t1: datetime
) -> list[tuple[str, int, int]]:
    """Return (device_id, lo_ms, hi_ms) for each assignment of the offender overlapping [t0, t1]."""
    stmt = select(DeviceAssignment).where(
        DeviceAssignment.offender_id == offender_id,
        DeviceAssignment.assigned_at <= t1,
        or_(DeviceAssignment.unassigned_at.is_(None), DeviceAssignment.unassigned_at > t0),
    )
    windows = []
    for a in session.scalars(stmt):
        lo = max(t0, a.assigned_at)
        hi = t1 if a.unassigned_at is None else min(t1, a.unassigned_at)
        windows.append((a.device_id, to_ms(lo), to_ms(hi)))
    return windows


def offender_trail(
    session: Session, *, offender_id: str, t0: datetime, t1: datetime
) -> list[StoredFix]:
    """Return the offender's fixes with ``t0 <= ts <= t1`` (while each device was theirs), in
    time order."""
    windows = _assignment_windows(session, offender_id, t0, t1)
    if not windows:
        return []
    cols = (
        Fix.device_id,
        Fix.ts_ms,
        Fix.seq,
        Fix.lon,
        Fix.lat,
        Fix.accuracy_m,
        Fix.x_m,
        Fix.y_m,
        Fix.speed_mps,
        Fix.heading_deg,
    )
    where = or_(
        *(and_(Fix.device_id == d, Fix.ts_ms >= lo, Fix.ts_ms <= hi) for d, lo, hi in windows)
    )
    rows = session.execute(select(*cols).where(where).order_by(Fix.ts_ms, Fix.device_id)).all()
    return [
        StoredFix(
            device_id=d,
            ts=from_ms(ts),
            seq=None if seq < 0 else seq,
            lon=lon,
            lat=lat,
            accuracy_m=acc,
            x_m=x,
            y_m=y,
            speed_mps=speed,
            heading_deg=heading,
        )
        for d, ts, seq, lon, lat, acc, x, y, speed, heading in rows
    ]


def last_fix_at(session: Session, *, offender_id: str) -> datetime | None:
    """Return the event time of the offender's latest fix from a device currently theirs."""
    devices = session.scalars(
        select(DeviceAssignment.device_id).where(
            DeviceAssignment.offender_id == offender_id, DeviceAssignment.unassigned_at.is_(None)
        )
    ).all()
    # One indexed max() per device (an IN list would scan every fix of every device).
    latest = [
        session.scalar(select(func.max(Fix.ts_ms)).where(Fix.device_id == d)) for d in devices
    ]
    found = [ms for ms in latest if ms is not None]
    return from_ms(max(found)) if found else None


def count_fixes(session: Session) -> int:
    """Return the number of archived fixes."""
    return session.scalar(select(func.count()).select_from(Fix)) or 0
