"""Trail archive: idempotent batched inserts; an offender's trail only while the tag was theirs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from em_service.store import Store, offenders, trail
from em_service.store.models import AlcoholSample, Fix
from tests.store.factories import T0, alcohol, conditions, gps

CRS = "EPSG:27700"


def _count(store: Store, model) -> int:
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("readings", "distinct"),
    [
        ([gps(seq=1), gps(seq=1)], 1),  # same device, ts, seq: one fix
        ([gps(seq=1), gps(seq=2)], 2),  # same ts, another seq: two fixes
        ([gps(), gps()], 1),  # no seq: (device, ts) is the key
        ([gps(), gps(device_id="tag-2")], 2),
        ([gps(ts=T0), gps(ts=T0 + timedelta(milliseconds=1))], 2),
    ],
)
def test_insert_fixes_is_idempotent(store: Store, readings: list, distinct: int) -> None:
    for _ in range(2):  # the whole batch delivered twice
        with store.write() as s:
            trail.insert_fixes(s, readings=readings, crs=CRS)
    assert _count(store, Fix) == distinct


def test_insert_alcohol_is_idempotent(store: Store) -> None:
    batch = [alcohol(seq=1), alcohol(seq=1), alcohol(ts=T0 + timedelta(minutes=30))]
    for _ in range(2):
        with store.write() as s:
            trail.insert_alcohol(s, readings=batch)
    assert _count(store, AlcoholSample) == 2


def test_fix_rows_are_projected_and_indexed(store: Store) -> None:
    with store.write() as s:
        trail.insert_fixes(s, readings=[gps()], crs=CRS)
    with store.read() as s:
        fix = s.scalars(select(Fix)).one()
    assert 400_000 < fix.x_m < 500_000 and 150_000 < fix.y_m < 200_000  # British National Grid
    assert fix.seq == trail.NO_SEQ and fix.cell > 0


def test_trail_follows_device_assignments(store: Store) -> None:
    minute = timedelta(minutes=1)
    readings = [gps(ts=T0 + i * minute) for i in range(60)]
    with store.write() as s:
        trail.insert_fixes(s, readings=readings, crs=CRS)
        # tag-1 is off-1's from the start, then passes to off-2 at T0+30 min.
        offenders.put_conditions(s, conditions=conditions("off-1"), changed_at=T0 - minute)
        offenders.put_conditions(
            s, conditions=conditions("off-2", ["tag-1"]), changed_at=T0 + 30 * minute
        )
    with store.read() as s:
        one = trail.offender_trail(s, offender_id="off-1", t0=T0, t1=T0 + 2 * 60 * minute)
        two = trail.offender_trail(s, offender_id="off-2", t0=T0, t1=T0 + 2 * 60 * minute)
        assert trail.last_fix_at(s, offender_id="off-1") is None  # no device now
        assert trail.last_fix_at(s, offender_id="off-2") == T0 + 59 * minute
    assert [f.ts for f in one] == [T0 + i * minute for i in range(31)]  # up to the handover
    assert [f.ts for f in two] == [T0 + i * minute for i in range(30, 60)]
    assert all(f.lon == pytest.approx(-0.97) for f in one + two)


def test_trail_window_is_inclusive_and_ordered(store: Store) -> None:
    with store.write() as s:
        offenders.put_conditions(
            s, conditions=conditions("off-1", ["tag-1", "tag-2"]), changed_at=T0
        )
        trail.insert_fixes(
            s,
            readings=[
                gps("tag-2", T0 + timedelta(seconds=30)),
                gps("tag-1", T0),
                gps("tag-1", T0 + timedelta(seconds=60)),
            ],
            crs=CRS,
        )
    with store.read() as s:
        fixes = trail.offender_trail(s, offender_id="off-1", t0=T0, t1=T0 + timedelta(seconds=60))
        none = trail.offender_trail(s, offender_id="nobody", t0=T0, t1=T0 + timedelta(hours=1))
    assert [(f.device_id, f.ts - T0) for f in fixes] == [
        ("tag-1", timedelta(0)),
        ("tag-2", timedelta(seconds=30)),
        ("tag-1", timedelta(seconds=60)),
    ]
    assert none == []
