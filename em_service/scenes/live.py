"""Live scene matching in the worker: a fix (possibly late) near an open scene → match → alert.

The tracking worker keeps a :class:`LiveState` per device (a field of ``DeviceState``, so it is
changelogged with the rest of the device's state), follows the scenes topic into one
:class:`LiveMatcher` (:func:`em_service.scenes.feed.follow_scenes`) and calls :meth:`on_fix`
for every GPS fix after the other rules (``em_service/tracking/tracker.py``).

``on_fix`` is pure and cheap when no open scene is near (one dict lookup); it returns the very
same state object when nothing changed. It emits exactly one ``scene_proximity`` alert per
(scene, offender, confidence level), with the same deterministic ``alert_id`` as the archive
search (:mod:`em_service.scenes.alerting`), and only once the level is settled: ``at_scene``
at once, a weaker level when the trail has left the near band (so a store-and-forward burst
that stands at a scene yields one ``at_scene`` alert, not ``passed_by`` then ``at_scene``).
The archiver stores the match when the alert reaches it and re-matches from the archive.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import numpy as np

from em_service.contracts import Alert, GpsReading, Scene
from em_service.scenes.alerting import scene_alert
from em_service.scenes.config import SceneSettings
from em_service.scenes.matching import RANK, Match, MatchConfig, SceneGeom, Trail, match_trail
from geofences.projection import get_projector

_CELL_M = 1000.0
_MAX_RANK = RANK["at_scene"]


class TrackPoint(msgspec.Struct, array_like=True, frozen=True):
    """A fix remembered for a scene: epoch seconds, projected metres, accuracy metres."""

    ts_s: float
    x_m: float
    y_m: float
    accuracy_m: float


class SceneTrack(msgspec.Struct, omit_defaults=True):
    """One device's fixes near one open scene, and the strongest level already alerted."""

    level: int = 0
    points: list[TrackPoint] = msgspec.field(default_factory=list)


class LiveState(msgspec.Struct, omit_defaults=True):
    """Per-device live-matching state (small; empty for devices far from every open scene):
    the fix last received near an open scene (the earlier end of a segment that may pass
    one) and a track per open scene the device came near."""

    last: TrackPoint | None = None
    tracks: dict[str, SceneTrack] = msgspec.field(default_factory=dict)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(LiveState)


def dump_live_state(state: LiveState) -> bytes:
    """Serialise a live state (for a table of its own, if not kept in ``DeviceState``)."""
    return _encoder.encode(state)


def load_live_state(raw: bytes | None) -> LiveState:
    """Deserialise a live state (a new one for None)."""
    return _decoder.decode(raw) if raw else LiveState()


@dataclass(frozen=True, slots=True)
class _Open:
    scene: Scene
    geom: SceneGeom
    t_lo_s: float
    t_hi_s: float


