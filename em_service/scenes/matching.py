"""Pure scene matching: one scene and people's trails → matches, exclusions, and who is undecided.

No database, no Kafka, no clock. Everything is in projected metres (scene and fixes projected
with the one :func:`geofences.projection.get_projector` operation) and epoch seconds. Distances
to the scene use :func:`geofences.proximity.closest_approach`: per fix ``distance - accuracy``
(floored at 0) and straight-line interpolation between consecutive fixes when the gap and
implied speed are plausible. The rule that turns the numbers into a confidence class is
:func:`classify`, written out in ``em_service/scenes/README.md``.

Example
-------
>>> import numpy as np
>>> scene = SceneGeom("sc-1", 0.0, 0.0, 100.0, start_s=0.0, end_s=3600.0)
>>> t = np.arange(600.0, 1800.0, 60.0)          # 20 min, one fix a minute, 30 m away
>>> trail = Trail.of("off-1", ["tag-1"] * len(t), t, np.full(len(t), 30.0), np.zeros(len(t)),
...                  np.full(len(t), 8.0), np.zeros(len(t)), np.zeros(len(t)))
>>> match_trail(scene, trail, MatchConfig()).confidence
'at_scene'
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from em_service.contracts import Scene
from geofences.projection import Projector
from geofences.proximity import Approach, closest_approach

Confidence = Literal["near_scene", "passed_by", "at_scene"]
#: Order of strength; a stored match is only ever upgraded. ``excluded`` is not a match.
RANK: dict[str, int] = {"excluded": 0, "near_scene": 1, "passed_by": 2, "at_scene": 3}
CONFIDENCES: tuple[Confidence, ...] = ("near_scene", "passed_by", "at_scene")

#: The rule, as exported with evidence (keep in step with README.md and :func:`classify`).
RULE = (
    "Distances are accuracy-discounted (distance minus the fix's accuracy, floored at 0); fixes "
    "less accurate than max_fix_accuracy_m are ignored; only fixes within radius + "
    "max(segment_reach_m, near_margin_m + max_fix_accuracy_m) and their neighbours are used; "
    "between consecutive fixes at most max_gap_s apart and at most max_speed_mps the path is "
    "interpolated in a straight line. "
    "at_scene: in the window, at least at_scene_dwell_s within the radius and at least "
    "at_scene_min_fixes fixes inside it. passed_by: in the window, a fix or an interpolated "
    "segment within the radius, but not at_scene. near_scene: otherwise, in the window within "
    "radius + near_margin_m, or within the radius in the time pad before or after the window. "
    "excluded: none of these, and the fixes cover the whole window (no gap over max_gap_s) with "
    "every fix beyond radius + near_margin_m and no detour to within the radius possible between "
    "any two consecutive fixes at alibi_speed_mps."
)


@dataclass(frozen=True, slots=True)
class MatchConfig:
    """Parameters of the rule (defaults as :class:`~em_service.scenes.config.SceneSettings`)."""

    time_pad_s: float = 3600.0
    near_margin_m: float = 50.0
    at_scene_dwell_s: float = 300.0
    at_scene_min_fixes: int = 2
    max_fix_accuracy_m: float = 100.0
    max_gap_s: float = 600.0
    max_speed_mps: float = 50.0
    alibi_speed_mps: float = 15.0
    exclusion_max_window_s: float = 2 * 86400.0
    evidence_max_fixes: int = 2000
    segment_reach_m: float = 400.0

    @classmethod
    def of(cls, settings: object) -> MatchConfig:
        """Return the config from any object with these attribute names (``SceneSettings``)."""
        names = cls.__dataclass_fields__
        return cls(**{n: getattr(settings, n) for n in names if hasattr(settings, n)})

    def search_radius_m(self, radius_m: float) -> float:
        """Return how far from a scene of ``radius_m`` a fix may be and still matter: a fix
        within it can be placed near the scene, or be the near end of a segment passing it."""
        return radius_m + max(self.segment_reach_m, self.near_margin_m + self.max_fix_accuracy_m)

    def as_dict(self) -> dict[str, float]:
        """Return the parameters, for the evidence record."""
        return {n: getattr(self, n) for n in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class SceneGeom:
    """A scene in projected metres and epoch seconds."""

    scene_id: str
    x_m: float
    y_m: float
    radius_m: float
    start_s: float
    end_s: float
    low_precision: bool = False

    @classmethod
    def of(cls, scene: Scene, projector: Projector) -> SceneGeom:
        """Return the geometry of a ``Scene`` message (WGS84 → projected metres)."""
        x, y = projector.to_xy(scene.lon, scene.lat)
        return cls(
            scene.scene_id,
            float(x),
            float(y),
            float(scene.radius_m),
            scene.window_start.timestamp(),
            scene.window_end.timestamp(),
            scene.low_precision,
        )


@dataclass(frozen=True, eq=False)
class Trail:
    """One person's fixes in time order: parallel arrays (times epoch s, metres, degrees)."""

    offender_id: str
    device_id: np.ndarray
    ts_s: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    accuracy_m: np.ndarray
    lon: np.ndarray
    lat: np.ndarray

    @classmethod
    def of(
        cls,
        offender_id: str,
        device_id: Sequence[str],
        ts_s: Iterable[float],
        x_m: Iterable[float],
        y_m: Iterable[float],
        accuracy_m: Iterable[float],
        lon: Iterable[float],
        lat: Iterable[float],
    ) -> Trail:
        """Return a trail from parallel sequences (sorted by time here)."""
        ts = np.asarray(ts_s, dtype=np.float64)
        order = np.argsort(ts, kind="stable")
        cols = [np.asarray(v, dtype=np.float64)[order] for v in (x_m, y_m, accuracy_m, lon, lat)]
        return cls(offender_id, np.asarray(device_id, dtype=object)[order], ts[order], *cols)

    def __len__(self) -> int:
        return len(self.ts_s)


