"""Breach episodes: debounce fix-by-fix verdicts into opened/closed episodes, one state per rule.

One :class:`EpisodeState` per (person, zone or curfew). It is a small msgspec Struct that
round-trips through JSON (:func:`encode_state` / :func:`decode_state`), so a Faust table can hold
it. The functions are pure — they never modify their input state::

    state, events = push(state, Observation(ts_s, verdict, depth_m, until_s), config)
    state, events = advance(state, now_s, config)   # on a timer: flush, close at window end

Rules (defaults in :class:`EpisodeConfig`, justified in ``geofences/README.md``):

* *Evidence* is a ``possible`` or ``definite`` verdict; a *run* is consecutive evidence fixes.
  ``clear`` and ``inactive`` break a run; ``unusable`` fixes are ignored (neither break nor count).
* **Open** when the run has at least ``open_min_fixes`` fixes of which ``open_min_definite`` are
  definite, or when it has lasted ``open_dwell_s`` with ``open_dwell_min_definite`` definite.
  ``episode_opened`` carries the time of the run's *first* evidence fix, not the debounce time.
* **Close** after ``close_clear_n`` consecutive clear fixes, or clear fixes spanning
  ``close_clear_s``; the episode ends at the first clear fix of that streak. It also ends at the
  end of the rule's active period (curfew window end, zone schedule end, ``valid_to``) at the
  latest, and at an ``inactive`` verdict.
* **Reordering**: observations wait in a buffer until one ``reorder_window_s`` newer has been
  seen (or the buffer holds more than ``reorder_max_fixes``), then apply in event-time order.
  An observation at a time already applied is a duplicate and dropped. One older than the last
  applied is *late*: it joins the open episode or the current run of evidence if contiguous with
  it (no clear fix since), is dropped if inside the last closed episode, and otherwise goes to a
  separate *late lane* with the same rules. Events a late fix triggers are flagged ``late``.
  When the live lane later opens an episode contiguous with an open late one, it continues that
  episode (same ``start_s``, no second ``episode_opened``).
"""

from __future__ import annotations

import bisect
import math
from typing import Literal

import msgspec

from geofences import verdicts as V
from geofences.zones import ZoneVerdict


class EpisodeConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Debounce and reordering settings (all times in seconds of event time)."""

    #: Open: a run of at least this many evidence fixes …
    open_min_fixes: int = 3
    #: … of which at least this many are definite (possible fixes may come in between).
    open_min_definite: int = 3
    #: Open also when the run has lasted this long (first to last evidence fix); None = off.
    #: Off by default: at a zone edge with 20–30 m accuracy, runs of "possible" fixes are long.
    open_dwell_s: float | None = None
    #: Definite fixes the dwell rule needs (0 lets "possible"-only evidence open an episode).
    open_dwell_min_definite: int = 1
    #: Close after this many consecutive clear fixes …
    close_clear_n: int = 3
    #: … or clear fixes spanning this long.
    close_clear_s: float = 300.0
    #: Hold observations this long (event time) to put them in order; 0 applies at once.
    reorder_window_s: float = 60.0
    #: Never hold more than this many observations.
    reorder_max_fixes: int = 8


DEFAULT_CONFIG = EpisodeConfig()


class Observation(msgspec.Struct, frozen=True, array_like=True):
    """One fix's verdict for one rule: the input of :func:`push`.

    ``verdict`` is a code (:mod:`geofences.verdicts`); ``depth_m`` the signed depth into the
    breach region (or None); ``until_s`` the end of the rule's active period (None = open-ended).
    """

    ts_s: float
    verdict: int
    depth_m: float | None = None
    until_s: float | None = None

    @classmethod
    def from_verdict(cls, ts_s: float, verdict: ZoneVerdict) -> Observation:
        """Return the observation of a scalar :class:`~geofences.zones.ZoneVerdict` at ``ts_s``."""
        until = verdict.active_until_s
        return cls(float(ts_s), verdict.code, verdict.depth_m, None if until == math.inf else until)


class EpisodeEvent(msgspec.Struct, frozen=True, kw_only=True):
    """``episode_opened`` or ``episode_closed``.

    Attributes
    ----------
    kind
        What happened.
    start_s
        Time of the first evidence fix of the episode (event time, epoch seconds).
    detected_s
        Time of the fix (or watermark) that opened or closed it: the debounce time.
    definite
        Whether any evidence fix was definite (for severity).
    max_depth_m
        Greatest depth into the breach region seen so far, metres (None if unknown).
    n_fixes
        Evidence fixes so far.
    late
        Triggered by a fix older than the last one applied (store-and-forward, backfill).
    end_s, duration_s, reason
        For ``episode_closed``: when it ended, ``end_s - start_s``, and why: ``"clear"``,
        ``"window_end"``, ``"inactive"``, ``"forced"`` or ``"late_unresolved"``.
    """

    kind: Literal["episode_opened", "episode_closed"]
    start_s: float
    detected_s: float
    definite: bool
    max_depth_m: float | None
    n_fixes: int
    late: bool = False
    end_s: float | None = None
    duration_s: float | None = None
    reason: str | None = None


class Lane(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Debounce state of one lane (live or late). All times are epoch seconds."""

    last_s: float | None = None
    last_break_s: float | None = None
    run_n: int = 0
    run_definite: int = 0
    run_start_s: float | None = None
    run_last_s: float | None = None
    run_depth_m: float | None = None
    run_until_s: float | None = None
    ep_start_s: float | None = None
    ep_n: int = 0
    ep_definite: bool = False
    ep_depth_m: float | None = None
    ep_last_s: float | None = None
    ep_until_s: float | None = None
    clear_n: int = 0
    clear_start_s: float | None = None
    clear_last_s: float | None = None