class LiveMatcher:
    """Open scenes in projected metres, indexed by a 1 km grid; pure per-fix matching."""

    def __init__(
        self, settings: SceneSettings, *, crs: str = "EPSG:27700", late_after_s: float = 300.0
    ) -> None:
        self.settings = settings
        self.cfg = MatchConfig.of(settings)
        self.projector = get_projector(crs)
        self.late_after_s = late_after_s
        self._scenes: dict[str, _Open] = {}
        self._grid: dict[tuple[int, int], set[str]] = defaultdict(set)
        self._reach_m = settings.segment_reach_m

    # --- Open scenes ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._scenes)

    def __contains__(self, scene_id: object) -> bool:
        return scene_id in self._scenes

    def _search_m(self, o: _Open) -> float:
        return self.cfg.search_radius_m(o.geom.radius_m)

    def _approach_m(self, o: _Open) -> float:
        return self._search_m(o) + self._reach_m

    def _cells(self, o: _Open) -> list[tuple[int, int]]:
        r = self._approach_m(o)
        x0, x1 = math.floor((o.geom.x_m - r) / _CELL_M), math.floor((o.geom.x_m + r) / _CELL_M)
        y0, y1 = math.floor((o.geom.y_m - r) / _CELL_M), math.floor((o.geom.y_m + r) / _CELL_M)
        return [(i, j) for i in range(x0, x1 + 1) for j in range(y0, y1 + 1)]

    def upsert(self, scene: Scene, *, now: datetime | None) -> bool:
        """Hold ``scene`` if it is open at rule clock ``now`` (a new version replaces the old;
        None, a replay before its first event, judges nothing closed); return whether it is
        held."""
        self.remove(scene.scene_id)
        if now is not None and scene.window_end < now - timedelta(days=self.settings.open_days):
            return False
        if scene.low_precision and not self.settings.alert_low_precision:
            return False  # live matching only alerts; the archiver still matches these
        geom = SceneGeom.of(scene, self.projector)
        slack = self.cfg.time_pad_s + self.cfg.max_gap_s
        o = _Open(scene, geom, geom.start_s - slack, geom.end_s + slack)
        self._scenes[scene.scene_id] = o
        for cell in self._cells(o):
            self._grid[cell].add(scene.scene_id)
        return True

    def remove(self, scene_id: str) -> None:
        """Stop holding a scene (withdrawn, replaced or closed)."""
        o = self._scenes.pop(scene_id, None)
        if o is not None:
            for cell in self._cells(o):
                self._grid[cell].discard(scene_id)
                if not self._grid[cell]:
                    del self._grid[cell]

    def prune(self, now: datetime | None) -> int:
        """Drop scenes whose window ended more than ``open_days`` before rule clock ``now``
        (None: none); return how many were dropped."""
        if now is None:
            return 0
        cutoff = now - timedelta(days=self.settings.open_days)
        closed = [s for s, o in self._scenes.items() if o.scene.window_end < cutoff]
        for scene_id in closed:
            self.remove(scene_id)
        return len(closed)

    # --- Per fix -------------------------------------------------------------------------

    def on_fix(
        self,
        offender_id: str,
        fix: GpsReading,
        state: LiveState,
        *,
        now: datetime,
        stream_now: datetime | None = None,
        xy: tuple[float, float] | None = None,
    ) -> tuple[LiveState, list[Alert]]:
        """Return the device's new state and the alerts ``fix`` raises (usually none).

        ``now`` is the wall clock (``detected_at``), ``stream_now`` the rule clock that judges
        ``late`` (default ``now``). ``xy`` is the fix in projected metres if the caller has it
        already. The given state is not modified; the same object is returned when nothing
        changed.
        """
        if not self._scenes and not state.tracks:
            return state, []
        if xy is None:
            x, y = self.projector.to_xy(fix.lon, fix.lat)
            xy = (float(x), float(y))
        p = TrackPoint(fix.ts.timestamp(), xy[0], xy[1], fix.accuracy_m)
        cell = (math.floor(p.x_m / _CELL_M), math.floor(p.y_m / _CELL_M))
        tracks = {s: t for s, t in state.tracks.items() if s in self._scenes}
        changed = len(tracks) != len(state.tracks)
        last, alerts = state.last, []
        for scene_id in sorted(self._grid.get(cell, set()) | set(tracks)):
            o = self._scenes[scene_id]
            if not o.t_lo_s <= p.ts_s <= o.t_hi_s:
                continue
            d = math.hypot(p.x_m - o.geom.x_m, p.y_m - o.geom.y_m)
            if d <= self._approach_m(o):
                # The fix received last (a burst arrives in time order, however late it is).
                last, changed = p, True
            track = tracks.get(scene_id)
            if track is not None and track.level >= _MAX_RANK:
                continue  # nothing left to alert for this scene
            new = self._add(o, track, p, state.last)
            if new is None:
                continue
            changed = True
            tracks[scene_id] = new
            alert = self._evaluate(o, new, offender_id, fix.device_id, now, stream_now or now)
            if alert is not None:
                alerts.append(alert)
                level = RANK[alert.details["confidence"]]
                tracks[scene_id] = SceneTrack(level, [] if level >= _MAX_RANK else new.points)
        if not changed:
            return state, []
        return LiveState(last=last, tracks=tracks), alerts

    def _near(self, o: _Open, p: TrackPoint) -> bool:
        return math.hypot(p.x_m - o.geom.x_m, p.y_m - o.geom.y_m) <= self._search_m(o)

    def _add(
        self, o: _Open, track: SceneTrack | None, p: TrackPoint, last: TrackPoint | None
    ) -> SceneTrack | None:
        """Return the track with ``p`` added, or None if ``p`` does not belong in it."""
        near = self._near(o, p)
        if track is None:
            if not near:
                return None
            seed = []
            if last is not None and 0 < p.ts_s - last.ts_s <= self.cfg.max_gap_s:
                seed = [last]  # the fix before: the other end of a segment passing the scene
            return SceneTrack(0, [*seed, p])
        pts = track.points
        times = [q.ts_s for q in pts]
        if p.ts_s in times:
            return None  # a re-delivered fix
        i = bisect.bisect(times, p.ts_s)
        # A far fix is kept only as the neighbour just after (or before) a near end of the track.
        after = i == len(pts) and self._near(o, pts[-1])
        before = i == 0 and self._near(o, pts[0])
        if not (near or after or before):
            return None
        points = [*pts[:i], p, *pts[i:]]
        cap = self.settings.live_max_track_fixes
        return SceneTrack(track.level, points[-cap:])

    def _evaluate(
        self,
        o: _Open,
        track: SceneTrack,
        offender_id: str,
        device_id: str,
        now: datetime,
        rule_now: datetime,
    ) -> Alert | None:
        pts = track.points
        x = np.array([q.x_m for q in pts])
        y = np.array([q.y_m for q in pts])
        lon, lat = self.projector.to_lonlat(x, y)
        trail = Trail.of(
            offender_id,
            [device_id] * len(pts),
            [q.ts_s for q in pts],
            x,
            y,
            [q.accuracy_m for q in pts],
            np.atleast_1d(lon),
            np.atleast_1d(lat),
        )
        match = match_trail(o.geom, trail, self.cfg, exclusions=False)
        if not isinstance(match, Match) or match.rank <= track.level:
            return None
        if not self._settled(match, o, pts[-1]):
            return None
        previous = {v: k for k, v in RANK.items()}.get(track.level) if track.level else None
        late = (rule_now.timestamp() - pts[-1].ts_s) > self.late_after_s
        return scene_alert(o.scene, match, now=now, origin="live", previous=previous, late=late)

    def _settled(self, match: Match, o: _Open, newest: TrackPoint) -> bool:
        """A level is final when it is the strongest, or when the trail has left the band."""
        if match.confidence == "at_scene":
            return True
        d = math.hypot(newest.x_m - o.geom.x_m, newest.y_m - o.geom.y_m) - newest.accuracy_m
        return d > o.geom.radius_m + self.cfg.near_margin_m
