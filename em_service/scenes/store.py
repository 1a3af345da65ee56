"""Scenes and their matches in the database (tables created by migration 0002).

A match row per (scene, offender) holds the strongest confidence found so far — a row is only
ever upgraded (``rank``), never downgraded — its numbers, and its evidence (the fixes and
segments, snapshotted: trail retention does not erase the evidence). An exclusion is a row with
confidence ``excluded`` (rank 0) and the alibi as evidence. ``pending_alert_json`` is an outbox:
the ``scene_proximity`` alert to send for a new or upgraded match, cleared once Kafka has it;
``alerted_rank`` is the strongest level already alerted (by this store or by the live worker).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from em_service.contracts import Scene
from em_service.scenes.matching import RANK, Exclusion, Match, MatchConfig
from em_service.store.models import IDENT, Base
from em_service.store.types import UtcDateTime

_encoder = msgspec.json.Encoder()


class SceneRow(Base):
    """A reported crime scene as received, with its projected centre and last search."""

    __tablename__ = "scenes"
    scene_id: Mapped[str] = mapped_column(String(IDENT), primary_key=True)
    crime_reference: Mapped[str] = mapped_column(String(64), index=True)
    crime_type: Mapped[str] = mapped_column(String(32))
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    x_m: Mapped[float] = mapped_column(Double, doc="easting in the projected CRS, m")
    y_m: Mapped[float] = mapped_column(Double, doc="northing in the projected CRS, m")
    radius_m: Mapped[float] = mapped_column(Double)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    low_precision: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    searched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    search_json: Mapped[str | None] = mapped_column(Text, doc="summary of the last search")


class SceneMatchRow(Base):
    """The strongest match (or the exclusion) of one offender for one scene, with evidence."""

    __tablename__ = "scene_matches"
    scene_id: Mapped[str] = mapped_column(
        ForeignKey("scenes.scene_id", ondelete="CASCADE"), primary_key=True
    )
    offender_id: Mapped[str] = mapped_column(String(IDENT), primary_key=True)
    device_id: Mapped[str | None] = mapped_column(String(IDENT))
    confidence: Mapped[str] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)
    closest_m: Mapped[float] = mapped_column(Double, doc="accuracy-discounted, m")
    closest_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closest_source: Mapped[str] = mapped_column(String(8), doc="fix | segment | alibi | live")
    closest_lat: Mapped[float | None] = mapped_column(Double)
    closest_lon: Mapped[float | None] = mapped_column(Double)
    dwell_s: Mapped[float] = mapped_column(Double)
    fixes_inside: Mapped[int] = mapped_column(Integer)
    worst_accuracy_m: Mapped[float | None] = mapped_column(Double)
    in_window: Mapped[bool] = mapped_column(Boolean)
    evidence_json: Mapped[str] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(8), doc="retro | live")
    alerted_rank: Mapped[int] = mapped_column(Integer)
    pending_alert_json: Mapped[str | None] = mapped_column(Text)
    found_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_scene_matches_offender", "offender_id", "rank"),)


def _utc(ts_s: float) -> datetime:
    return datetime.fromtimestamp(ts_s, tz=UTC)


# --- Scenes ----------------------------------------------------------------------------------


def upsert_scene(
    session: Session, scene: Scene, *, x_m: float, y_m: float, now: datetime
) -> tuple[SceneRow, bool]:
    """Store ``scene`` (new, or replacing the stored version); return (row, changed).

    If the place, radius or window changed, the scene's matches are deleted: they described a
    different scene (their alerts, if any, named its old window and stay as they were).
    """
    row = session.get(SceneRow, scene.scene_id)
    values: dict[str, Any] = {
        "crime_reference": scene.crime_reference,
        "crime_type": scene.crime_type,
        "lat": scene.lat,
        "lon": scene.lon,
        "x_m": x_m,
        "y_m": y_m,
        "radius_m": scene.radius_m,
        "window_start": scene.window_start,
        "window_end": scene.window_end,
        "reported_at": scene.reported_at,
        "low_precision": scene.low_precision,
        "source": scene.source,
    }
    if row is None:
        row = SceneRow(scene_id=scene.scene_id, received_at=now, **values)
        session.add(row)
        session.flush()
        return row, True
    geometry = ("lat", "lon", "radius_m", "window_start", "window_end")
    moved = any(getattr(row, k) != values[k] for k in geometry)
    changed = moved or any(getattr(row, k) != v for k, v in values.items())
    for k, v in values.items():
        setattr(row, k, v)
    if moved:
        session.execute(delete(SceneMatchRow).where(SceneMatchRow.scene_id == scene.scene_id))
    session.flush()
    return row, changed


def scene_message(row: SceneRow) -> Scene:
    """Return the ``Scene`` contract message of a stored scene."""
    return Scene(
        scene_id=row.scene_id,
        crime_reference=row.crime_reference,
        crime_type=row.crime_type,  # type: ignore[arg-type]
        lat=row.lat,
        lon=row.lon,
        window_start=row.window_start,
        window_end=row.window_end,
        reported_at=row.reported_at,
        radius_m=row.radius_m,
        low_precision=row.low_precision,
        source=row.source,
    )


def get_scene(session: Session, scene_id: str) -> SceneRow | None:
    """Return the stored scene, or None."""
    return session.get(SceneRow, scene_id)


def list_scenes(
    session: Session,
    *,
    crime_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[SceneRow], int]:
    """Return one page of scenes (latest window end first) whose window overlaps the range."""
    conds = []
    if crime_type:
        conds.append(SceneRow.crime_type == crime_type)
    if since:
        conds.append(SceneRow.window_end >= since)
    if until:
        conds.append(SceneRow.window_start <= until)
    total = session.scalar(select(func.count()).select_from(SceneRow).where(*conds)) or 0
    rows = session.scalars(
        select(SceneRow)
        .where(*conds)
        .order_by(SceneRow.window_end.desc(), SceneRow.scene_id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def match_counts(session: Session, scene_ids: list[str]) -> dict[str, dict[str, int]]:
    """Return scene_id → {confidence: count} for the given scenes."""
    out: dict[str, dict[str, int]] = {s: {} for s in scene_ids}
    rows = session.execute(
        select(SceneMatchRow.scene_id, SceneMatchRow.confidence, func.count())
        .where(SceneMatchRow.scene_id.in_(scene_ids))
        .group_by(SceneMatchRow.scene_id, SceneMatchRow.confidence)
    )
    for scene_id, confidence, n in rows:
        out[scene_id][confidence] = n
    return out


def mark_searched(session: Session, scene_id: str, *, at: datetime, summary: dict) -> None:
    """Record when the scene was last searched and what the search saw."""
    row = session.get(SceneRow, scene_id)
    if row is not None:
        row.searched_at = at
        row.search_json = _encoder.encode(summary).decode()


# --- Matches ---------------------------------------------------------------------------------


def evidence_json(found: Match | Exclusion, cfg: MatchConfig) -> str:
    """Return the evidence snapshot of a match or an exclusion (JSON text)."""
    kind = "match" if isinstance(found, Match) else "exclusion"
    return _encoder.encode({"kind": kind, "record": found, "config": cfg.as_dict()}).decode()


def load_evidence(row: SceneMatchRow) -> tuple[str, Match | Exclusion | None, dict]:
    """Return (kind, record or None for a live placeholder, config) of a match row."""
    raw = msgspec.json.decode(row.evidence_json)
    kind = raw.get("kind", "live")
    types = {"match": Match, "exclusion": Exclusion}
    record = msgspec.convert(raw["record"], types[kind]) if kind in types else None
    return kind, record, raw.get("config", {})


def _fields(found: Match | Exclusion) -> dict[str, Any]:
    if isinstance(found, Match):
        return {
            "device_id": found.device_id,
            "confidence": found.confidence,
            "rank": found.rank,
            "closest_m": found.closest_m,
            "closest_at": _utc(found.closest_ts_s),
            "closest_source": found.closest_source,
            "closest_lat": found.closest_lat,
            "closest_lon": found.closest_lon,
            "dwell_s": found.dwell_s,
            "fixes_inside": found.fixes_inside,
            "worst_accuracy_m": found.worst_accuracy_m,
            "in_window": found.in_window,
        }
    return {
        "device_id": found.device_ids[0] if found.device_ids else None,
        "confidence": "excluded",
        "rank": RANK["excluded"],
        "closest_m": found.min_distance_m,
        "closest_at": _utc(found.min_distance_ts_s),
        "closest_source": "alibi",
        "closest_lat": None,
        "closest_lon": None,
        "dwell_s": 0.0,
        "fixes_inside": 0,
        "worst_accuracy_m": max(found.fixes.accuracy_m, default=None),
        "in_window": True,
    }


def save_found(
    session: Session,
    found: Match | Exclusion,
    *,
    cfg: MatchConfig,
    origin: str,
    now: datetime,
) -> tuple[SceneMatchRow, int | None]:
    """Store a match or exclusion unless a stronger one is stored; return (row, previous rank).

    Equal rank refreshes the evidence (a later search saw at least as much); a lower rank
    changes nothing. The previous rank is None for a new row.
    """
    fields = _fields(found)
    row = session.get(SceneMatchRow, (found.scene_id, found.offender_id))
    if row is None:
        row = SceneMatchRow(
            scene_id=found.scene_id,
            offender_id=found.offender_id,
            evidence_json=evidence_json(found, cfg),
            origin=origin,
            alerted_rank=0,
            pending_alert_json=None,
            found_at=now,
            updated_at=now,
            **fields,
        )
        session.add(row)
        session.flush()
        return row, None
    previous = row.rank
    if fields["rank"] >= previous:
        for k, v in fields.items():
            setattr(row, k, v)
        row.evidence_json = evidence_json(found, cfg)
        row.origin = origin
        row.updated_at = now
        session.flush()
    return row, previous


def note_live_alert(
    session: Session, *, scene_id: str, offender_id: str, alert: dict, now: datetime
) -> bool:
    """Record that the live worker alerted ``alert`` (a decoded ``scene_proximity`` alert).

    Its level counts as alerted (the archiver will not alert it again). If no row is stored
    yet, a placeholder row is made from the alert's numbers until a re-match from the archive
    adds the evidence. Return False if the scene is unknown.
    """
    if session.get(SceneRow, scene_id) is None:
        return False
    details = alert.get("details", {})
    confidence = details.get("confidence", "near_scene")
    rank = RANK.get(confidence, 1)
    row = session.get(SceneMatchRow, (scene_id, offender_id))
    loc = alert.get("location") or {}
    if row is None:
        row = SceneMatchRow(
            scene_id=scene_id,
            offender_id=offender_id,
            device_id=alert.get("device_id"),
            confidence=confidence,
            rank=rank,
            closest_m=float(details.get("closest_approach_m", 0.0)),
            closest_at=datetime.fromisoformat(alert["occurred_at"]),
            closest_source="live",
            closest_lat=loc.get("lat"),
            closest_lon=loc.get("lon"),
            dwell_s=float(details.get("dwell_s", 0.0)),
            fixes_inside=int(details.get("fixes_inside", 0)),
            worst_accuracy_m=details.get("worst_accuracy_m"),
            in_window=bool(details.get("in_window", True)),
            evidence_json=_encoder.encode({"kind": "live", "record": details}).decode(),
            origin="live",
            alerted_rank=rank,
            pending_alert_json=None,
            found_at=now,
            updated_at=now,
        )
        session.add(row)
    else:
        row.alerted_rank = max(row.alerted_rank, rank)
        if row.pending_alert_json is not None and row.rank <= row.alerted_rank:
            row.pending_alert_json = None  # the worker already said it
    session.flush()
    return True


def set_pending_alert(row: SceneMatchRow, alert_json: bytes) -> None:
    """Put an alert in the row's outbox (sent after the transaction commits)."""
    row.pending_alert_json = alert_json.decode()


