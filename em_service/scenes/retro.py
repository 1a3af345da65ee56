"""Retrospective matching: search the trail archive when a scene arrives, store what is found.

1. Candidates: :func:`~em_service.store.spatial_index.fixes_near` around the scene with a
   search radius of ``radius + max(segment_reach_m, near_margin_m + max_fix_accuracy_m)``
   during ``[window_start - pad, window_end + pad]``: every device with one fix that close.
   The reach pads the radius for interpolation: a pass-by between two fixes is found when one
   of them is within it (at one fix a minute, 400 m covers pass-bys at up to 13 m/s).
2. Those devices' fixes within ``max_gap_s`` of their fixes near the scene (the neighbours
   that close the segments), attributed to offenders by ``device_assignments`` at the time of
   each fix (a fix outside any assignment belongs to no one and is not used); matching.
3. For the unmatched who came within ``radius + exclusion_reach_m``: their whole window, and
   the alibi check.
4. The results are stored (only ever upgraded) and every new or upgraded match puts a
   ``scene_proximity`` alert in the outbox.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
from sqlalchemy import Dialect, bindparam, or_, select
from sqlalchemy.orm import Session

from em_service.contracts import Scene
from em_service.contracts.codec import encode
from em_service.scenes import store as scene_store
from em_service.scenes.alerting import scene_alert, should_alert
from em_service.scenes.config import SceneSettings
from em_service.scenes.matching import (
    CONFIDENCES,
    RANK,
    MatchConfig,
    MatchResult,
    SceneGeom,
    Trail,
    alibi,
    match_trail,
)
from em_service.store import Store
from em_service.store.models import DeviceAssignment, Fix
from em_service.store.spatial_index import fixes_near
from em_service.store.types import to_ms
from geofences.projection import get_projector

_NAME = {rank: name for name, rank in RANK.items()}


@dataclass
class Search:
    """One search of the archive: what it found and what it read."""

    scene: Scene
    geom: SceneGeom
    result: MatchResult
    search_radius_m: float
    devices: int = 0
    fixes_read: int = 0
    seconds: float = 0.0

    def summary(self) -> dict:
        """Return the summary stored with the scene."""
        counts = Counter(m.confidence for m in self.result.matches)
        return {
            "search_radius_m": self.search_radius_m,
            "devices": self.devices,
            "fixes_read": self.fixes_read,
            "matches": {c: counts.get(c, 0) for c in CONFIDENCES},
            "exclusions": len(self.result.exclusions),
            "undecided": len(self.result.undecided),
            "seconds": round(self.seconds, 4),
        }


@dataclass
class Stored:
    """What storing a search changed: the alerts put in the outbox."""

    alerts: list[bytes] = field(default_factory=list)
    #: Confidence of each new or upgraded match.
    new_or_upgraded: list[str] = field(default_factory=list)


Ranges = dict[str, list[tuple[int, int]]]  # device → [lo_ms, hi_ms) ranges


def _assignments(
    session: Session,
    lo: datetime,
    hi: datetime,
    *,
    devices: list[str] | None = None,
    offenders: list[str] | None = None,
) -> list[tuple[str, str, int, int]]:
    """Return (device, offender, from_ms, to_ms exclusive) of the assignments of ``devices``
    (or of ``offenders``) overlapping [lo, hi]."""
    who = (
        DeviceAssignment.device_id.in_(devices or [])
        if offenders is None
        else DeviceAssignment.offender_id.in_(offenders)
    )
    rows = session.execute(
        select(
            DeviceAssignment.device_id,
            DeviceAssignment.offender_id,
            DeviceAssignment.assigned_at,
            DeviceAssignment.unassigned_at,
        ).where(
            who,
            DeviceAssignment.assigned_at <= hi,
            or_(DeviceAssignment.unassigned_at.is_(None), DeviceAssignment.unassigned_at > lo),
        )
    )
    end = to_ms(hi) + 1
    return [
        (d, o, to_ms(a), end if u is None else min(to_ms(u), end)) for d, o, a, u in rows.tuples()
    ]


@lru_cache(maxsize=4)
def _trail_sql(dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """Return one device's fixes query compiled for ``dialect`` and its positional order."""
    stmt = (
        select(Fix.ts_ms, Fix.x_m, Fix.y_m, Fix.accuracy_m, Fix.lon, Fix.lat)
        .where(
            Fix.device_id == bindparam("d"),
            Fix.ts_ms >= bindparam("lo"),
            Fix.ts_ms < bindparam("hi"),
        )
        .order_by(Fix.ts_ms)
    )
    compiled = stmt.compile(dialect=dialect)
    return compiled.string, tuple(compiled.positiontup or ())