class EpisodeState(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Everything kept per (person, rule). Plain data; JSON round-trips.

    Attributes
    ----------
    live, late
        The live lane and the late lane.
    buffer
        Observations waiting to be put in order.
    max_seen_s
        Latest event time seen.
    closed_start_s, closed_end_s
        The last closed live episode (late fixes inside it are dropped as covered).
    late_covered
        How many late fixes were dropped as covered or duplicate.
    """

    live: Lane = msgspec.field(default_factory=Lane)
    late: Lane = msgspec.field(default_factory=Lane)
    buffer: list[Observation] = msgspec.field(default_factory=list)
    max_seen_s: float | None = None
    closed_start_s: float | None = None
    closed_end_s: float | None = None
    late_covered: int = 0


def new_state() -> EpisodeState:
    """Return the state of a rule with no history."""
    return EpisodeState()


def is_open(state: EpisodeState) -> bool:
    """Return True if a live or late episode is open."""
    return state.live.ep_start_s is not None or state.late.ep_start_s is not None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(EpisodeState)


def encode_state(state: EpisodeState) -> bytes:
    """Return ``state`` as JSON bytes."""
    return _encoder.encode(state)


def decode_state(data: bytes | str) -> EpisodeState:
    """Return the state encoded by :func:`encode_state`."""
    return _decoder.decode(data)


# --------------------------------------------------------------------------- lanes


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else (a if b is None else max(a, b))


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else (a if b is None else min(a, b))


def _reset_run(lane: Lane) -> None:
    lane.run_n = lane.run_definite = 0
    lane.run_start_s = lane.run_last_s = lane.run_depth_m = lane.run_until_s = None


def _reset_clear(lane: Lane) -> None:
    lane.clear_n = 0
    lane.clear_start_s = lane.clear_last_s = None


def _close(lane: Lane, end_s: float, detected_s: float, reason: str, late: bool) -> EpisodeEvent:
    start = lane.ep_start_s
    end_s = max(end_s, start)
    event = EpisodeEvent(
        kind="episode_closed",
        start_s=start,
        detected_s=detected_s,
        definite=lane.ep_definite,
        max_depth_m=lane.ep_depth_m,
        n_fixes=lane.ep_n,
        late=late,
        end_s=end_s,
        duration_s=end_s - start,
        reason=reason,
    )
    lane.ep_start_s = lane.ep_depth_m = lane.ep_last_s = lane.ep_until_s = None
    lane.ep_n = 0
    lane.ep_definite = False
    _reset_clear(lane)
    return event


def _absorb(lane: Lane, obs: Observation) -> None:
    lane.ep_n += 1
    lane.ep_definite = lane.ep_definite or obs.verdict == V.DEFINITE
    lane.ep_depth_m = _max(lane.ep_depth_m, obs.depth_m)
    lane.ep_last_s = _max(lane.ep_last_s, obs.ts_s)


def _should_open(lane: Lane, cfg: EpisodeConfig) -> bool:
    if lane.run_n >= cfg.open_min_fixes and lane.run_definite >= cfg.open_min_definite:
        return True
    return (
        cfg.open_dwell_s is not None
        and lane.run_n >= 2
        and lane.run_last_s - lane.run_start_s >= cfg.open_dwell_s
        and lane.run_definite >= cfg.open_dwell_min_definite
    )


def _apply(lane: Lane, obs: Observation, cfg: EpisodeConfig, late: bool) -> list[EpisodeEvent]:
    """Apply one observation to a lane; return the events (mutates ``lane``)."""
    events: list[EpisodeEvent] = []
    ts = obs.ts_s
    if lane.ep_start_s is not None and lane.ep_until_s is not None and ts >= lane.ep_until_s:
        events.append(_close(lane, lane.ep_until_s, ts, "window_end", late))
    if lane.run_n and lane.run_until_s is not None and ts >= lane.run_until_s:
        _reset_run(lane)
    if lane.last_s is None or ts > lane.last_s:  # = _max(lane.last_s, ts), inlined: hot path
        lane.last_s = ts
    v = obs.verdict
    if v == V.UNUSABLE:
        return events
    if v == V.CLEAR or v == V.INACTIVE:
        if lane.last_break_s is None or ts > lane.last_break_s:
            lane.last_break_s = ts
        if lane.run_n:  # a run's fields are all set while run_n > 0 and all clear otherwise
            _reset_run(lane)
        if lane.ep_start_s is None:
            return events
        if v == V.INACTIVE:
            events.append(_close(lane, _min(ts, lane.ep_until_s), ts, "inactive", late))
            return events
        lane.clear_n += 1
        lane.clear_start_s = _min(lane.clear_start_s, ts)
        lane.clear_last_s = _max(lane.clear_last_s, ts)
        if (
            lane.clear_n >= cfg.close_clear_n
            or lane.clear_last_s - lane.clear_start_s >= cfg.close_clear_s
        ):
            events.append(_close(lane, lane.clear_start_s, ts, "clear", late))
        return events
    # Evidence: possible or definite.
    if lane.ep_start_s is not None:
        _reset_clear(lane)
        _absorb(lane, obs)
        lane.ep_until_s = obs.until_s
        return events
    return events + _extend_run(lane, obs, cfg, late)


def _extend_run(lane: Lane, obs: Observation, cfg: EpisodeConfig, late: bool) -> list[EpisodeEvent]:
    """Add an evidence fix to the lane's run; open an episode if the rule is met."""
    if lane.run_last_s is None or obs.ts_s >= lane.run_last_s:
        lane.run_until_s = obs.until_s
    lane.run_n += 1
    lane.run_definite += obs.verdict == V.DEFINITE
    lane.run_start_s = _min(lane.run_start_s, obs.ts_s)
    lane.run_last_s = _max(lane.run_last_s, obs.ts_s)
    lane.run_depth_m = _max(lane.run_depth_m, obs.depth_m)
    if not _should_open(lane, cfg):
        return []
    lane.ep_start_s = lane.run_start_s
    lane.ep_n = lane.run_n
    lane.ep_definite = lane.run_definite > 0
    lane.ep_depth_m = lane.run_depth_m
    lane.ep_last_s = lane.run_last_s
    lane.ep_until_s = lane.run_until_s
    _reset_run(lane)
    _reset_clear(lane)
    return [_opened(lane, obs.ts_s, late)]


def _opened(lane: Lane, detected_s: float, late: bool) -> EpisodeEvent:
    return EpisodeEvent(
        kind="episode_opened",
        start_s=lane.ep_start_s,
        detected_s=detected_s,
        definite=lane.ep_definite,
        max_depth_m=lane.ep_depth_m,
        n_fixes=lane.ep_n,
        late=late,
    )


# --------------------------------------------------------------------------- state


def _copy(state: EpisodeState) -> EpisodeState:
    return msgspec.structs.replace(
        state,
        live=msgspec.structs.replace(state.live),
        late=msgspec.structs.replace(state.late),
        buffer=list(state.buffer),
    )


def _apply_live(state: EpisodeState, obs: Observation, cfg: EpisodeConfig) -> list[EpisodeEvent]:
    live, late = state.live, state.late
    was_open = live.ep_start_s is not None
    events = _apply(live, obs, cfg, late=False)
    if not events:  # the usual case; opening an episode always gives an event
        return events
    for e in events:
        if e.kind == "episode_closed":
            state.closed_start_s, state.closed_end_s = e.start_s, e.end_s
    if (
        not was_open
        and live.ep_start_s is not None
        and late.ep_start_s is not None
        and _no_break_since(live, late.ep_last_s)
        and late.ep_last_s <= live.ep_start_s
    ):
        # The live episode continues the open late one: keep its start, emit no new "opened".
        events = [e for e in events if e.kind != "episode_opened"]
        live.ep_start_s = late.ep_start_s
        live.ep_n += late.ep_n
        live.ep_definite = live.ep_definite or late.ep_definite
        live.ep_depth_m = _max(live.ep_depth_m, late.ep_depth_m)
        state.late = Lane(last_s=late.last_s, last_break_s=late.last_break_s)
    return events


def _no_break_since(lane: Lane, ts_s: float) -> bool:
    """True if the lane has seen no clear or inactive fix at or after ``ts_s``."""
    return lane.last_break_s is None or lane.last_break_s < ts_s


def _apply_late(state: EpisodeState, obs: Observation, cfg: EpisodeConfig) -> list[EpisodeEvent]:
    live = state.live
    evidence = obs.verdict in (V.POSSIBLE, V.DEFINITE)
    if live.ep_start_s is not None and (
        obs.ts_s >= live.ep_start_s or _no_break_since(live, obs.ts_s)
    ):
        if evidence:  # contiguous with the open episode: part of it
            _absorb(live, obs)
        return []
    if live.run_n and evidence and _no_break_since(live, obs.ts_s):
        return _extend_run(live, obs, cfg, late=True)  # part of the live run of evidence
    if state.closed_start_s is not None and state.closed_start_s <= obs.ts_s <= state.closed_end_s:
        state.late_covered += 1
        return []
    return _apply(state.late, obs, cfg, late=True)


def _release(state: EpisodeState, threshold_s: float, cfg: EpisodeConfig) -> list[EpisodeEvent]:
    """Apply the buffered observations up to ``threshold_s`` (and any beyond the buffer's size)."""
    buf = state.buffer
    if not buf or (buf[0].ts_s > threshold_s and len(buf) <= cfg.reorder_max_fixes):
        return []
    events = _apply_live(state, buf.pop(0), cfg)  # usually the only one
    while buf and (buf[0].ts_s <= threshold_s or len(buf) > cfg.reorder_max_fixes):
        events += _apply_live(state, buf.pop(0), cfg)
    return events


def push(
    state: EpisodeState, obs: Observation, config: EpisodeConfig = DEFAULT_CONFIG
) -> tuple[EpisodeState, list[EpisodeEvent]]:
    """Return the new state and the events after one observation (input state is not modified).

    Examples
    --------
    >>> cfg = EpisodeConfig(reorder_window_s=0)
    >>> state, out = new_state(), []
    >>> C, P, D = V.CLEAR, V.POSSIBLE, V.DEFINITE
    >>> for i, v in enumerate([C, P, D, D, D, C, C, C]):
    ...     state, events = push(state, Observation(60.0 * i, v, 5.0), cfg)
    ...     out += [(e.kind, e.start_s, e.end_s) for e in events]
    >>> out
    [('episode_opened', 60.0, None), ('episode_closed', 60.0, 300.0)]
    """
    st = _copy(state)
    return st, push_in_place(st, obs, config)


def push_in_place(
    state: EpisodeState, obs: Observation, config: EpisodeConfig = DEFAULT_CONFIG
) -> list[EpisodeEvent]:
    """Apply one observation to ``state`` itself and return the events.

    The same as :func:`push` without copying the state first, for a caller that owns it (the
    state of one rule of one person on the hot path).
    """
    ts = obs.ts_s
    last = state.live.last_s
    if last is not None and ts <= last:
        if ts == last:
            state.late_covered += 1  # duplicate of the last applied fix
            return []
        return _apply_late(state, obs, config)
    buf = state.buffer
    if not buf or buf[-1].ts_s < ts:
        buf.append(obs)  # in order: the common case
    else:
        i = bisect.bisect_left(buf, ts, key=_ts_of)
        if i < len(buf) and buf[i].ts_s == ts:
            return []  # duplicate of a buffered fix
        buf.insert(i, obs)
    if state.max_seen_s is None or ts > state.max_seen_s:  # = _max(…), inlined: hot path
        state.max_seen_s = ts
    return _release(state, state.max_seen_s - config.reorder_window_s, config)


def _ts_of(obs: Observation) -> float:
    return obs.ts_s


def advance(
    state: EpisodeState,
    now_s: float,
    config: EpisodeConfig = DEFAULT_CONFIG,
    *,
    close_late: bool = False,
) -> tuple[EpisodeState, list[EpisodeEvent]]:
    """Return the state after time reaches ``now_s`` with no new fix (call it on a timer).

    Applies buffered observations older than ``now_s - reorder_window_s``; closes an episode
    whose active period (curfew window, schedule, validity) ended at or before ``now_s`` at that
    end. With ``close_late``, an open late episode is closed at its last evidence fix
    (``reason="late_unresolved"``): use it once a store-and-forward burst has been drained.
    """
    st = _copy(state)
    events = _release(st, now_s - config.reorder_window_s, config)
    for lane, late in ((st.live, False), (st.late, True)):
        if lane.ep_start_s is not None and lane.ep_until_s is not None and now_s >= lane.ep_until_s:
            events.append(_close(lane, lane.ep_until_s, now_s, "window_end", late))
            if not late:
                st.closed_start_s, st.closed_end_s = events[-1].start_s, events[-1].end_s
    if close_late and st.late.ep_start_s is not None:
        events.append(_close(st.late, st.late.ep_last_s, now_s, "late_unresolved", True))
        _reset_run(st.late)
    return st, events


def close_episode(
    state: EpisodeState,
    end_s: float,
    config: EpisodeConfig = DEFAULT_CONFIG,
    *,
    reason: str = "forced",
) -> tuple[EpisodeState, list[EpisodeEvent]]:
    """Return the state with buffered fixes applied and any open episode closed at ``end_s``.

    For when the rule itself goes away (conditions changed) or the caller knows the end.
    """
    st = _copy(state)
    events = _release(st, float("inf"), config)
    for lane, late in ((st.live, False), (st.late, True)):
        if lane.ep_start_s is not None:
            events.append(_close(lane, end_s, end_s, reason, late))
        _reset_run(lane)
    return st, events