@dataclass(frozen=True, slots=True)
class EvidenceFix:
    """A fix kept as evidence: where, when, how accurate, how far from the scene centre."""

    device_id: str
    ts_s: float
    lon: float
    lat: float
    accuracy_m: float
    distance_m: float
    in_window: bool
    inside: bool


@dataclass(frozen=True, slots=True)
class EvidenceFixes:
    """Evidence fixes as columns (cheap to build and to store); iterate for :class:`EvidenceFix`."""

    device_id: list[str]
    ts_s: list[float]
    lon: list[float]
    lat: list[float]
    accuracy_m: list[float]
    distance_m: list[float]
    in_window: list[bool]
    inside: list[bool]

    def __len__(self) -> int:
        return len(self.ts_s)

    def __iter__(self) -> Iterator[EvidenceFix]:
        cols = (self.device_id, self.ts_s, self.lon, self.lat, self.accuracy_m)
        cols += (self.distance_m, self.in_window, self.inside)
        return (EvidenceFix(*row) for row in zip(*cols, strict=True))


@dataclass(frozen=True, slots=True)
class EvidenceSegment:
    """An interpolated segment between two consecutive fixes that came close to the scene."""

    device_id: str
    start_ts_s: float
    end_ts_s: float
    closest_m: float
    closest_ts_s: float
    closest_lon: float
    closest_lat: float