def around(ts_ms: np.ndarray, gap_ms: int) -> list[tuple[int, int]]:
    """Return the merged ``[lo, hi)`` epoch-ms ranges within ``gap_ms`` of sorted ``ts_ms``.

    >>> around(np.array([0, 60_000, 4_000_000]), 600_000)
    [(-600000, 660001), (3400000, 4600001)]
    """
    t = np.asarray(ts_ms, dtype=np.int64)
    cut = np.flatnonzero(np.diff(t) > 2 * gap_ms)
    starts = np.concatenate([[0], cut + 1])
    ends = np.concatenate([cut, [len(t) - 1]])
    return [
        (int(t[a]) - gap_ms, int(t[b]) + gap_ms + 1)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


def load_trails(
    session: Session, owners: list[tuple[str, str, int, int]], ranges: Ranges
) -> tuple[list[Trail], int]:
    """Return each offender's trail over ``ranges`` of their devices (only while each device
    was theirs, per ``owners`` from :func:`_assignments`) and the number of fixes read.

    One indexed range read per (device, assignment, range), straight from the driver: this is
    the hot path of a scene search.
    """
    conn = session.connection()
    sql, order = _trail_sql(conn.dialect)
    cursor = conn.connection.cursor()
    parts: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)
    total = 0
    try:
        for device, offender, a_ms, u_ms in owners:
            for lo, hi in ranges.get(device, ()):
                params = {"d": device, "lo": max(a_ms, lo), "hi": min(u_ms, hi)}
                if params["lo"] >= params["hi"]:
                    continue
                cursor.execute(sql, tuple(params[k] for k in order) if order else params)
                rows = cursor.fetchall()
                if rows:
                    parts[offender].append((device, np.array(rows, dtype=np.float64)))
                    total += len(rows)
    finally:
        cursor.close()
    trails = []
    for offender, pieces in sorted(parts.items()):
        num = np.concatenate([a for _, a in pieces])
        dev = np.concatenate([np.full(len(a), d, dtype=object) for d, a in pieces])
        ts, x, y, acc, lon, lat = num.T
        trails.append(Trail.of(offender, dev, ts / 1000.0, x, y, acc, lon, lat))
    return trails, total


def search(session: Session, scene: Scene, settings: SceneSettings, crs: str) -> Search:
    """Search the archive for ``scene`` (read only) and match everyone found.

    Reads only what the rule needs: each candidate's fixes within ``max_gap_s`` of its fixes
    near the scene (for matching), and for the unmatched who came within ``radius +
    exclusion_reach_m`` their whole window (for an alibi).
    """
    began = time.perf_counter()
    cfg = MatchConfig.of(settings)
    geom = SceneGeom.of(scene, get_projector(crs))
    radius = cfg.search_radius_m(geom.radius_m)
    pad = timedelta(seconds=settings.time_pad_s)
    p0, p1 = scene.window_start - pad, scene.window_end + pad
    near = fixes_near(session, geom.x_m, geom.y_m, radius, p0, p1)
    out = Search(scene, geom, MatchResult(), radius, devices=len(near))
    if not near:
        out.seconds = time.perf_counter() - began
        return out
    gap_ms = int(settings.max_gap_s * 1000)
    gap = timedelta(milliseconds=gap_ms)
    owners = _assignments(session, p0 - gap, p1 + gap, devices=sorted(near))
    ranges = {d: around(fixes.ts_ms, gap_ms) for d, fixes in near.items()}
    trails, out.fixes_read = load_trails(session, owners, ranges)
    unmatched = []
    for trail in trails:
        found = match_trail(geom, trail, cfg, exclusions=False)
        if found is None:
            unmatched.append(trail.offender_id)
        else:
            out.result.matches.append(found)
    close = geom.radius_m + settings.exclusion_reach_m
    came_close = {d for d, fixes in near.items() if fixes.distance_m.min() <= close}
    suspects = sorted({o for d, o, *_ in owners if d in came_close} & set(unmatched))
    if suspects:
        w0, w1 = scene.window_start - gap, scene.window_end + gap
        mine = _assignments(session, w0, w1, offenders=suspects)
        window = [(to_ms(w0), to_ms(w1) + 1)]
        alibis, n = load_trails(session, mine, {d: window for d, *_ in mine})
        out.fixes_read += n
        for trail in alibis:
            exclusion = alibi(geom, trail, cfg)
            if exclusion is not None:
                out.result.exclusions.append(exclusion)
    excluded = {e.offender_id for e in out.result.exclusions}
    out.result.undecided = [o for o in unmatched if o not in excluded]
    out.result.matches.sort(key=lambda m: (-m.rank, m.closest_m, m.offender_id))
    out.seconds = time.perf_counter() - began
    return out


def store_search(
    session: Session,
    found: Search,
    settings: SceneSettings,
    *,
    now: datetime,
    origin: str = "retro",
) -> Stored:
    """Store a search's matches and exclusions; queue alerts for new or upgraded matches."""
    cfg = MatchConfig.of(settings)
    out = Stored()
    for match in found.result.matches:
        row, previous = scene_store.save_found(session, match, cfg=cfg, origin=origin, now=now)
        if previous is not None and match.rank <= previous:
            continue
        out.new_or_upgraded.append(match.confidence)
        if should_alert(
            match,
            alerted_rank=row.alerted_rank,
            scene=found.scene,
            alert_low_precision=settings.alert_low_precision,
        ):
            alert = scene_alert(
                found.scene,
                match,
                now=now,
                origin="retro",
                previous=None if previous is None else _NAME[previous],
            )
            raw = encode(alert)
            scene_store.set_pending_alert(row, raw)
            out.alerts.append(raw)
    for exclusion in found.result.exclusions:
        scene_store.save_found(session, exclusion, cfg=cfg, origin=origin, now=now)
    scene_store.mark_searched(session, found.scene.scene_id, at=now, summary=found.summary())
    return out


def run(
    store: Store, scene: Scene, settings: SceneSettings, *, crs: str, now: datetime
) -> tuple[Search, Stored]:
    """Store ``scene``, search the archive for it and store the results (blocking)."""
    projector = get_projector(crs)
    x, y = projector.to_xy(scene.lon, scene.lat)
    with store.write() as session:
        scene_store.upsert_scene(session, scene, x_m=float(x), y_m=float(y), now=now)
    with store.read() as session:
        found = search(session, scene, settings, crs)
    with store.write() as session:
        stored = store_search(session, found, settings, now=now)
    return found, stored
