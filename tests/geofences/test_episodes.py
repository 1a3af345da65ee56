"""Episodes: debounce, close rules, reordering, late fixes, JSON state (geofences.episodes)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from geofences import (
    CLEAR,
    DEFINITE,
    INACTIVE,
    POSSIBLE,
    UNUSABLE,
    EpisodeConfig,
    EpisodeState,
    Observation,
    ZoneIndex,
    advance,
    close_episode,
    decode_state,
    encode_state,
    is_open,
    new_state,
    push,
)
from geofences.episodes import push_in_place
from tests.geofences.helpers import ORIGIN, PROPS, conditions_xy, noisy, square, zone

X0, Y0 = ORIGIN
NOW = 1_780_000_000.0  # 2026-05-28
IN_ORDER = EpisodeConfig(reorder_window_s=0)
CODE = {"c": CLEAR, "p": POSSIBLE, "d": DEFINITE, "u": UNUSABLE, "i": INACTIVE}


def feed(
    codes: str, cfg: EpisodeConfig = IN_ORDER, *, step_s: float = 60.0, until=None, state=None
):
    """Push one observation per letter (c p d u i) every ``step_s``; return (state, events)."""
    state = state or new_state()
    out = []
    for i, ch in enumerate(codes):
        obs = Observation(NOW + i * step_s, CODE[ch], float(i) if ch in "pd" else None, until)
        state, events = push(state, obs, cfg)
        out += events
    return state, out


def summary(events) -> list[tuple]:
    return [
        (e.kind, (e.start_s - NOW) / 60, None if e.end_s is None else (e.end_s - NOW) / 60)
        for e in events
    ]


# --------------------------------------------------------------------------- open and close


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ("cccc", []),
        ("cpdpdc", []),  # two definite only
        ("cdddcc", [("episode_opened", 1, None)]),
        ("cpppdpdpd", [("episode_opened", 1, None)]),  # possible fixes don't break a run
        ("cdudud", [("episode_opened", 1, None)]),  # unusable fixes are ignored
        ("cddcdd", []),  # a clear fix breaks the run
        ("cddiddd", [("episode_opened", 4, None)]),  # so does an inactive one
        ("cdddccc", [("episode_opened", 1, None), ("episode_closed", 1, 4)]),
        ("cdddcpccc", [("episode_opened", 1, None), ("episode_closed", 1, 6)]),  # streak reset
        ("dddcci", [("episode_opened", 0, None), ("episode_closed", 0, 5)]),  # inactive closes
    ],
)
def test_open_and_close_rules(codes: str, expected: list) -> None:
    _, events = feed(codes)
    assert summary(events) == expected


def test_event_details() -> None:
    _, events = feed("cpddpdccc")
    opened, closed = events
    assert opened.start_s == NOW + 60 and opened.detected_s == NOW + 5 * 60
    assert opened.definite and opened.n_fixes == 5 and opened.max_depth_m == 5.0
    assert closed.end_s == NOW + 6 * 60 and closed.duration_s == 5 * 60
    assert closed.reason == "clear" and closed.n_fixes == 5 and closed.max_depth_m == 5.0
    assert not opened.late and not closed.late


def test_configurable_rules() -> None:
    spec_example = EpisodeConfig(reorder_window_s=0, open_min_fixes=3, open_min_definite=1)
    assert summary(feed("cppd", spec_example)[1]) == [("episode_opened", 1, None)]
    dwell = EpisodeConfig(reorder_window_s=0, open_dwell_s=600, open_dwell_min_definite=0)
    _, events = feed("c" + "p" * 11 + "ccc", dwell)  # 10 minutes of "possible"
    assert summary(events) == [("episode_opened", 1, None), ("episode_closed", 1, 12)]
    assert not events[0].definite
    # Sparse reporting: two clear fixes spanning close_clear_s close it.
    _, events = feed("dddcc", IN_ORDER, step_s=300)
    assert summary(events)[-1] == ("episode_closed", 0, 15)


def test_window_end_closes_at_the_latest() -> None:
    end = NOW + 250
    state, events = feed("dddd", until=end)
    assert [e.kind for e in events] == ["episode_opened"]
    _, later = push(state, Observation(NOW + 3600, INACTIVE), IN_ORDER)
    assert summary(later) == [("episode_closed", 0, 250 / 60)] and later[0].reason == "window_end"
    _, ticked = advance(state, end - 1, IN_ORDER)
    assert ticked == []
    _, ticked = advance(state, end, IN_ORDER)
    assert ticked[0].reason == "window_end" and ticked[0].end_s == end


def test_close_episode_forces_the_end() -> None:
    state, _ = feed("ddd")
    state, events = close_episode(state, NOW + 999, reason="conditions_changed")
    assert events[0].end_s == NOW + 999 and events[0].reason == "conditions_changed"
    assert not is_open(state)


# --------------------------------------------------------------------------- state


def test_functions_are_pure_and_state_round_trips_through_json() -> None:
    cfg = EpisodeConfig(reorder_window_s=120)
    state, _ = feed("cpdd", cfg)
    before = encode_state(state)
    push(state, Observation(NOW + 600, DEFINITE, 9.0), cfg)
    advance(state, NOW + 10_000, cfg)
    assert encode_state(state) == before
    assert state.buffer  # something is waiting to be put in order
    again = decode_state(before)
    assert again == state and isinstance(again, EpisodeState)
    assert len(before) < 600  # small enough for a Faust table
    a = feed("ddd", cfg, state=state)[1]
    b = feed("ddd", cfg, state=again)[1]
    assert a == b


@PROPS
@given(
    steps=st.lists(
        st.tuples(
            st.integers(-40, 0),  # minutes early on every third fix: late, reordered, duplicates
            st.sampled_from("cpdui"),
            st.sampled_from([None, 5, 30]),  # the rule's active period ends after so many minutes
        ),
        min_size=1,
        max_size=80,
    )
)
def test_push_in_place_is_push_without_the_copy(steps) -> None:
    cfg = EpisodeConfig(reorder_window_s=120, reorder_max_fixes=4)
    pure, owned = new_state(), new_state()
    for i, (offset, ch, until) in enumerate(steps):
        ts = NOW + 60.0 * (i + (offset if i % 3 == 0 else 0))
        obs = Observation(
            ts,
            CODE[ch],
            float(i) if ch in "pd" else None,
            None if until is None else NOW + 60.0 * (i // 10 * 10 + until),
        )
        previous, before = pure, encode_state(pure)
        pure, expected = push(previous, obs, cfg)
        assert encode_state(previous) == before  # push leaves its input alone
        assert push_in_place(owned, obs, cfg) == expected
        assert owned == pure and encode_state(owned) == encode_state(pure)
        for lane in (owned.live, owned.late):  # relied on: a run's fields are set while it lasts
            if lane.run_n == 0:
                run = (lane.run_definite, lane.run_start_s, lane.run_last_s, lane.run_depth_m)
                assert (*run, lane.run_until_s) == (0, None, None, None, None)


# --------------------------------------------------------------------------- ordering


@PROPS
@given(
    codes=st.text(alphabet="cpdu", min_size=1, max_size=60),
    delays=st.lists(st.floats(0, 110), min_size=60, max_size=60),
)
def test_fixes_delayed_less_than_the_window_give_the_same_events(codes, delays) -> None:
    cfg = EpisodeConfig(reorder_window_s=120, reorder_max_fixes=100)
    obs = [Observation(NOW + 10 * i, CODE[ch], 1.0) for i, ch in enumerate(codes)]
    arrival = sorted(range(len(obs)), key=lambda i: obs[i].ts_s + delays[i])
    reference, shuffled = new_state(), new_state()
    ref_events, got = [], []
    for o in obs:
        reference, ev = push(reference, o, IN_ORDER)
        ref_events += ev
    for i in arrival:
        shuffled, ev = push(shuffled, obs[i], cfg)
        got += ev
    shuffled, ev = advance(shuffled, NOW + 10 * len(obs) + 1000, cfg)
    got += ev
    assert [(e.kind, e.start_s, e.end_s) for e in got] == [
        (e.kind, e.start_s, e.end_s) for e in ref_events
    ]
    assert not any(e.late for e in got)


def test_buffer_is_bounded_and_duplicates_are_dropped() -> None:
    cfg = EpisodeConfig(reorder_window_s=10_000, reorder_max_fixes=4)
    state = new_state()
    for i in range(10):
        state, _ = push(state, Observation(NOW + i, DEFINITE), cfg)
        assert len(state.buffer) <= 4
    n_buffered = len(state.buffer)
    state, events = push(state, Observation(NOW + 9, DEFINITE), cfg)  # duplicate, buffered
    assert events == [] and len(state.buffer) == n_buffered
    state, events = push(state, Observation(NOW + 5, DEFINITE), cfg)  # duplicate, applied
    assert events == [] and state.late_covered == 1


def test_late_burst_opens_a_late_episode() -> None:
    cfg = EpisodeConfig(reorder_window_s=60)
    state, _ = feed("c" * 60, cfg)  # an hour of clear fixes, applied
    burst = [Observation(NOW - 3600 + 60 * i, DEFINITE, 50.0) for i in range(5)]
    burst += [Observation(NOW - 3600 + 300 + 60 * i, CLEAR) for i in range(3)]
    events = []
    for o in burst:
        state, ev = push(state, o, cfg)
        events += ev
    assert [(e.kind, e.late) for e in events] == [
        ("episode_opened", True),
        ("episode_closed", True),
    ]
    assert events[0].start_s == NOW - 3600 and events[1].end_s == NOW - 3300
    assert not is_open(state)


def test_unresolved_late_episode_closes_on_request() -> None:
    cfg = EpisodeConfig(reorder_window_s=0)
    state, _ = feed("ccc", cfg)
    for i in range(3):
        state, _ = push(state, Observation(NOW - 600 + 60 * i, DEFINITE, 5.0), cfg)
    assert is_open(state)
    state, events = advance(state, NOW + 1000, cfg)
    assert events == []
    state, events = advance(state, NOW + 1000, cfg, close_late=True)
    assert events[0].reason == "late_unresolved" and events[0].end_s == NOW - 480
    assert not is_open(state)


def test_late_fixes_join_the_open_episode_or_are_covered_by_the_last_one() -> None:
    state, events = feed("ccdddd")  # opens at +2 min
    assert events[0].n_fixes == 3
    state, events = push(state, Observation(NOW + 150, DEFINITE, 80.0), IN_ORDER)
    assert events == [] and state.live.ep_n == 5 and state.live.ep_depth_m == 80.0
    state, events = feed("ccc", state=state, step_s=60.0)  # ts NOW..: all late or duplicates
    state, closing = push(state, Observation(NOW + 600, CLEAR), IN_ORDER)
    state, _ = feed("cc", state=state)  # still late: no effect
    for i in range(3):
        state, ev = push(state, Observation(NOW + 700 + 60 * i, CLEAR), IN_ORDER)
        closing += ev
    assert [e.kind for e in closing] == ["episode_closed"]
    before = state.late_covered
    state, ev = push(state, Observation(NOW + 200, DEFINITE, 1.0), IN_ORDER)
    assert ev == [] and state.late_covered == before + 1  # inside the closed episode


def test_live_episode_continues_an_open_late_one() -> None:
    cfg = EpisodeConfig(reorder_window_s=0)
    state, _ = feed("c" + "u" * 10, cfg)  # a clear fix, then only unusable ones: no run
    late = []
    for i in range(3):
        state, ev = push(state, Observation(NOW + 300 + 60 * i, DEFINITE, 5.0), cfg)
        late += ev
    assert [(e.kind, e.late) for e in late] == [("episode_opened", True)]
    assert state.late.ep_start_s == NOW + 300
    live = []
    for i in range(11, 14):
        state, ev = push(state, Observation(NOW + 60 * i, DEFINITE, 7.0), cfg)
        live += ev
    assert live == []  # no second "opened": the live lane continues the late episode
    assert state.live.ep_start_s == NOW + 300 and state.live.ep_n == 6
    ev = []
    for i in range(14, 17):
        state, out = push(state, Observation(NOW + 60 * i, CLEAR), cfg)
        ev += out
    (closed,) = ev
    assert closed.start_s == NOW + 300 and not closed.late


def test_late_episode_before_a_live_break_stays_separate() -> None:
    cfg = EpisodeConfig(reorder_window_s=0)
    state, _ = feed("c", cfg)
    events = []
    for t in (-300, -240, -180, 60, 120, 180):  # three late (before the clear), three live
        state, ev = push(state, Observation(NOW + t, DEFINITE, 5.0), cfg)
        events += ev
    assert [(e.kind, e.late, e.start_s - NOW) for e in events] == [
        ("episode_opened", True, -300),
        ("episode_opened", False, 60),
    ]


def test_late_fixes_contiguous_with_a_live_run_open_it_flagged_late() -> None:
    cfg = EpisodeConfig(reorder_window_s=0)
    state, _ = push(new_state(), Observation(NOW, POSSIBLE), cfg)  # live, no break yet
    events = []
    for i in range(3):
        state, ev = push(state, Observation(NOW - 300 + 60 * i, DEFINITE, 5.0), cfg)
        events += ev
    assert [(e.kind, e.late, e.start_s) for e in events] == [("episode_opened", True, NOW - 300)]
    assert state.live.ep_n == 4 and state.late.ep_start_s is None


# --------------------------------------------------------------------------- GPS noise


def episodes_for_trail(cc, ts, x, y, acc, cfg=None):
    res = ZoneIndex([cc]).evaluate(np.zeros(len(ts), int), ts, x=x, y=y, accuracy_m=acc)
    state, events = new_state(), []
    for row in range(len(res)):
        state, ev = push(state, res.observation(row), cfg or EpisodeConfig())
        events += ev
    state, ev = advance(state, ts[-1] + 3600)
    return events + ev


@pytest.mark.parametrize("shape", ["polygon", "circle"])
def test_stationary_person_outside_the_edge_with_gps_noise_opens_no_episode(shape) -> None:
    if shape == "polygon":
        zone_ = zone("z", "exclusion", square(X0, Y0, 500))  # edge at x = X0 + 500
    else:
        zone_ = zone("z", "exclusion", circle=(X0, Y0, 500.0))
    cc = conditions_xy(zone_)
    n = 8 * 60  # 8 hours at 60 s
    ts = NOW + 60.0 * np.arange(n)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        distance = rng.uniform(10, 40)
        acc = rng.uniform(5, 30, n)
        x, y = noisy(rng, np.full(n, X0 + 500 + distance), np.full(n, Y0), acc)
        events = episodes_for_trail(cc, ts, x, y, acc)
        assert events == [], (seed, distance)


def test_walking_200_m_into_the_zone_opens_exactly_one_episode_at_the_first_evidence() -> None:
    cc = conditions_xy(zone("z", "exclusion", square(X0, Y0, 1000)))  # edge at x = X0 + 1000
    edge = X0 + 1000
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        # 400 m outside → 200 m inside at 1.4 m/s, 10 min there, and back out; a fix a minute.
        t = np.arange(0, 600 / 1.4 * 2 + 600, 60.0) + rng.uniform(0, 60)
        walk_in, stay = 600 / 1.4, 600.0
        depth = np.where(
            t < walk_in,
            -400 + 1.4 * t,
            np.where(t < walk_in + stay, 200, 200 - 1.4 * (t - walk_in - stay)),
        )
        acc = rng.uniform(5, 30, len(t))
        x, y = noisy(rng, edge - depth, np.full(len(t), Y0), acc)
        ts = NOW + t
        events = episodes_for_trail(cc, ts, x, y, acc)
        assert [e.kind for e in events] == ["episode_opened", "episode_closed"], seed
        opened = events[0]
        # The open time is the first fix of the run of evidence that opened it.
        res = ZoneIndex([cc]).evaluate(np.zeros(len(ts), int), ts, x=x, y=y, accuracy_m=acc)
        detect = int(np.searchsorted(ts, opened.detected_s))
        clear_before = np.flatnonzero(res.verdict[:detect] == CLEAR)
        first_evidence = clear_before[-1] + 1 if len(clear_before) else 0
        assert opened.start_s == ts[first_evidence]
        assert opened.definite and opened.max_depth_m > 150
        assert ts[first_evidence] < NOW + walk_in + 60  # not later than the fix after entering


def test_jitter_polygon_is_exact_polygon() -> None:
    # The polygon edge used above really is a straight line at X0 + 500.
    assert shapely.distance(square(X0, Y0, 500).boundary, shapely.Point(X0 + 520, Y0)) == 20


def test_a_late_fix_contiguous_with_the_live_run_counts_towards_it() -> None:
    cfg = EpisodeConfig(reorder_window_s=0)
    state, _ = feed("cc", cfg)  # clear at +0, +1 min
    state, _ = push(state, Observation(NOW + 240, DEFINITE, 3.0), cfg)
    state, _ = push(state, Observation(NOW + 300, DEFINITE, 3.0), cfg)
    assert state.live.run_n == 2
    state, events = push(state, Observation(NOW + 180, DEFINITE, 4.0), cfg)  # late, after the break
    assert [(e.kind, e.late, e.start_s) for e in events] == [("episode_opened", True, NOW + 180)]
    state, events = push(state, Observation(NOW + 30, DEFINITE, 4.0), cfg)  # before the break
    assert events == [] and state.late.run_n == 1