def pending_alerts(session: Session, limit: int = 500) -> list[tuple[str, str, int, bytes]]:
    """Return up to ``limit`` (scene_id, offender_id, rank, alert bytes) waiting to be sent."""
    rows = session.execute(
        select(
            SceneMatchRow.scene_id,
            SceneMatchRow.offender_id,
            SceneMatchRow.rank,
            SceneMatchRow.pending_alert_json,
        )
        .where(SceneMatchRow.pending_alert_json.is_not(None))
        .order_by(SceneMatchRow.updated_at)
        .limit(limit)
    )
    return [(s, o, r, a.encode()) for s, o, r, a in rows]


def mark_alerted(session: Session, sent: list[tuple[str, str, int]]) -> None:
    """Clear the outbox of rows whose alert (at ``rank``) Kafka acknowledged."""
    for scene_id, offender_id, rank in sent:
        row = session.get(SceneMatchRow, (scene_id, offender_id))
        if row is None:
            continue
        row.alerted_rank = max(row.alerted_rank, rank)
        if row.rank <= rank:
            row.pending_alert_json = None
    session.flush()


def matches_of_scene(session: Session, scene_id: str) -> list[SceneMatchRow]:
    """Return the scene's matches (strongest first) and exclusions (last)."""
    return list(
        session.scalars(
            select(SceneMatchRow)
            .where(SceneMatchRow.scene_id == scene_id)
            .order_by(SceneMatchRow.rank.desc(), SceneMatchRow.closest_m, SceneMatchRow.offender_id)
        )
    )