@dataclass(frozen=True, slots=True)
class Match:
    """A person placed at, near or past a scene, with the numbers and the fixes behind it."""

    scene_id: str
    offender_id: str
    device_id: str
    confidence: Confidence
    closest_m: float
    closest_ts_s: float
    closest_source: str
    closest_lon: float
    closest_lat: float
    dwell_s: float
    fixes_inside: int
    worst_accuracy_m: float
    in_window: bool
    fixes: EvidenceFixes
    segments: tuple[EvidenceSegment, ...]
    fixes_total: int

    @property
    def rank(self) -> int:
        return RANK[self.confidence]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A person whose fixes show them continuously elsewhere during the window (an alibi)."""

    scene_id: str
    offender_id: str
    device_ids: tuple[str, ...]
    fixes_in_window: int
    max_gap_s: float
    covered_from_s: float
    covered_to_s: float
    min_distance_m: float
    min_distance_ts_s: float
    min_detour_margin_m: float
    fixes: EvidenceFixes


@dataclass
class MatchResult:
    """Everything one scene search found."""

    matches: list[Match] = field(default_factory=list)
    exclusions: list[Exclusion] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)


def classify(
    approach_window: Approach,
    approach_padded: Approach | None,
    fixes_inside: int,
    radius_m: float,
    cfg: MatchConfig,
) -> tuple[Confidence | None, bool]:
    """Return ``(confidence or None, in_window)`` from the two approaches (window, padded;
    without the padded one, only the window counts).

    The written rule (README): at_scene ⇐ dwell ≥ ``at_scene_dwell_s`` and ≥
    ``at_scene_min_fixes`` fixes inside, in the window; passed_by ⇐ closest ≤ radius in the
    window; near_scene ⇐ closest ≤ radius + ``near_margin_m`` in the window, or ≤ radius in
    the pad.
    """
    d_w = approach_window.distance_m
    if d_w <= radius_m:
        stayed = (
            approach_window.dwell_s >= cfg.at_scene_dwell_s
            and fixes_inside >= cfg.at_scene_min_fixes
        )
        return ("at_scene" if stayed else "passed_by"), True
    if d_w <= radius_m + cfg.near_margin_m:
        return "near_scene", True
    if approach_padded is not None and approach_padded.distance_m <= radius_m:
        return "near_scene", False
    return None, False


def _segment_closest(
    tr: Trail, pairs: np.ndarray, scene: SceneGeom, t0_s: float, t1_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return per segment (clipped to [t0, t1]) the accuracy-discounted distance and ``u``."""
    i, j = pairs[:, 0], pairs[:, 1]
    dt = tr.ts_s[j] - tr.ts_s[i]
    lo = np.clip((t0_s - tr.ts_s[i]) / dt, 0.0, 1.0)
    hi = np.clip((t1_s - tr.ts_s[i]) / dt, 0.0, 1.0)
    ax, ay = tr.x_m[i] - scene.x_m, tr.y_m[i] - scene.y_m
    bx, by = tr.x_m[j] - tr.x_m[i], tr.y_m[j] - tr.y_m[i]
    len2 = bx * bx + by * by
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(len2 > 0, -(ax * bx + ay * by) / len2, 0.0)
    u = np.clip(u, lo, hi)
    acc = tr.accuracy_m[i] + u * (tr.accuracy_m[j] - tr.accuracy_m[i])
    return np.maximum(np.hypot(ax + u * bx, ay + u * by) - acc, 0.0), u


def _subset(tr: Trail, mask: np.ndarray) -> Trail:
    return Trail(
        tr.offender_id,
        tr.device_id[mask],
        tr.ts_s[mask],
        tr.x_m[mask],
        tr.y_m[mask],
        tr.accuracy_m[mask],
        tr.lon[mask],
        tr.lat[mask],
    )


def _evidence_fixes(
    tr: Trail, idx: np.ndarray, scene: SceneGeom, disc_m: np.ndarray
) -> EvidenceFixes:
    """Return the fixes ``idx`` of ``tr`` as evidence; ``disc_m`` their discounted distances."""
    ts = tr.ts_s[idx]
    raw = np.round(np.hypot(tr.x_m[idx] - scene.x_m, tr.y_m[idx] - scene.y_m), 2)
    return EvidenceFixes(
        device_id=[str(d) for d in tr.device_id[idx]],
        ts_s=ts.tolist(),
        lon=tr.lon[idx].tolist(),
        lat=tr.lat[idx].tolist(),
        accuracy_m=tr.accuracy_m[idx].tolist(),
        distance_m=raw.tolist(),
        in_window=((ts >= scene.start_s) & (ts <= scene.end_s)).tolist(),
        inside=(np.asarray(disc_m) <= scene.radius_m).tolist(),
    )


