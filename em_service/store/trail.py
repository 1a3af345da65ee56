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
from em_service.store.records import StoredFix
from em_service.store.spatial_index import cell_of
from em_service.store.types import bulk_insert_ignore, from_ms, to_ms
from geofences.projection import get_projector

NO_SEQ = -1


FIX_COLUMNS = (
    "device_id",
    "ts_ms",
    "seq",
    "lat",
    "lon",
    "accuracy_m",
    "speed_mps",
    "heading_deg",
    "battery_pct",
    "x_m",
    "y_m",
    "cell",
)
ALCOHOL_COLUMNS = (
    "device_id",
    "ts_ms",
    "seq",
    "tac_g_dl",
    "skin_temp_c",
    "ir_value",
    "ir_contact",
)


def fix_rows(readings: Sequence[GpsReading], crs: str) -> list[tuple]:
    """Return insert rows (``FIX_COLUMNS`` order) for ``readings``: projected metres and index
    cell computed in bulk. Fixes that cannot be projected are left out (the check the worker's
    intake dead-letters them by: :meth:`~geofences.projection.Projector.to_xy_checked`)."""
    if not readings:
        return []
    lon = np.fromiter((r.lon for r in readings), float, len(readings))
    lat = np.fromiter((r.lat for r in readings), float, len(readings))
    x, y, ok = get_projector(crs).to_xy_checked(lon, lat)
    if not ok.all():
        keep = np.flatnonzero(ok)
        readings, x, y = [readings[i] for i in keep.tolist()], x[keep], y[keep]
    return [
        (
            r.device_id,
            to_ms(r.ts),
            NO_SEQ if r.seq is None else r.seq,
            r.lat,
            r.lon,
            r.accuracy_m,
            r.speed_mps,
            r.heading_deg,
            r.battery_pct,
            xi,
            yi,
            cell,
        )
        for r, xi, yi, cell in zip(
            readings, x.tolist(), y.tolist(), cell_of(x, y).tolist(), strict=True
        )
    ]


def insert_fixes(session: Session, *, readings: Sequence[GpsReading], crs: str) -> int:
    """Insert ``readings`` (duplicates and unprojectable fixes are left out); return how many
    were offered."""
    rows = fix_rows(readings, crs)
    bulk_insert_ignore(session, Fix.__table__, FIX_COLUMNS, rows)
    return len(rows)


def insert_alcohol(session: Session, *, readings: Sequence[AlcoholReading]) -> int:
    """Insert alcohol ``readings`` (duplicates are ignored); return how many were offered."""
    rows = [
        (
            r.device_id,
            to_ms(r.ts),
            NO_SEQ if r.seq is None else r.seq,
            r.tac_g_dl,
            r.skin_temp_c,
            r.ir_value,
            r.ir_contact,
        )
        for r in readings
    ]
    bulk_insert_ignore(session, AlcoholSample.__table__, ALCOHOL_COLUMNS, rows)
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
    stmt = select(*cols).where(where).order_by(Fix.ts_ms, Fix.device_id)
    rows = session.connection().execute(stmt).all()  # Core: no ORM overhead per row
    return [
        StoredFix(d, from_ms(ts), None if seq < 0 else seq, lon, lat, acc, x, y, speed, heading)
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
