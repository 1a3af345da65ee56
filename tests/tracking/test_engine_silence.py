"""The silence rule through the engine: by event time, the same alerts from ticks or contact."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from em_service.conditions.registry import ConditionsRegistry
from em_service.contracts import Alert, GpsReading
from em_service.settings import Settings
from em_service.tracking.engine import DeviceState, Engine
from tests.trails import ORIGIN_X, ORIGIN_Y, ll

HOME = ll(ORIGIN_X, ORIGIN_Y)
DAY = datetime(2026, 11, 18, tzinfo=UTC)  # a Wednesday in GMT: local time is UTC
SILENCE = ("device_silent", "curfew_unverified")


def _conditions(**extra: object) -> bytes:
    curfew = {
        "curfew_id": "c-home",
        "geometry": {"type": "Point", "coordinates": list(HOME)},
        "radius_m": 60,
        "windows": [
            {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "19:00",
                "end": "07:00",
            }
        ],
    }
    return json.dumps(
        {"offender_id": "off-1", "device_ids": ["tag-1"], "curfews": [curfew], **extra}
    ).encode()


def _engine(*later: bytes) -> Engine:
    registry = ConditionsRegistry()
    for raw in (_conditions(), *later):
        registry.apply("off-1", raw)
    return Engine(registry, Settings(silence_buffer_s=600))


def _fix(t: datetime) -> GpsReading:
    return GpsReading(device_id="tag-1", ts=t, lon=HOME[0], lat=HOME[1], accuracy_m=8.0)


def _gap(engine: Engine, last: datetime, back: datetime, ticks: list[datetime]) -> list[Alert]:
    """Silence alerts of a tag heard at ``last``, ticked at ``ticks``, heard again at ``back``."""
    state, alerts = DeviceState(), []
    alerts += engine.on_reading(state, _fix(last), now=last).alerts
    for t in ticks:
        alerts += engine.on_tick(state, "tag-1", now=t, detected_at=t)
    alerts += engine.on_reading(state, _fix(back), now=back).alerts
    return [a for a in alerts if a.type.removesuffix("_ended") in SILENCE]


def _every(start: datetime, end: datetime, minutes: int = 10) -> list[datetime]:
    return [
        start + timedelta(minutes=m)
        for m in range(0, int((end - start).total_seconds() / 60), minutes)
    ]


def _key(alerts: list[Alert]) -> list[tuple]:
    return sorted((a.alert_id, a.type, a.curfew_id, a.occurred_at, a.ref_alert_id) for a in alerts)


def test_overdue_in_a_window_first_ticked_after_it_is_curfew_unverified() -> None:
    last = DAY + timedelta(hours=6, minutes=40)  # the window ends at 07:00
    alerts = _gap(_engine(), last, DAY + timedelta(hours=9), [DAY + timedelta(hours=8)])
    assert [(a.type, a.curfew_id, a.occurred_at) for a in alerts] == [
        ("curfew_unverified", "c-home", last + timedelta(seconds=660)),
        ("curfew_unverified_ended", "c-home", DAY + timedelta(hours=9)),
    ]


def test_contact_and_ticks_raise_the_same_alerts_for_a_gap_into_a_curfew() -> None:
    last, back = DAY + timedelta(hours=18), DAY + timedelta(hours=21, minutes=30)
    replayed = _gap(_engine(), last, back, [])  # no tick saw the gap
    live = _gap(_engine(), last, back, _every(last, back))
    assert [(a.type, a.occurred_at, a.late) for a in replayed] == [
        ("device_silent", last + timedelta(seconds=660), True),
        ("curfew_unverified", DAY + timedelta(hours=19), True),
        ("device_silent_ended", back, False),
        ("curfew_unverified_ended", back, False),
    ]
    assert _key(live) == _key(replayed)
    assert not any(a.late for a in live)


def test_a_silence_is_judged_by_the_conditions_in_force_when_last_heard() -> None:
    # From 18:30 the curfew is lifted: a silence from 18:00 still runs into the 19:00 window.
    lifted = _conditions(curfews=[], updated_at=(DAY + timedelta(hours=18, minutes=30)).isoformat())
    last, back = DAY + timedelta(hours=18), DAY + timedelta(hours=20)
    replayed = _gap(_engine(lifted), last, back, [])
    live = _gap(_engine(lifted), last, back, _every(last, back))
    assert [a.type for a in replayed] == [
        "device_silent",
        "curfew_unverified",
        "device_silent_ended",
        "curfew_unverified_ended",
    ]
    assert _key(live) == _key(replayed)