def _build_match(
    scene: SceneGeom,
    tr: Trail,
    approach: Approach,
    confidence: Confidence,
    in_window: bool,
    fixes_inside: int,
    cfg: MatchConfig,
) -> Match:
    pad = 0.0 if in_window else cfg.time_pad_s
    t0, t1 = scene.start_s - pad, scene.end_s + pad
    band = scene.radius_m + (cfg.near_margin_m if confidence == "near_scene" else 0.0)
    fix_d = approach.fix_distance_m
    pairs = approach.segments_used
    seg_d, seg_u = _segment_closest(tr, pairs, scene, t0, t1)
    near_seg = seg_d <= band
    pairs, seg_d, seg_u = pairs[near_seg], seg_d[near_seg], seg_u[near_seg]
    keep = np.union1d(np.flatnonzero(fix_d <= band), pairs.ravel()).astype(np.int64)
    total = len(keep)
    if total > cfg.evidence_max_fixes:  # keep the nearest, then back in time order
        raw = np.hypot(tr.x_m[keep] - scene.x_m, tr.y_m[keep] - scene.y_m)
        keep = np.sort(keep[np.argsort(raw, kind="stable")[: cfg.evidence_max_fixes]])
    fixes = _evidence_fixes(tr, keep, scene, fix_d[keep])
    i, j = pairs[:, 0], pairs[:, 1]
    segments = tuple(
        EvidenceSegment(
            device_id=str(tr.device_id[a]),
            start_ts_s=float(tr.ts_s[a]),
            end_ts_s=float(tr.ts_s[b]),
            closest_m=round(float(d), 2),
            closest_ts_s=float(tr.ts_s[a] + u * (tr.ts_s[b] - tr.ts_s[a])),
            closest_lon=float(tr.lon[a] + u * (tr.lon[b] - tr.lon[a])),
            closest_lat=float(tr.lat[a] + u * (tr.lat[b] - tr.lat[a])),
        )
        for a, b, d, u in zip(i.tolist(), j.tolist(), seg_d.tolist(), seg_u.tolist(), strict=True)
    )
    k = approach.index
    if approach.source == "segment":
        nxt = k + 1
        u = (approach.ts_s - tr.ts_s[k]) / (tr.ts_s[nxt] - tr.ts_s[k])
        lon = float(tr.lon[k] + u * (tr.lon[nxt] - tr.lon[k]))
        lat = float(tr.lat[k] + u * (tr.lat[nxt] - tr.lat[k]))
    else:
        lon, lat = float(tr.lon[k]), float(tr.lat[k])
    return Match(
        scene_id=scene.scene_id,
        offender_id=tr.offender_id,
        device_id=str(tr.device_id[k]),
        confidence=confidence,
        closest_m=round(approach.distance_m, 2),
        closest_ts_s=float(approach.ts_s),
        closest_source=approach.source,
        closest_lon=lon,
        closest_lat=lat,
        dwell_s=round(approach.dwell_s, 1) if in_window else 0.0,
        fixes_inside=fixes_inside,
        worst_accuracy_m=float(tr.accuracy_m[keep].max()) if len(keep) else float("nan"),
        in_window=in_window,
        fixes=fixes,
        segments=segments,
        fixes_total=total,
    )


def alibi(scene: SceneGeom, tr: Trail, cfg: MatchConfig) -> Exclusion | None:
    """Return the exclusion if ``tr`` shows the person continuously elsewhere, else None."""
    if scene.end_s - scene.start_s > cfg.exclusion_max_window_s:
        return None
    sel = (tr.ts_s >= scene.start_s - cfg.max_gap_s) & (tr.ts_s <= scene.end_s + cfg.max_gap_s)
    t = tr.ts_s[sel]
    if len(t) < 2 or t[0] > scene.start_s or t[-1] < scene.end_s:
        return None
    gaps = np.diff(t)
    # Only pairs that overlap the window need to rule out a visit.
    pair = (t[1:] >= scene.start_s) & (t[:-1] <= scene.end_s)
    if np.any(gaps[pair] > cfg.max_gap_s):
        return None
    raw = np.hypot(tr.x_m[sel] - scene.x_m, tr.y_m[sel] - scene.y_m)
    beyond = raw - tr.accuracy_m[sel] - scene.radius_m  # how far the disc stays out, m
    used = np.zeros(len(t), dtype=bool)
    used[:-1] |= pair
    used[1:] |= pair
    if np.any(beyond[used] <= cfg.near_margin_m):
        return None
    need = np.maximum(beyond[:-1], 0.0) + np.maximum(beyond[1:], 0.0)
    margin = (need - cfg.alibi_speed_mps * gaps)[pair]
    if np.any(margin <= 0.0):
        return None
    sub = _subset(tr, sel)
    closest = int(np.argmin(np.where(used, raw - sub.accuracy_m, np.inf)))
    keep = np.flatnonzero(used)
    return Exclusion(
        scene_id=scene.scene_id,
        offender_id=tr.offender_id,
        device_ids=tuple(sorted({str(d) for d in sub.device_id[keep]})),
        fixes_in_window=int(np.count_nonzero((t >= scene.start_s) & (t <= scene.end_s))),
        max_gap_s=float(gaps[pair].max()),
        covered_from_s=float(t[keep[0]]),
        covered_to_s=float(t[keep[-1]]),
        min_distance_m=round(float(raw[closest] - sub.accuracy_m[closest]), 2),
        min_distance_ts_s=float(t[closest]),
        min_detour_margin_m=round(float(margin.min()), 2),
        fixes=_evidence_fixes(sub, keep, scene, raw[keep] - sub.accuracy_m[keep]),
    )


