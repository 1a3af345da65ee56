"""Silence rule: overdue tags, curfew upgrade, restored contact, deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from em_service.rules.silence import SilenceState, check, on_reading

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CURFEW_START = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)


def _curfew(t: datetime):
    return ("c-home", CURFEW_START) if t >= CURFEW_START else None


def _check(state: SilenceState, now: datetime):
    return check(state, "off-1", "tag-1", now=now, interval_s=60, buffer_s=600, curfew_at=_curfew)


def test_not_silent_within_interval_plus_buffer() -> None:
    state = SilenceState()
    on_reading(state, "off-1", "tag-1", T0, now=T0)
    assert _check(state, T0 + timedelta(seconds=660)) == []


def test_silent_outside_curfew_then_restored() -> None:
    state = SilenceState()
    on_reading(state, "off-1", "tag-1", T0, now=T0)
    alerts = _check(state, T0 + timedelta(seconds=661))
    assert [a.type for a in alerts] == ["device_silent"]
    assert alerts[0].occurred_at == T0 + timedelta(seconds=660)
    assert _check(state, T0 + timedelta(seconds=900)) == [], "one alert per silence"
    ended = on_reading(state, "off-1", "tag-1", T0 + timedelta(minutes=30), now=T0)
    assert [a.type for a in ended] == ["device_silent_ended"]
    assert ended[0].ref_alert_id == alerts[0].alert_id
    assert ended[0].details["gap_s"] == 1800


def test_silence_during_curfew_is_curfew_unverified() -> None:
    state = SilenceState()
    on_reading(state, "off-1", "tag-1", CURFEW_START + timedelta(hours=1), now=T0)
    alerts = _check(state, CURFEW_START + timedelta(hours=2))
    assert [(a.type, a.severity, a.curfew_id) for a in alerts] == [
        ("curfew_unverified", "high", "c-home")
    ]


def test_silent_tag_is_upgraded_when_curfew_starts() -> None:
    state = SilenceState()
    on_reading(state, "off-1", "tag-1", CURFEW_START - timedelta(hours=2), now=T0)
    first = _check(state, CURFEW_START - timedelta(hours=1))
    second = _check(state, CURFEW_START + timedelta(minutes=5))
    assert [a.type for a in first] == ["device_silent"]
    assert [a.type for a in second] == ["curfew_unverified"]
    assert second[0].occurred_at == CURFEW_START
    ended = on_reading(state, "off-1", "tag-1", CURFEW_START + timedelta(hours=1), now=T0)
    assert sorted(a.type for a in ended) == ["curfew_unverified_ended", "device_silent_ended"]


def test_ids_do_not_depend_on_when_the_check_ran() -> None:
    ids = []
    for delay in (661, 900, 3000):
        state = SilenceState()
        on_reading(state, "off-1", "tag-1", T0, now=T0)
        ids.append(_check(state, T0 + timedelta(seconds=delay))[0].alert_id)
    assert len(set(ids)) == 1


def test_gap_noticed_only_when_contact_returns_is_alerted_late() -> None:
    state = SilenceState()
    on_reading(state, "off-1", "tag-1", T0, now=T0, interval_s=60, buffer_s=600)
    back = T0 + timedelta(hours=2)
    alerts = on_reading(
        state,
        "off-1",
        "tag-1",
        back,
        now=back,
        interval_s=60,
        buffer_s=600,
        curfew_between=lambda t0, t1: None,
    )
    assert [(a.type, a.late) for a in alerts] == [
        ("device_silent", True),
        ("device_silent_ended", False),
    ]
    assert alerts[0].occurred_at == T0 + timedelta(seconds=660)
    # The same gap seen live by a timer gets the same id: no duplicate after a crash.
    live = SilenceState()
    on_reading(live, "off-1", "tag-1", T0, now=T0)
    assert _check(live, T0 + timedelta(hours=1))[0].alert_id == alerts[0].alert_id


def test_gap_overlapping_a_curfew_is_curfew_unverified() -> None:
    state = SilenceState()
    last = CURFEW_START - timedelta(hours=1)
    on_reading(state, "off-1", "tag-1", last, now=last, interval_s=60, buffer_s=600)
    back = CURFEW_START + timedelta(hours=3)
    alerts = on_reading(
        state,
        "off-1",
        "tag-1",
        back,
        now=back,
        interval_s=60,
        buffer_s=600,
        curfew_between=lambda t0, t1: ("c-home", CURFEW_START),
    )
    assert [a.type for a in alerts] == ["curfew_unverified", "curfew_unverified_ended"]
    assert alerts[0].occurred_at == CURFEW_START and alerts[0].late