def matches_of_offender(session: Session, offender_id: str) -> list[tuple[SceneMatchRow, SceneRow]]:
    """Return the offender's scene matches and exclusions with their scenes (latest first)."""
    rows = session.execute(
        select(SceneMatchRow, SceneRow)
        .join(SceneRow, SceneRow.scene_id == SceneMatchRow.scene_id)
        .where(SceneMatchRow.offender_id == offender_id)
        .order_by(SceneRow.window_end.desc(), SceneRow.scene_id)
    )
    return [(m, s) for m, s in rows.tuples()]


def get_match(session: Session, scene_id: str, offender_id: str) -> SceneMatchRow | None:
    """Return one match row, or None."""
    return session.get(SceneMatchRow, (scene_id, offender_id))


def upsert_scenes(session: Session, scenes: list[Scene], *, crs: str, now: datetime) -> int:
    """Store many scenes (projected in one go); return how many were new or changed."""
    if not scenes:
        return 0
    from geofences.projection import get_projector

    x, y = get_projector(crs).to_xy([s.lon for s in scenes], [s.lat for s in scenes])
    changed = 0
    for scene, xi, yi in zip(scenes, x.tolist(), y.tolist(), strict=True):
        _row, was_changed = upsert_scene(session, scene, x_m=xi, y_m=yi, now=now)
        changed += was_changed
    return changed