def _relevant(scene: SceneGeom, trail: Trail, cfg: MatchConfig) -> Trail:
    """Return the fixes that can place someone near the scene: accurate enough, and within
    the search radius or next to one that is (a segment counts when one of its ends is that
    close — the same criterion as the archive search)."""
    good = trail.accuracy_m <= cfg.max_fix_accuracy_m
    tr = trail if good.all() else _subset(trail, good)
    near = np.hypot(tr.x_m - scene.x_m, tr.y_m - scene.y_m) <= cfg.search_radius_m(scene.radius_m)
    keep = near.copy()
    keep[1:] |= near[:-1]
    keep[:-1] |= near[1:]
    return tr if keep.all() else _subset(tr, keep)


def match_trail(
    scene: SceneGeom, trail: Trail, cfg: MatchConfig, *, exclusions: bool = True
) -> Match | Exclusion | None:
    """Return the match of one person's trail, their exclusion, or None (undecided).

    ``trail`` should hold the fixes in ``[start - pad - max_gap, end + pad + max_gap]`` (more
    is harmless). With ``exclusions=False`` (live matching on a partial trail) no alibi is
    considered.
    """
    tr = _relevant(scene, trail, cfg)
    if len(tr):
        kw = {
            "radius_m": scene.radius_m,
            "max_gap_s": cfg.max_gap_s,
            "max_speed_mps": cfg.max_speed_mps,
        }
        args = (tr.ts_s, tr.x_m, tr.y_m, tr.accuracy_m, (scene.x_m, scene.y_m))
        approach = closest_approach(*args, t0_s=scene.start_s, t1_s=scene.end_s, **kw)
        inside = int(np.count_nonzero(approach.fix_distance_m <= scene.radius_m))
        confidence, in_window = classify(approach, None, inside, scene.radius_m, cfg)
        if confidence is None:  # only then does the pad matter
            pad = cfg.time_pad_s
            padded = closest_approach(*args, t0_s=scene.start_s - pad, t1_s=scene.end_s + pad, **kw)
            confidence, in_window = classify(approach, padded, inside, scene.radius_m, cfg)
            approach = padded
        if confidence is not None:
            return _build_match(scene, tr, approach, confidence, in_window, inside, cfg)
    return alibi(scene, trail, cfg) if exclusions else None


def match_scene(scene: SceneGeom, trails: Iterable[Trail], cfg: MatchConfig) -> MatchResult:
    """Return the matches, exclusions and undecided people of ``scene`` among ``trails``."""
    result = MatchResult()
    for trail in trails:
        outcome = match_trail(scene, trail, cfg)
        if isinstance(outcome, Match):
            result.matches.append(outcome)
        elif isinstance(outcome, Exclusion):
            result.exclusions.append(outcome)
        else:
            result.undecided.append(trail.offender_id)
    result.matches.sort(key=lambda m: (-m.rank, m.closest_m, m.offender_id))
    return result
