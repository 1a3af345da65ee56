"""Silence rule: overdue tags, curfews by event time, restored contact, deterministic ids."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from em_service.contracts import Alert
from em_service.rules.silence import OpenSilence, SilenceState, check, on_reading

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CURFEW_START = datetime(2026, 11, 21, 19, 0, tzinfo=UTC)
THRESHOLD = timedelta(seconds=660)


def _nightly(t0: datetime, t1: datetime) -> list[tuple[str, datetime]]:
    """Curfew ``c-home`` every night 19:00–07:00 UTC: windows active at t0 or starting in (t0, t1)."""
    start = datetime.combine(t0.date() - timedelta(days=1), time(19), UTC)
    out = []
    while start < t1:
        if start + timedelta(hours=12) > t0:
            out.append(("c-home", start))
        start += timedelta(days=1)
    return out


def _check(state: SilenceState, now: datetime) -> list[Alert]:
    return check(state, "off-1", "tag-1", now=now, interval_s=60, buffer_s=600, curfews=_nightly)


def _contact(state: SilenceState, ts: datetime, now: datetime | None = None) -> list[Alert]:
    return on_reading(
        state, "off-1", "tag-1", ts, now=now or ts, interval_s=60, buffer_s=600, curfews=_nightly
    )


def _heard(last: datetime) -> SilenceState:
    state = SilenceState()
    _contact(state, last)
    return state


def _summary(alerts: list[Alert]) -> list[tuple[str, str | None, datetime, str]]:
    return sorted((a.type, a.curfew_id, a.occurred_at, a.alert_id) for a in alerts)


def test_not_silent_within_interval_plus_buffer() -> None:
    state = _heard(T0)
    assert _check(state, T0 + THRESHOLD) == []


def test_silent_outside_curfew_then_restored() -> None:
    state = _heard(T0)
    alerts = _check(state, T0 + timedelta(seconds=661))
    assert [(a.type, a.severity) for a in alerts] == [("device_silent", "medium")]
    assert alerts[0].occurred_at == T0 + THRESHOLD and alerts[0].episode_start == T0
    assert _check(state, T0 + timedelta(seconds=900)) == [], "one alert per silence"
    ended = _contact(state, T0 + timedelta(minutes=30))
    assert [a.type for a in ended] == ["device_silent_ended"]
    assert ended[0].ref_alert_id == alerts[0].alert_id
    assert ended[0].details["gap_s"] == 1800


def test_silence_during_curfew_is_curfew_unverified() -> None:
    state = _heard(CURFEW_START + timedelta(hours=1))
    alerts = _check(state, CURFEW_START + timedelta(hours=2))
    assert [(a.type, a.severity, a.curfew_id) for a in alerts] == [
        ("curfew_unverified", "high", "c-home")
    ]
    assert alerts[0].occurred_at == CURFEW_START + timedelta(hours=1) + THRESHOLD


def test_overdue_in_a_window_but_first_checked_after_it_is_curfew_unverified() -> None:
    # Bug A: the kind is that at the overdue instant, not at the time of the check.
    last = CURFEW_START + timedelta(hours=11, minutes=40)  # 06:40, the window ends at 07:00
    state = _heard(last)
    alerts = _check(state, CURFEW_START + timedelta(hours=13))  # 08:00, first check
    assert [(a.type, a.curfew_id, a.occurred_at) for a in alerts] == [
        ("curfew_unverified", "c-home", last + THRESHOLD)
    ]


def test_silent_tag_gets_curfew_unverified_when_a_window_starts() -> None:
    state = _heard(CURFEW_START - timedelta(hours=2))
    first = _check(state, CURFEW_START - timedelta(hours=1))
    second = _check(state, CURFEW_START + timedelta(minutes=5))
    assert [a.type for a in first] == ["device_silent"]
    assert [a.type for a in second] == ["curfew_unverified"]
    assert second[0].occurred_at == second[0].episode_start == CURFEW_START
    assert _check(state, CURFEW_START + timedelta(hours=3)) == []
    ended = _contact(state, CURFEW_START + timedelta(hours=1))
    assert sorted(a.type for a in ended) == ["curfew_unverified_ended", "device_silent_ended"]
    by_ref = {a.ref_alert_id: a for a in ended}
    assert by_ref[second[0].alert_id].episode_start == CURFEW_START


def test_a_window_starting_at_contact_or_at_the_check_is_not_alerted() -> None:
    last = CURFEW_START - timedelta(hours=2)
    state = _heard(last)
    assert [a.type for a in _check(state, CURFEW_START)] == ["device_silent"]
    assert [a.type for a in _contact(state, CURFEW_START)] == ["device_silent_ended"]


def test_overdue_exactly_at_a_window_start_is_curfew_unverified() -> None:
    state = _heard(CURFEW_START - THRESHOLD)
    alerts = _check(state, CURFEW_START + timedelta(seconds=1))
    assert [(a.type, a.occurred_at) for a in alerts] == [("curfew_unverified", CURFEW_START)]


def test_each_window_of_a_long_silence_gets_its_own_alert() -> None:
    state = _heard(T0)
    back = T0 + timedelta(days=2)
    alerts = _check(state, back - timedelta(minutes=1))
    assert [(a.type, a.occurred_at) for a in alerts] == [
        ("device_silent", T0 + THRESHOLD),
        ("curfew_unverified", CURFEW_START),
        ("curfew_unverified", CURFEW_START + timedelta(days=1)),
    ]
    assert len({a.alert_id for a in alerts}) == 3
    ended = _contact(state, back)
    assert [a.ref_alert_id for a in ended] == [a.alert_id for a in alerts]
    assert len({a.alert_id for a in ended}) == 3


def test_ids_do_not_depend_on_when_the_check_ran() -> None:
    ids = []
    for delay in (661, 900, 3000):
        state = _heard(T0)
        ids.append(_check(state, T0 + timedelta(seconds=delay))[0].alert_id)
    assert len(set(ids)) == 1


def test_gap_noticed_only_when_contact_returns_is_alerted_late() -> None:
    state = _heard(T0)
    back = T0 + timedelta(hours=2)
    alerts = _contact(state, back)
    assert [(a.type, a.late) for a in alerts] == [
        ("device_silent", True),
        ("device_silent_ended", False),
    ]
    assert alerts[0].occurred_at == T0 + THRESHOLD and alerts[0].detected_at == back
    # The same gap seen live by a timer gets the same id: no duplicate after a crash.
    assert _check(_heard(T0), T0 + timedelta(hours=1))[0].alert_id == alerts[0].alert_id


def test_contact_after_a_gap_into_a_curfew_raises_what_a_timer_would() -> None:
    # Bug B: device_silent at the overdue instant, then curfew_unverified at the window start.
    last, back = CURFEW_START - timedelta(hours=1), CURFEW_START + timedelta(hours=3)
    contact = _contact(_heard(last), back)
    assert [(a.type, a.occurred_at, a.late) for a in contact] == [
        ("device_silent", last + THRESHOLD, True),
        ("curfew_unverified", CURFEW_START, True),
        ("device_silent_ended", back, False),
        ("curfew_unverified_ended", back, False),
    ]
    live = _heard(last)
    timer = [a for m in range(0, 240, 10) for a in _check(live, last + timedelta(minutes=m))]
    timer += _contact(live, back)
    assert _summary(timer) == _summary(contact)


def test_contact_raises_only_what_the_timer_had_not_yet() -> None:
    last = CURFEW_START - timedelta(hours=1)
    state = _heard(last)
    (silent,) = _check(state, CURFEW_START - timedelta(minutes=30))  # then the worker stops
    back = CURFEW_START + timedelta(hours=1)
    alerts = _contact(state, back)
    assert [(a.type, a.late) for a in alerts] == [
        ("curfew_unverified", True),
        ("device_silent_ended", False),
        ("curfew_unverified_ended", False),
    ]
    assert alerts[1].ref_alert_id == silent.alert_id


def test_state_from_before_window_episodes_still_ends_its_alerts() -> None:
    state = SilenceState(last_ts=T0, open=[OpenSilence("device_silent", "al-old")])
    (ended,) = _contact(state, T0 + timedelta(hours=1))
    assert ended.ref_alert_id == "al-old" and ended.episode_start == T0


@settings(max_examples=60, deadline=None)
@given(
    last_min=st.integers(0, 24 * 60),
    gap_min=st.integers(0, 3 * 24 * 60),
    ticks=st.lists(st.integers(0, 3 * 24 * 60), max_size=12),
)
def test_timer_and_contact_paths_agree(last_min: int, gap_min: int, ticks: list[int]) -> None:
    """Whatever ticks ran (none: a fast replay), the silence yields the same alerts and ids."""
    last = T0 + timedelta(minutes=last_min)
    back = last + timedelta(minutes=gap_min, seconds=1)
    reference = _contact(_heard(last), back)
    state = _heard(last)
    seen = [
        a
        for m in sorted(ticks)
        if last + timedelta(minutes=m) < back
        for a in _check(state, last + timedelta(minutes=m))
    ]
    seen += _contact(state, back)
    assert _summary(seen) == _summary(reference)
    opened = [a for a in reference if a.ref_alert_id is None]
    assert sorted(a.ref_alert_id for a in reference if a.ref_alert_id) == sorted(
        a.alert_id for a in opened
    )
